//! Issue 4: the per-thread loop policy.

use std::sync::{Arc, Barrier};
use std::thread;

use spindle_loop::EventLoop;
use spindle_policy::{
    get_event_loop, get_running_loop, AutoCreate, DefaultEventLoopPolicy, EventLoopPolicy,
    PolicyError,
};

fn in_thread<R: Send + 'static>(name: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn eight_threads_each_get_their_own_loop_invisible_to_the_others() {
    let policy = Arc::new(DefaultEventLoopPolicy::new(AutoCreate::EveryThread));
    let barrier = Arc::new(Barrier::new(9));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (policy, barrier) = (policy.clone(), barrier.clone());
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    let lp = policy.get_event_loop().unwrap();
                    // Identity is stable within the thread.
                    assert_eq!(policy.get_event_loop().unwrap().id(), lp.id());
                    let id = lp.id();
                    barrier.wait(); // all 8 loops exist now
                    barrier.wait(); // main thread checked loops()
                    lp.close().unwrap();
                    id
                })
                .unwrap()
        })
        .collect();
    barrier.wait();
    let mut listed: Vec<u64> = policy.loops().iter().map(|r| r.loop_id()).collect();
    listed.sort_unstable();
    barrier.wait();
    let mut ids: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "eight distinct loops");
    assert_eq!(listed, ids, "loops() lists exactly the live ones");
    assert!(policy.loops().is_empty(), "closed loops leave the registry");
}

#[test]
fn a_loop_set_in_one_thread_is_invisible_to_another() {
    let policy = Arc::new(DefaultEventLoopPolicy::new(AutoCreate::Never));
    let lp = policy.new_event_loop().unwrap();
    policy.set_event_loop(Some(lp.clone()));
    assert_eq!(policy.get_event_loop().unwrap().id(), lp.id());
    let p = policy.clone();
    let other = in_thread("other", move || p.get_event_loop().map(|l| l.id()));
    assert!(matches!(other, Err(PolicyError::NoCurrentLoop { .. })));
    policy.set_event_loop(None);
}

#[test]
fn main_thread_creates_a_loop_once_and_not_after_set_none() {
    let policy = Arc::new(DefaultEventLoopPolicy::default());
    let p = policy.clone();
    in_thread("main", move || {
        let lp = p.get_event_loop().unwrap();
        assert_eq!(
            p.get_event_loop().unwrap().id(),
            lp.id(),
            "created and made current"
        );
        p.set_event_loop(None);
        let err = p.get_event_loop().unwrap_err();
        assert_eq!(
            err,
            PolicyError::NoCurrentLoop {
                thread: "main".into()
            }
        );
    });
}

#[test]
fn a_non_main_thread_without_a_loop_gets_an_error_naming_it() {
    let policy = Arc::new(DefaultEventLoopPolicy::default());
    let err = in_thread("worker-3", move || policy.get_event_loop().unwrap_err());
    assert_eq!(
        err,
        PolicyError::NoCurrentLoop {
            thread: "worker-3".into()
        }
    );
    assert!(err
        .to_string()
        .starts_with("no current event loop in thread 'worker-3'"));
}

#[test]
fn auto_create_rule_is_configurable() {
    let every = Arc::new(DefaultEventLoopPolicy::new(AutoCreate::EveryThread));
    assert!(in_thread("any", move || every.get_event_loop().is_ok()));
    let never = Arc::new(DefaultEventLoopPolicy::new(AutoCreate::Never));
    assert!(in_thread("main", move || never.get_event_loop().is_err()));
}

#[test]
fn new_event_loop_does_not_make_it_current() {
    let policy = DefaultEventLoopPolicy::new(AutoCreate::Never);
    let _fresh = policy.new_event_loop().unwrap();
    assert!(policy.get_event_loop().is_err());
    assert!(policy.loops().is_empty());
}

#[test]
fn get_event_loop_inside_a_running_loop_returns_it_whatever_the_policy() {
    let policy = Arc::new(DefaultEventLoopPolicy::new(AutoCreate::Never));
    let lp = EventLoop::new().unwrap();
    let id = lp.id();
    let p = policy.clone();
    let (from_policy, from_module) = lp
        .run_until_complete(async move {
            (
                p.get_event_loop().unwrap().id(),
                get_event_loop().unwrap().id(),
            )
        })
        .unwrap();
    assert_eq!((from_policy, from_module), (id, id));
}

#[test]
fn get_running_loop_works_in_callbacks_and_tasks_and_errors_outside() {
    assert_eq!(get_running_loop().unwrap_err(), PolicyError::NoRunningLoop);
    assert_eq!(
        get_running_loop().unwrap_err().to_string(),
        "no running event loop: call this from inside a task or callback of a running loop"
    );
    let lp = EventLoop::new().unwrap();
    let id = lp.id();
    let seen = std::rc::Rc::new(std::cell::Cell::new(0));
    let s = seen.clone();
    lp.call_soon(move || s.set(get_running_loop().unwrap().id()))
        .unwrap();
    let in_task = lp
        .run_until_complete(async { get_running_loop().unwrap().id() })
        .unwrap();
    assert_eq!((seen.get(), in_task), (id, id));
}

#[test]
fn module_level_spawn_local_current_task_and_all_tasks_use_the_running_loop() {
    let out = spindle_policy::run(async {
        let child =
            spindle_policy::spawn_local(async { spindle_policy::current_task().unwrap().name() })
                .unwrap();
        child.set_name("child");
        let live = spindle_policy::all_tasks().len();
        (child.await.unwrap(), live)
    })
    .unwrap();
    assert_eq!(out, ("child".to_string(), 2));
    assert_eq!(
        spindle_policy::spawn_local(async {}).unwrap_err().reason(),
        &spindle_loop::LoopError::NoRunningLoop
    );
}

#[test]
fn the_process_wide_policy_can_be_replaced_and_restored() {
    // Only this test changes the global policy.
    let custom = Arc::new(DefaultEventLoopPolicy::new(AutoCreate::EveryThread));
    spindle_policy::set_event_loop_policy(Some(custom.clone()));
    let lp = in_thread("t", || spindle_policy::get_event_loop().map(|l| l.id()));
    assert!(lp.is_ok());
    spindle_policy::set_event_loop_policy(None);
    let after = in_thread("t", || spindle_policy::get_event_loop().is_err());
    assert!(
        after,
        "the default policy only creates loops in the main thread"
    );
}

#[test]
fn loops_lets_another_thread_stop_every_threads_loop() {
    let policy = Arc::new(DefaultEventLoopPolicy::new(AutoCreate::EveryThread));
    let ready = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (policy, ready) = (policy.clone(), ready.clone());
            thread::Builder::new()
                .name(format!("looper-{i}"))
                .spawn(move || {
                    let lp = policy.get_event_loop().unwrap();
                    // Signal from inside the loop, so the stop below finds it running.
                    let r = ready.clone();
                    lp.call_soon(move || {
                        r.wait();
                    })
                    .unwrap();
                    lp.run_forever().unwrap();
                    lp.close().unwrap();
                })
                .unwrap()
        })
        .collect();
    ready.wait();
    let loops = policy.loops();
    assert_eq!(loops.len(), 3);
    for handle in &loops {
        handle.stop().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    assert!(policy.loops().is_empty());
}
