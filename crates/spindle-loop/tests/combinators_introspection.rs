//! Issue 5: `current_task()` and `all_tasks()` while tasks interleave.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

mod combinators_support;

use combinators_support::{one_iteration, HOUR};
use spindle_loop::{all_tasks, current_task, sleep, yield_now, EventLoop, TaskRef};

#[test]
fn current_task_stays_correct_while_tasks_interleave() {
    let lp = EventLoop::new().unwrap();
    let log: Rc<RefCell<Vec<(u64, u64)>>> = Rc::default();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let log = log.clone();
            lp.create_task(async move {
                let me = current_task().unwrap();
                for _ in 0..4 {
                    log.borrow_mut()
                        .push((me.id(), current_task().unwrap().id()));
                    yield_now().await;
                    log.borrow_mut()
                        .push((me.id(), current_task().unwrap().id()));
                    sleep(Duration::ZERO).await;
                }
            })
            .unwrap()
        })
        .collect();
    let ids: Vec<u64> = tasks.iter().map(|t| t.id()).collect();
    for t in tasks {
        lp.run_until_complete(t).unwrap().unwrap();
    }
    let log = log.borrow();
    assert_eq!(log.len(), 3 * 8);
    assert!(log.iter().all(|(me, seen)| me == seen), "{log:?}");
    // They really interleaved: consecutive entries come from different tasks.
    let owners: Vec<u64> = log.iter().map(|(me, _)| *me).collect();
    assert_eq!(&owners[..3], &ids[..]);
    assert!(owners.windows(2).all(|w| w[0] != w[1]), "{owners:?}");
}

#[test]
fn current_task_is_none_in_a_callback_and_outside_the_loop() {
    let lp = EventLoop::new().unwrap();
    assert!(current_task().is_none());
    let seen = Rc::new(RefCell::new(Some(0)));
    let s = seen.clone();
    lp.call_soon(move || *s.borrow_mut() = current_task().map(|t| t.id()))
        .unwrap();
    one_iteration(&lp);
    assert_eq!(*seen.borrow(), None);
}

#[test]
fn all_tasks_lists_the_live_tasks_of_the_running_loop() {
    let lp = EventLoop::new().unwrap();
    let other = EventLoop::new().unwrap();
    let _elsewhere = other.create_task(std::future::pending::<()>()).unwrap();
    let quick = lp.create_task(async {}).unwrap();
    let long = lp.create_task(sleep(HOUR)).unwrap();
    let (quick_id, long_id) = (quick.id(), long.id());
    let (main_id, live) = lp
        .run_until_complete(async move {
            quick.await.unwrap();
            let mut live: Vec<u64> = all_tasks().iter().map(TaskRef::id).collect();
            live.sort_unstable();
            (current_task().unwrap().id(), live)
        })
        .unwrap();
    let mut expected = vec![main_id, long_id];
    expected.sort_unstable();
    assert_eq!(live, expected, "the finished one ({quick_id}) is gone");
    assert!(all_tasks().is_empty(), "no loop runs here now");
    assert_eq!(lp.all_tasks().len(), 1);
    long.cancel();
}

/// Tasks that have not returned `Pending` yet are in no registry (their runnable is queued, or
/// they are running their first step); `all_tasks()` and `stats()` still count them.
#[test]
fn all_tasks_sees_tasks_that_have_not_started_or_are_in_their_first_step() {
    let lp = EventLoop::new().unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    // Same batch: `first` runs while `second` still waits behind it.
    let first = lp
        .create_task(async move {
            let mut live: Vec<u64> = all_tasks().iter().map(TaskRef::id).collect();
            live.sort_unstable();
            *s.borrow_mut() = live;
        })
        .unwrap();
    let second = lp.create_task(std::future::pending::<()>()).unwrap();
    assert_eq!(lp.stats().tasks, 2);
    assert_eq!(
        lp.all_tasks().len(),
        2,
        "both unstarted, in the ready queue"
    );
    let (first_id, second_id) = (first.id(), second.id());
    one_iteration(&lp);
    assert_eq!(
        *seen.borrow(),
        vec![first_id, second_id],
        "itself and the one behind it"
    );
    let live: Vec<u64> = lp.all_tasks().iter().map(TaskRef::id).collect();
    assert_eq!(live, vec![second_id], "now idle, so registered");
    assert_eq!(lp.stats().tasks, 1);
    second.cancel();
    one_iteration(&lp);
    assert_eq!(lp.stats().tasks, 0);
    assert!(lp.all_tasks().is_empty());
}
