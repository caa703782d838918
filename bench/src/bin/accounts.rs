//! Storage-level cost of the account calls (`login`, `list`, `revoke`)
//! for a user with 1, 10 and 1 000 live sessions, on each backend.
//!
//! ```text
//! accounts [--backends memory,sqlite,redis] [--sizes 1,10,1000] [--runs 3]
//!          [--iterations 300] [--large-iterations 30] [--sqlite FILE] [--redis URL]
//! ```
//!
//! `bench/accounts.py` builds this, starts a redis-server of its own on a
//! free port and passes `--redis`. Without `--redis` the Redis backend is
//! left out; `--sqlite` defaults to a fresh file in the temporary
//! directory, removed afterwards.
//!
//! Per backend and session count: the user gets N sessions (logins from no
//! session), then each operation is timed call by call, only the call
//! itself inside the clock:
//!
//! - `login`: an anonymous session (one integer) is created, then logged in
//!   to a fresh key (no limit, empty change set, a user-agent device fact);
//!   the new session is deleted afterwards, so the user stays at N.
//! - `list`: the user's N sessions.
//! - `revoke`: `Revoke::AllBut(current)`, ending N - 1 sessions; they are
//!   logged in again afterwards.
//!
//! A run is the mean over its iterations (after a tenth as many untimed
//! warm-up ones); the table shows the median of the runs and their range,
//! in microseconds. `now` is `Timestamp::now()` for every call; deadlines
//! are 30 minutes idle and 12 hours absolute.

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{
    ChangeSet, CreateOutcome, Deadlines, Device, Login, LoginOutcome, Record, Revoke, SessionData,
    SessionId, SessionKey, SessionStorage, Timestamp, UserKey,
};

const IDLE: Duration = Duration::from_secs(30 * 60);
const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);
const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";

struct Options {
    backends: Vec<String>,
    sizes: Vec<usize>,
    runs: usize,
    iterations: usize,
    large_iterations: usize,
    sqlite: Option<String>,
    redis: Option<String>,
}

fn list_of<T: std::str::FromStr>(value: &str, what: &str) -> Vec<T> {
    value
        .split(',')
        .map(|item| item.trim().parse().unwrap_or_else(|_| panic!("{what}")))
        .collect()
}

fn options() -> Options {
    let mut options = Options {
        backends: vec!["memory".to_owned(), "sqlite".to_owned(), "redis".to_owned()],
        sizes: vec![1, 10, 1000],
        runs: 3,
        iterations: 300,
        large_iterations: 30,
        sqlite: None,
        redis: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--backends" => options.backends = list_of(&value, "--backends a,b"),
            "--sizes" => options.sizes = list_of(&value, "--sizes 1,10,1000"),
            "--runs" => options.runs = value.parse().expect("--runs N"),
            "--iterations" => options.iterations = value.parse().expect("--iterations N"),
            "--large-iterations" => {
                options.large_iterations = value.parse().expect("--large-iterations N");
            }
            "--sqlite" => options.sqlite = Some(value),
            "--redis" => options.redis = Some(value),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(options.runs > 0 && options.sizes.iter().all(|n| *n > 0));
    options
}

fn deadlines(now: Timestamp) -> Deadlines {
    Deadlines::new(now.saturating_add(IDLE), now.saturating_add(ABSOLUTE))
}

fn fresh_key() -> SessionKey {
    SessionId::generate().expect("randomness").key()
}

/// One user's sessions in one store.
struct Subject {
    storage: Arc<dyn SessionStorage>,
    user: UserKey,
    login: Login,
    /// The session the user "is using": kept by `revoke(AllBut)`.
    current: SessionKey,
    sessions: usize,
}

impl Subject {
    /// `user` with `sessions` live sessions in `storage`.
    async fn new(storage: Arc<dyn SessionStorage>, user: UserKey, sessions: usize) -> Self {
        let login = Login::new(user).device(Device::new().with("user_agent", USER_AGENT));
        let subject = Self {
            storage,
            user,
            login,
            current: fresh_key(),
            sessions,
        };
        let current = subject.current;
        subject.log_in_fresh(&current).await;
        subject.refill(sessions - 1).await;
        subject.check().await;
        subject
    }

    /// A login from no session to `key`.
    async fn log_in_fresh(&self, key: &SessionKey) {
        let now = Timestamp::now();
        let outcome = self
            .storage
            .login(
                None,
                key,
                &ChangeSet::new(),
                deadlines(now),
                &self.login,
                now,
            )
            .await
            .expect("login");
        assert_eq!(outcome, LoginOutcome::LoggedIn { revoked: 0 });
    }

    /// `count` more sessions.
    async fn refill(&self, count: usize) {
        for _ in 0..count {
            self.log_in_fresh(&fresh_key()).await;
        }
    }

    /// The user has exactly `sessions` live sessions.
    async fn check(&self) {
        let listed = self
            .storage
            .list(&self.user, Timestamp::now())
            .await
            .expect("list");
        assert_eq!(listed.len(), self.sessions, "sessions of the user");
    }

    /// One timed login from an anonymous session to a fresh key.
    async fn time_login(&self) -> Duration {
        let now = Timestamp::now();
        let (anonymous, new) = (fresh_key(), fresh_key());
        let mut data = SessionData::new();
        data.insert("n", &1_i64).expect("encodable");
        let created = self
            .storage
            .create(&anonymous, &Record::new(data, now, deadlines(now)), now)
            .await
            .expect("create");
        assert_eq!(created, CreateOutcome::Created);
        let changes = ChangeSet::new();
        let now = Timestamp::now();
        let deadlines = deadlines(now);
        let started = Instant::now();
        let outcome = self
            .storage
            .login(
                Some(&anonymous),
                &new,
                &changes,
                deadlines,
                &self.login,
                now,
            )
            .await;
        let took = started.elapsed();
        assert_eq!(
            outcome.expect("login"),
            LoginOutcome::LoggedIn { revoked: 0 }
        );
        self.storage.delete(&new).await.expect("delete");
        took
    }

    /// One timed list of the user's sessions.
    async fn time_list(&self) -> Duration {
        let now = Timestamp::now();
        let started = Instant::now();
        let listed = self.storage.list(&self.user, now).await;
        let took = started.elapsed();
        assert_eq!(listed.expect("list").len(), self.sessions);
        took
    }

    /// One timed revoke of every session but the current one.
    async fn time_revoke(&self) -> Duration {
        let which = Revoke::AllBut(self.current);
        let now = Timestamp::now();
        let started = Instant::now();
        let revoked = self.storage.revoke(&self.user, &which, now).await;
        let took = started.elapsed();
        assert_eq!(revoked.expect("revoke"), self.sessions as u64 - 1);
        self.refill(self.sessions - 1).await;
        took
    }

    async fn time(&self, operation: Operation) -> Duration {
        match operation {
            Operation::Login => self.time_login().await,
            Operation::List => self.time_list().await,
            Operation::Revoke => self.time_revoke().await,
        }
    }

    /// The mean of `iterations` timed calls, in microseconds.
    async fn run(&self, operation: Operation, iterations: usize) -> f64 {
        for _ in 0..iterations.div_ceil(10) {
            self.time(operation).await;
        }
        let mut total = Duration::ZERO;
        for _ in 0..iterations {
            total += self.time(operation).await;
        }
        total.as_secs_f64() * 1e6 / iterations as f64
    }

    /// Ends every session of the user.
    async fn clear(&self) {
        let now = Timestamp::now();
        let revoked = self
            .storage
            .revoke(&self.user, &Revoke::All, now)
            .await
            .expect("revoke");
        assert_eq!(revoked, self.sessions as u64);
    }
}

#[derive(Clone, Copy)]
enum Operation {
    Login,
    List,
    Revoke,
}

const OPERATIONS: [Operation; 3] = [Operation::Login, Operation::List, Operation::Revoke];

/// The median and the range of a run's means.
struct Summary {
    median: f64,
    low: f64,
    high: f64,
}

fn summary(mut means: Vec<f64>) -> Summary {
    means.sort_by(f64::total_cmp);
    let middle = means.len() / 2;
    let median = if means.len() % 2 == 1 {
        means[middle]
    } else {
        (means[middle - 1] + means[middle]) / 2.0
    };
    Summary {
        median,
        low: means[0],
        high: means[means.len() - 1],
    }
}

fn cell(summary: &Summary) -> String {
    let digits = |value: f64| if value < 100.0 { 2 } else { 0 };
    let d = digits(summary.median);
    format!(
        "{:.d$} ({:.d$}–{:.d$})",
        summary.median, summary.low, summary.high
    )
}

/// The storage of `backend`, or why it is not measured.
async fn open(
    backend: &str,
    options: &Options,
    sqlite: &str,
) -> Result<Arc<dyn SessionStorage>, String> {
    let storage: Arc<dyn SessionStorage> = match backend {
        "memory" => Arc::new(session_memory::MemoryStorage::new()),
        "sqlite" => Arc::new(
            session_sqlite::SqliteStorage::open(&format!("sqlite://{sqlite}"))
                .await
                .map_err(|error| format!("cannot open {sqlite}: {error}"))?,
        ),
        "redis" => {
            let Some(url) = &options.redis else {
                return Err("not run: no --redis URL given".to_owned());
            };
            Arc::new(
                session_redis::RedisStorage::open(url)
                    .map_err(|error| format!("cannot open {url}: {error}"))?,
            )
        }
        other => panic!("unknown backend {other}"),
    };
    if !storage.capabilities().accounts {
        return Err("not measured: this build of the backend has no accounts \
                    (measured when the Redis backend lands)"
            .to_owned());
    }
    Ok(storage)
}

fn remove_sqlite(file: &str) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{file}{suffix}"));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = options();
    let (sqlite, temporary) = match &options.sqlite {
        Some(file) => (file.clone(), false),
        None => {
            let file =
                std::env::temp_dir().join(format!("accounts-bench-{}.db", std::process::id()));
            (file.to_string_lossy().into_owned(), true)
        }
    };
    if temporary {
        remove_sqlite(&sqlite);
    }
    // A user of its own per invocation, so a shared Redis or SQLite file
    // never mixes runs.
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for backend in &options.backends {
        let storage = match open(backend, &options, &sqlite).await {
            Ok(storage) => storage,
            Err(why) => {
                eprintln!("{backend}: {why}");
                notes.push(format!("{backend}: {why}"));
                continue;
            }
        };
        for &sessions in &options.sizes {
            let user = UserKey::of(&format!("bench-{tag}-{}-{sessions}", std::process::id()));
            let subject = Subject::new(storage.clone(), user, sessions).await;
            let iterations = if sessions <= 10 {
                options.iterations
            } else {
                options.large_iterations
            };
            let mut means = vec![Vec::new(); OPERATIONS.len()];
            for _ in 0..options.runs {
                for (index, operation) in OPERATIONS.into_iter().enumerate() {
                    means[index].push(subject.run(operation, iterations).await);
                }
                subject.check().await;
            }
            subject.clear().await;
            let cells: Vec<String> = means.into_iter().map(|m| cell(&summary(m))).collect();
            eprintln!("{backend} {sessions}: {}", cells.join(" | "));
            rows.push(format!(
                "| {backend} | {sessions} | {iterations} | {} |",
                cells.join(" | ")
            ));
        }
    }
    if temporary {
        remove_sqlite(&sqlite);
    }
    println!(
        "Median of {} runs, each the mean of its iterations; µs per call, (lowest–highest run).",
        options.runs
    );
    println!();
    println!(
        "| backend | sessions of the user | iterations per run | login µs | list µs | revoke all but current µs |"
    );
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    for note in notes {
        println!();
        println!("{note}");
    }
}
