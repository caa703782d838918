//! The login script of one node: the whole login in one atomic step.

use std::sync::LazyLock;

use redis::Script;

use crate::scripts::script;

/// `login` on one node. KEYS: new, the user's index, then the old key if
/// ARGV[8] is `1`, the old record's user's index if ARGV[9] is `1`, then
/// the user's other sessions as the caller read them (with a limit).
/// ARGV: token, now, idle, absolute, size limit, slack, the binding's
/// metadata tail, ARGV[8], ARGV[9], the number of others read (`-`
/// without a limit), per other its last seen as read (`-`: not a live
/// session of the user) and `1` if the limit ends it, then the changes.
///
/// Answers `bound <user>` (nothing written) when the old record is bound
/// to a user whose index was not declared, `retry` when the user's
/// sessions changed since the caller read them, else as `cycle` does, with
/// `logged_in <revoked>` for `cycled`.
const LOGIN: &str = r#"
local new, idx, token, now = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local at = 3
local old, old_idx
if ARGV[8] == '1' then old = KEYS[at]; at = at + 1 end
if ARGV[9] == '1' then old_idx = KEYS[at]; at = at + 1 end
local user = member(idx)

-- The record the login starts from: the old one, or empty data.
local meta, fields = nil, {}
if old then
  meta = stored(old)
  if meta == false then return {'decode'} end
  if not meta or not live(meta, now) then
    local moved = stored(new)
    if moved and written(moved.fields, token) then return {'logged_in', '0'} end
    return {'gone'}
  end
  fields = meta.fields
else
  local moved = stored(new)
  if moved and written(moved.fields, token) then return {'logged_in', '0'} end
end

-- The limit's choice, checked against what is stored now.
local others, arg = 0, 11
if ARGV[10] ~= '-' then others = tonumber(ARGV[10]); arg = 11 + 2 * others end
local changes = read_changes(arg)
local conflict = check_conditions(fields, changes.conditions)
if conflict then return conflict end
local taken = stored_meta(new)
if taken == false then return {'decode'} end
if taken and live(taken, now) then return {'collision'} end
local size = size_after(fields, changes)
if size > tonumber(ARGV[5]) then return {'too_large', tostring(size)} end
local from_idx = nil
if meta and meta.u then
  if meta.u == user then from_idx = idx
  elseif old_idx and member(old_idx) == meta.u then from_idx = old_idx
  else return {'bound', meta.u, meta.a} end
end
if ARGV[10] ~= '-' then
  local except = old and member(old)
  if not same_members(idx, now, at, others, except) then return {'retry'} end
  for j = 0, others - 1 do
    if observed(KEYS[at + j], user, now) ~= ARGV[11 + 2 * j] then return {'retry'} end
  end
end

-- The move, the binding, the index.
if old then redis.call('RENAME', old, new) else redis.call('DEL', new) end
local version = '1'
if meta then version = next_version(meta) end
local moved = encode_meta(ARGV[2], ARGV[3], ARGV[4], version, ARGV[7])
apply_changes(new, fields, changes, moved, remembered(fields, token, version))
-- Created now: its key too.
redis.call('HDEL', new, 'r')
expire(new, ARGV[3], ARGV[4], now, ARGV[6])
if from_idx then index_remove(from_idx, member(old), now) end
local revoked = 0
for j = 0, others - 1 do
  if ARGV[12 + 2 * j] == '1' then
    redis.call('DEL', KEYS[at + j])
    redis.call('ZREM', idx, member(KEYS[at + j]))
    revoked = revoked + 1
  end
end
index_add(idx, member(new), earlier(ARGV[3], ARGV[4]), now)
return {'logged_in', tostring(revoked)}
"#;

pub(crate) static LOGIN_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(LOGIN));
