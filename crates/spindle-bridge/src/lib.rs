//! # spindle-bridge: crossing threads into a loop
//!
//! Today this crate re-exports the loop's thread-safe side, [`Remote`]: `submit` (asyncio's
//! `call_soon_threadsafe`), a threadsafe `stop`, and the loop's running/closed state.
//! `LoopHandle`, `run_coroutine_threadsafe` and the blocking pool are tracked by the bridge issue.
//!
//! ```
//! use spindle_bridge::Remote;
//! use spindle_loop::EventLoop;
//! use std::sync::Arc;
//!
//! let lp = EventLoop::new().unwrap();
//! let remote: Arc<Remote> = lp.remote();
//! std::thread::spawn(move || remote.stop()).join().unwrap();
//! lp.run_forever().unwrap();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use spindle_loop::Remote;
