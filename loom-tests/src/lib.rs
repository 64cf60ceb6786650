//! Loom models of spindle's cross-thread protocols. Run them with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p spindle-loom-tests --release`.
//! Without `--cfg loom` this crate is empty.
