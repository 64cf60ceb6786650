//! [`gather`]: run children concurrently as tasks and collect their results in argument order.
//!
//! The rules are on [`Gather`].

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::combinators::child::{Child, IntoTask, Spawn};
use crate::error::TaskError;
use crate::task::Task;

mod sealed {
    pub trait Sealed {}
}

/// The children of a [`Gather`]: a `Vec` of [`IntoTask`] (from [`gather`] and
/// [`gather_tasks`]) or a tuple of them, of up to 12 different types (from [`gather!`]).
/// Sealed.
///
/// [`gather!`]: macro@crate::gather
///
/// ```
/// use spindle_loop::{EventLoop, Gather, Spawn};
///
/// let lp = EventLoop::new().unwrap();
/// let both = Gather::new((Spawn::new(async { 1u8 }), Spawn::new(async { "two" })));
/// assert_eq!(lp.run_until_complete(both).unwrap(), Ok((1, "two")));
/// ```
pub trait Children: sealed::Sealed {
    /// The children's values, in argument order (what a fail-fast gather produces).
    type Values;
    /// Every child's `Result`, in argument order (what a settled gather produces).
    type Outcomes;
    #[doc(hidden)]
    type State: ChildList<Values = Self::Values, Outcomes = Self::Outcomes>;
    #[doc(hidden)]
    fn into_state(self) -> Self::State;
}

/// The running side of [`Children`]. `pub` in a private module: nameable by nobody outside.
pub trait ChildList {
    /// See [`Children::Values`].
    type Values;
    /// See [`Children::Outcomes`].
    type Outcomes;
    /// How many children.
    fn len(&self) -> usize;
    /// Child `i`.
    fn child(&mut self, i: usize) -> Option<&mut dyn ChildOps>;
    /// Every value, or the first error in argument order.
    fn values(&mut self) -> Result<Self::Values, TaskError>;
    /// Every outcome.
    fn outcomes(&mut self) -> Self::Outcomes;
}

/// What the engine does with one child, whatever its output type (implemented by `Child`).
pub trait ChildOps {
    /// Starts the child if it is not yet.
    fn start(&mut self);
    /// Polls the child for its outcome: `Ready(Some(err))`, `Ready(None)` or `Pending`.
    fn poll_child(&mut self, cx: &mut Context<'_>, recheck: bool) -> Poll<Option<TaskError>>;
    /// Lets go of the child, cancelling it if asked.
    fn release(&mut self, cancel: bool);
}

impl<C: IntoTask> sealed::Sealed for Vec<C> {}

impl<C: IntoTask> Children for Vec<C> {
    type Values = Vec<C::Output>;
    type Outcomes = Vec<Result<C::Output, TaskError>>;
    type State = Vec<Child<C>>;

    fn into_state(self) -> Self::State {
        self.into_iter().map(Child::Unstarted).collect()
    }
}

impl<C: IntoTask> ChildList for Vec<Child<C>> {
    type Values = Vec<C::Output>;
    type Outcomes = Vec<Result<C::Output, TaskError>>;

    fn len(&self) -> usize {
        <[Child<C>]>::len(self)
    }

    fn child(&mut self, i: usize) -> Option<&mut dyn ChildOps> {
        self.get_mut(i).map(|c| c as &mut dyn ChildOps)
    }

    fn values(&mut self) -> Result<Self::Values, TaskError> {
        self.iter_mut().map(Child::take).collect()
    }

    fn outcomes(&mut self) -> Self::Outcomes {
        self.iter_mut().map(Child::take).collect()
    }
}

impl sealed::Sealed for () {}

impl Children for () {
    type Values = ();
    type Outcomes = ();
    type State = ();

    fn into_state(self) {}
}

impl ChildList for () {
    type Values = ();
    type Outcomes = ();

    fn len(&self) -> usize {
        0
    }

    fn child(&mut self, _: usize) -> Option<&mut dyn ChildOps> {
        None
    }

    fn values(&mut self) -> Result<(), TaskError> {
        Ok(())
    }

    fn outcomes(&mut self) {}
}

macro_rules! tuple_children {
    ($len:literal: $($name:ident $idx:tt),+) => {
        impl<$($name: IntoTask),+> sealed::Sealed for ($($name,)+) {}

        impl<$($name: IntoTask),+> Children for ($($name,)+) {
            type Values = ($($name::Output,)+);
            type Outcomes = ($(Result<$name::Output, TaskError>,)+);
            type State = ($(Child<$name>,)+);

            fn into_state(self) -> Self::State {
                ($(Child::Unstarted(self.$idx),)+)
            }
        }

        impl<$($name: IntoTask),+> ChildList for ($(Child<$name>,)+) {
            type Values = ($($name::Output,)+);
            type Outcomes = ($(Result<$name::Output, TaskError>,)+);

            fn len(&self) -> usize {
                $len
            }

            fn child(&mut self, i: usize) -> Option<&mut dyn ChildOps> {
                match i {
                    $($idx => Some(&mut self.$idx),)+
                    _ => None,
                }
            }

            fn values(&mut self) -> Result<Self::Values, TaskError> {
                Ok(($(self.$idx.take()?,)+))
            }

            fn outcomes(&mut self) -> Self::Outcomes {
                ($(self.$idx.take(),)+)
            }
        }
    };
}

tuple_children!(1: A 0);
tuple_children!(2: A 0, B 1);
tuple_children!(3: A 0, B 1, C 2);
tuple_children!(4: A 0, B 1, C 2, D 3);
tuple_children!(5: A 0, B 1, C 2, D 3, E 4);
tuple_children!(6: A 0, B 1, C 2, D 3, E 4, F 5);
tuple_children!(7: A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_children!(8: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_children!(9: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_children!(10: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_children!(11: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_children!(12: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// The part of a gather that does not depend on its children's types: which children are
/// still pending and the waker they were polled with. It finished once it started and nothing
/// is pending (`finish` empties `pending`).
#[derive(Default)]
struct Engine {
    started: bool,
    /// Indices of the children not yet finished (order is irrelevant: `swap_remove`).
    pending: Vec<usize>,
    /// The waker the pending children were last polled with (registered in their tasks).
    waker: Option<Waker>,
}

impl Engine {
    /// Drives the children: `Ready(Some(error))` when fail-fast meets an error, `Ready(None)`
    /// once every child finished, `Pending` otherwise.
    fn poll<L: ChildList>(
        &mut self,
        list: &mut L,
        cx: &mut Context<'_>,
        fail_fast: bool,
    ) -> Poll<Option<TaskError>> {
        if !self.started {
            self.started = true;
            self.pending = (0..list.len()).collect();
            for &i in &self.pending {
                if let Some(child) = list.child(i) {
                    child.start();
                }
            }
        }
        // A new waker (first poll, or the gather moved to another task) must be registered in
        // every pending child; otherwise only the children that are done need a poll.
        let recheck = !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if recheck {
            self.waker = Some(cx.waker().clone());
        }
        let mut j = 0;
        while j < self.pending.len() {
            let Some(child) = list.child(self.pending[j]) else {
                self.pending.swap_remove(j);
                continue;
            };
            match child.poll_child(cx, recheck) {
                Poll::Ready(error) => {
                    self.pending.swap_remove(j);
                    if fail_fast && error.is_some() {
                        self.finish(list);
                        return Poll::Ready(error);
                    }
                }
                Poll::Pending => j += 1,
            }
        }
        if self.pending.is_empty() {
            self.finish(list);
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }

    /// The gather completed: the children still running keep running, their results count as
    /// retrieved.
    fn finish<L: ChildList>(&mut self, list: &mut L) {
        self.waker = None;
        for i in self.pending.drain(..) {
            if let Some(child) = list.child(i) {
                child.release(false);
            }
        }
    }

    /// The gather was dropped before it completed: cancel every child not yet done (none
    /// are pending before the start or after the finish).
    fn cancel<L: ChildList>(&mut self, list: &mut L) {
        for i in self.pending.drain(..) {
            if let Some(child) = list.child(i) {
                child.release(true);
            }
        }
    }

    fn finished(&self) -> bool {
        self.started && self.pending.is_empty()
    }
}

/// Runs its children concurrently as tasks and completes with their values in argument order,
/// or with the first error (fail-fast). Created by [`gather`], [`gather_tasks`], [`gather!`]
/// or [`Gather::new`]; [`settled`](Gather::settled) switches to asyncio's
/// `return_exceptions=True`. It is `Send` when its children and their outputs are.
///
/// # Rules (asyncio's `gather`)
///
/// - Every child runs as a task: a [`Task`] as it is, a future wrapped in one on the running
///   loop at the first poll. Results come back in argument order, not completion order.
/// - **Fail-fast** (the default): the first error the gather sees (a panic, a cancellation by
///   someone else, ...) completes it with that error. The other children keep running; the
///   gather marks their results as retrieved, so their later errors are not reported as
///   "never retrieved".
/// - **Settled** ([`Gather::settled`], asyncio's `return_exceptions=True`): every child's
///   `Result` once all are done; a child cancelled by someone else is a `Cancelled` entry.
/// - **Cancelling the gather** (dropping it before it completes, which is what cancelling the
///   task that awaits it does) cancels every child not yet done.
/// - An empty gather completes at once.
///
/// # Cost
///
/// One task per future child, and a list of the children still pending. A child is polled when
/// it is done (its task's done flag is one atomic load), so a poll of the gather costs one load
/// per pending child plus the work of the children that finished; children that finish in the
/// same iteration wake the gather once.
///
/// [`gather!`]: macro@crate::gather
///
/// ```
/// use spindle_loop::{gather, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let squares = lp.run_until_complete(gather((1..=3u32).map(|i| async move { i * i })));
/// assert_eq!(squares.unwrap(), Ok(vec![1, 4, 9]));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Gather<L: Children> {
    children: L::State,
    engine: Engine,
}

/// A [`Gather`] in settled mode (asyncio's `return_exceptions=True`): every child's `Result`,
/// in argument order, once all are done. Created by [`Gather::settled`].
///
/// ```
/// use spindle_loop::{gather, EventLoop, TaskError};
///
/// let lp = EventLoop::new().unwrap();
/// let t = lp.create_task(async { 2 }).unwrap();
/// t.cancel();
/// let all = spindle_loop::gather_tasks([lp.create_task(async { 1 }).unwrap(), t]).settled();
/// assert_eq!(lp.run_until_complete(all).unwrap(), vec![Ok(1), Err(TaskError::Cancelled)]);
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct GatherSettled<L: Children> {
    inner: Gather<L>,
}

// The children are only ever moved (into tasks), never polled in place: pinning the gather
// pins nothing inside it.
impl<L: Children> Unpin for Gather<L> {}

impl<L: Children> Gather<L> {
    /// A gather over `children`: a `Vec` or a tuple of [`Task`]s and [`Spawn`]s.
    ///
    /// ```
    /// use spindle_loop::{EventLoop, Gather, Spawn};
    ///
    /// let lp = EventLoop::new().unwrap();
    /// let t = lp.create_task(async { 'a' }).unwrap();
    /// let g = Gather::new((t, Spawn::new(async { 2.5 })));
    /// assert_eq!(lp.run_until_complete(g).unwrap(), Ok(('a', 2.5)));
    /// ```
    pub fn new(children: L) -> Self {
        Gather {
            children: children.into_state(),
            engine: Engine::default(),
        }
    }

    /// Settled mode (asyncio's `return_exceptions=True`): the gather waits for every child and
    /// yields each one's `Result` instead of failing fast.
    ///
    /// ```
    /// use spindle_loop::{gather, EventLoop};
    ///
    /// let lp = EventLoop::new().unwrap();
    /// let all = gather((1..=2).map(|i| async move { i })).settled();
    /// assert_eq!(lp.run_until_complete(all).unwrap(), vec![Ok(1), Ok(2)]);
    /// ```
    pub fn settled(self) -> GatherSettled<L> {
        GatherSettled { inner: self }
    }
}

impl<L: Children> Future for Gather<L> {
    type Output = Result<L::Values, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.engine.poll(&mut this.children, cx, true) {
            Poll::Ready(Some(error)) => Poll::Ready(Err(error)),
            Poll::Ready(None) => Poll::Ready(this.children.values()),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<L: Children> Future for GatherSettled<L> {
    type Output = L::Outcomes;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut self.get_mut().inner;
        match this.engine.poll(&mut this.children, cx, false) {
            Poll::Ready(_) => Poll::Ready(this.children.outcomes()),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<L: Children> Drop for Gather<L> {
    fn drop(&mut self) {
        self.engine.cancel(&mut self.children);
    }
}

impl<L: Children> fmt::Debug for Gather<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("children", &self.children.len())
            .field("pending", &self.engine.pending.len())
            .field("finished", &self.engine.finished())
            .finish()
    }
}

impl<L: Children> fmt::Debug for GatherSettled<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GatherSettled").field(&self.inner).finish()
    }
}

/// Runs `futures` concurrently, each as a task on the running loop (asyncio's
/// `asyncio.gather(*coros)`), and completes with their outputs in argument order, or with the
/// first error (a panic, or a child cancelled by someone else). See [`Gather`].
///
/// The tasks are created at the first poll, so a gather can be built before any loop runs.
/// For [`Task`]s you already hold use [`gather_tasks`] (given here, a task would be wrapped in
/// another task and its errors would become values); [`gather!`] takes any mix, of different
/// output types.
///
/// [`gather!`]: macro@crate::gather
///
/// # Panics
///
/// When first polled outside a running spindle loop, if there is a future to spawn.
///
/// ```
/// use std::time::Duration;
/// use spindle_loop::{gather, sleep, EventLoop};
///
/// async fn after(ms: u64, v: &'static str) -> &'static str {
///     sleep(Duration::from_millis(ms)).await;
///     v
/// }
/// let lp = EventLoop::new().unwrap();
/// let out = lp.run_until_complete(gather([after(3, "slow"), after(1, "fast")]));
/// assert_eq!(out.unwrap(), Ok(vec!["slow", "fast"])); // argument order
/// ```
pub fn gather<I>(futures: I) -> Gather<Vec<Spawn<<I::Item as IntoFuture>::IntoFuture>>>
where
    I: IntoIterator,
    I::Item: IntoFuture,
    <I::Item as IntoFuture>::IntoFuture: 'static,
    <I::Item as IntoFuture>::Output: 'static,
{
    Gather::new(futures.into_iter().map(Spawn::new).collect())
}

/// [`gather`] over tasks you already hold: their values in argument order, or the first
/// error. Cancelling (dropping) the gather cancels those not yet done.
///
/// ```
/// use spindle_loop::{gather_tasks, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let tasks: Vec<_> = (0..3).map(|i| lp.create_task(async move { i + 10 }).unwrap()).collect();
/// assert_eq!(lp.run_until_complete(gather_tasks(tasks)).unwrap(), Ok(vec![10, 11, 12]));
/// ```
pub fn gather_tasks<T, I>(tasks: I) -> Gather<Vec<Task<T>>>
where
    I: IntoIterator<Item = Task<T>>,
{
    Gather::new(tasks.into_iter().collect())
}

/// [`gather`] for children of different types: each argument is a [`Task`] (used as it is) or
/// a future (run as a task on the running loop at the first poll). Completes with a tuple of
/// their values, or the first error; `.settled()` gives a tuple of `Result`s. Up to 12
/// children; `gather!()` completes at once with `()`.
///
/// ```
/// use spindle_loop::{gather, EventLoop};
///
/// let lp = EventLoop::new().unwrap();
/// let spawner = lp.clone();
/// let out = lp.run_until_complete(async move {
///     let task = spawner.create_task(async { 7u64 }).unwrap();
///     gather!(task, async { "seven" }, std::future::ready(7.0)).await
/// });
/// assert_eq!(out.unwrap(), Ok((7, "seven", 7.0)));
/// ```
#[macro_export]
macro_rules! gather {
    () => {
        $crate::Gather::new(())
    };
    ($($child:expr),+ $(,)?) => {{
        #[allow(unused_imports)]
        use $crate::__private::{ViaFuture as _, ViaTask as _};
        $crate::Gather::new(($((&$crate::__private::Arg::new($child)).__gather_child(),)+))
    }};
}

/// What `gather!` expands to: a [`Task`] argument stays a task, anything else [`IntoFuture`]
/// becomes a [`Spawn`] (method resolution prefers the impl that needs no auto-ref).
#[doc(hidden)]
pub mod __private {
    use std::cell::Cell;
    use std::future::IntoFuture;

    use crate::combinators::child::Spawn;
    use crate::task::Task;

    /// One `gather!` argument.
    pub struct Arg<X>(Cell<Option<X>>);

    impl<X> Arg<X> {
        pub fn new(x: X) -> Self {
            Arg(Cell::new(Some(x)))
        }

        fn take(&self) -> X {
            match self.0.take() {
                Some(x) => x,
                None => unreachable!("gather! takes each argument exactly once"),
            }
        }
    }

    /// Chosen for `Task` arguments.
    pub trait ViaTask {
        type Child;
        fn __gather_child(&self) -> Self::Child;
    }

    impl<T> ViaTask for Arg<Task<T>> {
        type Child = Task<T>;
        fn __gather_child(&self) -> Task<T> {
            self.take()
        }
    }

    /// Chosen for every other argument.
    pub trait ViaFuture {
        type Child;
        fn __gather_child(&self) -> Self::Child;
    }

    impl<F: IntoFuture> ViaFuture for &Arg<F> {
        type Child = Spawn<F::IntoFuture>;
        fn __gather_child(&self) -> Self::Child {
            Spawn::new(self.take())
        }
    }
}
