//! Issue behaviour 13: a span per loop run and per task step.

use std::sync::{Arc, Mutex};

use spindle_loop::EventLoop;
use tracing::span;
use tracing::subscriber::Subscriber;
use tracing::{Event, Metadata};

/// A minimal subscriber that records the names of the spans created.
struct Recorder {
    spans: Arc<Mutex<Vec<&'static str>>>,
    next: std::sync::atomic::AtomicU64,
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &span::Attributes<'_>) -> span::Id {
        self.spans.lock().unwrap().push(attrs.metadata().name());
        span::Id::from_u64(self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

#[test]
fn a_subscriber_sees_a_span_per_loop_run_and_per_task_step() {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        spans: spans.clone(),
        next: std::sync::atomic::AtomicU64::new(0),
    };
    tracing::subscriber::with_default(recorder, || {
        let lp = EventLoop::new().unwrap();
        let spawner = lp.clone();
        lp.run_until_complete(async move {
            spawner.create_task(async {}).unwrap().await.unwrap();
        })
        .unwrap();
    });
    let spans = spans.lock().unwrap();
    assert_eq!(spans.iter().filter(|n| **n == "spindle.loop").count(), 1);
    // Main task: 2 steps (spawn + await, then finish); child: 1 step.
    assert!(
        spans.iter().filter(|n| **n == "spindle.task").count() >= 3,
        "{spans:?}"
    );
}
