//! A chaos soak: mixed session traffic from many virtual users against an
//! in-process server over real sockets, while the backend is made to fail
//! now and then, and an oracle that checks every answer against what the
//! server acknowledged before.
//!
//! The oracle's rules:
//! - **No lost keys**: a read shows each key's last acknowledged value, or
//!   the value of a later write whose answer was an error (it may or may
//!   not have happened); no key this session was never given.
//! - **No resurrection**: an id that was logged out, or cycled away by a
//!   login, loads nothing ever again and gets no cookie back.
//! - **Increments**: a session's counter is at least the increments
//!   acknowledged (and the highest count any of them answered), at most
//!   the ones attempted, whenever it is read.
//! - **No 5xx outside fault windows** (and a grace period after each), and
//!   an answer to every request. One at a time other processes used much
//!   of the machine's CPU still counts, and says so.
//!
//! Faults (`faults`): Redis is killed with SIGKILL and restarted on the
//! same port (a private server writing an fsynced append-only file, so
//! nothing acknowledged is lost); SQLite's write lock is held by another
//! connection; memory has nothing outside the process to break.
//!
//! [`Breakage`] runs the same soak on deliberately broken storage, to show
//! the oracle catches what it claims to.

// The crate allows panicking helpers for tests; the soak must report
// failures instead.
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod app;
mod backend;
mod client;
mod faults;
mod model;
mod oracle;
mod report;
mod rng;
mod sabotage;
mod timeline;
mod user;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use session_core::SessionStorage;
use session_http::SessionLayer;
use tokio::task::JoinSet;
use tower::util::BoxCloneSyncService;

pub use app::HandlerErrors;
pub use backend::Backend;
pub use oracle::{Counts, Increments, Problem, Sessions, Violation};
pub use report::Report;
pub use sabotage::Breakage;
pub use timeline::{Contention, Window};

use crate::net::TestServer;
use faults::Schedule;
use oracle::Oracle;
use sabotage::Sabotaged;
use timeline::Timeline;
use user::Run;

/// What to soak, for how long, how hard.
#[derive(Clone, Debug)]
pub struct Options {
    pub backend: Backend,
    pub duration: Duration,
    /// Inject the backend's faults.
    pub faults: bool,
    pub seed: u64,
    pub users: usize,
    /// Connections per user sending increments concurrently.
    pub incrementers: usize,
    /// Run on deliberately broken storage (the self-check).
    pub breakage: Option<Breakage>,
    /// A fault starts this often...
    pub fault_every: Duration,
    /// ...and lasts this long.
    pub fault_length: Duration,
    /// After a fault window, how long 5xx answers are still excused (the
    /// library's 1 s store timeout and its reconnect), and how long an
    /// unknown outcome is given to land before it is checked.
    pub grace: Duration,
}

impl Options {
    /// The defaults: faults on, 32 users with 3 incrementers each, a 3 s
    /// fault every 15 s, 3 s grace, a seed from the clock.
    pub fn new(backend: Backend, duration: Duration) -> Self {
        Self {
            backend,
            duration,
            faults: true,
            seed: clock_seed(),
            users: 32,
            incrementers: 3,
            breakage: None,
            fault_every: Duration::from_secs(15),
            fault_length: Duration::from_secs(3),
            grace: Duration::from_secs(3),
        }
    }

    fn schedule(&self) -> Schedule {
        Schedule {
            every: self.fault_every,
            length: self.fault_length,
            tail: self.grace + Duration::from_secs(2),
        }
    }

    /// User `user`'s own seed, derived from the run's.
    fn user_seed(&self, user: usize) -> u64 {
        let user = u64::try_from(user).unwrap_or_default();
        self.seed ^ user.wrapping_mul(0xA076_1D64_78BD_642F)
    }
}

fn clock_seed() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::from(now.subsec_nanos()) ^ (now.as_secs() << 30)
}

/// Runs the soak; the report says whether the oracle found violations.
///
/// # Errors
///
/// The backend or the server could not be set up.
pub async fn run(options: &Options) -> Result<Report, String> {
    let store = backend::open(options).await?;
    let errors = Arc::new(HandlerErrors::default());
    let server = serve(options, &store.storage, &errors).await?;
    let timeline = Timeline::start(options.grace);
    let start = timeline.started();
    let run = Arc::new(Run {
        addr: server.addr,
        oracle: Oracle::new(Arc::clone(&timeline)),
        end: start + options.duration,
        settle: options.grace,
    });
    let injection = store.injector.filter(|_| options.faults).map(|injector| {
        let timeline = Arc::clone(&timeline);
        tokio::spawn(faults::inject(
            injector,
            options.schedule(),
            timeline,
            run.end,
        ))
    });
    drive(&run, options).await;
    if let Some(injection) = injection {
        let failures = injection
            .await
            .unwrap_or_else(|error| vec![format!("the fault injector failed: {error}")]);
        for failure in failures {
            run.oracle.harness_error(failure);
        }
    }
    timeline.stop();
    Ok(Report {
        options: options.clone(),
        storage: store.description,
        faults: store.faults,
        elapsed: start.elapsed(),
        windows: timeline.windows(),
        contention: timeline.contention(),
        counts: run.oracle.counts(),
        handler_errors: errors,
    })
}

/// The soak's routes over `storage` (broken on purpose if asked), served
/// on a loopback port.
async fn serve(
    options: &Options,
    storage: &Arc<dyn SessionStorage>,
    errors: &Arc<HandlerErrors>,
) -> Result<TestServer, String> {
    let storage: Arc<dyn SessionStorage> = match options.breakage {
        Some(breakage) => Arc::new(Sabotaged::new(Arc::clone(storage), breakage)),
        None => Arc::clone(storage),
    };
    let router = app::router(SessionLayer::from_arc(storage), Arc::clone(errors));
    TestServer::try_serve(BoxCloneSyncService::new(router))
        .await
        .map_err(|error| format!("the server could not start: {error}"))
}

/// Runs every virtual user to the end of the run and its final checks.
async fn drive(run: &Arc<Run>, options: &Options) {
    let mut users = JoinSet::new();
    for user in 0..options.users {
        let seed = options.user_seed(user);
        users.spawn(user::run(Arc::clone(run), user, seed, options.incrementers));
    }
    while let Some(joined) = users.join_next().await {
        if let Err(error) = joined {
            run.oracle
                .harness_error(format!("a user task failed: {error}"));
        }
    }
}

/// The guarded value, even if a thread panicked holding it (the counts
/// stay usable for the report).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
