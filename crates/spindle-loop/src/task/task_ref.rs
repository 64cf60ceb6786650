//! [`TaskRef`]: a shared, type-erased reference to a task.

use super::*;

/// A shared, type-erased reference to a task: what [`current_task`](crate::current_task),
/// [`all_tasks`](crate::all_tasks) and done-callbacks give you. It can cancel and name the task
/// but not take its result.
///
/// ```
/// use spindle_loop::{current_task, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let task = lp.create_task(async { current_task().unwrap().name() }).unwrap();
/// task.set_name("worker");
/// assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), "worker");
/// ```
#[derive(Clone)]
pub struct TaskRef {
    /// The task's own waker: keeps the allocation (and so `header`) alive, and reschedules the
    /// task on `cancel()`.
    pub(super) waker: Waker,
    pub(super) header: NonNull<TaskHeader>,
}

// SAFETY: `TaskHeader` is `Sync` (atomics, a mutex, and `Send + Sync` fields), and the pointer
// stays valid while the waker (itself `Send + Sync`) holds its reference; so sharing or sending a
// `TaskRef` is as safe as sharing `&TaskHeader` plus a `Waker`.
unsafe impl Send for TaskRef {}
// SAFETY: as above.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    pub(crate) fn new(waker: Waker, header: &TaskHeader) -> Self {
        TaskRef {
            waker,
            header: NonNull::from(header),
        }
    }

    /// Reschedules the task (a no-op if it is queued, running or done).
    pub(crate) fn wake(&self) {
        self.waker.wake_by_ref();
    }

    pub(crate) fn header(&self) -> &TaskHeader {
        // SAFETY: `self.waker` holds a reference count on the task's allocation, and the cell
        // drops the header only when the last reference is gone.
        unsafe { self.header.as_ref() }
    }

    /// The task's id, unique in this process.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let a = lp.create_task(async {}).unwrap();
    /// let b = lp.create_task(async {}).unwrap();
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.header().id
    }

    /// The id of the loop the task belongs to (0 for a stealable task, which any worker loop of
    /// its runtime may run).
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert_eq!(t.task_ref().loop_id(), lp.id());
    /// ```
    pub fn loop_id(&self) -> u64 {
        self.header().loop_id()
    }

    /// The task's name: the one set with [`set_name`](Self::set_name), else `Task-<id>`.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert_eq!(t.name(), format!("Task-{}", t.id()));
    /// ```
    pub fn name(&self) -> String {
        self.header().name()
    }

    /// Renames the task.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// t.set_name("fetch");
    /// assert_eq!(t.name(), "fetch");
    /// ```
    pub fn set_name(&self, name: impl Into<String>) {
        self.header().slow().name = Some(name.into().into_boxed_str());
    }

    /// Requests cancellation: at its next step the task drops its future and completes with
    /// [`TaskError::Cancelled`]; the task it is awaiting is cancelled too. Returns `false` if the
    /// task is already done. Thread-safe.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert!(t.task_ref().cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        self.header().request_cancel(&self.waker)
    }

    /// Whether the task finished (with a value, an error, or by cancellation).
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let r = t.task_ref();
    /// assert!(!r.done());
    /// lp.run_until_complete(t).unwrap().unwrap();
    /// assert!(r.done());
    /// ```
    pub fn done(&self) -> bool {
        self.header().state() & DONE != 0
    }

    /// Whether the task finished by cancellation.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let r = t.task_ref();
    /// t.cancel();
    /// let _ = lp.run_until_complete(t);
    /// assert!(r.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.header().state() & CANCELLED != 0
    }

    /// Whether the task finished with a panic.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async { panic!("boom") }).unwrap();
    /// let r = t.task_ref();
    /// let _ = lp.run_until_complete(t);
    /// assert!(r.panicked());
    /// ```
    pub fn panicked(&self) -> bool {
        self.header().state() & FAILED != 0
    }

    /// Where the task was created.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// assert_eq!(t.task_ref().created_at().line(), line!() - 1);
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.header().created_at
    }

    /// Adds a callback run (through the loop, with `call_soon`, never inline) when the task is
    /// done; at once (scheduled) if it already is. Returns the shared callback, for
    /// [`remove_done_callback`](Self::remove_done_callback).
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let seen = Arc::new(AtomicBool::new(false));
    /// let s = seen.clone();
    /// t.add_done_callback(move |task| s.store(task.done(), Ordering::SeqCst));
    /// lp.run_until_complete(t).unwrap().unwrap();
    /// lp.stop();
    /// lp.run_forever().unwrap(); // the callback runs in the iteration after completion
    /// assert!(seen.load(Ordering::SeqCst));
    /// ```
    pub fn add_done_callback(
        &self,
        callback: impl Fn(&TaskRef) + Send + Sync + 'static,
    ) -> TaskCallback {
        let callback: TaskCallback = Arc::new(callback);
        self.header().add_callback(self, callback.clone());
        callback
    }

    /// Adds the same shared callback again (each copy runs).
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let cb = t.add_done_callback(|_| ());
    /// t.add_done_callback_shared(&cb);
    /// assert_eq!(t.remove_done_callback(&cb), 2);
    /// ```
    pub fn add_done_callback_shared(&self, callback: &TaskCallback) {
        self.header().add_callback(self, callback.clone());
    }

    /// Removes every copy of `callback` not yet scheduled; returns how many were removed.
    ///
    /// ```
    /// # let lp = spindle_loop::EventLoop::new().unwrap();
    /// let t = lp.create_task(async {}).unwrap();
    /// let cb = t.add_done_callback(|_| unreachable!());
    /// assert_eq!(t.remove_done_callback(&cb), 1);
    /// assert_eq!(t.remove_done_callback(&cb), 0);
    /// ```
    pub fn remove_done_callback(&self, callback: &TaskCallback) -> usize {
        self.header().remove_callback(callback)
    }
}

impl PartialEq for TaskRef {
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header
    }
}

impl Eq for TaskRef {}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRef")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("done", &self.done())
            .field("cancelled", &self.cancelled())
            .field("created_at", &self.created_at())
            .finish()
    }
}
