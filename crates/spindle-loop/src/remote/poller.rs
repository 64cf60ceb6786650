//! The OS poller of one loop: where it blocks, where other threads wake it, and where its
//! I/O sources are registered.
//!
//! On Linux it is our own few lines of epoll: `epoll_wait` with the loop's timeout (rounded
//! up to the millisecond, as asyncio and tokio do) and an eventfd for wake-ups, registered
//! edge-triggered so a wake-up costs one `write` and the wait after it no `read`. That is one
//! syscall per wait. `polling::Poller`, used before and still used on other platforms, arms a
//! timerfd and re-arms its notifier around every wait: five syscalls per wait, which an I/O
//! loop (one wait per iteration) paid on every round trip (measured with `strace -c` on the
//! `tcp_echo_1loop` row: 4 extra syscalls per wait).

#[cfg(not(loom))]
use std::io;
#[cfg(not(loom))]
use std::os::fd::BorrowedFd;
#[cfg(not(loom))]
use std::time::Duration;

/// How a registered fd reports readiness.
#[cfg_attr(loom, allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Once per change (sources: read until `WouldBlock`).
    Edge,
    /// As long as it is ready (asyncio's reader/writer callbacks).
    Level,
}

/// One readiness event: the registration's key and what is ready.
#[cfg_attr(loom, allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoEvent {
    pub(crate) key: usize,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// End of stream from the peer, a hang-up or an error: a read returns at once.
    pub(crate) read_closed: bool,
    /// A hang-up or an error: a write returns at once.
    pub(crate) write_closed: bool,
}

#[cfg(all(not(loom), target_os = "linux"))]
pub(crate) use epoll::{timespec, Events, Poller};
#[cfg(all(not(loom), not(target_os = "linux")))]
pub(crate) use portable::{Events, Poller};

/// Under loom no poller exists (the parker is a condvar): a wait has no events.
#[cfg(loom)]
pub(crate) struct Events;

#[cfg(loom)]
impl Events {
    pub(crate) fn new() -> Self {
        Events
    }
}

#[cfg(all(not(loom), target_os = "linux"))]
mod epoll {
    use std::os::fd::{AsFd, OwnedFd};

    use rustix::event::epoll::{self, EventData, EventFlags};
    use rustix::event::{eventfd, EventfdFlags};
    use rustix::io::Errno;

    use super::*;

    /// The key of the wake-up eventfd (no source key is ever `u64::MAX`: see `reactor`).
    const NOTIFY_KEY: u64 = u64::MAX;
    /// Events taken per wait; more wait for the next one (which does not block).
    const CAPACITY: usize = 1024;

    pub(crate) struct Poller {
        epoll: OwnedFd,
        notify: OwnedFd,
        /// Whether the owner is blocked in a wait: siblings only offer help to a busy loop
        /// (`io::help`). A hint: a stale value costs a spurious wake-up or a missed chance.
        blocked: std::sync::atomic::AtomicBool,
        /// How many waits the owner made (blocking or not; a helper's `take_for_sibling` is
        /// not counted): each one took whatever wake-up edge was pending, so a helper that
        /// raised one again knows when the owner has seen it (`io::help`). Written by the
        /// owner only.
        owner_waits: std::sync::atomic::AtomicU32,
    }

    impl Poller {
        pub(crate) fn new() -> io::Result<Self> {
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
            let notify = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            // Edge-triggered: every `write` is an edge, so the counter is never read back.
            epoll::add(
                &epoll,
                &notify,
                EventData::new_u64(NOTIFY_KEY),
                EventFlags::IN | EventFlags::ET,
            )?;
            Ok(Poller {
                epoll,
                notify,
                blocked: std::sync::atomic::AtomicBool::new(false),
                owner_waits: std::sync::atomic::AtomicU32::new(0),
            })
        }

        /// How many waits the owner has made (see the field).
        pub(crate) fn owner_waits(&self) -> u32 {
            self.owner_waits.load(std::sync::atomic::Ordering::Relaxed)
        }

        /// Whether the owner is blocked in a wait now (see the field).
        pub(crate) fn is_blocked(&self) -> bool {
            self.blocked.load(std::sync::atomic::Ordering::Relaxed)
        }

        /// Marks the owner blocked (or not) in a wait that is not this poller's own `wait`.
        pub(crate) fn set_blocked(&self, blocked: bool) {
            // Relaxed: a hint for siblings deciding whether to watch this poller (field docs).
            self.blocked
                .store(blocked, std::sync::atomic::Ordering::Relaxed);
        }

        /// Blocks until an event, a `notify`, or the timeout (`None`: none).
        pub(crate) fn wait(
            &self,
            events: &mut Events,
            timeout: Option<Duration>,
        ) -> io::Result<()> {
            events.list.clear();
            let timeout = timespec(timeout);
            let blocking = timeout
                .as_ref()
                .is_none_or(|t| t.tv_sec != 0 || t.tv_nsec != 0);
            if blocking {
                self.set_blocked(true);
            }
            let waited = self.epoll_wait(events, timeout.as_ref());
            if blocking {
                self.set_blocked(false);
            }
            // Relaxed, single writer (a load and a store, no locked instruction): a hint for
            // helpers, ordered with nothing (see the field).
            let waits = &self.owner_waits;
            waits.store(
                waits
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .wrapping_add(1),
                std::sync::atomic::Ordering::Relaxed,
            );
            waited
        }

        /// A sibling's helper takes the queued events without blocking (`io::help`); unlike
        /// `wait`, not counted as one of the owner's.
        pub(crate) fn take_for_sibling(&self, events: &mut Events) -> io::Result<()> {
            events.list.clear();
            self.epoll_wait(events, timespec(Some(Duration::ZERO)).as_ref())
        }

        fn epoll_wait(
            &self,
            events: &mut Events,
            timeout: Option<&rustix::time::Timespec>,
        ) -> io::Result<()> {
            loop {
                let spare = rustix::buffer::spare_capacity(&mut events.list);
                match epoll::wait(&self.epoll, spare, timeout) {
                    Ok(_) => return Ok(()),
                    Err(Errno::INTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }

        /// Wakes the current or next `wait`.
        pub(crate) fn notify(&self) -> io::Result<()> {
            let one = 1u64.to_ne_bytes();
            match rustix::io::write(&self.notify, &one) {
                Ok(_) => Ok(()),
                // The counter is full (2^64 - 2 wake-ups without a read): empty it, again.
                Err(Errno::AGAIN) => {
                    let mut buf = [0u8; 8];
                    let _ = rustix::io::read(&self.notify, &mut buf);
                    rustix::io::write(&self.notify, &one)
                        .map(drop)
                        .map_err(Into::into)
                }
                Err(e) => Err(e.into()),
            }
        }

        /// Adds `fd`.
        ///
        /// # Safety
        ///
        /// `fd` must be deleted (`delete`) before it is closed: the kernel would keep
        /// watching the open file behind it, and report it under a key that may be reused.
        pub(crate) unsafe fn add(
            &self,
            fd: BorrowedFd<'_>,
            key: usize,
            readable: bool,
            writable: bool,
            mode: Mode,
        ) -> io::Result<()> {
            epoll::add(&self.epoll, fd, data(key), flags(readable, writable, mode))?;
            Ok(())
        }

        pub(crate) fn modify(
            &self,
            fd: BorrowedFd<'_>,
            key: usize,
            readable: bool,
            writable: bool,
            mode: Mode,
        ) -> io::Result<()> {
            epoll::modify(&self.epoll, fd, data(key), flags(readable, writable, mode))?;
            Ok(())
        }

        pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
            epoll::delete(&self.epoll, fd)?;
            Ok(())
        }
    }

    impl AsFd for Poller {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.epoll.as_fd()
        }
    }

    /// An epoll wait's timeout (`None`: none) as the kernel takes it.
    pub(crate) fn timespec(timeout: Option<Duration>) -> Option<rustix::time::Timespec> {
        timeout.map(|t| rustix::time::Timespec {
            tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: t.subsec_nanos().into(),
        })
    }

    fn data(key: usize) -> EventData {
        EventData::new_u64(key as u64)
    }

    fn flags(readable: bool, writable: bool, mode: Mode) -> EventFlags {
        let mut flags = EventFlags::empty();
        if readable {
            flags |= EventFlags::IN | EventFlags::RDHUP;
        }
        if writable {
            flags |= EventFlags::OUT;
        }
        if mode == Mode::Edge {
            flags |= EventFlags::ET;
        }
        flags
    }

    /// The events of one wait.
    pub(crate) struct Events {
        list: Vec<epoll::Event>,
    }

    impl Events {
        pub(crate) fn new() -> Self {
            Events {
                list: Vec::with_capacity(CAPACITY),
            }
        }

        pub(crate) fn clear(&mut self) {
            self.list.clear();
        }

        /// Whether the last wait returned a wake-up (`notify`) among its events.
        pub(crate) fn has_notify(&self) -> bool {
            self.list.iter().any(|event| {
                let data = event.data;
                data.u64() == NOTIFY_KEY
            })
        }

        /// Whether the last wait returned no I/O event (a wake-up alone counts as none).
        pub(crate) fn is_empty(&self) -> bool {
            self.iter().next().is_none()
        }

        pub(crate) fn iter(&self) -> impl Iterator<Item = IoEvent> + '_ {
            let read = EventFlags::IN | EventFlags::PRI;
            let write = EventFlags::OUT;
            let read_closed = EventFlags::RDHUP | EventFlags::HUP | EventFlags::ERR;
            let write_closed = EventFlags::HUP | EventFlags::ERR;
            self.list.iter().filter_map(move |event| {
                // Copies: the kernel's struct is packed on x86_64.
                let (flags, data) = (event.flags, event.data);
                let key = data.u64();
                (key != NOTIFY_KEY).then(|| IoEvent {
                    key: key as usize,
                    readable: flags.intersects(read),
                    writable: flags.intersects(write),
                    read_closed: flags.intersects(read_closed),
                    write_closed: flags.intersects(write_closed),
                })
            })
        }
    }
}

#[cfg(all(not(loom), not(target_os = "linux")))]
mod portable {
    use polling::{Event, PollMode};

    use super::*;

    /// `polling`'s poller, where we have no epoll of our own (kqueue, event ports, IOCP).
    pub(crate) struct Poller(polling::Poller);

    impl Poller {
        pub(crate) fn new() -> io::Result<Self> {
            Ok(Poller(polling::Poller::new()?))
        }

        pub(crate) fn wait(
            &self,
            events: &mut Events,
            timeout: Option<Duration>,
        ) -> io::Result<()> {
            events.0.clear();
            self.0.wait(&mut events.0, timeout).map(drop)
        }

        pub(crate) fn notify(&self) -> io::Result<()> {
            self.0.notify()
        }

        /// # Safety
        ///
        /// As `polling::Poller::add`: `fd` is deleted before it is closed.
        pub(crate) unsafe fn add(
            &self,
            fd: BorrowedFd<'_>,
            key: usize,
            readable: bool,
            writable: bool,
            mode: Mode,
        ) -> io::Result<()> {
            use std::os::fd::AsRawFd;
            // SAFETY: the caller's contract is `polling`'s.
            unsafe {
                self.0.add_with_mode(
                    fd.as_raw_fd(),
                    interest(key, readable, writable),
                    mode.into(),
                )
            }
        }

        pub(crate) fn modify(
            &self,
            fd: BorrowedFd<'_>,
            key: usize,
            readable: bool,
            writable: bool,
            mode: Mode,
        ) -> io::Result<()> {
            self.0
                .modify_with_mode(fd, interest(key, readable, writable), mode.into())
        }

        pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
            self.0.delete(fd)
        }
    }

    impl From<Mode> for PollMode {
        fn from(mode: Mode) -> PollMode {
            match mode {
                Mode::Edge => PollMode::Edge,
                Mode::Level => PollMode::Level,
            }
        }
    }

    fn interest(key: usize, readable: bool, writable: bool) -> Event {
        match (readable, writable) {
            (true, true) => Event::all(key),
            (true, false) => Event::readable(key),
            (false, true) => Event::writable(key),
            (false, false) => Event::none(key),
        }
    }

    pub(crate) struct Events(polling::Events);

    impl Events {
        pub(crate) fn new() -> Self {
            Events(polling::Events::new())
        }

        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        pub(crate) fn iter(&self) -> impl Iterator<Item = IoEvent> + '_ {
            // `polling` folds hang-ups and errors into readable/writable: no closed bits here
            // (and so no clearing after a short transfer, see `Source::poll_stream`).
            self.0.iter().map(|e| IoEvent {
                key: e.key,
                readable: e.readable,
                writable: e.writable,
                read_closed: false,
                write_closed: false,
            })
        }
    }
}
