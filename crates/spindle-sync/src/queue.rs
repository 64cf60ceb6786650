//! [`Queue`], [`PriorityQueue`], [`LifoQueue`]: asyncio's queues, with FIFO hand-off.
//!
//! Why our own and not `async-channel`/`concurrent-queue`: asyncio's queue is one object that
//! both sides share (no sender/receiver split), with `task_done`/`join`, `shutdown(immediate)`,
//! priority and LIFO orders, and `put_nowait`/`get_nowait` that must give the item back. Its
//! waiters are served in FIFO order, and a cancelled waiter must lose nothing.
//!
//! # Protocol (everything under the queue's mutex)
//!
//! - A `put` with a getter waiting hands the item to the first getter directly. The handed item
//!   still counts as "in the queue" (`in_flight`, part of `qsize()` and of the `maxsize`
//!   check) until that getter runs and takes it, as in asyncio, where the item sits in the
//!   queue until the woken getter runs. A getter cancelled after the hand-off gives the item
//!   back: to the next getter, or to the front of the queue.
//! - A `put` on a full queue waits in line with its item. Whenever room is made, the first
//!   waiting putter's item goes in (to a waiting getter or the store) and that putter is done,
//!   so the order of puts is kept. A putter cancelled while it waits takes its item away.
//! - `get` takes from the store, then makes room as above; with an empty store it waits.
//! - `shutdown` refuses new puts and grants every waiting putter its item back and every
//!   waiting getter a shut-down error; `immediate` also empties the store (each item counts as
//!   `task_done`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use event_listener::Event;

use crate::error::{GetNowaitError, PutNowaitError, QueueShutDown, TaskDoneError};
use crate::waiters::{Left, WaitList, Wakers};

mod sealed {
    pub trait Sealed {}
}

/// The order in which a [`Queue`] hands its items out: [`Fifo`], [`Lifo`] or [`Priority`].
/// Sealed: implemented in this crate only.
pub trait Order<T>: sealed::Sealed + Send {
    #[doc(hidden)]
    fn empty() -> Self;
    #[doc(hidden)]
    fn push(&mut self, item: T);
    #[doc(hidden)]
    fn pop(&mut self) -> Option<T>;
    /// Puts back an item that was just taken, so that it is the next one out.
    #[doc(hidden)]
    fn unpop(&mut self, item: T);
    #[doc(hidden)]
    fn size(&self) -> usize;
}

/// First in, first out: [`Queue`]'s order (asyncio's `Queue`).
///
/// ```
/// let q: spindle_sync::OrderedQueue<u8, spindle_sync::Fifo<u8>> = spindle_sync::Queue::new(0);
/// # drop(q);
/// ```
pub struct Fifo<T>(VecDeque<T>);

/// Last in, first out: [`LifoQueue`]'s order.
///
/// ```
/// let q = spindle_sync::LifoQueue::new(0);
/// q.put_nowait(1).unwrap();
/// q.put_nowait(2).unwrap();
/// assert_eq!(q.get_nowait(), Ok(2));
/// ```
pub struct Lifo<T>(Vec<T>);

/// Smallest first (asyncio's `PriorityQueue` uses `heapq`, a min-heap): [`PriorityQueue`]'s
/// order. Items that compare equal come out in no particular order; put `(priority, seq, x)`
/// tuples for a stable order, as in asyncio.
///
/// ```
/// let q = spindle_sync::PriorityQueue::new(0);
/// q.put_nowait(3).unwrap();
/// q.put_nowait(1).unwrap();
/// assert_eq!(q.get_nowait(), Ok(1));
/// ```
pub struct Priority<T>(BinaryHeap<Reverse<T>>);

impl<T> sealed::Sealed for Fifo<T> {}
impl<T> sealed::Sealed for Lifo<T> {}
impl<T> sealed::Sealed for Priority<T> {}

impl<T: Send> Order<T> for Fifo<T> {
    fn empty() -> Self {
        Fifo(VecDeque::new())
    }
    fn push(&mut self, item: T) {
        self.0.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop_front()
    }
    fn unpop(&mut self, item: T) {
        self.0.push_front(item);
    }
    fn size(&self) -> usize {
        self.0.len()
    }
}

impl<T: Send> Order<T> for Lifo<T> {
    fn empty() -> Self {
        Lifo(Vec::new())
    }
    fn push(&mut self, item: T) {
        self.0.push(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop()
    }
    fn unpop(&mut self, item: T) {
        self.0.push(item);
    }
    fn size(&self) -> usize {
        self.0.len()
    }
}

impl<T: Ord + Send> Order<T> for Priority<T> {
    fn empty() -> Self {
        Priority(BinaryHeap::new())
    }
    fn push(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        self.0.pop().map(|Reverse(item)| item)
    }
    fn unpop(&mut self, item: T) {
        self.0.push(Reverse(item));
    }
    fn size(&self) -> usize {
        self.0.len()
    }
}

/// asyncio's `PriorityQueue`: a [`Queue`] that hands out the smallest item first.
///
/// ```
/// let q = spindle_sync::PriorityQueue::new(0);
/// for x in [5, 1, 3] {
///     q.put_nowait(x).unwrap();
/// }
/// assert_eq!([q.get_nowait(), q.get_nowait(), q.get_nowait()], [Ok(1), Ok(3), Ok(5)]);
/// ```
pub type PriorityQueue<T> = OrderedQueue<T, Priority<T>>;

/// asyncio's `LifoQueue`: a [`Queue`] that hands out the newest item first.
///
/// ```
/// let q = spindle_sync::LifoQueue::new(2);
/// q.put_nowait('a').unwrap();
/// q.put_nowait('b').unwrap();
/// assert_eq!(q.get_nowait(), Ok('b'));
/// ```
pub type LifoQueue<T> = OrderedQueue<T, Lifo<T>>;

struct State<T, O> {
    items: O,
    /// Items handed to a waiting getter that has not taken them yet.
    in_flight: usize,
    maxsize: usize,
    /// Items put and not yet marked `task_done`.
    unfinished: usize,
    shut_down: bool,
    getters: WaitList<(), Result<T, QueueShutDown>>,
    putters: WaitList<T, Result<(), QueueShutDown<T>>>,
}

impl<T, O: Order<T>> State<T, O> {
    fn qsize(&self) -> usize {
        self.items.size() + self.in_flight
    }

    fn full(&self) -> bool {
        self.maxsize > 0 && self.qsize() >= self.maxsize
    }

    /// `item` enters the queue: to the first waiting getter, else the store.
    fn deliver(&mut self, item: T, wakers: &mut Wakers) {
        match self.getters.take_front() {
            Some((key, ())) => {
                self.in_flight += 1;
                wakers.push(self.getters.grant(key, Ok(item)));
            }
            None => self.items.push(item),
        }
    }

    fn put_nowait(&mut self, item: T, wakers: &mut Wakers) -> Result<(), PutNowaitError<T>> {
        if self.shut_down {
            return Err(PutNowaitError::QueueShutDown(item));
        }
        if self.full() || !self.putters.is_empty() {
            return Err(PutNowaitError::QueueFull(item));
        }
        self.unfinished += 1;
        self.deliver(item, wakers);
        Ok(())
    }

    /// Room was made: waiting putters' items go in, in order, while there is room.
    fn make_room(&mut self, wakers: &mut Wakers) {
        while !self.full() {
            let Some((key, item)) = self.putters.take_front() else {
                return;
            };
            self.unfinished += 1;
            self.deliver(item, wakers);
            wakers.push(self.putters.grant(key, Ok(())));
        }
    }

    fn get_nowait(&mut self, wakers: &mut Wakers) -> Result<T, GetNowaitError> {
        match self.items.pop() {
            Some(item) => {
                self.make_room(wakers);
                Ok(item)
            }
            None if self.shut_down => Err(GetNowaitError::QueueShutDown),
            None => Err(GetNowaitError::QueueEmpty),
        }
    }
}

/// asyncio's `Queue`: a FIFO [`OrderedQueue`].
///
/// ```
/// let q = spindle_sync::Queue::new(0);
/// q.put_nowait("a").unwrap();
/// q.put_nowait("b").unwrap();
/// assert_eq!(q.get_nowait(), Ok("a"));
/// ```
pub type Queue<T> = OrderedQueue<T, Fifo<T>>;

/// asyncio's queue, in the order `O`: shared by producers and consumers (`Send + Sync`: across
/// tasks, loops and threads). `maxsize == 0` means unbounded. Waiters are served in FIFO
/// order; `put` waits while the queue is full, `get` while it is empty. A `get` cancelled
/// after an item was handed to it gives the item back (to the next getter, or to the front of
/// the queue); a `put` cancelled while it waits takes its item away: no item is lost or
/// duplicated. `task_done`/`join` count work done, and `shutdown` (Python 3.13) ends it.
///
/// [`Queue`], [`PriorityQueue`] and [`LifoQueue`] are this type with the [`Order`]s
/// [`Fifo`], [`Priority`] and [`Lifo`]; every method is documented here.
///
/// ```
/// use std::sync::Arc;
/// use spindle_sync::Queue;
///
/// let queue = Arc::new(Queue::new(2));
/// let consumer = queue.clone();
/// let total = spindle_policy::run(async move {
///     let worker = spindle_loop::spawn_local(async move {
///         let mut total = 0;
///         while let Ok(n) = consumer.get().await {
///             total += n;
///             consumer.task_done().unwrap();
///         }
///         total
///     })
///     .unwrap();
///     for n in 1..=10 {
///         queue.put(n).await.unwrap();
///     }
///     queue.join().await; // every item was processed
///     queue.shutdown(false); // the worker's next get() fails: it ends
///     worker.await.unwrap()
/// })
/// .unwrap();
/// assert_eq!(total, 55);
/// ```
pub struct OrderedQueue<T, O> {
    state: Mutex<State<T, O>>,
    all_done: Event,
}

impl<T: Send> OrderedQueue<T, Fifo<T>> {
    /// A FIFO queue holding at most `maxsize` items (0: unbounded).
    ///
    /// ```
    /// let q = spindle_sync::Queue::<u32>::new(8);
    /// assert_eq!(q.maxsize(), 8);
    /// ```
    pub fn new(maxsize: usize) -> Self {
        OrderedQueue::with_order(maxsize)
    }
}

impl<T: Send> OrderedQueue<T, Lifo<T>> {
    /// A LIFO queue holding at most `maxsize` items (0: unbounded).
    ///
    /// ```
    /// let q = spindle_sync::LifoQueue::<u32>::new(0);
    /// assert!(q.empty());
    /// ```
    pub fn new(maxsize: usize) -> Self {
        OrderedQueue::with_order(maxsize)
    }
}

impl<T: Ord + Send> OrderedQueue<T, Priority<T>> {
    /// A priority queue (smallest first) holding at most `maxsize` items (0: unbounded).
    ///
    /// ```
    /// let q = spindle_sync::PriorityQueue::<u32>::new(0);
    /// assert!(q.empty());
    /// ```
    pub fn new(maxsize: usize) -> Self {
        OrderedQueue::with_order(maxsize)
    }
}

impl<T: Send, O: Order<T>> OrderedQueue<T, O> {
    /// A queue with order `O` holding at most `maxsize` items (0: unbounded).
    ///
    /// ```
    /// use spindle_sync::{Lifo, OrderedQueue};
    /// let q: OrderedQueue<u8, Lifo<u8>> = OrderedQueue::with_order(1);
    /// assert_eq!(q.maxsize(), 1);
    /// ```
    pub fn with_order(maxsize: usize) -> Self {
        OrderedQueue {
            state: Mutex::new(State {
                items: O::empty(),
                in_flight: 0,
                maxsize,
                unfinished: 0,
                shut_down: false,
                getters: WaitList::new(),
                putters: WaitList::new(),
            }),
            all_done: Event::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T, O>> {
        // Only `Ord` of a priority queue's items runs under this lock; if it panicked, the
        // heap is still a valid heap of the items that were in it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts `item`, waiting (FIFO among putters) while the queue is full. Fails only when the
    /// queue is shut down: the item comes back in [`QueueShutDown`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// let q = Arc::new(spindle_sync::Queue::new(1));
    /// let producer = q.clone();
    /// spindle_policy::run(async move { producer.put("job").await.unwrap() }).unwrap();
    /// assert_eq!(q.qsize(), 1);
    /// ```
    pub fn put(&self, item: T) -> impl Future<Output = Result<(), QueueShutDown<T>>> + '_ {
        Put {
            queue: self,
            item: Some(item),
            key: None,
        }
    }

    /// Puts `item` if there is room now; else gives it back in
    /// [`PutNowaitError::QueueFull`] (or [`PutNowaitError::QueueShutDown`]).
    ///
    /// ```
    /// use spindle_sync::{PutNowaitError, Queue};
    /// let q = Queue::new(1);
    /// q.put_nowait(1).unwrap();
    /// assert_eq!(q.put_nowait(2), Err(PutNowaitError::QueueFull(2)));
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<(), PutNowaitError<T>> {
        let mut wakers = Wakers::new();
        self.lock().put_nowait(item, &mut wakers)
    }

    /// Takes the next item, waiting (FIFO among getters) while the queue is empty. Fails when
    /// the queue is shut down and empty (or shut down with `immediate`).
    ///
    /// ```
    /// let q = spindle_sync::Queue::new(0);
    /// q.put_nowait(7).unwrap();
    /// assert_eq!(spindle_policy::run(async move { q.get().await }).unwrap(), Ok(7));
    /// ```
    pub fn get(&self) -> impl Future<Output = Result<T, QueueShutDown>> + '_ {
        Get {
            queue: self,
            key: None,
        }
    }

    /// Takes the next item if there is one now. An item already handed to a waiting getter
    /// is that getter's: it still counts in `qsize()`, but `get_nowait` does not take it.
    ///
    /// ```
    /// use spindle_sync::{GetNowaitError, Queue};
    /// let q = Queue::<u8>::new(0);
    /// assert_eq!(q.get_nowait(), Err(GetNowaitError::QueueEmpty));
    /// ```
    pub fn get_nowait(&self) -> Result<T, GetNowaitError> {
        let mut wakers = Wakers::new();
        self.lock().get_nowait(&mut wakers)
    }

    /// Items in the queue, including those handed to a getter that has not run yet.
    ///
    /// ```
    /// let q = spindle_sync::Queue::new(0);
    /// q.put_nowait(()).unwrap();
    /// assert_eq!(q.qsize(), 1);
    /// ```
    pub fn qsize(&self) -> usize {
        self.lock().qsize()
    }

    /// The bound given at creation (0: unbounded).
    ///
    /// ```
    /// assert_eq!(spindle_sync::Queue::<()>::new(3).maxsize(), 3);
    /// ```
    pub fn maxsize(&self) -> usize {
        self.lock().maxsize
    }

    /// Whether `qsize() == 0`.
    ///
    /// ```
    /// assert!(spindle_sync::Queue::<()>::new(0).empty());
    /// ```
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether the queue holds `maxsize` items (never, when unbounded).
    ///
    /// ```
    /// let q = spindle_sync::Queue::new(1);
    /// q.put_nowait(1).unwrap();
    /// assert!(q.full());
    /// ```
    pub fn full(&self) -> bool {
        self.lock().full()
    }

    /// Marks one item got from the queue as processed; [`join`](Self::join) returns when every
    /// item put was marked. More calls than items put is an error.
    ///
    /// ```
    /// let q = spindle_sync::Queue::new(0);
    /// q.put_nowait(1).unwrap();
    /// q.get_nowait().unwrap();
    /// assert!(q.task_done().is_ok());
    /// assert!(q.task_done().is_err());
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut st = self.lock();
        if st.unfinished == 0 {
            return Err(TaskDoneError);
        }
        st.unfinished -= 1;
        if st.unfinished == 0 {
            drop(st);
            self.all_done.notify(usize::MAX);
        }
        Ok(())
    }

    /// Waits until every item put has been marked with [`task_done`](Self::task_done).
    ///
    /// ```
    /// let q = spindle_sync::Queue::<u8>::new(0);
    /// spindle_policy::run(async move { q.join().await }).unwrap(); // nothing was put
    /// ```
    pub async fn join(&self) {
        loop {
            if self.lock().unfinished == 0 {
                return;
            }
            let listener = self.all_done.listen();
            // Checked again after listening: `task_done` notifies after its update.
            if self.lock().unfinished == 0 {
                return;
            }
            listener.await;
        }
    }

    /// Shuts the queue down (Python 3.13): `put`s fail from now on (waiting putters get their
    /// item back), `get`s fail once the queue is empty (waiting getters fail now). With
    /// `immediate`, the items in the store are dropped and counted as done (`join` returns
    /// once the items already handed to getters are done too).
    ///
    /// ```
    /// use spindle_sync::{GetNowaitError, Queue};
    /// let q = Queue::new(0);
    /// q.put_nowait(1).unwrap();
    /// q.shutdown(false);
    /// assert!(q.put_nowait(2).is_err());
    /// assert_eq!(q.get_nowait(), Ok(1)); // still there
    /// assert_eq!(q.get_nowait(), Err(GetNowaitError::QueueShutDown));
    /// ```
    pub fn shutdown(&self, immediate: bool) {
        let mut wakers = Wakers::new();
        let mut st = self.lock();
        st.shut_down = true;
        let mut dropped = Vec::new();
        if immediate {
            while let Some(item) = st.items.pop() {
                dropped.push(item);
            }
            st.unfinished = st.unfinished.saturating_sub(dropped.len());
        }
        while let Some((key, item)) = st.putters.take_front() {
            wakers.push(st.putters.grant(key, Err(QueueShutDown(item))));
        }
        while let Some((key, ())) = st.getters.take_front() {
            wakers.push(st.getters.grant(key, Err(QueueShutDown(()))));
        }
        let all_done = st.unfinished == 0;
        drop(st);
        drop(dropped); // user Drop code runs outside the lock
        if all_done {
            self.all_done.notify(usize::MAX);
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    ///
    /// ```
    /// let q = spindle_sync::Queue::<u8>::new(0);
    /// q.shutdown(true);
    /// assert!(q.is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }
}

impl<T, O> fmt::Debug for OrderedQueue<T, O>
where
    T: Send,
    O: Order<T>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("Queue")
            .field("maxsize", &st.maxsize)
            .field("qsize", &st.qsize())
            .field("getters", &st.getters.len())
            .field("putters", &st.putters.len())
            .field("unfinished", &st.unfinished)
            .field("shut_down", &st.shut_down)
            .finish()
    }
}

struct Put<'a, T, O> {
    queue: &'a OrderedQueue<T, O>,
    item: Option<T>,
    key: Option<usize>,
}

// No field is structurally pinned: the item is moved out by value.
impl<T, O> Unpin for Put<'_, T, O> {}

impl<T: Send, O: Order<T>> Future for Put<'_, T, O> {
    type Output = Result<(), QueueShutDown<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut wakers = Wakers::new();
        let mut st = this.queue.lock();
        if let Some(key) = this.key {
            return match st.putters.poll(key, cx.waker()) {
                Some(outcome) => {
                    this.key = None;
                    Poll::Ready(outcome)
                }
                None => Poll::Pending,
            };
        }
        let Some(item) = this.item.take() else {
            panic!("Queue::put polled after it completed");
        };
        match st.put_nowait(item, &mut wakers) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(PutNowaitError::QueueShutDown(item)) => Poll::Ready(Err(QueueShutDown(item))),
            Err(PutNowaitError::QueueFull(item)) => {
                this.key = Some(st.putters.push(item, Some(cx.waker())));
                Poll::Pending
            }
        }
    }
}

impl<T, O> Drop for Put<'_, T, O> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let left = {
            let mut st = self
                .queue
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            st.putters.remove(key)
        };
        // Cancelled in line: its item was never put and leaves with it (dropped here, outside
        // the lock). Granted: it was put (or refused by a shutdown), nothing to undo.
        drop(left);
    }
}

struct Get<'a, T: Send, O: Order<T>> {
    queue: &'a OrderedQueue<T, O>,
    key: Option<usize>,
}

impl<T: Send, O: Order<T>> Future for Get<'_, T, O> {
    type Output = Result<T, QueueShutDown>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut wakers = Wakers::new();
        let mut st = self.queue.lock();
        if let Some(key) = self.key {
            return match st.getters.poll(key, cx.waker()) {
                Some(Ok(item)) => {
                    self.key = None;
                    st.in_flight -= 1;
                    st.make_room(&mut wakers);
                    Poll::Ready(Ok(item))
                }
                Some(Err(shut_down)) => {
                    self.key = None;
                    Poll::Ready(Err(shut_down))
                }
                None => Poll::Pending,
            };
        }
        match st.get_nowait(&mut wakers) {
            Ok(item) => Poll::Ready(Ok(item)),
            Err(GetNowaitError::QueueShutDown) => Poll::Ready(Err(QueueShutDown(()))),
            Err(GetNowaitError::QueueEmpty) => {
                self.key = Some(st.getters.push((), Some(cx.waker())));
                Poll::Pending
            }
        }
    }
}

impl<T: Send, O: Order<T>> Drop for Get<'_, T, O> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut wakers = Wakers::new();
        let mut st = self
            .queue
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Left::Granted(Ok(item)) = st.getters.remove(key) {
            // Handed an item, cancelled before taking it: the item goes to the next getter,
            // or back to the front of the queue (it still counts in `in_flight` until here).
            match st.getters.take_front() {
                Some((next, ())) => wakers.push(st.getters.grant(next, Ok(item))),
                None => {
                    st.in_flight -= 1;
                    st.items.unpop(item);
                }
            }
        }
    }
}
