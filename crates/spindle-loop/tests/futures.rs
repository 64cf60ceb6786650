//! Issue behaviour 8: LoopFuture.

use std::cell::RefCell;
use std::rc::Rc;

use spindle_loop::{EventLoop, LoopError, TaskError};

fn one_iteration(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().unwrap();
}

#[test]
fn set_result_twice_or_after_cancel_is_invalid_state() {
    let lp = EventLoop::new().unwrap();
    let f = lp.create_future();
    f.set_result(1).unwrap();
    assert!(matches!(f.set_result(2), Err(LoopError::InvalidState(_))));
    assert!(matches!(
        f.set_exception("x"),
        Err(LoopError::InvalidState(_))
    ));
    assert_eq!(f.result().unwrap(), Ok(1));

    let g = lp.create_future::<i32>();
    assert!(g.cancel());
    let err = g.set_result(3).unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(!g.cancel(), "cancel on a done future returns false");
}

#[test]
fn result_of_a_pending_future_is_invalid_state() {
    let lp = EventLoop::new().unwrap();
    let f = lp.create_future::<u8>();
    assert_eq!(
        f.result(),
        Err(LoopError::InvalidState(
            "result(): the future is not done yet"
        ))
    );
}

#[test]
fn done_callbacks_are_scheduled_in_order_never_inline() {
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let f = lp.create_future::<u8>();
    for i in 0..3 {
        let log = log.clone();
        f.add_done_callback(move |fut| log.borrow_mut().push((i, fut.done())));
    }
    f.set_result(0).unwrap();
    assert!(log.borrow().is_empty(), "not called inline by set_result");
    one_iteration(&lp);
    assert_eq!(*log.borrow(), [(0, true), (1, true), (2, true)]);
}

#[test]
fn done_callback_added_after_completion_is_scheduled_not_called_inline() {
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let f = lp.create_future::<u8>();
    f.set_result(0).unwrap();
    let l = log.clone();
    f.add_done_callback(move |_| l.borrow_mut().push("late"));
    assert!(log.borrow().is_empty());
    one_iteration(&lp);
    assert_eq!(*log.borrow(), ["late"]);
}

#[test]
fn remove_done_callback_removes_every_copy_and_returns_how_many() {
    let lp = EventLoop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let f = lp.create_future::<u8>();
    let l = log.clone();
    let cb = f.add_done_callback(move |_| l.borrow_mut().push("removed"));
    f.add_done_callback_shared(&cb);
    let l = log.clone();
    f.add_done_callback(move |_| l.borrow_mut().push("kept"));
    f.add_done_callback_shared(&cb);
    assert_eq!(f.remove_done_callback(&cb), 3);
    assert_eq!(f.remove_done_callback(&cb), 0);
    f.set_result(1).unwrap();
    one_iteration(&lp);
    assert_eq!(*log.borrow(), ["kept"]);
}

#[test]
fn several_tasks_can_await_the_same_future() {
    let lp = EventLoop::new().unwrap();
    let f = lp.create_future::<String>();
    let a = lp.create_task(f.clone()).unwrap();
    let b = lp.create_task(f.clone()).unwrap();
    let setter = f.clone();
    lp.call_soon(move || setter.set_result("shared".into()).unwrap())
        .unwrap();
    let (ra, rb) = lp
        .run_until_complete(async move { (a.await.unwrap(), b.await.unwrap()) })
        .unwrap();
    assert_eq!(ra, Ok("shared".to_string()));
    assert_eq!(rb, Ok("shared".to_string()));
}

#[test]
fn awaiting_a_cancelled_or_failed_future_gives_the_error() {
    let lp = EventLoop::new().unwrap();
    let f = lp.create_future::<u8>();
    f.cancel();
    assert_eq!(lp.run_until_complete(f).unwrap(), Err(TaskError::Cancelled));
    let g = lp.create_future::<u8>();
    g.set_exception("refused").unwrap();
    let err = lp.run_until_complete(g).unwrap().unwrap_err();
    assert_eq!(err.to_string(), "the future failed: refused");
}
