//! Each script with its arguments, in the order its `ARGV` reads them (see
//! [`scripts`](crate::scripts)).

use std::time::Duration;

use redis::ScriptInvocation;
use session_core::{ChangeSet, Deadlines, EXPIRY_SLACK, Error, Record, Timestamp, UserKey};

use crate::layout::{data_field, each_field, encode_meta, lifetime_change};
use crate::scripts::{
    CREATE_SCRIPT, CYCLE_SCRIPT, DELETE_SCRIPT, ROTATE_SCRIPT, TOUCH_SCRIPT, UPDATE_SCRIPT,
};
use crate::write_token;

/// How a write of a possibly bound record keeps its user's index (the
/// scripts' `index_of`).
#[derive(Clone, Debug)]
pub(crate) enum Index {
    /// Nothing arranged: a bound record answers `bound <user>`.
    Unknown,
    /// One node: the index, declared as the script's last key.
    Declared(String),
    /// Redis Cluster: the caller extended this user's index already.
    Extended(UserKey),
}

impl Index {
    /// Declares the index key, if any, and passes the mode.
    fn push(&self, invocation: &mut ScriptInvocation<'_>) {
        match self {
            Self::Unknown => invocation.arg("-"),
            Self::Declared(key) => invocation.key(key).arg("="),
            Self::Extended(user) => invocation.arg(user.to_string()),
        };
    }
}

/// The longest TTL written, in milliseconds (about 31 000 years): `PEXPIRE`
/// refuses times that overflow once added to the clock.
pub(crate) const MAX_TTL_MS: u64 = 1_000_000_000_000_000;

/// `create` of `record` under the Redis key `key` with the write `token`;
/// `index` is declared for a bound record on one node, else `None`.
pub(crate) fn create(
    key: String,
    record: &Record,
    (index, token): (Option<String>, &str),
    now: Timestamp,
) -> ScriptInvocation<'static> {
    let mut invocation = CREATE_SCRIPT.prepare_invoke();
    invocation
        .key(key)
        .arg(token)
        .arg(now.as_unix_millis())
        .arg(encode_meta(record))
        .arg(millis(record.deadlines.native_ttl(now)).min(MAX_TTL_MS));
    match index {
        Some(index) => invocation.key(index).arg("="),
        None => invocation.arg("-"),
    };
    each_field(record, |field, value| {
        invocation.arg(field).arg(value);
    });
    invocation
}

/// `update` of the Redis key `key` with the write `token`; `limit` is the
/// largest data accepted.
pub(crate) fn update(
    (key, token): (String, &str),
    changes: &ChangeSet,
    (deadlines, index): (Deadlines, &Index),
    now: Timestamp,
    limit: usize,
) -> ScriptInvocation<'static> {
    let mut invocation = UPDATE_SCRIPT.prepare_invoke();
    invocation.key(key);
    push_write(&mut invocation, token, deadlines, now, limit);
    index.push(&mut invocation);
    push_changes(&mut invocation, changes);
    invocation
}

/// `touch` of the Redis key `key`.
pub(crate) fn touch(
    key: String,
    idle_deadline: Timestamp,
    index: &Index,
    now: Timestamp,
) -> ScriptInvocation<'static> {
    let mut invocation = TOUCH_SCRIPT.prepare_invoke();
    invocation
        .key(key)
        .arg(now.as_unix_millis())
        .arg(idle_deadline.as_unix_millis())
        .arg(millis(EXPIRY_SLACK));
    index.push(&mut invocation);
    invocation
}

/// `delete` of the Redis key `key`: `steps` deletes a bound record and
/// names its user for the caller to take it out of the index.
pub(crate) fn delete(key: String, index: &Index, steps: bool) -> ScriptInvocation<'static> {
    let mut invocation = DELETE_SCRIPT.prepare_invoke();
    invocation.key(key);
    if steps {
        invocation.arg("steps");
    } else {
        index.push(&mut invocation);
    }
    invocation.arg(Timestamp::now().as_unix_millis());
    invocation
}

/// `rotate` on one node, from the Redis key `old` to `new`, leaving at
/// `old` the forward `forward` (its metadata) until `grace_end`.
pub(crate) fn rotate(
    (old, new): (String, String),
    (forward, grace_end): (String, Timestamp),
    index: &Index,
    now: Timestamp,
) -> ScriptInvocation<'static> {
    let ttl = millis(Deadlines::new(grace_end, grace_end).native_ttl(now)).min(MAX_TTL_MS);
    let mut invocation = ROTATE_SCRIPT.prepare_invoke();
    invocation
        .key(old)
        .key(new)
        .arg(now.as_unix_millis())
        .arg(forward)
        .arg(ttl);
    index.push(&mut invocation);
    invocation
}

/// `cycle` on one node, from the Redis key `old` to `new`.
pub(crate) fn cycle(
    (old, new): (String, String),
    changes: &ChangeSet,
    (deadlines, index): (Deadlines, &Index),
    now: Timestamp,
    limit: usize,
) -> Result<ScriptInvocation<'static>, Error> {
    let mut invocation = CYCLE_SCRIPT.prepare_invoke();
    invocation.key(old).key(new);
    push_write(
        &mut invocation,
        &write_token::fresh()?,
        deadlines,
        now,
        limit,
    );
    index.push(&mut invocation);
    push_changes(&mut invocation, changes);
    Ok(invocation)
}

/// The arguments `update`, `cycle` and `login` start with: the write
/// token, now, the deadlines, the size limit, the expiry slack.
pub(crate) fn push_write(
    invocation: &mut ScriptInvocation<'_>,
    token: &str,
    deadlines: Deadlines,
    now: Timestamp,
    limit: usize,
) {
    invocation
        .arg(token)
        .arg(now.as_unix_millis())
        .arg(deadlines.idle().as_unix_millis())
        .arg(deadlines.absolute().as_unix_millis())
        .arg(limit)
        .arg(millis(EXPIRY_SLACK));
}

/// Appends a change set to a script's arguments: cleared flag, removed
/// fields, inserted field/value pairs, conditions (field, present, value),
/// the lifetime ([`lifetime_change`]).
pub(crate) fn push_changes(invocation: &mut ScriptInvocation<'_>, changes: &ChangeSet) {
    invocation.arg(if changes.is_cleared() { "1" } else { "0" });
    let removals: Vec<&str> = changes.removals().collect();
    invocation.arg(removals.len());
    for name in removals {
        invocation.arg(data_field(name));
    }
    let inserts: Vec<_> = changes.inserts().collect();
    invocation.arg(inserts.len());
    for (name, value) in inserts {
        invocation.arg(data_field(name)).arg(value.as_bytes());
    }
    let conditions: Vec<_> = changes.conditions().collect();
    invocation.arg(conditions.len());
    for (name, expected) in conditions {
        invocation
            .arg(data_field(name))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.map_or(&[][..], |value| value.as_bytes()));
    }
    invocation.arg(lifetime_change(changes));
}

/// Whole milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
