//! An idle loop takes a busy sibling's I/O events (DESIGN.md, I/O pitfalls: "a sibling takes
//! over its poller"), so that a worker of a runtime that is running a long batch, or that the
//! OS has descheduled, does not hold its sockets' wake-ups back while a sibling sleeps.
//!
//! # Protocol (Linux)
//!
//! Each helping loop owns an *outer* epoll watching its own poller's epoll fd (level-triggered:
//! readable while the own poller has an event queued) and every sibling's (`EPOLLONESHOT`,
//! re-armed at each park only while the sibling is busy, i.e. not blocked in a wait itself, so
//! that a sibling blocked in its own wait is not raced for every event). Linux refuses
//! `EPOLLEXCLUSIVE` on an epoll fd, hence the arming. When nothing is armed the loop blocks in
//! its own poller as before (one syscall per wait).
//!
//! A sibling's poller that becomes readable wakes the helper, which takes the sibling's events
//! with a zero-timeout wait and hands them to the sibling's reactor from its own thread:
//! - a source's readiness is delivered there and its wakers woken (both are `Send + Sync`; a
//!   stealable task then runs on the helper, its socket stays homed on the sibling);
//! - the sibling's own wake-up (its eventfd's edge) and any level-triggered watch event are
//!   the sibling's to act on: the helper notifies the sibling again, so it wakes as it would
//!   have. Nothing is lost: the edges the helper consumed are either delivered (sources) or
//!   re-raised (the rest), and a stale key is ignored by the reactor's generation check.
//!
//! An entry stays armed until reported, so a park after a wake-up for the helper's own
//! events arms nothing again (one `epoll_ctl` saved per such park).
//!
//! A sibling whose wake-up the helper raised again is not armed again until the sibling has
//! waited once (its poller counts its own waits): until then its poller stays readable with
//! that very wake-up, so an armed helper would wake at once, take it, raise it again, and so on
//! until the busy sibling's next wait (measured on `tcp_echo_rt` before this rule: 44% of the
//! process's eventfd writes were such re-raises, and twice tokio's `epoll_wait`s). A wake-up
//! is pending on a busy loop when a producer saw it parked just before its wait returned.
//!
//! **A stalled sibling.** A loop that does not park (it has work) cannot watch its siblings'
//! pollers, and a busy sibling may stop polling its own for a long time: descheduled by the OS
//! (threads outnumber cores: a CFS slice is milliseconds), or in a long step. Every one of that
//! sibling's sockets then waits (measured on `tcp_echo_rt`: bursts of 200-350 round trips of
//! 3-6 ms, against a median of 0.4 ms, where tokio's shared driver lets any polling worker
//! take every socket's events). So in each iteration that does not park, a helping loop looks
//! at each sibling's count of its own waits: one that has not moved for [`STALL`] while the
//! sibling is not blocked in a wait has its events taken, as above, at most once per
//! [`STALL`]. One clock read per such iteration; every half [`STALL`], a look at each
//! sibling's count.
//!
//! Siblings are held weakly (their reactor holds their poller): a closed sibling's poller
//! closes with it and leaves the outer epoll's interest list on its own.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;

use super::reactor::{Reactor, Scratch};
use crate::remote::poller::{timespec, Events, Poller};

/// A loop's I/O, as a sibling loop can help with it: made with
/// [`EventLoop::io_share`](crate::EventLoop::io_share), given to
/// [`EventLoop::help_io_of`](crate::EventLoop::help_io_of). `Send + Sync`.
///
/// ```
/// let a = spindle_loop::EventLoop::new().unwrap();
/// let share = a.io_share();
/// let b = std::thread::spawn(move || {
///     let b = spindle_loop::EventLoop::new().unwrap();
///     b.help_io_of(&[share]).unwrap();
/// });
/// b.join().unwrap();
/// ```
#[derive(Clone)]
pub struct IoShare(pub(crate) Arc<Reactor>);

impl std::fmt::Debug for IoShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoShare")
            .field("loop_id", &self.0.loop_id())
            .finish()
    }
}

/// The outer epoll of a helping loop and the siblings it watches (see the module docs).
pub(crate) struct Helping {
    outer: OwnedFd,
    siblings: Vec<Weak<Reactor>>,
    /// Per sibling: its poller's `owner_waits` when the helper last raised its wake-up again
    /// (`NOT_RAISED` if never): while unchanged, the sibling is not armed (module docs).
    /// Atomics only for `Sync` (the loop's remote holds this): the helping loop's thread alone
    /// reads and writes them.
    raised_at: Vec<AtomicU64>,
    /// Per sibling: armed in the outer epoll and not reported since (`EPOLLONESHOT` disarms
    /// on report): no `epoll_ctl` is needed to watch it again. Same thread only, as above.
    armed: Vec<AtomicBool>,
    /// Per sibling: its poller's `owner_waits` at the last look, and when (nanoseconds since
    /// `epoch`) it was last seen to move or last helped (module docs, "a stalled sibling").
    /// Same thread only, as above.
    seen_waits: Vec<AtomicU32>,
    seen_at: Vec<AtomicU64>,
    /// When (nanoseconds since `epoch`) `help_stalled` looks at the siblings next: every half
    /// [`STALL`], so a busy iteration costs one clock read (a look costs an upgrade and a
    /// load of each sibling's poller line).
    next_look: AtomicU64,
    epoch: Instant,
}

/// How long a busy sibling's poller may go without a wait of its own before a busy helper
/// takes its events (module docs): longer than a loop iteration of ordinary steps, shorter
/// than a scheduler's time slice.
pub(crate) const STALL: Duration = Duration::from_micros(500);

/// `raised_at` of a sibling whose wake-up the helper has not raised again.
const NOT_RAISED: u64 = u64::MAX;

/// The outer epoll's key of the loop's own poller; sibling `i` is `i + 1`.
const OWN_KEY: u64 = 0;

impl Helping {
    pub(crate) fn new(own: &Poller, siblings: &[IoShare]) -> io::Result<Self> {
        let outer = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(&outer, own, EventData::new_u64(OWN_KEY), EventFlags::IN)?;
        for (i, sibling) in siblings.iter().enumerate() {
            // Added disarmed (no events); `wait` arms it while the sibling is busy.
            epoll::add(
                &outer,
                sibling.0.remote().poller(),
                EventData::new_u64(i as u64 + 1),
                EventFlags::ONESHOT,
            )?;
        }
        Ok(Helping {
            outer,
            siblings: siblings.iter().map(|s| Arc::downgrade(&s.0)).collect(),
            raised_at: siblings
                .iter()
                .map(|_| AtomicU64::new(NOT_RAISED))
                .collect(),
            armed: siblings.iter().map(|_| AtomicBool::new(false)).collect(),
            seen_waits: siblings.iter().map(|_| AtomicU32::new(0)).collect(),
            seen_at: siblings.iter().map(|_| AtomicU64::new(0)).collect(),
            next_look: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// The owner's blocking wait: as `own.wait`, but a busy sibling's events wake it too and
    /// are handed to that sibling's reactor here.
    pub(crate) fn wait(&self, own: &Poller, events: &mut Events, timeout: Option<Duration>) {
        // Relaxed, here and for `armed` below: this thread's own bookkeeping (see the field).
        let mut watching = false;
        for (i, sibling) in self.siblings.iter().enumerate() {
            let Some(sibling) = sibling.upgrade() else {
                continue;
            };
            let poller = sibling.remote().poller();
            if sibling.has_registrations()
                && !poller.is_blocked()
                && !self.raised_pending(i, poller)
            {
                let armed = &self.armed[i];
                if !armed.load(Ordering::Relaxed) {
                    let flags = EventFlags::IN | EventFlags::ONESHOT;
                    let key = EventData::new_u64(i as u64 + 1);
                    armed.store(
                        epoll::modify(&self.outer, poller, key, flags).is_ok(),
                        Ordering::Relaxed,
                    );
                }
                watching |= armed.load(Ordering::Relaxed);
            }
        }
        if !watching {
            let _ = own.wait(events, timeout);
            return;
        }
        let timeout = timespec(timeout);
        // A few keys per wait: more wait for the next one (the own poller is level-triggered
        // here, a sibling's one-shot entry stays pending until reported).
        let mut buf = [std::mem::MaybeUninit::<epoll::Event>::uninit(); 8];
        own.set_blocked(true);
        let ready: &[epoll::Event] = loop {
            match epoll::wait(&self.outer, &mut buf, timeout.as_ref()) {
                Ok((ready, _)) => break ready,
                Err(Errno::INTR) => continue,
                // A spurious wake-up, which the loop tolerates.
                Err(_) => break &[],
            }
        };
        own.set_blocked(false);
        events.clear();
        for event in ready {
            let key = event.data.u64();
            if key == OWN_KEY {
                let _ = own.wait(events, Some(Duration::ZERO));
            } else {
                let index = key as usize - 1;
                // Reported: the one-shot entry is disarmed.
                self.armed[index].store(false, Ordering::Relaxed);
                if let Some(sibling) = self.siblings[index].upgrade() {
                    self.help(index, &sibling);
                }
            }
        }
    }

    /// A busy helper's look at its siblings: takes the events of each one whose poller has
    /// not been waited on by its owner for [`STALL`] (module docs).
    pub(crate) fn help_stalled(&self) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        // Relaxed, here and below: this thread's own bookkeeping (see the fields).
        if now < self.next_look.load(Ordering::Relaxed) {
            return;
        }
        self.next_look
            .store(now + STALL.as_nanos() as u64 / 2, Ordering::Relaxed);
        for (i, sibling) in self.siblings.iter().enumerate() {
            let Some(sibling) = sibling.upgrade() else {
                continue;
            };
            let poller = sibling.remote().poller();
            let waits = poller.owner_waits();
            let (seen_waits, seen_at) = (&self.seen_waits[i], &self.seen_at[i]);
            if seen_waits.load(Ordering::Relaxed) != waits {
                seen_waits.store(waits, Ordering::Relaxed);
                seen_at.store(now, Ordering::Relaxed);
                continue;
            }
            let stalled =
                now.saturating_sub(seen_at.load(Ordering::Relaxed)) >= STALL.as_nanos() as u64;
            if stalled && !poller.is_blocked() && sibling.has_registrations() {
                seen_at.store(now, Ordering::Relaxed);
                self.help(i, &sibling);
            }
        }
    }

    /// Whether the helper raised sibling `index`'s wake-up again and the sibling has not
    /// waited since (module docs).
    fn raised_pending(&self, index: usize, poller: &Poller) -> bool {
        // Relaxed: this thread's own bookkeeping (see the field).
        self.raised_at[index].load(Ordering::Relaxed) == u64::from(poller.owner_waits())
    }

    /// Takes sibling `index`'s queued events and hands them to its reactor (module docs).
    fn help(&self, index: usize, sibling: &Reactor) {
        // Fresh buffers: a help is rare next to the wake-up that brought it (and `Events` is
        // not `Send`, so the helper cannot keep them in the `Sync` remote).
        let (mut events, mut scratch) = (Events::new(), Scratch::default());
        let poller = sibling.remote().poller();
        // Read before taking: a wait of the sibling's that starts after this read and took
        // nothing is counted, so the helper at worst arms once more than it had to.
        let waits = poller.owner_waits();
        if poller.take_for_sibling(&mut events).is_err() {
            return;
        }
        let renotify = events.has_notify();
        sibling.dispatch(&events, &mut scratch.sources, &mut scratch.watches);
        if renotify || !scratch.watches.is_empty() {
            self.raised_at[index].store(u64::from(waits), Ordering::Relaxed);
            let _ = poller.notify();
        }
    }
}

impl crate::EventLoop {
    /// This loop's I/O as a sibling can help with it (see [`help_io_of`](Self::help_io_of)).
    ///
    /// ```
    /// let lp = spindle_loop::EventLoop::new().unwrap();
    /// let share = lp.io_share();
    /// assert!(format!("{share:?}").contains(&lp.id().to_string()));
    /// ```
    pub fn io_share(&self) -> IoShare {
        IoShare(self.inner.reactor.clone())
    }

    /// From now on, while this loop waits with nothing to do, it also watches `siblings`'
    /// pollers while they are busy, and takes their sockets' events from them: their waiting
    /// tasks are woken from this thread (a stealable task then runs here; its socket stays
    /// homed on its loop). A runtime gives each worker's loop the others; the protocol is in
    /// the docs of `io::help`. Linux only (epoll in epoll). Once per loop: a second call is an
    /// `AlreadyExists` error.
    ///
    /// ```
    /// let a = spindle_loop::EventLoop::new().unwrap();
    /// let b = spindle_loop::EventLoop::new().unwrap();
    /// a.help_io_of(&[b.io_share()])?;
    /// assert_eq!(
    ///     a.help_io_of(&[b.io_share()]).unwrap_err().kind(),
    ///     std::io::ErrorKind::AlreadyExists
    /// );
    /// # std::io::Result::Ok(())
    /// ```
    pub fn help_io_of(&self, siblings: &[IoShare]) -> io::Result<()> {
        self.inner.remote.help_io_of(siblings)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;
    use std::time::Duration;

    use crate::remote::poller::Events;
    use crate::EventLoop;

    /// The owner `home` and a loop `helper` that helps it.
    fn pair() -> (EventLoop, EventLoop) {
        let (home, helper) = (EventLoop::new().unwrap(), EventLoop::new().unwrap());
        helper.help_io_of(&[home.io_share()]).unwrap();
        (home, helper)
    }

    fn help(helper: &EventLoop, home: &EventLoop) {
        let helping = helper.inner.remote.helping().expect("installed");
        helping.help(0, &home.inner.reactor);
    }

    #[test]
    fn a_helper_that_takes_its_siblings_wake_up_raises_it_again() {
        let (home, helper) = pair();
        let poller = home.inner.remote.poller();
        poller.notify().unwrap();
        help(&helper, &home);
        // The helper's wait consumed the edge of the notification; the home poller still has
        // one, or a loop about to block would sleep through its wake-up.
        let mut events = Events::new();
        poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.has_notify(), "the wake-up was lost");
    }

    #[test]
    fn a_sibling_whose_wake_up_was_raised_again_is_not_watched_until_it_waited() {
        let (home, helper) = pair();
        let helping = helper.inner.remote.helping().expect("installed");
        let poller = home.inner.remote.poller();
        assert!(!helping.raised_pending(0, poller), "nothing raised yet");
        poller.notify().unwrap();
        help(&helper, &home);
        // Its poller is readable with that very wake-up: watching it would wake the helper at
        // once, again and again, until the sibling's next wait.
        assert!(helping.raised_pending(0, poller));
        let mut events = Events::new();
        poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
        assert!(events.has_notify());
        assert!(!helping.raised_pending(0, poller), "the sibling took it");
        // A help that found no wake-up raises none.
        help(&helper, &home);
        assert!(!helping.raised_pending(0, poller));
    }

    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn a_busy_helper_takes_the_events_of_a_sibling_that_stopped_polling() {
        use std::sync::atomic::Ordering::SeqCst;
        let (home, helper) = pair();
        let helping = helper.inner.remote.helping().expect("installed");
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = std::sync::Arc::new(crate::io::Source::new(a).unwrap());
        let woken = std::sync::Arc::new(CountingWaker(0.into()));
        // Register `a` on `home` with a waiter: `home` is its home loop from now on.
        let (source, waker) = (a.clone(), std::task::Waker::from(woken.clone()));
        home.run_until_complete(async move {
            source.clear_readable();
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(source.poll_readable(&mut cx).is_pending());
        })
        .unwrap();
        b.write_all(b"x").unwrap();
        // `home` does not run (stuck, or descheduled): a first look notes where its waits
        // stand; one a stall later takes its events.
        helping.help_stalled();
        std::thread::sleep(super::STALL * 2);
        helping.help_stalled();
        assert_eq!(
            woken.0.load(SeqCst),
            1,
            "the stalled sibling's reader was not woken"
        );
        drop(a);
        home.close().unwrap();
        helper.close().unwrap();
    }

    #[test]
    fn a_helper_leaves_a_level_triggered_callback_to_its_loop() {
        let (home, helper) = pair();
        let (reader, mut writer) = UnixStream::pair().unwrap();
        reader.set_nonblocking(true).unwrap();
        let reader = Rc::new(reader);
        let calls = Rc::new(std::cell::Cell::new(0));
        let (c, l) = (calls.clone(), home.clone());
        home.add_reader(reader.clone(), move || {
            c.set(c.get() + 1);
            l.stop();
        })
        .unwrap();
        writer.write_all(b"x").unwrap();
        help(&helper, &home);
        assert_eq!(calls.get(), 0, "callbacks run on their own loop only");
        home.run_forever().unwrap();
        assert_eq!(calls.get(), 1, "the loop still saw its reader ready");
        home.close().unwrap();
        helper.close().unwrap();
    }

    #[test]
    fn a_second_help_io_of_is_refused_and_a_closed_sibling_is_skipped() {
        let (home, helper) = pair();
        let err = helper.help_io_of(&[home.io_share()]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        home.close().unwrap();
        drop(home);
        // The helper's next wait finds its sibling gone and simply waits on its own poller.
        helper
            .call_later(Duration::from_millis(5), {
                let l = helper.clone();
                move || l.stop()
            })
            .unwrap();
        helper.run_forever().unwrap();
        helper.close().unwrap();
    }
}
