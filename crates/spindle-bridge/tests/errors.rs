//! Every error of the bridge says what happened and what to do about it.

use std::error::Error;
use std::time::Duration;

use spindle_bridge::{to_thread, BridgeError};

#[test]
fn every_error_message_says_what_to_do() {
    let cases = [
        (BridgeError::Closed, "EventLoop::new()"),
        (BridgeError::Cancelled, "cancel()"),
        (BridgeError::Panicked("boom".into()), "boom"),
        (
            BridgeError::Timeout(Duration::from_millis(5)),
            "call result() or result_timeout() again",
        ),
        (BridgeError::ResultTaken, "keep the value you got"),
        (BridgeError::NoRunningLoop, "BlockingPool::spawn"),
        (BridgeError::PoolShutDown, "create a new BlockingPool"),
        (
            BridgeError::Spawn("no more threads".into()),
            "lower the pool's size",
        ),
        (BridgeError::WouldDeadlock, ".await the ConcurrentFuture"),
    ];
    for (error, advice) in cases {
        let text = error.to_string();
        assert!(text.contains(advice), "{error:?}: {text}");
    }
    assert!(BridgeError::Timeout(Duration::from_millis(5))
        .to_string()
        .contains("5ms"));
}

#[test]
fn a_submit_error_names_its_reason_as_source_and_converts_to_it() {
    let err = to_thread(|| ()).unwrap_err();
    assert_eq!(
        err.source().map(|s| s.to_string()),
        Some(BridgeError::NoRunningLoop.to_string())
    );
    assert!(format!("{err:?}").contains("NoRunningLoop"));
    let reason: BridgeError = err.into();
    assert_eq!(reason, BridgeError::NoRunningLoop);
}

#[test]
fn panicked_and_cancelled_are_recognisable() {
    assert!(BridgeError::Cancelled.is_cancelled());
    assert!(!BridgeError::Closed.is_cancelled());
    assert!(BridgeError::Panicked("x".into()).is_panic());
    assert!(!BridgeError::Cancelled.is_panic());
}
