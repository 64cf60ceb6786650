//! Ctrl-C in `run()` and `Runner` (asyncio 3.11's rules). Each case runs in a child process
//! (this binary again, the case named in `SPINDLE_SIGINT_CHILD`), on its main thread: this
//! file has its own `main` (`harness = false`), since libtest would run the case on a thread
//! of its own, where `run()` installs no handler. The parent checks how the child ended: exit
//! code 0 (its assertions held) or killed by `SIGINT`; a child alive after 60 s is killed and
//! the case fails.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{getpid, kill_process, Signal};
use spindle_loop::io::signals::SIGINT;
use spindle_policy::{run, PolicyError, Runner};

const CHILD: &str = "SPINDLE_SIGINT_CHILD";
/// A child that should have been killed by `SIGINT` but got past it exits with this code.
const SURVIVED: i32 = 3;

/// How a case's child must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    /// Exit code 0: the child's own assertions held.
    Normally,
    /// Killed by `SIGINT`, as a process with the default disposition is.
    KilledBySigint,
}

struct Case {
    name: &'static str,
    ends: Ends,
    child: fn(),
}

const CASES: &[Case] = &[
    Case {
        name: "first_sigint_cancels_the_main_task_and_run_returns_interrupted",
        ends: Ends::Normally,
        child: first_sigint_cancels_the_main_task_and_run_returns_interrupted,
    },
    Case {
        name: "second_sigint_during_a_run_kills_the_process",
        ends: Ends::KilledBySigint,
        child: second_sigint_during_a_run_kills_the_process,
    },
    Case {
        name: "after_run_returns_sigint_kills_the_process_again",
        ends: Ends::KilledBySigint,
        child: after_run_returns_sigint_kills_the_process_again,
    },
    Case {
        name: "each_run_of_a_runner_handles_ctrl_c_and_between_runs_it_has_its_default_effect",
        ends: Ends::Normally,
        child: each_run_of_a_runner_handles_ctrl_c,
    },
    Case {
        name: "between_runs_of_a_runner_sigint_kills_the_process",
        ends: Ends::KilledBySigint,
        child: between_runs_of_a_runner_sigint_kills_the_process,
    },
    Case {
        name: "off_the_main_thread_run_installs_no_handler",
        ends: Ends::KilledBySigint,
        child: off_the_main_thread_run_installs_no_handler,
    },
    Case {
        name: "a_loop_handling_sigint_keeps_it_and_run_leaves_it_alone",
        ends: Ends::Normally,
        child: a_loop_handling_sigint_keeps_it_and_run_leaves_it_alone,
    },
    Case {
        name: "a_main_task_done_before_the_signal_is_seen_keeps_its_value",
        ends: Ends::Normally,
        child: a_main_task_done_before_the_signal_is_seen_keeps_its_value,
    },
];

fn main() {
    if let Ok(name) = std::env::var(CHILD) {
        let case = CASES.iter().find(|c| c.name == name).expect("a known case");
        (case.child)();
        return;
    }
    // `cargo test -- [<filter>] [--skip <pattern>]...` as libtest reads them: the cases whose
    // name contains the filter and none of the skipped patterns; other flags are ignored.
    let (mut filter, mut skips) = (None, Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--skip" {
            skips.extend(args.next());
        } else if !arg.starts_with('-') {
            filter.get_or_insert(arg);
        }
    }
    let mut failed = Vec::new();
    for case in CASES {
        let filtered_out = filter
            .as_ref()
            .is_some_and(|f| !case.name.contains(f.as_str()));
        if filtered_out || skips.iter().any(|s| case.name.contains(s.as_str())) {
            continue;
        }
        let status = run_child(case.name);
        let ended = if status.success() {
            Some(Ends::Normally)
        } else if status.signal() == Some(SIGINT) {
            Some(Ends::KilledBySigint)
        } else {
            None
        };
        if ended == Some(case.ends) {
            println!("test {} ... ok", case.name);
        } else {
            println!(
                "test {} ... FAILED: child {status}, expected {:?}",
                case.name, case.ends
            );
            failed.push(case.name);
        }
    }
    assert!(failed.is_empty(), "failed: {failed:?}");
}

/// Runs case `name` in a child process and waits for it, at most 60 s (then kills it).
fn run_child(name: &str) -> ExitStatus {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, name)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child {name} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigint() {
    kill_process(getpid(), Signal::INT).unwrap();
}

/// Sets its flag when dropped: a task's future was dropped (cancelled or done).
struct SetOnDrop(&'static AtomicBool);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A main task that would sleep for a minute: SIGINT, and it is cancelled.
async fn interrupted_main(dropped: &'static AtomicBool, other_dropped: &'static AtomicBool) {
    let _main = SetOnDrop(dropped);
    spindle_loop::spawn_local(async move {
        let _other = SetOnDrop(other_dropped);
        spindle_loop::sleep(Duration::from_secs(60)).await;
    })
    .unwrap();
    sigint();
    spindle_loop::sleep(Duration::from_secs(60)).await;
}

fn first_sigint_cancels_the_main_task_and_run_returns_interrupted() {
    static MAIN_DROPPED: AtomicBool = AtomicBool::new(false);
    static OTHER_DROPPED: AtomicBool = AtomicBool::new(false);
    let out = run(interrupted_main(&MAIN_DROPPED, &OTHER_DROPPED));
    assert_eq!(out, Err(PolicyError::Interrupted));
    assert!(out.unwrap_err().to_string().contains("SIGINT"));
    assert!(
        MAIN_DROPPED.load(Ordering::SeqCst),
        "the main task's future was dropped"
    );
    assert!(
        OTHER_DROPPED.load(Ordering::SeqCst),
        "run cancelled the other task"
    );
}

fn second_sigint_during_a_run_kills_the_process() {
    let out = run(async {
        // Both in one step: the loop never gets to see the first, as when it is stuck.
        sigint();
        sigint();
        spindle_loop::sleep(Duration::from_secs(60)).await;
    });
    eprintln!("survived a second SIGINT: {out:?}");
    std::process::exit(SURVIVED);
}

fn after_run_returns_sigint_kills_the_process_again() {
    assert_eq!(run(async { 1 }), Ok(1));
    sigint();
    std::process::exit(SURVIVED);
}

fn each_run_of_a_runner_handles_ctrl_c() {
    static DROPPED: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
    let runner = Runner::new();
    let first = runner.run(interrupted_main(&DROPPED[0], &DROPPED[1]));
    assert_eq!(first, Err(PolicyError::Interrupted));
    assert!(DROPPED[0].load(Ordering::SeqCst));
    // The first run's other task is still alive: the runner is open.
    assert_eq!(runner.run(async { 7 }), Ok(7));
    let second = runner.run(interrupted_main(&DROPPED[2], &DROPPED[3]));
    assert_eq!(second, Err(PolicyError::Interrupted));
    runner.close().unwrap();
    assert!(DROPPED.iter().all(|d| d.load(Ordering::SeqCst)));
}

fn between_runs_of_a_runner_sigint_kills_the_process() {
    static DROPPED: [AtomicBool; 2] = [const { AtomicBool::new(false) }; 2];
    let runner = Runner::new();
    let first = runner.run(interrupted_main(&DROPPED[0], &DROPPED[1]));
    assert_eq!(first, Err(PolicyError::Interrupted));
    sigint();
    std::process::exit(SURVIVED);
}

fn off_the_main_thread_run_installs_no_handler() {
    std::thread::spawn(|| {
        let _ = run(async {
            sigint();
            spindle_loop::sleep(Duration::from_secs(60)).await;
        });
    })
    .join()
    .unwrap();
    std::process::exit(SURVIVED);
}

fn a_loop_handling_sigint_keeps_it_and_run_leaves_it_alone() {
    use std::{cell::Cell, rc::Rc};
    // A first run installs the default keeper; then the program takes SIGINT on a loop of its
    // own: the next run must not take it, and the signal reaches the program's handler.
    assert_eq!(run(async { 1 }), Ok(1));
    let own = spindle_loop::EventLoop::new().unwrap();
    let seen = Rc::new(Cell::new(0));
    let (s, l) = (seen.clone(), own.clone());
    own.add_signal_handler(SIGINT, move || {
        s.set(s.get() + 1);
        l.stop();
    })
    .unwrap();
    let out = run(async {
        sigint();
        // The program's handler is on `own`, which does not run now: nothing cancels this.
        spindle_loop::sleep(Duration::from_millis(20)).await;
        "not interrupted"
    });
    assert_eq!(out, Ok("not interrupted"));
    own.run_forever().unwrap();
    assert_eq!(seen.get(), 1);
    own.close().unwrap();
}

fn a_main_task_done_before_the_signal_is_seen_keeps_its_value() {
    // The signal arrives in the task's last step; the handler runs after the task is done.
    assert_eq!(
        run(async {
            sigint();
            5
        }),
        Ok(5)
    );
}
