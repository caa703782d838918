//! The [`Session`] handle a handler gets, and what happens to it at the end
//! of the request. One job a file: the handle's API (`handle`), the
//! conditioned update and its retries (`update`), logins, lists and
//! revokes of a user's sessions (`account`), the session's own lifetime
//! (`lifetime`), lazy loading (`load`),
//! the request's state (`state`), the end-of-request write (`settle`),
//! what a layer's requests share (`shared`), and the queue in which they
//! take turns at writing a session (`turns`).

mod account;
mod handle;
mod lifetime;
mod load;
mod settle;
mod shared;
mod state;
mod turns;
mod update;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use session_core::SessionId;
use tokio::sync::Mutex;

pub use account::SessionInfo;
pub(crate) use settle::Finish;
pub(crate) use shared::Shared;
use state::State;

use crate::SessionError;
use crate::cookie::parse::Candidates;

/// The session of one request.
///
/// Cloning is cheap; every clone is the same session. Reads load the session
/// lazily, at most once per request: a request that never asks costs no
/// storage call at all.
///
/// | method | I/O |
/// |---|---|
/// | [`get`](Self::get), [`contains`](Self::contains), [`names`](Self::names), [`id`](Self::id) | the first call of the request loads |
/// | [`insert`](Self::insert), [`remove`](Self::remove), [`clear`](Self::clear), [`set_lifetime`](Self::set_lifetime) | load if not yet loaded; the change is written once, at the end of the request |
/// | [`lifetime`](Self::lifetime) | the first call of the request loads |
/// | [`update`](Self::update) | reads and writes now, conditioned on what it read |
/// | [`cycle_id`](Self::cycle_id), [`cycle_id_keeping`](Self::cycle_id_keeping) | now |
/// | [`destroy`](Self::destroy) | now |
/// | [`login`](Self::login), [`login_keeping`](Self::login_keeping) | now |
/// | [`user`](Self::user), [`account`](Self::account) | the first call of the request loads |
/// | [`sessions`](Self::sessions) | load if not yet loaded, then one `list` |
/// | [`revoke`](Self::revoke), [`revoke_others`](Self::revoke_others), [`revoke_all`](Self::revoke_all) | now |
///
/// The account calls (login, sessions, revokes) need a store with
/// [`Capabilities::accounts`](session_core::Capabilities::accounts); on
/// any other they fail with [`SessionError::Unsupported`].
///
/// Once the response has been sent every call fails with
/// [`SessionError::Closed`], so a change made from a spawned task is never
/// silently lost.
///
/// Any storage failure (including a timeout) poisons the session for the
/// rest of the request: later calls fail with [`SessionError::Poisoned`],
/// nothing more is written, and the layer answers with its store-failure
/// response whatever the handler returns. Because loading is lazy, the
/// handler has already run by then: side effects it had before touching the
/// session have happened.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    candidates: Vec<SessionId>,
    /// Whether the request carried a cookie of the session's name at all.
    had_cookie: bool,
    closed: AtomicBool,
    state: Mutex<State>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, candidates: Candidates) -> Self {
        shared.note_bad_cookies(&candidates);
        let had_cookie = candidates.any();
        Self {
            inner: Arc::new(Inner {
                shared,
                candidates: candidates.ids,
                had_cookie,
                closed: AtomicBool::new(false),
                state: Mutex::new(State::new()),
            }),
        }
    }

    fn check_open(&self) -> Result<(), SessionError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(SessionError::Closed);
        }
        Ok(())
    }

    /// Whether this session belongs to the layer sharing `shared`.
    pub(crate) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.inner.shared, shared)
    }

    /// Marks the session closed: the response is on its way.
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Session;

    fn send<T: Send>(_: T) {}

    /// Compiles only if every future a handler can hold is `Send`, as axum
    /// and multi-threaded hyper servers need. Never called: compiling is
    /// the test.
    fn every_future_is_send(session: &Session) {
        /// Neither `Send` nor `Sync`: encoded before any await.
        struct Unsync(std::cell::Cell<u8>);
        impl serde::Serialize for Unsync {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u8(self.0.get())
            }
        }
        send(session.get::<String>("k"));
        send(session.contains("k"));
        send(session.names());
        send(session.id());
        send(session.insert("k", &Unsync(std::cell::Cell::new(1))));
        send(session.remove("k"));
        send(session.clear());
        send(session.set_lifetime(session_core::Lifetime::new()));
        send(session.lifetime());
        send(session.update("k", |n: Option<u8>| n.unwrap_or(0)));
        send(session.cycle_id());
        send(session.cycle_id_keeping(&["k"]));
        send(session.destroy());
        let login = session_core::Login::new(session_core::UserKey::of("ada"));
        send(session.login(&login));
        send(session.login_keeping(&login, &["k"]));
        send(session.user());
        send(session.account());
        send(session.sessions());
        let handle =
            session_core::SessionHandle::of(&session_core::SessionId::generate().unwrap().key());
        send(session.revoke(handle));
        send(session.revoke_others());
        send(session.revoke_all());
    }

    #[test]
    fn session_is_a_shareable_handle() {
        fn shareable<T: Clone + Send + Sync + 'static>() {}
        shareable::<Session>();
        let _ = every_future_is_send;
    }
}
