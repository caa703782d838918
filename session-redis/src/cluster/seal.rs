//! The scripts only Redis Cluster runs: its `cycle` seals the old record
//! first, and unseals it when the move does not happen (see
//! [`cycle`](super::cycle)).

use std::sync::LazyLock;

use redis::{Cmd, Script, ScriptInvocation};
use std::time::Duration;

use session_core::{ChangeSet, Timestamp};

use crate::invocation::{MAX_TTL_MS, millis, push_changes};
use crate::scripts::script;

/// First step of `cycle` on a cluster, where old and new may live on
/// different nodes: checks and seals the old record so that nothing else
/// writes to it, and returns its metadata and data. KEYS: old. ARGV: the
/// seal (`<token>;<new key hex>`: a revoke that meets the sealed record
/// ends the new key too), now, limit, changes (from index 4).
const SEAL: &str = r#"
-- The answer of a seal: the metadata it sealed, then the data and the
-- lifetime.
local function sealed(raw, fields)
  local answer = {'sealed', raw}
  for field, value in pairs(fields) do
    if string.sub(field, 1, 2) == 'd:' or field == 'l' then
      table.insert(answer, field); table.insert(answer, value)
    end
  end
  return answer
end

local key, token, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local seal = 'S;' .. token .. ';'
local meta, _, resealed = stored(key)
if meta == false then return {'decode'} end
if resealed and string.sub(resealed['m'], 1, #seal) == seal then
  return sealed(string.sub(resealed['m'], #seal + 1), resealed)
end
if not meta or not live(meta, now) then return {'gone'} end
local changes = read_changes(4)
local conflict = check_conditions(meta.fields, changes.conditions)
if conflict then return conflict end
local size = size_after(meta.fields, changes)
if size > tonumber(ARGV[3]) then return {'too_large', tostring(size)} end
local raw = meta.fields['m']
redis.call('HSET', key, 'm', seal .. raw)
return sealed(raw, meta.fields)
"#;

/// Undoes [`SEAL`] after a cluster `cycle` failed. KEYS: old. ARGV: the
/// seal's token, the metadata it sealed. Sent as a plain `EVAL`, routed by
/// its key: it runs when something already went wrong, when loading a
/// script onto every node first could fail too.
const UNSEAL: &str = r#"
if redis.call('HGET', KEYS[1], 'm') == 'S;' .. ARGV[1] .. ';' .. ARGV[2] then
  redis.call('HSET', KEYS[1], 'm', ARGV[2])
end
return {'unsealed'}
"#;

/// Replaces a record sealed by a rotation with its forward, or answers
/// `gone` if it is no longer sealed so (a logout or revoke ended it).
/// KEYS: old. ARGV: the seal, the metadata it sealed, the forward's
/// metadata, its TTL. Sent as a plain `EVAL`, as [`UNSEAL`] is; a resend
/// after it ran finds its forward and answers `forwarded` again.
const FORWARD: &str = r#"
local meta = redis.call('HGET', KEYS[1], 'm')
if meta == ARGV[3] then return {'forwarded'} end
if meta ~= 'S;' .. ARGV[1] .. ';' .. ARGV[2] then return {'gone'} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'm', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {'forwarded'}
"#;

static SEAL_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(SEAL));

/// The seal of the Redis key `key` by the write `token`; `limit` is the
/// largest data accepted.
pub(super) fn seal(
    key: String,
    token: &str,
    changes: &ChangeSet,
    now: Timestamp,
    limit: usize,
) -> ScriptInvocation<'static> {
    let mut invocation = SEAL_SCRIPT.prepare_invoke();
    invocation
        .key(key)
        .arg(token)
        .arg(now.as_unix_millis())
        .arg(limit);
    push_changes(&mut invocation, changes);
    invocation
}

/// The forward `(meta, ttl)` replacing the Redis key `key`, sealed by
/// `token` over `sealed`.
pub(super) fn forward(
    key: String,
    (token, sealed): (&str, &[u8]),
    (meta, ttl): (String, Duration),
) -> Cmd {
    let ttl = millis(ttl).min(MAX_TTL_MS);
    let mut command = redis::cmd("EVAL");
    command
        .arg(FORWARD)
        .arg(1)
        .arg(key)
        .arg(token)
        .arg(sealed)
        .arg(meta)
        .arg(ttl);
    command
}

/// The unseal of the Redis key `key`, sealed by `token` over `meta`.
pub(super) fn unseal(key: String, token: &str, meta: &[u8]) -> Cmd {
    let mut command = redis::cmd("EVAL");
    command.arg(UNSEAL).arg(1).arg(key).arg(token).arg(meta);
    command
}
