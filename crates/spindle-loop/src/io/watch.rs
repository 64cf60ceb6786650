//! asyncio's `add_reader` / `add_writer`: callbacks run by the loop while an fd is ready.
//!
//! Level-triggered, as asyncio's selector loop: while the fd stays readable, its reader
//! callback is queued once per iteration (after the poll, before due timers). The loop keeps
//! the object that owns the fd (the `AsFd` value given to `add_reader`) until the callback is
//! removed or the loop closes, and deletes the fd from its poller before dropping it: safe code
//! cannot leave a closed (or reused) fd registered.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::panic::Location;
use std::rc::Rc;

use crate::remote::poller::Mode;

use super::reactor::Entry;
use crate::callback::new_callback;
use crate::event_loop::{EventLoop, Inner, Ready};

/// A callback shared by the watch and the ready-queue entries that call it.
type WatchCallback = Rc<RefCell<Box<dyn FnMut()>>>;

/// One side (reader or writer) of a watched fd: its callback and the fd's owner.
struct Side {
    callback: WatchCallback,
    /// Kept, never read but for its fd: while it lives, the fd stays open.
    owner: Box<dyn AsFd>,
}

/// The callbacks watching one fd.
struct Watch {
    key: usize,
    reader: Option<Side>,
    writer: Option<Side>,
}

/// Every fd this loop watches with callbacks (loop thread only).
#[derive(Default)]
pub(crate) struct Watches {
    by_fd: HashMap<RawFd, Watch>,
}

impl Watches {
    /// The loop is closing: drop every callback and owner. The reactor has already deleted
    /// their fds from the poller (it closes first), so dropping the owners is safe.
    pub(crate) fn clear(&mut self) -> Vec<Box<dyn std::any::Any>> {
        self.by_fd
            .drain()
            .map(|(_, watch)| Box::new(watch) as Box<dyn std::any::Any>)
            .collect()
    }
}

impl Inner {
    /// Queues the callbacks of a watched fd the poller reported ready.
    pub(crate) fn queue_watch(&self, fd: RawFd, readable: bool, writable: bool) {
        let watches = self.watches().borrow();
        let Some(watch) = watches.by_fd.get(&fd) else {
            return;
        };
        let mut ready = self.ready_queue().borrow_mut();
        for (side, hit) in [(&watch.reader, readable), (&watch.writer, writable)] {
            if let (Some(side), true) = (side, hit) {
                ready.push_back(Ready::Callback(watch_call(self, fd, &side.callback)));
            }
        }
    }
}

/// The ready-queue entry for one call of a watch's callback. It checks that the callback is
/// still the one registered when it runs: a `remove_reader` (or a replacing `add_reader`)
/// between the poll and the call cancels it, as asyncio cancels the handle.
fn watch_call(inner: &Inner, fd: RawFd, callback: &WatchCallback) -> crate::callback::Callback {
    let weak = Rc::downgrade(callback);
    let me = inner.weak();
    new_callback(
        move || {
            let (Some(callback), Some(inner)) = (weak.upgrade(), me.upgrade()) else {
                return;
            };
            let current = {
                let watches = inner.watches().borrow();
                watches.by_fd.get(&fd).is_some_and(|w| {
                    [&w.reader, &w.writer]
                        .into_iter()
                        .flatten()
                        .any(|side| Rc::ptr_eq(&side.callback, &callback))
                })
            };
            if current {
                // A callback that re-enters itself (impossible: the loop runs one item at a
                // time) would find the cell borrowed; skipping is the only sane answer.
                if let Ok(mut f) = callback.try_borrow_mut() {
                    f();
                }
            }
        },
        Location::caller(),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Reader,
    Writer,
}

impl EventLoop {
    /// Calls `callback` on this loop whenever `source`'s fd is readable (asyncio's
    /// `add_reader`), once per iteration while it stays readable (level-triggered). A second
    /// `add_reader` for the same fd replaces the callback. The loop keeps `source` (which owns
    /// the fd: pass an `Rc`/`Arc` of your socket, or a `try_clone` of it) until
    /// [`remove_reader`](Self::remove_reader) or `close`, so the fd cannot be closed while it
    /// is watched. A callback that keeps a clone of the loop keeps the loop alive until
    /// `close()` (or `remove_reader`), as any pending callback does.
    ///
    /// Errors: the loop is closed, or the fd is already driven by a [`Source`](super::Source)
    /// (`AlreadyExists`), or the poller refuses it (e.g. a regular file).
    ///
    /// ```
    /// use std::{cell::Cell, io::Write, os::unix::net::UnixStream, rc::Rc};
    /// use spindle_loop::EventLoop;
    ///
    /// let lp = EventLoop::new().unwrap();
    /// let (a, mut b) = UnixStream::pair()?;
    /// let a = Rc::new(a);
    /// let calls = Rc::new(Cell::new(0));
    /// let (c, l) = (calls.clone(), lp.clone());
    /// lp.add_reader(a.clone(), move || { c.set(c.get() + 1); l.stop(); })?;
    /// b.write_all(b"x")?;
    /// lp.run_forever().unwrap();
    /// assert_eq!(calls.get(), 1);
    /// assert!(lp.remove_reader(&*a));
    /// lp.close().unwrap();
    /// # std::io::Result::Ok(())
    /// ```
    pub fn add_reader<S, F>(&self, source: S, callback: F) -> io::Result<()>
    where
        S: AsFd + 'static,
        F: FnMut() + 'static,
    {
        self.add_watch(Which::Reader, Box::new(source), Box::new(callback))
    }

    /// Calls `callback` whenever `source`'s fd is writable (asyncio's `add_writer`); see
    /// [`add_reader`](Self::add_reader).
    ///
    /// ```
    /// use std::{os::unix::net::UnixStream, rc::Rc};
    /// use spindle_loop::EventLoop;
    ///
    /// let lp = EventLoop::new().unwrap();
    /// let (a, _b) = UnixStream::pair()?;
    /// let l = lp.clone();
    /// lp.add_writer(Rc::new(a), move || l.stop())?;
    /// lp.run_forever().unwrap(); // a fresh socket is writable at once
    /// lp.close().unwrap(); // the callback keeps a clone of the loop: close breaks the cycle
    /// # std::io::Result::Ok(())
    /// ```
    pub fn add_writer<S, F>(&self, source: S, callback: F) -> io::Result<()>
    where
        S: AsFd + 'static,
        F: FnMut() + 'static,
    {
        self.add_watch(Which::Writer, Box::new(source), Box::new(callback))
    }

    /// Stops calling the reader callback of `fd` (asyncio's `remove_reader`); `true` if there
    /// was one. The loop drops what it kept of the fd's owner.
    ///
    /// ```
    /// use std::{os::unix::net::UnixStream, rc::Rc};
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let (a, _b) = UnixStream::pair()?;
    /// assert!(!lp.remove_reader(&a));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn remove_reader(&self, fd: &impl AsFd) -> bool {
        self.remove_watch(Which::Reader, fd.as_fd().as_raw_fd())
    }

    /// Stops calling the writer callback of `fd` (asyncio's `remove_writer`); `true` if there
    /// was one.
    ///
    /// ```
    /// use std::{os::unix::net::UnixStream, rc::Rc};
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let (a, _b) = UnixStream::pair()?;
    /// let a = Rc::new(a);
    /// lp.add_writer(a.clone(), || ())?;
    /// assert!(lp.remove_writer(&*a));
    /// assert!(!lp.remove_writer(&*a));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn remove_writer(&self, fd: &impl AsFd) -> bool {
        self.remove_watch(Which::Writer, fd.as_fd().as_raw_fd())
    }

    fn add_watch(
        &self,
        which: Which,
        owner: Box<dyn AsFd>,
        callback: Box<dyn FnMut()>,
    ) -> io::Result<()> {
        let inner = &self.inner;
        if self.is_closed() {
            return Err(super::IoError::LoopClosed.into());
        }
        let fd = owner.as_fd().as_raw_fd();
        let side = Side {
            callback: Rc::new(RefCell::new(callback)),
            owner,
        };
        let mut watches = inner.watches().borrow_mut();
        let reactor = inner.reactor();
        let old = match watches.by_fd.get_mut(&fd) {
            Some(watch) => {
                let (reader, writer) = match which {
                    Which::Reader => (true, watch.writer.is_some()),
                    Which::Writer => (watch.reader.is_some(), true),
                };
                reactor.modify(side.owner.as_fd(), watch.key, reader, writer, Mode::Level)?;
                let slot = match which {
                    Which::Reader => &mut watch.reader,
                    Which::Writer => &mut watch.writer,
                };
                slot.replace(side)
            }
            None => {
                let (reader, writer) = (which == Which::Reader, which == Which::Writer);
                let key = reactor.register(
                    side.owner.as_fd(),
                    Entry::Watch(fd),
                    reader,
                    writer,
                    Mode::Level,
                )?;
                let mut watch = Watch {
                    key,
                    reader: None,
                    writer: None,
                };
                match which {
                    Which::Reader => watch.reader = Some(side),
                    Which::Writer => watch.writer = Some(side),
                }
                watches.by_fd.insert(fd, watch);
                None
            }
        };
        drop(watches);
        // A replaced callback (and its owner, which shares the fd with the new one) is
        // dropped outside the borrow: its destructor may call back into the loop.
        drop(old);
        Ok(())
    }

    fn remove_watch(&self, which: Which, fd: RawFd) -> bool {
        let inner = &self.inner;
        let mut watches = inner.watches().borrow_mut();
        let Some(watch) = watches.by_fd.get_mut(&fd) else {
            return false;
        };
        let removed = match which {
            Which::Reader => watch.reader.take(),
            Which::Writer => watch.writer.take(),
        };
        let Some(removed) = removed else {
            return false;
        };
        let reactor = inner.reactor();
        let emptied = match (&watch.reader, &watch.writer) {
            (None, None) => watches.by_fd.remove(&fd),
            (reader, writer) => {
                let owner = reader.as_ref().or(writer.as_ref()).map(|s| &s.owner);
                if let Some(owner) = owner {
                    // Failing here leaves the fd watched for both sides: the removed side's
                    // events then find no callback and are ignored.
                    let _ = reactor.modify(
                        owner.as_fd(),
                        watch.key,
                        reader.is_some(),
                        writer.is_some(),
                        Mode::Level,
                    );
                }
                None
            }
        };
        drop(watches);
        if let Some(watch) = &emptied {
            // Before the owners drop (and may close the fd).
            reactor.deregister(watch.key);
        }
        drop(emptied);
        drop(removed);
        true
    }
}
