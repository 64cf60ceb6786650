//! Loom models of the runtime's protocols (crates/spindle-policy/src/runtime/).
//!
//! `push_vs_park_vs_steal_*` drive the real `Idle` bookkeeping; the worker loop here mirrors, step
//! for step, `WorkerCore::{run_stealable, before_park, after_park}` in `worker.rs` (queues are a
//! loom mutex around a `VecDeque` instead of crossbeam's deques, parking is a sticky-token parker
//! like the loop's `Remote`). A task stranded while every worker sleeps shows up as a deadlock:
//! the pusher waits for the task to run, and nobody is awake to run it.
//!
//! `shutdown_vs_spawn` drives the real `TaskSet` (crates/spindle-loop/src/stealable.rs).
#![cfg(loom)]

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use spindle_policy::runtime::idle::Idle;

/// A parker with a sticky wake token (the contract of the loop's `Remote::park`/`wake`).
struct Parker {
    token: Mutex<bool>,
    condvar: Condvar,
}

impl Parker {
    fn new() -> Self {
        Parker {
            token: Mutex::new(false),
            condvar: Condvar::new(),
        }
    }

    fn park(&self) {
        let mut token = self.token.lock().unwrap();
        while !*token {
            token = self.condvar.wait(token).unwrap();
        }
        *token = false;
    }

    fn unpark(&self) {
        *self.token.lock().unwrap() = true;
        self.condvar.notify_one();
    }
}

struct Runtime {
    idle: Idle,
    injector: Mutex<VecDeque<u32>>,
    parkers: Vec<Parker>,
    ran: AtomicUsize,
    shutdown: AtomicBool,
    done: (Mutex<usize>, Condvar),
}

impl Runtime {
    fn new(workers: usize) -> Self {
        Runtime {
            idle: Idle::new(workers),
            injector: Mutex::new(VecDeque::new()),
            parkers: (0..workers).map(|_| Parker::new()).collect(),
            ran: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            done: (Mutex::new(0), Condvar::new()),
        }
    }

    /// `Shared::notify_one`.
    fn notify_one(&self) {
        if let Some(worker) = self.idle.worker_to_notify() {
            self.parkers[worker].unpark();
        }
    }

    /// `Shared::schedule` from a non-worker thread: injector, then notify.
    fn push(&self, task: u32) {
        self.injector.lock().unwrap().push_back(task);
        self.notify_one();
    }

    fn pop(&self) -> Option<u32> {
        self.injector.lock().unwrap().pop_front()
    }

    fn run(&self, _task: u32) {
        self.ran.fetch_add(1, Ordering::SeqCst);
        let (count, condvar) = &self.done;
        *count.lock().unwrap() += 1;
        condvar.notify_all();
    }

    /// One worker's life, mirroring worker.rs.
    fn worker(&self, index: usize) {
        let mut searching = false;
        loop {
            if self.shutdown.load(Ordering::SeqCst) {
                return;
            }
            // run_stealable
            if let Some(task) = self.pop() {
                self.run(task);
                continue;
            }
            // before_park: search
            if !searching {
                searching = self.idle.transition_worker_to_searching();
            }
            if searching {
                if let Some(task) = self.pop() {
                    searching = false;
                    if self.idle.transition_worker_from_searching() {
                        self.notify_one();
                    }
                    self.run(task);
                    continue;
                }
            }
            let last = self.idle.transition_worker_to_parked(index, searching);
            searching = false;
            if last && !self.injector.lock().unwrap().is_empty() {
                self.notify_one();
            }
            self.parkers[index].park();
            // after_park
            if !self.idle.unpark_worker_by_id(index) {
                searching = true;
            }
        }
    }

    fn wait_for(&self, n: usize) {
        let (count, condvar) = &self.done;
        let mut count = count.lock().unwrap();
        while *count < n {
            count = condvar.wait(count).unwrap();
        }
    }

    fn shut_down(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for parker in &self.parkers {
            parker.unpark();
        }
    }
}

/// One task pushed from outside while both workers go to sleep: it is run.
#[test]
fn push_vs_park_vs_steal_no_task_is_stranded() {
    loom::model(|| {
        let rt = Arc::new(Runtime::new(2));
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let rt = rt.clone();
                thread::spawn(move || rt.worker(i))
            })
            .collect();
        rt.push(1);
        rt.wait_for(1);
        rt.shut_down();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(rt.ran.load(Ordering::SeqCst), 1);
    });
}

/// Two pushes racing one worker's search and park: both run, exactly once.
#[test]
fn push_vs_park_vs_steal_two_pushes_one_worker() {
    loom::model(|| {
        let rt = Arc::new(Runtime::new(1));
        let worker = {
            let rt = rt.clone();
            thread::spawn(move || rt.worker(0))
        };
        let pusher = {
            let rt = rt.clone();
            thread::spawn(move || rt.push(2))
        };
        rt.push(1);
        rt.wait_for(2);
        pusher.join().unwrap();
        rt.shut_down();
        worker.join().unwrap();
        assert_eq!(rt.ran.load(Ordering::SeqCst), 2);
    });
}

/// Shutdown vs spawn on the real `TaskSet`: a spawn racing `close` is either refused (its future
/// comes back) or its task ends cancelled, whether it registered (went idle) before `close`
/// passed its shard, after it, or never. Never both, never neither.
#[test]
fn shutdown_vs_spawn_each_task_is_refused_or_cancelled() {
    /// Steps are kept, not run: the model runs them itself.
    #[derive(Default)]
    struct Keep {
        set: spindle_loop::TaskSet,
        steps: Mutex<Vec<spindle_loop::Runnable>>,
    }
    impl spindle_loop::Scheduler for Keep {
        fn schedule(&self, runnable: spindle_loop::Runnable) {
            self.steps.lock().unwrap().push(runnable);
        }
        fn task_set(&self) -> &spindle_loop::TaskSet {
            &self.set
        }
    }
    loom::model(|| {
        let scheduler = std::sync::Arc::new(Keep::default());
        let spawner = {
            let scheduler = scheduler.clone();
            thread::spawn(move || {
                match spindle_loop::spawn_stealable(std::future::pending::<()>(), &scheduler) {
                    Ok((first, task)) => {
                        first.run(); // goes idle: registers, racing close
                        Some(task)
                    }
                    Err(rejected) => {
                        drop(rejected.into_inner()); // the future came back
                        None
                    }
                }
            })
        };
        scheduler.set.close();
        scheduler.set.cancel_all();
        let task = spawner.join().unwrap();
        // What a draining scheduler does: run every step left, cancelled.
        loop {
            let step = scheduler.steps.lock().unwrap().pop();
            let Some(step) = step else { break };
            step.cancel();
            step.run();
        }
        if let Some(task) = task {
            assert!(
                task.done() && task.cancelled(),
                "a spawned task ends cancelled"
            );
        }
        assert!(scheduler.set.is_empty());
    });
}

/// A worker's LIFO slot (`spindle_loop::RunnableSlot`, the real one): the owner puts a task in
/// and displaces it with another, then takes what is left, while a stealing sibling takes from
/// the slot. Every task runs exactly once: none is lost between the swaps, none taken twice.
#[test]
fn lifo_slot_owner_vs_thief_each_task_runs_once() {
    loom::model(|| {
        let scheduler = std::sync::Arc::new(spindle_loop::Inline::default());
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let spawn = |scheduler: &std::sync::Arc<spindle_loop::Inline>| {
            let ran = ran.clone();
            spindle_loop::spawn_stealable(
                async move {
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                },
                scheduler,
            )
            .map_err(|_| "spawn refused")
            .unwrap()
        };
        let (first, first_task) = spawn(&scheduler);
        let (second, second_task) = spawn(&scheduler);
        let slot = Arc::new(spindle_loop::RunnableSlot::new());
        assert!(slot.replace(first).is_none());
        let thief = {
            let slot = slot.clone();
            thread::spawn(move || {
                if let Some(stolen) = slot.take() {
                    stolen.run();
                }
            })
        };
        if let Some(displaced) = slot.replace(second) {
            displaced.run();
        }
        if let Some(next) = slot.take() {
            next.run();
        }
        thief.join().unwrap();
        // The thief may have taken nothing, the first task or the second; either way both ran,
        // each once.
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(first_task.done() && second_task.done());
        assert!(!slot.is_occupied());
    });
}
