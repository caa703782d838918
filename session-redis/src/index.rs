//! The index of a user's sessions: a sorted set under
//! `<prefix>user:<user hex>` ([`index_key`](crate::layout::index_key)),
//! each member a session key's hex, scored by that session's expiry in
//! Unix milliseconds (the earlier of its deadlines when last written, an
//! upper bound of when it dies).
//!
//! Every index operation first drops the members whose score passed
//! (they are dead whatever their key holds), then sets the index's TTL to
//! the time to its top score: relative, like every TTL here, so that the
//! index lives exactly as long as its longest-lived member can, and never
//! longer. A write that extends a bound session extends its member
//! (`ZADD XX GT`: never re-adding one a revoke took out, never moving one
//! back) and so the index's TTL.

use std::sync::LazyLock;

use redis::Script;

use crate::scripts::script;

/// The index helpers, prepended to every script after the shared ones.
pub(crate) const INDEX_HELPERS: &str = r#"
-- Drops members past their score and sets the TTL to the top score; an
-- index left empty is gone (Redis deletes empty sets).
local function index_settle(idx, now)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if #top == 0 then return end
  local ttl = tonumber(top[2]) - now
  if ttl < 1 then ttl = 1 end
  if ttl > 1e15 then ttl = 1e15 end
  redis.call('PEXPIRE', idx, string.format('%.0f', ttl))
end

-- A session joins the index (a login).
local function index_add(idx, key_hex, score, now)
  redis.call('ZADD', idx, score, key_hex)
  index_settle(idx, now)
end

-- A write moved a member's expiry: only later, only if still a member.
local function index_extend(idx, key_hex, score, now)
  redis.call('ZADD', idx, 'XX', 'GT', score, key_hex)
  index_settle(idx, now)
end

local function index_remove(idx, key_hex, now)
  redis.call('ZREM', idx, key_hex)
  index_settle(idx, now)
end

-- Whether the index, pruned at `now`, holds exactly the sessions the
-- caller read: KEYS[from] to KEYS[from + count - 1], and `except` (a key's
-- hex, or nil) if it is there. The caller chose what to end from what it
-- read; if that changed, it reads again (answer 'retry').
local function same_members(idx, now, from, count, except)
  redis.call('ZREMRANGEBYSCORE', idx, '-inf', now)
  local held = {}
  local size = 0
  for _, key_hex in ipairs(redis.call('ZRANGE', idx, 0, -1)) do
    if key_hex ~= except then held[key_hex] = true; size = size + 1 end
  end
  if size ~= count then return false end
  for j = from, from + count - 1 do
    if not held[member(KEYS[j])] then return false end
  end
  return true
end

-- What the caller saw of a member: its last seen if it is a live session
-- of `user`, '-' otherwise.
local function observed(key, user, now)
  local meta = stored_meta(key)
  if meta and meta.u == user and live(meta, now) then return meta.s end
  return '-'
end
"#;

/// Redis Cluster's index steps, each on the index's own node. KEYS: the
/// index. ARGV: the step (`add`, `extend`, `remove`), now, the session
/// key's hex, its score.
const INDEX_STEP: &str = r#"
local idx, step, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
if step == 'add' then index_add(idx, ARGV[3], ARGV[4], now)
elseif step == 'extend' then index_extend(idx, ARGV[3], ARGV[4], now)
else index_remove(idx, ARGV[3], now) end
return {'indexed'}
"#;

/// `revoke` on one node, once the caller read the index. KEYS: the index,
/// then every member it read. ARGV: now, the user's hex, then per member
/// `1` if the revoke selects it. Ends the selected sessions of the user and
/// takes them out of the index; `ended <count of live ones>`.
const REVOKE: &str = r#"
local idx, now, user = KEYS[1], tonumber(ARGV[1]), ARGV[2]
if not same_members(idx, now, 2, #KEYS - 1, nil) then return {'retry'} end
local ended = 0
for j = 2, #KEYS do
  if ARGV[j + 1] == '1' then
    local meta = stored_meta(KEYS[j])
    if meta and meta.u == user then
      if live(meta, now) then ended = ended + 1 end
      redis.call('DEL', KEYS[j])
    end
    redis.call('ZREM', idx, member(KEYS[j]))
  end
end
index_settle(idx, now)
return {'ended', tostring(ended)}
"#;

pub(crate) static INDEX_STEP_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(INDEX_STEP));
pub(crate) static REVOKE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(REVOKE));
