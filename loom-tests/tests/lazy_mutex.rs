//! Loom model of a task header's lazily allocated slow state
//! (crates/spindle-loop/src/lazy_mutex.rs): two threads race to allocate it; a third only looks.
//! Checked: both first uses end up in one shared value (the loser of the install frees its own
//! box and uses the winner's), whatever a concurrent reader does (its acquire load and lock are
//! more interleavings for the pushes to survive).
#![cfg(loom)]

use std::sync::Arc;

use loom::thread;
use spindle_loop::__loom::LazyList;

#[test]
fn racing_first_uses_share_one_value_and_a_reader_sees_it_whole() {
    loom::model(|| {
        let list = Arc::new(LazyList::new());
        let pushers: Vec<_> = [1, 2]
            .into_iter()
            .map(|value| {
                let list = list.clone();
                thread::spawn(move || list.push(value))
            })
            .collect();
        let reader = {
            let list = list.clone();
            thread::spawn(move || list.peek())
        };
        for pusher in pushers {
            pusher.join().unwrap();
        }
        drop(reader.join().unwrap());
        let mut all = list.peek().expect("allocated by the first push");
        all.sort_unstable();
        assert_eq!(all, vec![1, 2]);
    });
}
