//! `#[spindle::test]` and `#[spindle::main]` expansions, run for real.

use std::sync::atomic::{AtomicUsize, Ordering};

#[spindle::test]
async fn test_attribute_runs_the_body_on_a_running_loop() {
    let lp = spindle::get_running_loop().expect("the body runs inside a loop");
    let task = lp.create_task(async { 6 * 7 }).unwrap();
    assert_eq!(task.await, Ok(42));
}

#[spindle::test(workers = 2)]
async fn test_attribute_with_workers_runs_on_a_runtime_where_spawn_works() {
    let tasks: Vec<_> = (0..20u64)
        .map(|i| spindle::spawn(async move { i }).unwrap())
        .collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap();
    }
    assert_eq!(sum, 190);
}

static MAIN_RAN: AtomicUsize = AtomicUsize::new(0);

mod as_main {
    use super::*;

    #[spindle::main]
    pub async fn main() -> Result<u32, String> {
        MAIN_RAN.fetch_add(1, Ordering::SeqCst);
        spindle::sleep(std::time::Duration::ZERO).await;
        Ok(7)
    }
}

mod as_main_on_workers {
    #[spindle::main(workers = 3)]
    pub async fn main() -> usize {
        spindle::spawn(async { 3 }).unwrap().await.unwrap()
    }
}

#[test]
fn main_attribute_returns_the_body_output_through_spindle_run() {
    assert_eq!(as_main::main(), Ok(7));
    assert_eq!(MAIN_RAN.load(Ordering::SeqCst), 1);
}

#[test]
fn main_attribute_with_workers_runs_the_body_on_a_runtime() {
    assert_eq!(as_main_on_workers::main(), 3);
}
