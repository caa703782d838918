//! Each script with its arguments, in the order its `ARGV` reads them (see
//! [`scripts`](crate::scripts)).

use std::time::Duration;

use redis::ScriptInvocation;
use session_core::{ChangeSet, Deadlines, EXPIRY_SLACK, Error, Record, Timestamp};

use crate::layout::{data_field, encode_meta};
use crate::scripts::{CREATE_SCRIPT, CYCLE_SCRIPT, TOUCH_SCRIPT, UPDATE_SCRIPT};
use crate::write_token;

/// The longest TTL written, in milliseconds (about 31 000 years): `PEXPIRE`
/// refuses times that overflow once added to the clock.
const MAX_TTL_MS: u64 = 1_000_000_000_000_000;

/// `create` of `record` under the Redis key `key`.
pub(crate) fn create(
    key: String,
    record: &Record,
    now: Timestamp,
) -> Result<ScriptInvocation<'static>, Error> {
    let mut invocation = CREATE_SCRIPT.prepare_invoke();
    invocation
        .key(key)
        .arg(write_token::fresh()?)
        .arg(now.as_unix_millis())
        .arg(encode_meta(record))
        .arg(millis(record.deadlines.native_ttl(now)).min(MAX_TTL_MS));
    for (name, value) in record.data.iter() {
        invocation.arg(data_field(name)).arg(value.as_bytes());
    }
    Ok(invocation)
}

/// `update` of the Redis key `key`; `limit` is the largest data accepted.
pub(crate) fn update(
    key: String,
    changes: &ChangeSet,
    deadlines: Deadlines,
    now: Timestamp,
    limit: usize,
) -> Result<ScriptInvocation<'static>, Error> {
    let mut invocation = UPDATE_SCRIPT.prepare_invoke();
    invocation.key(key);
    push_write(&mut invocation, changes, deadlines, now, limit)?;
    Ok(invocation)
}

/// `touch` of the Redis key `key`.
pub(crate) fn touch(
    key: String,
    idle_deadline: Timestamp,
    now: Timestamp,
) -> ScriptInvocation<'static> {
    let mut invocation = TOUCH_SCRIPT.prepare_invoke();
    invocation
        .key(key)
        .arg(now.as_unix_millis())
        .arg(idle_deadline.as_unix_millis())
        .arg(millis(EXPIRY_SLACK));
    invocation
}

/// `cycle` on one node, from the Redis key `old` to `new`.
pub(crate) fn cycle(
    (old, new): (String, String),
    changes: &ChangeSet,
    deadlines: Deadlines,
    now: Timestamp,
    limit: usize,
) -> Result<ScriptInvocation<'static>, Error> {
    let mut invocation = CYCLE_SCRIPT.prepare_invoke();
    invocation.key(old).key(new);
    push_write(&mut invocation, changes, deadlines, now, limit)?;
    Ok(invocation)
}

/// The arguments `update` and `cycle` share: a write token, now, the
/// deadlines, the size limit, the expiry slack, then the change set.
fn push_write(
    invocation: &mut ScriptInvocation<'_>,
    changes: &ChangeSet,
    deadlines: Deadlines,
    now: Timestamp,
    limit: usize,
) -> Result<(), Error> {
    invocation
        .arg(write_token::fresh()?)
        .arg(now.as_unix_millis())
        .arg(deadlines.idle().as_unix_millis())
        .arg(deadlines.absolute().as_unix_millis())
        .arg(limit)
        .arg(millis(EXPIRY_SLACK));
    push_changes(invocation, changes);
    Ok(())
}

/// Appends a change set to a script's arguments: cleared flag, removed
/// fields, inserted field/value pairs, conditions (field, present, value).
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
}

/// Whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
