//! The names of the steps of Redis Cluster's multi-step operations, in
//! the order a login and a revoke run them: what a test's
//! `StepHook` (feature `test-util`) fails or pauses.
#![cfg_attr(not(feature = "cluster"), allow(dead_code))]

/// Sealing the old record.
pub const SEAL: &str = "seal";
/// Adding the new key to its user's index.
pub const INDEX_ADD: &str = "index_add";
/// Creating the new record.
pub const CREATE: &str = "create";
/// Offering the outcome to the caller.
pub const OFFER: &str = "offer";
/// Deleting the old record and taking it out of its index.
pub const CLEANUP: &str = "cleanup";
/// A revoke reading the user's index.
pub const REVOKE_READ: &str = "revoke_read";
/// A revoke ending one member on its node.
pub const REVOKE_MEMBER: &str = "revoke_member";
/// A revoke taking an ended member out of the index.
pub const REVOKE_UNINDEX: &str = "revoke_unindex";
