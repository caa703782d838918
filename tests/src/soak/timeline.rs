//! The run's clock, its fault windows, and the stalls of the soak process
//! itself.
//!
//! On a shared machine the soak can be starved of CPU: a thread sleeping
//! 10 ms at a time notes when it wakes much later. A 5xx outside the fault
//! windows that coincides with such a stall says more about the machine
//! than about the library; the report says which ones did.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock;

/// How long the stall watcher sleeps at a time.
const TICK: Duration = Duration::from_millis(10);
/// A wake-up this much later than asked is a stall.
const STALL: Duration = Duration::from_millis(200);

/// A span of the run (times from its start) in which the backend failed
/// on purpose; `end` is `None` while it lasts.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Duration,
    pub end: Option<Duration>,
}

/// A time the soak process did not run: from `end - length` to `end`
/// (times from the start of the run).
#[derive(Clone, Copy, Debug)]
pub struct Stall {
    pub end: Duration,
    pub length: Duration,
}

impl Stall {
    fn overlaps(&self, from: Duration, to: Duration) -> bool {
        self.end >= from && self.end.saturating_sub(self.length) <= to
    }
}

pub(crate) struct Timeline {
    start: Instant,
    grace: Duration,
    windows: Mutex<Vec<Window>>,
    stalls: Mutex<Vec<Stall>>,
    stopped: AtomicBool,
}

impl Timeline {
    /// A timeline starting now, its stall watcher running until
    /// [`stop`](Self::stop).
    pub(crate) fn start(grace: Duration) -> Arc<Self> {
        let timeline = Arc::new(Self {
            start: Instant::now(),
            grace,
            windows: Mutex::default(),
            stalls: Mutex::default(),
            stopped: AtomicBool::new(false),
        });
        let watched = Arc::clone(&timeline);
        std::thread::spawn(move || watched.watch());
        timeline
    }

    /// The instant the run started.
    pub(crate) fn started(&self) -> Instant {
        self.start
    }

    /// Time since the run started.
    pub(crate) fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Stops the stall watcher.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    fn watch(&self) {
        while !self.stopped.load(Ordering::Relaxed) {
            let asleep = Instant::now();
            std::thread::sleep(TICK);
            let late = asleep.elapsed().saturating_sub(TICK);
            if late >= STALL {
                let stall = Stall {
                    end: self.now(),
                    length: late,
                };
                lock(&self.stalls).push(stall);
            }
        }
    }

    /// Opens a window now; its index, for [`close`](Self::close).
    pub(crate) fn open(&self) -> usize {
        let mut windows = lock(&self.windows);
        windows.push(Window {
            start: self.now(),
            end: None,
        });
        windows.len() - 1
    }

    pub(crate) fn close(&self, index: usize) {
        let now = self.now();
        if let Some(window) = lock(&self.windows).get_mut(index) {
            window.end = Some(now);
        }
    }

    /// Whether a request sent at `sent` and answered at `answered` overlaps
    /// a window or the grace period after it (the library's timeouts and
    /// reconnects, and the queue that built up meanwhile, run past the
    /// window's end).
    pub(crate) fn excuses(&self, sent: Duration, answered: Duration) -> bool {
        lock(&self.windows).iter().any(|window| {
            let end = window.end.map_or(Duration::MAX, |end| end + self.grace);
            sent <= end && answered >= window.start
        })
    }

    /// The longest stall of the process between `from` and `to`.
    pub(crate) fn stalled(&self, from: Duration, to: Duration) -> Option<Duration> {
        lock(&self.stalls)
            .iter()
            .filter(|stall| stall.overlaps(from, to))
            .map(|stall| stall.length)
            .max()
    }

    pub(crate) fn windows(&self) -> Vec<Window> {
        lock(&self.windows).clone()
    }

    pub(crate) fn stalls(&self) -> Vec<Stall> {
        lock(&self.stalls).clone()
    }
}
