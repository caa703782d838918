//! A virtual user: one writer doing reads, writes, removals, logins,
//! logouts and old-id checks one at a time, and a few incrementers sharing
//! its cookie on connections of their own.
//!
//! Only the increments run concurrently with other requests of the user,
//! so each key always has a known set of possible values. Logins and
//! logouts (and the checks after an unknown outcome) quiesce the user
//! first: they take the write side of a lock the incrementers read, so no
//! request of the user is in flight while its session changes identity.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::RwLock;
use tokio::task::JoinSet;

use super::client::{Answer, Connection, CookieChange};
use super::model::{Bounds, Dump, Model, count, parse};
use super::oracle::{Increments, Kind, Oracle, Problem};
use super::rng::Rng;

/// The keys a user writes: few, so reads see overwritten and removed keys.
const KEYS: usize = 6;
/// How many dead ids a user keeps checking.
const DEAD_KEPT: usize = 8;
/// The pause after an error answer, so an outage is not a busy loop.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long an incrementer waits for the writer to create a session.
const IDLE_PAUSE: Duration = Duration::from_millis(5);
/// How long after the run a logout or check may keep failing before it is
/// given up as unresolved.
const RESOLVE_LIMIT: Duration = Duration::from_secs(60);

/// What every user shares.
pub(crate) struct Run {
    pub(crate) addr: SocketAddr,
    pub(crate) oracle: Oracle,
    pub(crate) end: Instant,
    /// How long an unknown outcome may take to land (a write queued behind
    /// a lock, a reconnect) before it is checked.
    pub(crate) settle: Duration,
}

impl Run {
    fn resolving(&self) -> bool {
        Instant::now() < self.end + RESOLVE_LIMIT
    }
}

/// Increments of the current session, as the clients saw them.
#[derive(Debug, Default)]
struct Counter {
    attempted: AtomicU64,
    acknowledged: AtomicU64,
    highest: AtomicU64,
}

impl Counter {
    /// The bounds for a read sent now: the floor as it is before sending,
    /// the ceiling as it is after the answer, via [`Bounds::attempted`].
    fn floor(&self) -> Bounds {
        Bounds {
            acknowledged: self.acknowledged.load(Ordering::SeqCst),
            highest: self.highest.load(Ordering::SeqCst),
            attempted: u64::MAX,
        }
    }

    fn with_ceiling(&self, floor: Bounds) -> Bounds {
        Bounds {
            attempted: self.attempted.load(Ordering::SeqCst),
            ..floor
        }
    }

    /// Exact bounds, for a quiesced user.
    fn exact(&self) -> Bounds {
        self.with_ceiling(self.floor())
    }
}

/// What the incrementers read and the writer changes while they wait.
#[derive(Default)]
struct Current {
    cookie: Option<String>,
    counter: Arc<Counter>,
}

/// A connection whose every exchange the oracle sees.
struct Client {
    connection: Connection,
    run: Arc<Run>,
    user: usize,
}

impl Client {
    fn new(run: &Arc<Run>, user: usize) -> Self {
        Self {
            connection: Connection::new(run.addr),
            run: Arc::clone(run),
            user,
        }
    }

    /// The answer if it is a success; `None` (after a pause) for an error
    /// answer or none, whose outcome is unknown.
    async fn call(&mut self, kind: Kind, path: &str, cookie: Option<&str>) -> Option<Answer> {
        let sent = self.run.oracle.timeline().now();
        let answer = self.connection.send(kind.method(), path, cookie).await;
        self.run.oracle.answered(self.user, kind, sent, &answer);
        match answer {
            Ok(answer) if answer.status.is_success() => Some(answer),
            _ => {
                tokio::time::sleep(RETRY_PAUSE).await;
                None
            }
        }
    }
}

/// Runs user `user` until the run ends, then checks its final state.
pub(crate) async fn run(run: Arc<Run>, user: usize, seed: u64, incrementers: usize) {
    let current = Arc::new(RwLock::new(Current::default()));
    let mut tasks = JoinSet::new();
    for _ in 0..incrementers {
        tasks.spawn(increment(Arc::clone(&run), user, Arc::clone(&current)));
    }
    Writer::new(&run, user, seed, current).run().await;
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined {
            run.oracle
                .harness_error(format!("user {user}'s incrementer failed: {error}"));
        }
    }
}

/// Increments the user's counter, concurrently with its other requests.
async fn increment(run: Arc<Run>, user: usize, current: Arc<RwLock<Current>>) {
    let mut client = Client::new(&run, user);
    while Instant::now() < run.end {
        let current = Arc::clone(&current).read_owned().await;
        let Some(cookie) = current.cookie.clone() else {
            drop(current);
            tokio::time::sleep(IDLE_PAUSE).await;
            continue;
        };
        if Instant::now() >= run.end {
            break;
        }
        let counter = &current.counter;
        counter.attempted.fetch_add(1, Ordering::SeqCst);
        if let Some(answer) = client.call(Kind::Incr, "/incr", Some(&cookie)).await {
            acknowledged(&run.oracle, user, counter, &answer, &cookie);
        }
    }
}

/// Counts an acknowledged increment, and checks its answer: a count no
/// higher than the increments attempted, the session's own cookie.
fn acknowledged(oracle: &Oracle, user: usize, counter: &Counter, answer: &Answer, cookie: &str) {
    match answer.body.parse::<u64>() {
        Ok(count) => {
            counter.acknowledged.fetch_add(1, Ordering::SeqCst);
            counter.highest.fetch_max(count, Ordering::SeqCst);
            let attempted = counter.attempted.load(Ordering::SeqCst);
            if count > attempted {
                let detail = format!("an increment answered {count}, attempted {attempted}");
                oracle.violation(user, Problem::Counter, detail);
            }
        }
        Err(_) => {
            let detail = format!("an increment answered {:?}", answer.body);
            oracle.violation(user, Problem::Status, detail);
        }
    }
    if !same_session(&answer.cookie, cookie) {
        let detail = format!(
            "an increment answered {:?}: its session did not load",
            answer.cookie
        );
        oracle.violation(user, Problem::Cookie, detail);
    }
}

/// Whether a response left the session cookie `cookie` as it was.
fn same_session(change: &CookieChange, cookie: &str) -> bool {
    match change {
        CookieChange::Kept => true,
        CookieChange::Set(id) => id == cookie,
        CookieChange::Removed => false,
    }
}

/// The user's serialized requests, and the oracle's model of its session.
struct Writer {
    run: Arc<Run>,
    client: Client,
    user: usize,
    rng: Rng,
    current: Arc<RwLock<Current>>,
    /// The writer's copy of the cookie: it alone changes it.
    cookie: Option<String>,
    counter: Arc<Counter>,
    model: Model,
    /// Ids logged out or cycled away: they must never load again.
    dead: Vec<String>,
    writes: u64,
}

impl Writer {
    fn new(run: &Arc<Run>, user: usize, seed: u64, current: Arc<RwLock<Current>>) -> Self {
        Self {
            run: Arc::clone(run),
            client: Client::new(run, user),
            user,
            rng: Rng::new(seed),
            current,
            cookie: None,
            counter: Arc::default(),
            model: Model::default(),
            dead: Vec::new(),
            writes: 0,
        }
    }

    async fn run(mut self) {
        while Instant::now() < self.run.end {
            self.step().await;
        }
        self.finish().await;
    }

    /// One request, picked at random (a session first if there is none).
    async fn step(&mut self) {
        let Some(cookie) = self.cookie.clone() else {
            return self.create().await;
        };
        match self.rng.below(100) {
            0..40 => self.read(&cookie).await,
            40..70 => self.write(&cookie, true).await,
            70..78 => self.write(&cookie, false).await,
            78..83 => self.login(cookie).await,
            83..87 => self.logout(cookie).await,
            _ => self.visit_dead(&cookie).await,
        }
    }

    fn violation(&self, problem: Problem, detail: String) {
        self.run.oracle.violation(self.user, problem, detail);
    }

    /// A key, and a value no other write uses.
    fn next_write(&mut self) -> (String, String) {
        self.writes += 1;
        let key = format!("k{}", self.rng.below(KEYS));
        (key, format!("u{}.{}", self.user, self.writes))
    }

    /// Follows session `id` (or none) from now on, with nothing expected
    /// of it yet. Takes the quiesced user's state.
    fn switch(&mut self, current: &mut Current, id: Option<String>) {
        let counter = Arc::new(Counter::default());
        current.cookie.clone_from(&id);
        current.counter = Arc::clone(&counter);
        self.cookie = id;
        self.counter = counter;
        self.model = Model::default();
    }

    /// A write without a cookie: the session's creation.
    async fn create(&mut self) {
        let (key, value) = self.next_write();
        let path = format!("/put/{key}/{value}");
        // An error answer leaves no session this user knows of (at most an
        // orphan under an id nobody received).
        let Some(answer) = self.client.call(Kind::Put, &path, None).await else {
            return;
        };
        let CookieChange::Set(id) = answer.cookie else {
            let detail = format!(
                "a write that created a session answered {:?}",
                answer.cookie
            );
            return self.violation(Problem::Cookie, detail);
        };
        let mut current = Arc::clone(&self.current).write_owned().await;
        self.switch(&mut current, Some(id));
        self.model.acknowledged(&key, Some(value));
        self.run.oracle.sessions(|sessions| sessions.created += 1);
    }

    /// A request on the live session that must not change its id.
    async fn call_live(&mut self, kind: Kind, path: &str, cookie: &str) -> Option<Answer> {
        let answer = self.client.call(kind, path, Some(cookie)).await?;
        if !same_session(&answer.cookie, cookie) {
            let detail = format!(
                "{} answered {:?}: the session did not load",
                kind.name(),
                answer.cookie
            );
            self.violation(Problem::Cookie, detail);
            // Follow whatever the server says now, to go on checking.
            let id = match &answer.cookie {
                CookieChange::Set(id) => Some(id.clone()),
                _ => None,
            };
            let mut current = Arc::clone(&self.current).write_owned().await;
            self.switch(&mut current, id);
        }
        Some(answer)
    }

    async fn read(&mut self, cookie: &str) {
        let floor = self.counter.floor();
        let Some(answer) = self.call_live(Kind::Dump, "/dump", cookie).await else {
            return;
        };
        let bounds = self.counter.with_ceiling(floor);
        self.check(&parse(&answer.body), bounds);
    }

    /// Checks a read against the model; the counter, if it is a number.
    fn check(&self, dump: &Dump, bounds: Bounds) -> Option<u64> {
        for (problem, detail) in self.model.problems(dump) {
            self.violation(problem, detail);
        }
        let count = count(dump)
            .map_err(|detail| self.violation(Problem::Counter, detail))
            .ok()?;
        if let Some(detail) = bounds.problem(count) {
            self.violation(Problem::Counter, detail);
        }
        Some(count)
    }

    /// Sets (or removes) a key.
    async fn write(&mut self, cookie: &str, set: bool) {
        let (key, value) = self.next_write();
        let (kind, path, value) = if set {
            (Kind::Put, format!("/put/{key}/{value}"), Some(value))
        } else {
            (Kind::Del, format!("/del/{key}"), None)
        };
        match self.call_live(kind, &path, cookie).await {
            Some(_) => self.model.acknowledged(&key, value),
            None => self.model.failed(&key, value),
        }
    }

    /// Cycles the id; the old one must stop working.
    async fn login(&mut self, old: String) {
        let mut current = Arc::clone(&self.current).write_owned().await;
        let Some(answer) = self.client.call(Kind::Login, "/login", Some(&old)).await else {
            return self.settle_login(&mut current, old).await;
        };
        self.run.oracle.sessions(|sessions| sessions.logins += 1);
        match answer.cookie {
            CookieChange::Set(new) if new != old => {
                // Same data, same counter, new id.
                current.cookie = Some(new.clone());
                self.cookie = Some(new);
                self.bury(old).await;
            }
            other => {
                let detail = format!("login answered {other:?} instead of a new id");
                self.violation(Problem::Cookie, detail);
            }
        }
    }

    /// After a login with an error answer the id may or may not have been
    /// cycled: once it has had time to land, a read with the old id tells.
    /// Empty: cycled (the data went to an id nobody received); otherwise
    /// the session is still there and must be intact.
    async fn settle_login(&mut self, current: &mut Current, old: String) {
        tokio::time::sleep(self.run.settle).await;
        let bounds = self.counter.exact();
        let Some(dump) = self.read_until_answered(&old).await else {
            self.run
                .oracle
                .sessions(|sessions| sessions.unresolved += 1);
            return self.switch(current, None);
        };
        if dump.is_empty() {
            self.run
                .oracle
                .sessions(|sessions| sessions.lost_to_failed_login += 1);
            self.switch(current, None);
            return self.bury(old).await;
        }
        self.check(&dump, bounds);
    }

    /// Takes the final count, logs out (retrying error answers: each may or
    /// may not have deleted), and checks the old id is dead.
    async fn logout(&mut self, old: String) {
        let mut current = Arc::clone(&self.current).write_owned().await;
        self.final_count(&old).await;
        if self.destroy(&old).await {
            self.run.oracle.sessions(|sessions| sessions.logouts += 1);
            self.bury(old).await;
        } else {
            self.run
                .oracle
                .sessions(|sessions| sessions.unresolved += 1);
        }
        self.switch(&mut current, None);
    }

    async fn destroy(&mut self, cookie: &str) -> bool {
        while self.run.resolving() {
            if let Some(answer) = self
                .client
                .call(Kind::Logout, "/logout", Some(cookie))
                .await
            {
                if answer.cookie != CookieChange::Removed {
                    let detail = format!("logout answered {:?}, not a removal", answer.cookie);
                    self.violation(Problem::Cookie, detail);
                }
                return true;
            }
        }
        false
    }

    /// Reads a quiesced session: every key, and the counter against the
    /// exact bounds; its increments join the totals.
    async fn final_count(&mut self, cookie: &str) {
        let bounds = self.counter.exact();
        let Some(dump) = self.read_until_answered(cookie).await else {
            return self
                .run
                .oracle
                .sessions(|sessions| sessions.unresolved += 1);
        };
        if let Some(final_count) = self.check(&dump, bounds) {
            self.run.oracle.counted(Increments {
                acknowledged: bounds.acknowledged,
                final_count,
                attempted: bounds.attempted,
            });
        }
    }

    async fn read_until_answered(&mut self, cookie: &str) -> Option<Dump> {
        while self.run.resolving() {
            if let Some(answer) = self.client.call(Kind::Check, "/dump", Some(cookie)).await {
                return Some(parse(&answer.body));
            }
        }
        None
    }

    /// Checks a dead id at once, and keeps it for later checks.
    async fn bury(&mut self, id: String) {
        self.expect_dead(&id).await;
        self.dead.push(id);
        if self.dead.len() > DEAD_KEPT {
            self.dead.remove(0);
        }
    }

    async fn visit_dead(&mut self, cookie: &str) {
        if self.dead.is_empty() {
            return self.read(cookie).await;
        }
        let id = self.dead[self.rng.below(self.dead.len())].clone();
        self.expect_dead(&id).await;
    }

    /// A dead id must load nothing, and get no cookie back.
    async fn expect_dead(&mut self, id: &str) {
        let Some(answer) = self.client.call(Kind::Zombie, "/dump", Some(id)).await else {
            return;
        };
        if !answer.body.is_empty() {
            let data = answer.body.trim_end().replace('\n', " ");
            let detail = format!("an id that was logged out or cycled away still loads: {data}");
            self.violation(Problem::Resurrected, detail);
        }
        if answer.cookie != CookieChange::Kept {
            let detail = format!("a read with a dead id answered {:?}", answer.cookie);
            self.violation(Problem::Cookie, detail);
        }
    }

    /// With the traffic over and the incrementers stopped: the final count
    /// of the live session, and every dead id once more.
    async fn finish(&mut self) {
        let _quiet = Arc::clone(&self.current).write_owned().await;
        if let Some(cookie) = self.cookie.clone() {
            self.final_count(&cookie).await;
        }
        for id in self.dead.clone() {
            self.expect_dead(&id).await;
        }
    }
}
