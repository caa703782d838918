//! The short scripts of the plain paths: a `create` onto a free key, and
//! an `update_from` whose loaded record is still what is stored. Each does
//! one check and one write, and answers `stale` without writing when the
//! check fails, so that the caller runs the full script of
//! [`scripts`](crate::scripts), with the same write token, instead.
//!
//! Why they are cheaper than the full scripts: those read the whole hash
//! and parse it in Lua, recompute the data's size and define every shared
//! helper on each call; these read at most two fields, and the caller
//! computes in Rust what the full scripts compute on the server (the
//! metadata to write, the size, the conditions), from the record it
//! loaded. That is sound only while the stored metadata is byte for byte
//! the loaded one: every write of the data moves the version, so the same
//! metadata (creation time, deadlines, version, binding) means the same
//! data. A sealed record (`S;...`), a tombstone (`R`), a deleted or
//! re-created key all fail the check and go the full way, so a logged-out
//! session is never written here.
//!
//! They write what the full scripts write, field for field (metadata,
//! remembered writes, values), so every read path reads them as before.
//! They only ever touch the key they are passed, so they run on Redis
//! Cluster as they do on one node.

use std::sync::LazyLock;

use redis::{Script, ScriptInvocation};
use session_core::{ChangeSet, Deadlines, Record, Timestamp};

use crate::invocation::{MAX_TTL_MS, millis};
use crate::layout::{LIFETIME, data_field, each_field, encode_meta};
use crate::scripts::{MEMO_ENTRY, TOKENS_KEPT};

/// The most fields a short script sets or deletes: `unpack` puts every
/// one on Lua's stack, which holds about 8 000. A larger write takes the
/// full script, which writes in chunks.
const MOST_FIELDS: usize = 1_000;

/// `create` onto a free key. KEYS: the session. ARGV: TTL, then the
/// field/value pairs (metadata, remembered write, values). Any key there,
/// live, expired, sealed or a tombstone, answers `stale`: the full script
/// tells those apart.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'stale'} end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {'created'}
";

/// `update_from` of a record still as loaded. KEYS: the session. ARGV:
/// the metadata loaded, the metadata to write, its version, this write's
/// entry of field `t`, TTL, how many fields to delete, those fields, then
/// the field/value pairs to set. The newest entries already in `t` are
/// kept after this one, as the full scripts keep them (a cut at a fixed
/// width: `KEPT` is the bytes of `TOKENS_KEPT - 1` entries), so a resend
/// of an earlier write is still recognised.
const UPDATE: &str = r"
local key = KEYS[1]
local stored = redis.pcall('HMGET', key, 'm', 't')
if stored['err'] or stored[1] ~= ARGV[1] then return {'stale'} end
local memo = ARGV[4] .. string.sub(stored[2] or '', 1, KEPT)
local removals = tonumber(ARGV[6])
if removals > 0 then redis.call('HDEL', key, unpack(ARGV, 7, 6 + removals)) end
redis.call('HSET', key, 'm', ARGV[2], 't', memo, unpack(ARGV, 7 + removals))
redis.call('PEXPIRE', key, ARGV[5])
return {'updated', ARGV[3]}
";

fn script(body: &str) -> Script {
    let kept = (TOKENS_KEPT - 1) * MEMO_ENTRY;
    Script::new(&format!("local KEPT = {kept}\n{body}"))
}

static CREATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CREATE));
static UPDATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(UPDATE));

/// The entry of field `t` that remembers the write `token` wrote
/// `version` (the full scripts' `remembered`): [`MEMO_ENTRY`] bytes.
fn memo_entry(token: &str, version: u64) -> String {
    format!("{token}{version:020}")
}

/// The short `create` of `record` under the Redis key `key` with the
/// write `token`, or `None` where only the full script will do: a bound
/// record (its index is written with it) or one with too many values.
/// The caller has checked the size.
pub(crate) fn create(
    key: String,
    record: &Record,
    token: &str,
    now: Timestamp,
) -> Option<ScriptInvocation<'static>> {
    if record.account.is_some() || record.data.len() > MOST_FIELDS {
        return None;
    }
    let mut invocation = CREATE_SCRIPT.prepare_invoke();
    invocation
        .key(key)
        .arg(millis(record.deadlines.native_ttl(now)).min(MAX_TTL_MS))
        .arg("m")
        .arg(encode_meta(record))
        .arg("t")
        .arg(memo_entry(token, record.version));
    each_field(record, |field, value| {
        invocation.arg(field).arg(value);
    });
    Some(invocation)
}

/// The short `update_from` of the Redis key `key` with the write `token`,
/// or `None` where the outcome may be anything but `Updated` or the write
/// needs more than this script does, for the full script to decide: a
/// bound `loaded` (its index is extended with it), one not live at `now`,
/// changes whose conditions fail on it or that make its data over
/// `limit`, too many fields. What it writes is `loaded` with the changes
/// applied as [`Record::updated`] applies them, the rule the full script
/// follows.
pub(crate) fn update(
    key: String,
    loaded: &Record,
    changes: &ChangeSet,
    (deadlines, now): (Deadlines, Timestamp),
    (token, limit): (&str, usize),
) -> Option<ScriptInvocation<'static>> {
    if loaded.account.is_some() {
        return None;
    }
    // Those present only: deleting absent fields would cost Redis for
    // nothing. A cleared set deletes every loaded value.
    let mut removals: Vec<String> = loaded
        .data
        .iter()
        .map(|(name, _)| name)
        .filter(|name| changes.is_cleared() || changes.removals().any(|gone| gone == *name))
        .map(data_field)
        .collect();
    let mut inserts: Vec<(String, &[u8])> = changes
        .inserts()
        .map(|(name, value)| (data_field(name), value.as_bytes()))
        .collect();
    // The lifetime field as the full scripts' `apply_changes` writes it.
    let chosen = changes.lifetime().filter(|lifetime| !lifetime.is_default());
    let chosen = chosen.map(|lifetime| lifetime.encode());
    if let Some(bytes) = &chosen {
        inserts.push((LIFETIME.to_owned(), bytes));
    } else if changes.lifetime().is_some() && !loaded.lifetime.is_default() {
        removals.push(LIFETIME.to_owned());
    }
    if removals.len() + inserts.len() > MOST_FIELDS {
        return None;
    }
    // Gone or Conflict on the loaded record are no outcomes to report:
    // what is stored may differ. The full script decides them.
    let next = loaded.clone().updated(changes, deadlines, now).ok()?;
    if next.data.size() > limit {
        return None;
    }
    let mut invocation = UPDATE_SCRIPT.prepare_invoke();
    invocation
        .key(key)
        .arg(encode_meta(loaded))
        .arg(encode_meta(&next))
        .arg(next.version)
        .arg(memo_entry(token, next.version))
        .arg(millis(next.deadlines.native_ttl(now)).min(MAX_TTL_MS))
        .arg(removals.len())
        .arg(removals);
    for (field, value) in inserts {
        invocation.arg(field).arg(value);
    }
    Some(invocation)
}

#[cfg(test)]
mod tests {
    use session_core::{SessionData, Value};

    use super::*;

    fn at(millis: u64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    fn loaded() -> Record {
        let mut data = SessionData::new();
        data.insert_value("n".to_owned(), Value::from_bytes(b"1".to_vec()));
        Record::from_parts(data, at(1), Deadlines::new(at(50), at(90)), 4)
    }

    #[test]
    fn only_what_the_short_script_can_decide_goes_short() {
        let now = at(10);
        let deadlines = Deadlines::new(at(60), at(100));
        let mut changes = ChangeSet::new();
        changes.insert("n", Value::from_bytes(b"2".to_vec()));
        let short = |record: &Record, changes: &ChangeSet, limit| {
            update(
                "k".to_owned(),
                record,
                changes,
                (deadlines, now),
                ("t", limit),
            )
            .is_some()
        };
        assert!(short(&loaded(), &changes, 64));
        assert!(!short(&loaded(), &changes, 1), "over the limit");
        let dead = Record::from_parts(SessionData::new(), at(1), Deadlines::new(at(5), at(9)), 4);
        assert!(!short(&dead, &changes, 64), "expired when loaded");
        let mut conditioned = changes.clone();
        conditioned.require("n", Some(Value::from_bytes(b"9".to_vec())));
        assert!(!short(&loaded(), &conditioned, 64), "a failing condition");
    }

    #[test]
    fn a_memo_entry_has_the_width_the_scripts_cut_at() {
        let token = crate::write_token::fresh().unwrap();
        for version in [1, 42, u64::MAX] {
            let entry = memo_entry(&token, version);
            assert_eq!(entry.len(), MEMO_ENTRY);
            assert_eq!(entry[16..].parse::<u64>().unwrap(), version);
        }
    }
}
