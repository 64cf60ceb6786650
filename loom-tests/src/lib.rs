//! Loom models of spindle's cross-thread protocols, in `tests/`. Run them with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p spindle-loom-tests --release`
//! (use a separate `CARGO_TARGET_DIR`). Without `--cfg loom` the models compile to nothing.
