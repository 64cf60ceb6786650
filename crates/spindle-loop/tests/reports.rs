//! Issue behaviours 10-12: panics, unretrieved errors, debug mode.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use spindle_loop::{EventLoop, ExceptionContext, ExceptionKind};

fn one_iteration(lp: &EventLoop) {
    lp.stop();
    lp.run_forever().unwrap();
}

fn capture(lp: &EventLoop) -> Rc<RefCell<Vec<ExceptionContext>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    lp.set_exception_handler(Some(Rc::new(
        move |_: &EventLoop, ctx: &ExceptionContext| s.borrow_mut().push(ctx.clone()),
    )));
    seen
}

fn named_panicking_callback() {
    panic!("callback went wrong")
}

#[test]
fn a_panicking_callback_does_not_stop_the_loop_and_is_reported_with_its_name() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    let after = Rc::new(RefCell::new(false));
    let a = after.clone();
    lp.call_soon(named_panicking_callback).unwrap();
    let line = line!() - 1;
    lp.call_soon(move || *a.borrow_mut() = true).unwrap();
    one_iteration(&lp);
    assert!(*after.borrow(), "the rest of the batch ran");
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    let ctx = &seen[0];
    assert_eq!(ctx.kind, ExceptionKind::CallbackPanicked);
    assert_eq!(ctx.panic.as_deref(), Some("callback went wrong"));
    assert!(ctx.callback.unwrap().contains("named_panicking_callback"));
    assert_eq!(ctx.created_at.unwrap().line(), line);
}

#[test]
fn a_panicking_detached_task_is_reported_with_its_name_and_the_loop_goes_on() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    let t = lp.create_task(async { panic!("task went wrong") }).unwrap();
    t.set_name("doomed");
    drop(t);
    assert_eq!(
        lp.run_until_complete(async { "still alive" }).unwrap(),
        "still alive"
    );
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].kind, ExceptionKind::UnretrievedTaskError);
    assert_eq!(seen[0].panic.as_deref(), Some("task went wrong"));
    assert_eq!(seen[0].task.as_ref().unwrap().name(), "doomed");
}

#[test]
fn a_panic_retrieved_by_an_awaiter_is_not_reported() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    let spawner = lp.clone();
    let err = lp
        .run_until_complete(async move {
            spawner
                .create_task(async { panic!("handled") })
                .unwrap()
                .await
                .unwrap_err()
        })
        .unwrap();
    assert!(err.is_panic());
    one_iteration(&lp);
    assert!(seen.borrow().is_empty());
}

#[test]
fn a_task_handle_dropped_with_an_untaken_panic_is_reported() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    let t = lp.create_task(async { panic!("nobody looked") }).unwrap();
    one_iteration(&lp);
    assert!(seen.borrow().is_empty(), "the handle may still take it");
    drop(t);
    one_iteration(&lp);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].kind, ExceptionKind::UnretrievedTaskError);
    assert_eq!(seen[0].panic.as_deref(), Some("nobody looked"));
}

/// A pending task named `name`, run for one iteration first or not, then the loop closed:
/// what the exception handler saw.
fn report_of_a_task_destroyed_at_close(name: &str, start_first: bool) -> Vec<ExceptionContext> {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    let t = lp.create_task(std::future::pending::<()>()).unwrap();
    t.set_name(name);
    if start_first {
        one_iteration(&lp);
    }
    lp.close().unwrap();
    let seen = seen.borrow().clone();
    seen
}

#[test]
fn a_task_destroyed_while_pending_at_close_is_reported() {
    let seen = report_of_a_task_destroyed_at_close("forever", true);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].kind, ExceptionKind::TaskDestroyedPending);
    assert_eq!(seen[0].task.as_ref().unwrap().name(), "forever");
    assert!(seen[0].message.contains("destroyed but it is pending"));
}

/// Before its first step a task is in no registry (its runnable is queued): the report still
/// names it.
#[test]
fn a_task_destroyed_at_close_before_its_first_step_is_reported_by_name() {
    let seen = report_of_a_task_destroyed_at_close("never started", false);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].kind, ExceptionKind::TaskDestroyedPending);
    assert_eq!(seen[0].task.as_ref().unwrap().name(), "never started");
}

#[test]
fn an_unretrieved_future_exception_is_reported_when_dropped() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    let f = lp.create_future::<()>();
    f.set_exception("lost").unwrap();
    drop(f);
    assert_eq!(seen.borrow()[0].kind, ExceptionKind::UnretrievedFutureError);
}

#[test]
fn a_panicking_exception_handler_falls_back_to_the_default_one() {
    let lp = EventLoop::new().unwrap();
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    lp.set_exception_handler(Some(Rc::new(move |_: &EventLoop, _: &ExceptionContext| {
        *c.borrow_mut() += 1;
        panic!("handler is broken")
    })));
    lp.call_soon(|| panic!("first")).unwrap();
    lp.call_soon(|| panic!("second")).unwrap();
    one_iteration(&lp);
    // The loop survived both, and the handler was tried both times.
    assert_eq!(*calls.borrow(), 2);
    assert!(!lp.is_running());
}

#[test]
fn debug_mode_reports_slow_callbacks_and_task_steps_with_name_and_creation_site() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    lp.set_debug(true);
    lp.set_slow_callback_duration(Duration::from_millis(20));
    fn slow_callback() {
        std::thread::sleep(Duration::from_millis(30));
    }
    lp.call_soon(slow_callback).unwrap();
    let callback_line = line!() - 1;
    lp.call_soon(|| ()).unwrap();
    let t = lp
        .create_task(async { std::thread::sleep(Duration::from_millis(30)) })
        .unwrap();
    let task_line = line!() - 2;
    t.set_name("sleepy");
    lp.run_until_complete(t).unwrap().unwrap();
    let seen = seen.borrow();
    let slow: Vec<_> = seen
        .iter()
        .filter(|c| c.kind == ExceptionKind::SlowCallback)
        .collect();
    assert_eq!(slow.len(), 2, "{seen:?}");
    assert!(
        slow[0].message.contains("slow_callback"),
        "{}",
        slow[0].message
    );
    assert_eq!(slow[0].created_at.unwrap().line(), callback_line);
    assert!(
        slow[1].message.contains("task sleepy"),
        "{}",
        slow[1].message
    );
    assert_eq!(slow[1].created_at.unwrap().line(), task_line);
    assert!(slow[1].elapsed.unwrap() >= Duration::from_millis(20));
}

#[test]
fn without_debug_mode_slow_callbacks_are_not_reported() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    lp.set_debug(false);
    lp.set_slow_callback_duration(Duration::ZERO);
    lp.call_soon(|| ()).unwrap();
    one_iteration(&lp);
    assert!(seen.borrow().is_empty());
}

#[test]
fn spindle_debug_env_turns_debug_mode_on() {
    // Only this test touches the variable, and it reads it back on one fresh loop.
    std::env::set_var("SPINDLE_DEBUG", "1");
    let lp = EventLoop::new().unwrap();
    std::env::remove_var("SPINDLE_DEBUG");
    assert!(lp.debug());
    assert!(!EventLoop::new().unwrap().debug());
}

/// Panics in its `Drop` with `message`.
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("{}", self.0)
    }
}

/// Sets its flag when dropped.
struct DropFlag(Rc<std::cell::Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Issue 13.9: `close()` catches and reports a panic in any destructor it runs, drops the rest
/// and runs its hooks; a second `close()` has nothing left to do.
#[test]
fn a_panicking_drop_during_close_is_reported_and_close_goes_on() {
    let lp = EventLoop::new().unwrap();
    let seen = capture(&lp);
    let flags: Vec<Rc<std::cell::Cell<bool>>> = (0..4).map(|_| Rc::default()).collect();
    // A pending task whose future panics when dropped.
    let (guard, flag) = (PanicOnDrop("task future"), DropFlag(flags[0].clone()));
    let _task = lp
        .create_task(async move {
            let _kept = (guard, flag);
            std::future::pending::<()>().await
        })
        .unwrap();
    one_iteration(&lp);
    // A pending callback and a pending timer whose closures panic when dropped.
    let (guard, flag) = (PanicOnDrop("callback"), DropFlag(flags[1].clone()));
    lp.call_soon(move || drop((guard, flag))).unwrap();
    let (guard, flag) = (PanicOnDrop("timer"), DropFlag(flags[2].clone()));
    lp.call_later(Duration::from_secs(3600), move || drop((guard, flag)))
        .unwrap();
    let hook_ran = flags[3].clone();
    lp.on_close(move || hook_ran.set(true)).unwrap();

    lp.close().unwrap();
    assert!(
        flags.iter().all(|f| f.get()),
        "everything was dropped, hooks ran"
    );
    let panics: Vec<String> = seen
        .borrow()
        .iter()
        .filter_map(|ctx| ctx.panic.as_deref().map(str::to_owned))
        .collect();
    for what in ["task future", "callback", "timer"] {
        assert!(
            panics.iter().any(|p| p == what),
            "{what} not reported: {panics:?}"
        );
    }
    let reports = seen.borrow().len();
    lp.close().unwrap();
    assert_eq!(
        seen.borrow().len(),
        reports,
        "the second close had nothing to do"
    );
}
