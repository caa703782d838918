//! The run's clock, its fault windows, and the times other processes
//! used much of the machine's CPU.
//!
//! On a shared machine the soak can be starved of CPU: the scheduler then
//! runs its threads in short slices, everything slows down, and a request
//! outlives the 1 s store timeout for reasons that have nothing to do with
//! the library. Neither a sleeping thread nor a runtime task notices (both
//! still wake on time), so the machine's CPU use is sampled instead
//! (`/proc/stat` less the soak's own share from `/proc/self/stat`; no
//! samples where there is no `/proc`). A 5xx outside the fault windows in
//! such a time says so in the report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock;

/// How often the machine's CPU use is sampled.
const SAMPLE: Duration = Duration::from_millis(500);
/// Other processes using this share of all the machine's cores or more
/// contend with the soak.
const CONTENDED: f64 = 0.5;

/// A span of the run (times from its start) in which the backend failed
/// on purpose; `end` is `None` while it lasts.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Duration,
    pub end: Option<Duration>,
}

/// A span in which other processes used much of the machine's CPU: from
/// `end - length` to `end` (times from the start of the run).
#[derive(Clone, Copy, Debug)]
pub struct Contention {
    pub end: Duration,
    pub length: Duration,
    /// Their share of all the machine's cores, 0 to 1.
    pub share: f64,
}

impl Contention {
    fn overlaps(&self, from: Duration, to: Duration) -> bool {
        self.end >= from && self.end.saturating_sub(self.length) <= to
    }
}

pub(crate) struct Timeline {
    start: Instant,
    grace: Duration,
    windows: Mutex<Vec<Window>>,
    contention: Mutex<Vec<Contention>>,
    stopped: AtomicBool,
}

impl Timeline {
    /// A timeline starting now, sampling the machine's CPU use on the
    /// current runtime until [`stop`](Self::stop).
    pub(crate) fn start(grace: Duration) -> Arc<Self> {
        let timeline = Arc::new(Self {
            start: Instant::now(),
            grace,
            windows: Mutex::default(),
            contention: Mutex::default(),
            stopped: AtomicBool::new(false),
        });
        tokio::spawn(Arc::clone(&timeline).watch());
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

    /// Stops sampling.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    async fn watch(self: Arc<Self>) {
        let mut last = (Instant::now(), CpuTimes::read());
        while !self.stopped.load(Ordering::Relaxed) {
            tokio::time::sleep(SAMPLE).await;
            let now = (Instant::now(), CpuTimes::read());
            if let (Some(before), Some(after)) = (last.1, now.1) {
                let share = after.others_share_since(before);
                if share >= CONTENDED {
                    lock(&self.contention).push(Contention {
                        end: self.now(),
                        length: now.0 - last.0,
                        share,
                    });
                }
            }
            last = now;
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

    /// The highest share of the machine other processes used between
    /// `from` and `to`, if they contended with the soak then.
    pub(crate) fn contended(&self, from: Duration, to: Duration) -> Option<f64> {
        lock(&self.contention)
            .iter()
            .filter(|contention| contention.overlaps(from, to))
            .map(|contention| contention.share)
            .reduce(f64::max)
    }

    pub(crate) fn windows(&self) -> Vec<Window> {
        lock(&self.windows).clone()
    }

    pub(crate) fn contention(&self) -> Vec<Contention> {
        lock(&self.contention).clone()
    }
}

/// CPU time so far, in clock ticks: the whole machine's (busy and in all),
/// and this process's.
#[derive(Clone, Copy)]
struct CpuTimes {
    busy: u64,
    total: u64,
    own: u64,
}

impl CpuTimes {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        // cpu user nice system idle iowait irq softirq steal (guest time is
        // already in user and nice).
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|field| field.parse().ok())
            .collect::<Option<_>>()?;
        let total = ticks.iter().sum();
        let idle = ticks.get(3)? + ticks.get(4)?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After the command name (which may hold spaces), utime and stime
        // are the 12th and 13th fields.
        let own: Vec<&str> = own.rsplit_once(')')?.1.split_whitespace().collect();
        let own = own.get(11)?.parse::<u64>().ok()? + own.get(12)?.parse::<u64>().ok()?;
        Some(Self {
            busy: total - idle,
            total,
            own,
        })
    }

    /// The share of all cores other processes used since `before`.
    fn others_share_since(&self, before: Self) -> f64 {
        let total = self.total.saturating_sub(before.total);
        let busy = self.busy.saturating_sub(before.busy);
        let own = self.own.saturating_sub(before.own);
        if total == 0 {
            return 0.0;
        }
        busy.saturating_sub(own) as f64 / total as f64
    }
}
