//! A `SessionLayer` over `MemoryStorage`, driven one request at a time on a
//! current-thread runtime, the way a server would drive it.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header::COOKIE;
use http::{HeaderValue, Request, Response, StatusCode};
use session_core::{Deadlines, Record, SessionData, SessionId, SessionStorage, Timestamp};
use session_http::memory::MemoryStorage;
use session_http::{Clock, SessionConfig, SessionConfigBuilder, SessionLayer, session_data};
use tokio::runtime::Runtime;
use tower::{Layer, ServiceExt, service_fn};

/// The time every request sees. A fixed clock makes an input's answer the
/// same whenever it runs: nothing expires and nothing is touched.
pub const NOW: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

/// The id of the session planted in storage before every input, so that
/// lookups of a real, live session are fuzzed too.
pub const SEED_ID: &str = "ZnV6ei1zZWVkLXNlc3Npbw";

/// What the handler does with its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `get::<i64>("n")`: loads the session, writes nothing.
    Read,
    /// `insert("n", 1)`: creates a session or updates the live one.
    Write,
    /// `destroy()`: deletes the session and removes the cookie.
    Destroy,
}

/// The storage and runtime, made once per fuzzing process.
pub struct Fixture {
    runtime: Runtime,
    storage: Arc<MemoryStorage>,
}

impl Fixture {
    /// The process's fixture.
    pub fn get() -> &'static Self {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(|| Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a current-thread runtime"),
            storage: Arc::new(MemoryStorage::new()),
        })
    }

    /// Sends one request with `cookies` as its `Cookie` headers through a
    /// layer configured with `config`; the handler does `action`.
    pub fn send(
        &self,
        config: SessionConfig,
        action: Action,
        cookies: &[HeaderValue],
    ) -> Response<()> {
        let mut request = Request::new(());
        for cookie in cookies {
            request.headers_mut().append(COOKIE, cookie.clone());
        }
        request.extensions_mut().insert(action);
        let storage: Arc<dyn SessionStorage> = self.storage.clone();
        let service = SessionLayer::from_arc(storage)
            .with_config(config)
            .layer(service_fn(handle));
        self.runtime
            .block_on(service.oneshot(request))
            .unwrap_or_else(|never| match never {})
    }

    /// Plants the [`SEED_ID`] session holding `n = 1`, unless it is still
    /// there (an earlier input may have destroyed it).
    pub fn plant_seed(&self) {
        let mut data = SessionData::new();
        data.insert("n", &1_i64).expect("an i64 encodes");
        let deadlines = Deadlines::new(
            NOW.saturating_add(Duration::from_secs(60 * 60)),
            NOW.saturating_add(Duration::from_secs(24 * 60 * 60)),
        );
        let record = Record::new(data, NOW, deadlines);
        // `Collision` means the seed is still live, which is as good.
        let _created_or_live = self
            .runtime
            .block_on(self.storage.create(&seed_id().key(), &record, NOW))
            .expect("memory storage creates");
    }

    /// Deletes the session `id`, so that sessions created by inputs do not
    /// pile up (and crowd the seed out of the LRU) over millions of runs.
    pub fn delete(&self, id: &SessionId) {
        self.runtime
            .block_on(self.storage.delete(&id.key()))
            .expect("memory storage deletes");
    }
}

/// [`SEED_ID`], parsed.
pub fn seed_id() -> SessionId {
    SessionId::parse(SEED_ID).expect("SEED_ID is canonical")
}

/// The base every fuzzed configuration starts from: the fixed clock, and a
/// store timeout no loaded machine reaches (a timeout would answer 503).
pub fn config_builder() -> SessionConfigBuilder {
    SessionConfig::builder()
        .clock(Clock::from_fn(|| NOW))
        .store_timeout(Duration::from_secs(60 * 60))
}

/// Does the request's [`Action`]; answers 500 if the session refuses, so
/// that any session error shows as a status other than 200.
async fn handle(request: Request<()>) -> Result<Response<()>, Infallible> {
    let session = session_data(&request).expect("the layer gives every request a session");
    let action = request.extensions().get::<Action>().copied();
    let done = match action.expect("send sets the action") {
        Action::Read => session.get::<i64>("n").await.map(drop),
        Action::Write => session.insert("n", &1_i64).await,
        Action::Destroy => session.destroy().await,
    };
    let mut response = Response::new(());
    if done.is_err() {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    Ok(response)
}
