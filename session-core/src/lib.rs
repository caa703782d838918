//! The session storage contract.
//!
//! A browser gets a cookie holding a random [`SessionId`]; storage keeps the
//! session under the id's hash, a [`SessionKey`], so a dump of the store
//! holds no usable cookie. A session is a [`Record`]: its [`SessionData`]
//! (named values, each encoded on its own with MessagePack), when it was
//! created, its [`Deadlines`] (idle and absolute) and a version.
//!
//! Requests do not write snapshots back. Each records a [`ChangeSet`] (keys
//! set, keys removed, cleared, optional conditions) and storage applies it
//! atomically to the record as it is at that moment, so concurrent requests
//! to one session keep each other's changes, and a session that was logged
//! out stays logged out.
//!
//! A login binds a session to a user ([`Account`]: the [`UserKey`], a
//! hash of the application's user id, and [`Device`] facts); a store with
//! accounts keeps an index of each user's sessions, so they can be listed
//! ([`Listed`], each named by a [`SessionHandle`] that is never an id) and
//! revoked ([`Revoke`]) on every backend.
//!
//! [`SessionStorage`] is the trait backends implement; its documentation
//! lists every operation and rule. The `conformance` feature adds
//! [`conformance`], the suite that checks an implementation against all of
//! them, with a complete custom store as its example.
//!
//! This crate has no HTTP and no runtime of its own: the HTTP layer and the
//! backends build on it.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod account;
mod change;
mod clock;
mod codec;
mod data;
mod error;
mod expiry;
mod handle;
mod id;
mod key_hasher;
mod lifetime;
mod listing;
mod login;
mod nesting;
mod record;
mod stamp;
pub mod storage;

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;

/// Re-exported so a custom store can implement [`SessionStorage`] without
/// depending on `async-trait` itself.
pub use async_trait::async_trait;

pub use account::{
    Account, Device, MAX_DEVICE_FACTS, MAX_DEVICE_NAME_BYTES, MAX_DEVICE_VALUE_BYTES, UserKey,
};
pub use change::{ChangeSet, Conflict};
pub use clock::Clock;
pub use codec::FORMAT_V1;
pub use data::{MAX_VALUE_DEPTH, SessionData, Value};
pub use error::{BoxError, Error};
pub use expiry::{Deadlines, EXPIRY_SLACK, Timestamp};
pub use handle::SessionHandle;
pub use id::{RandomnessError, SessionId, SessionKey};
pub use key_hasher::{KeyHasher, PrefixHasher};
pub use lifetime::Lifetime;
pub use listing::{Listed, Revoke};
pub use login::Login;
pub use record::{DEFAULT_MAX_RECORD_BYTES, Record};
pub use stamp::Stamp;
pub use storage::{
    Capabilities, CreateOutcome, CycleOutcome, LoginOutcome, RotateOutcome, SessionStorage,
    TouchOutcome, UpdateOutcome,
};
