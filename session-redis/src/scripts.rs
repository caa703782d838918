//! The Lua scripts that make every write atomic on the Redis server.
//!
//! A session is one hash: field `m` holds the metadata as ASCII,
//! `1;<created>;<idle>;<absolute>;<version>` (format `1`, times in Unix
//! milliseconds), field `d:<name>` holds each encoded value, and field
//! `l`, only for a session with its own lifetime, that lifetime (its
//! versioned encoding, which the scripts copy without reading). A record
//! that a Redis Cluster `cycle` is moving has its metadata prefixed with
//! `S;<token>;` (sealed, by the write with that token): it no longer counts
//! as live.
//!
//! Exactly once: a client may send a script again after its connection
//! broke, when the first send may already have run (the cluster client
//! does so by itself). So every script that would act differently the
//! second time (`create`, `update`, `cycle`, the cluster seal) takes a
//! fresh write token as its first argument, and the record remembers the
//! tokens of its last `TOKENS_KEPT` writes, each with the version it
//! wrote, in field `t`: entries of `MEMO_ENTRY` bytes, newest first, each
//! the token (16 hex digits) then the version (20 decimal digits, zero
//! padded). Fixed widths let a write keep the newest entries by cutting
//! the field at a known length, without parsing it (what the short
//! scripts of [`fast`](crate::fast) do). Records written before `t` keep
//! theirs in field `w` (`;<token>=<version>` entries, newest first),
//! still read. A seal keeps its token in the sealed metadata, so an
//! unseal leaves the record as it was. A script that finds its own token answers what it did
//! the first time and writes nothing. `touch`, the unseal and `DEL` need no token: run twice,
//! they leave what running once leaves.
//!
//! The seal and the unseal, which only Redis Cluster runs, live with the
//! cluster's `cycle` (`cluster/seal.rs`); they share the helpers here.
//!
//! Scripts answer a flat array of strings whose first element is the
//! outcome: `created`, `collision`, `updated <version>`, `touched`,
//! `cycled`, `gone`, `decode`, `too_large <size>`, `conflict` followed by
//! `<field> <present 0|1> <value>` triples, or `sealed <meta>` followed by
//! the record's `<field> <value>` pairs; with accounts also `bound
//! <user>` (written nothing: run again with the user's index), `deleted`,
//! `revoked` (a create met a tombstone), `retry` (the user's index changed
//! since the caller read it), `logged_in <revoked>` and `ended <count>`.
//!
//! A bound record's metadata goes on with `;<user>;<last seen>;<device>`
//! (see `layout::account_tail`); the scripts move the last seen and copy
//! the rest. A tombstone's metadata is `R`. A record whose key was given
//! to it after its creation (a `cycle`, a rotation) says when in field
//! `r`. A forward, the old key a rotation leaves, is a hash whose only
//! field is `m`: `F;<new key hex>;<end of its grace window>`; it is no
//! record, and the scripts treat it as absent, but for `delete`.

use std::sync::LazyLock;

use redis::Script;

use crate::index::INDEX_HELPERS;

/// How many writes a record remembers: a resend is recognised unless this
/// many other writes to the same session landed between the first send and
/// the resend (which follows a reconnect, milliseconds later).
pub(crate) const TOKENS_KEPT: usize = 8;

/// The width of a remembered write in field `t`: a token's 16 hex digits
/// ([`write_token`](crate::write_token)) and a version's 20 digits.
pub(crate) const MEMO_ENTRY: usize = 36;

/// Shared helpers, prepended to every script.
const COMMON: &str = r#"
-- Whether `digits` is a decimal u64, as the Rust side reads them.
local function is_u64(digits)
  return #digits < 20 or (#digits == 20 and digits <= '18446744073709551615')
end

-- The metadata as a table: `c`, `i`, `a`, `v`, and for a bound record
-- `u` (user), `s` (last seen), `dv` (device, copied as it is); 'sealed',
-- 'revoked' (a tombstone), 'forward' (a rotated key), false if corrupt.
local function parse_meta(raw)
  if not raw then return nil end
  if string.sub(raw, 1, 2) == 'S;' then return 'sealed' end
  if raw == 'R' then return 'revoked' end
  if string.sub(raw, 1, 2) == 'F;' then return 'forward' end
  local f, c, i, a, v, tail = string.match(raw, '^(%d+);(%d+);(%d+);(%d+);(%d+)(.*)$')
  if f ~= '1' then return false end
  local u, s, dv
  if tail ~= '' then
    u, s, dv = string.match(tail, '^;(%x+);(%d+);([%x=,]*)$')
    if not u or #u ~= 64 or not is_u64(s) then return false end
  end
  for _, part in ipairs({c, i, a, v}) do
    if not is_u64(part) then return false end
  end
  return {c = c, i = i, a = a, v = v, u = u, s = s, dv = dv}
end

-- The stored record under `key`, read whole in one call: its metadata
-- with `fields` (name to value), nil if absent or sealed, false if corrupt
-- (not a hash, or a hash without metadata); then whether the key exists;
-- then, for a sealed record, its fields.
local function stored(key)
  local all = redis.pcall('HGETALL', key)
  if all['err'] then return false, true end
  if #all == 0 then return nil, false end
  local fields = {}
  for j = 1, #all, 2 do fields[all[j]] = all[j + 1] end
  local meta = parse_meta(fields['m'])
  if meta == nil then return false, true end
  if meta == 'sealed' then return nil, true, fields end
  if meta == 'revoked' then return nil, true, nil, true end
  if meta == 'forward' then return nil, true end
  if meta then meta.fields = fields end
  return meta, true
end

-- The version the write with `token` (ARGV[1]) wrote, if the record whose
-- fields are `fields` remembers it: then this is a resend.
local function written(fields, token)
  local memo = fields['t'] or ''
  for at = 1, #memo - MEMO_ENTRY + 1, MEMO_ENTRY do
    if string.sub(memo, at, at + 15) == token then
      return string.match(string.sub(memo, at + 16, at + MEMO_ENTRY - 1), '^0*(%d+)$')
    end
  end
  -- A record written before field `t`.
  local old = fields['w']
  if not old then return nil end
  local at = string.find(old, ';' .. token .. '=', 1, true)
  if not at then return nil end
  return string.match(old, '^%d+', at + #token + 2)
end

-- Field `t` once the write with `token` wrote `version`: its entry first,
-- then the newest of the entries kept so far.
local function remembered(fields, token, version)
  local entry = token .. string.rep('0', 20 - #version) .. version
  return entry .. string.sub(fields['t'] or '', 1, (TOKENS_KEPT - 1) * MEMO_ENTRY)
end

-- The metadata alone, for writes that change nothing else: as `stored`,
-- without reading the values.
local function stored_meta(key)
  local raw = redis.pcall('HGET', key, 'm')
  if type(raw) == 'table' and raw['err'] then return false end
  if not raw then
    if redis.call('EXISTS', key) == 1 then return false end
    return nil
  end
  local meta = parse_meta(raw)
  if meta == 'sealed' or meta == 'revoked' or meta == 'forward' then return nil end
  return meta
end

local function live(meta, now)
  return now < tonumber(meta.i) and now < tonumber(meta.a)
end

local function earlier(a, b)
  if tonumber(b) < tonumber(a) then return b end
  return a
end

-- `tail` is the binding's part (`seen_tail`), '' for an unbound record.
local function encode_meta(c, i, a, v, tail)
  return '1;' .. c .. ';' .. earlier(i, a) .. ';' .. a .. ';' .. v .. tail
end

-- The binding of `meta`, seen at `now` (a decimal string): every write
-- of a bound record moves its last seen, never back.
local function seen_tail(meta, now)
  if not meta.u then return '' end
  local s = meta.s
  if tonumber(now) > tonumber(s) then s = now end
  return ';' .. meta.u .. ';' .. s .. ';' .. meta.dv
end

-- The session key's hex, as the user's index names it.
local function member(key)
  return string.sub(key, -64)
end

-- Whether a write of the record `meta` may go ahead, and the index to
-- keep with it. `mode` says what the caller arranged: '-' nothing (a
-- bound record answers 'bound' and is written again with its index), '='
-- the index is `idx`, declared, or a user's hex: the caller (Redis
-- Cluster, where the index lives on another node) already extended that
-- user's index.
local function index_of(meta, mode, idx)
  if not meta.u then return true, nil end
  if mode == '=' and idx and member(idx) == meta.u then return true, idx end
  return mode == meta.u, nil
end

-- The version plus one, in decimal, saturating at u64::MAX: Lua's
-- numbers are doubles, exact only to 2^53.
local function next_version(meta)
  local v = meta.v
  if v == '18446744073709551615' then return v end
  local digits = {string.byte(v, 1, -1)}
  local j = #digits
  while j >= 1 and digits[j] == 57 do digits[j] = 48; j = j - 1 end
  if j == 0 then return '1' .. string.char(unpack(digits)) end
  digits[j] = digits[j] + 1
  return string.char(unpack(digits))
end

-- Native expiry: relative, the time to the earlier deadline plus slack.
local function expire(key, idle, absolute, now, slack)
  local ttl = tonumber(earlier(idle, absolute)) - now
  if ttl < 0 then ttl = 0 end
  ttl = ttl + tonumber(slack)
  if ttl > 1e15 then ttl = 1e15 end
  redis.call('PEXPIRE', key, string.format('%.0f', ttl))
end

-- Runs `command key ...` over `args` in chunks Lua's stack can take.
local function chunked(command, key, args)
  for first = 1, #args, 1000 do
    local last = math.min(first + 999, #args)
    redis.call(command, key, unpack(args, first, last))
  end
end

-- The change set in ARGV from index `at`: cleared flag, removed fields,
-- inserted field/value pairs, conditions (field, present, value), the
-- lifetime ('' unchanged, '-' the layer's defaults, else field `l`).
local function read_changes(at)
  local changes = {cleared = ARGV[at] == '1', removals = {}, inserts = {}, conditions = {}}
  at = at + 1
  local count = tonumber(ARGV[at]); at = at + 1
  for _ = 1, count do table.insert(changes.removals, ARGV[at]); at = at + 1 end
  count = tonumber(ARGV[at]); at = at + 1
  for _ = 1, count do
    table.insert(changes.inserts, ARGV[at]); table.insert(changes.inserts, ARGV[at + 1]); at = at + 2
  end
  count = tonumber(ARGV[at]); at = at + 1
  for _ = 1, count do
    table.insert(changes.conditions, {ARGV[at], ARGV[at + 1] == '1', ARGV[at + 2]}); at = at + 3
  end
  changes.lifetime = ARGV[at]
  return changes
end

-- A conflict answer if a condition does not hold, else nil.
local function check_conditions(fields, conditions)
  local holds = true
  local current = {}
  for _, condition in ipairs(conditions) do
    local value = fields[condition[1]]
    if condition[2] then
      if value ~= condition[3] then holds = false end
    elseif value then
      holds = false
    end
    table.insert(current, condition[1])
    if value then
      table.insert(current, '1'); table.insert(current, value)
    else
      table.insert(current, '0'); table.insert(current, '')
    end
  end
  if holds then return nil end
  local answer = {'conflict'}
  for _, item in ipairs(current) do table.insert(answer, item) end
  return answer
end

-- Size of the data after the changes: names and encoded values.
local function size_after(fields, changes)
  local sizes = {}
  if not changes.cleared then
    for field, value in pairs(fields) do
      if string.sub(field, 1, 2) == 'd:' then sizes[field] = #field - 2 + #value end
    end
  end
  for _, field in ipairs(changes.removals) do sizes[field] = nil end
  for j = 1, #changes.inserts, 2 do
    sizes[changes.inserts[j]] = #changes.inserts[j] - 2 + #changes.inserts[j + 1]
  end
  local total = 0
  for _, size in pairs(sizes) do total = total + size end
  return total
end

-- Writes the changes to the record whose fields were `fields`, and its new
-- metadata `meta` and remembered writes `memo` with the inserts.
local function apply_changes(key, fields, changes, meta, memo)
  if changes.cleared then
    local data = {}
    for field in pairs(fields) do
      if string.sub(field, 1, 2) == 'd:' then table.insert(data, field) end
    end
    chunked('HDEL', key, data)
  end
  chunked('HDEL', key, changes.removals)
  local writes = {'m', meta, 't', memo}
  if changes.lifetime == '-' then
    redis.call('HDEL', key, 'l')
  elseif changes.lifetime ~= '' then
    table.insert(writes, 'l'); table.insert(writes, changes.lifetime)
  end
  for _, item in ipairs(changes.inserts) do table.insert(writes, item) end
  chunked('HSET', key, writes)
end
"#;

/// `create`. KEYS: key, and for a bound record on one node its index.
/// ARGV: token, now, meta, ttl (clamped by the caller, so `PEXPIRE`
/// cannot fail after the write), index mode (`=`: KEYS[2]; `-`: none),
/// then field/value pairs. A tombstone answers `revoked`: a cluster
/// `revoke` ended the login this create is a step of.
const CREATE: &str = r#"
local key, token, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local meta, present, _, tombstone = stored(key)
if meta == false then return {'decode'} end
if tombstone then return {'revoked'} end
if meta and live(meta, now) then
  if written(meta.fields, token) then return {'created'} end
  return {'collision'}
end
if present then redis.call('DEL', key) end
local version = parse_meta(ARGV[3]).v
local fields = {'m', ARGV[3], 't', remembered({}, token, version)}
for j = 6, #ARGV do table.insert(fields, ARGV[j]) end
chunked('HSET', key, fields)
redis.call('PEXPIRE', key, ARGV[4])
if ARGV[5] == '=' then
  local m = parse_meta(ARGV[3])
  index_add(KEYS[2], member(key), earlier(m.i, m.a), now)
end
return {'created'}
"#;

/// `update`. KEYS: key, and the index if ARGV[7] is `=`. ARGV: token,
/// now, idle, absolute, limit, slack, index mode (see `index_of`),
/// changes.
const UPDATE: &str = r#"
local key, token, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local meta = stored(key)
if meta == false then return {'decode'} end
if not meta or not live(meta, now) then return {'gone'} end
local done = written(meta.fields, token)
if done then return {'updated', done} end
local changes = read_changes(8)
local conflict = check_conditions(meta.fields, changes.conditions)
if conflict then return conflict end
local size = size_after(meta.fields, changes)
if size > tonumber(ARGV[5]) then return {'too_large', tostring(size)} end
local indexed, idx = index_of(meta, ARGV[7], KEYS[2])
if not indexed then return {'bound', meta.u, meta.a} end
local absolute = earlier(meta.a, ARGV[4])
local version = next_version(meta)
local moved = encode_meta(meta.c, ARGV[3], absolute, version, seen_tail(meta, ARGV[2]))
apply_changes(key, meta.fields, changes, moved, remembered(meta.fields, token, version))
expire(key, ARGV[3], absolute, now, ARGV[6])
if idx then index_extend(idx, member(key), earlier(ARGV[3], absolute), now) end
return {'updated', version}
"#;

/// `touch`. KEYS: key, and the index if ARGV[4] is `=`. ARGV: now, idle,
/// slack, index mode.
const TOUCH: &str = r#"
local key, now = KEYS[1], tonumber(ARGV[1])
local meta = stored_meta(key)
if meta == false then return {'decode'} end
if not meta or not live(meta, now) then return {'gone'} end
local indexed, idx = index_of(meta, ARGV[4], KEYS[2])
if not indexed then return {'bound', meta.u, meta.a} end
local tail = seen_tail(meta, ARGV[1])
redis.call('HSET', key, 'm', encode_meta(meta.c, ARGV[2], meta.a, meta.v, tail))
expire(key, ARGV[2], meta.a, now, ARGV[3])
if idx then index_extend(idx, member(key), earlier(ARGV[2], meta.a), now) end
return {'touched'}
"#;

/// `cycle` on one node. KEYS: old, new, and the index if ARGV[7] is `=`.
/// ARGV: token, now, idle, absolute, limit, slack, index mode, changes.
const CYCLE: &str = r#"
local old, new, token, now = KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2])
local meta = stored(old)
if meta == false then return {'decode'} end
if not meta or not live(meta, now) then
  local moved = stored(new)
  if moved and written(moved.fields, token) then return {'cycled'} end
  return {'gone'}
end
local changes = read_changes(8)
local conflict = check_conditions(meta.fields, changes.conditions)
if conflict then return conflict end
local taken = stored_meta(new)
if taken == false then return {'decode'} end
if taken and live(taken, now) then return {'collision'} end
local size = size_after(meta.fields, changes)
if size > tonumber(ARGV[5]) then return {'too_large', tostring(size)} end
local indexed, idx = index_of(meta, ARGV[7], KEYS[3])
if not indexed then return {'bound', meta.u, meta.a} end
redis.call('RENAME', old, new)
local version = next_version(meta)
local moved = encode_meta(meta.c, ARGV[3], ARGV[4], version, seen_tail(meta, ARGV[2]))
apply_changes(new, meta.fields, changes, moved, remembered(meta.fields, token, version))
redis.call('HSET', new, 'r', ARGV[2])
expire(new, ARGV[3], ARGV[4], now, ARGV[6])
if idx then
  redis.call('ZREM', idx, member(old))
  index_add(idx, member(new), earlier(ARGV[3], ARGV[4]), now)
end
return {'cycled'}
"#;

/// `delete`. KEYS: key, and the index if ARGV[1] is `=`. ARGV: index
/// mode: `-` answers `bound <user>` for a bound record without deleting
/// it; `steps` deletes it and answers the same, for the caller to take it
/// out of its index (Redis Cluster). A forward is left as it is, answering
/// `forward <key hex>`: the caller deletes the record it names, then it.
const DELETE: &str = r#"
local key, mode = KEYS[1], ARGV[1]
local raw = redis.pcall('HGET', key, 'm')
if type(raw) == 'string' and string.sub(raw, 1, 2) == 'F;' then
  return {'forward', string.sub(raw, 3, 66)}
end
local meta = type(raw) == 'string' and parse_meta(raw)
if type(meta) == 'table' and meta.u then
  if mode == '=' and member(KEYS[2]) == meta.u then
    redis.call('DEL', key)
    index_remove(KEYS[2], member(key), tonumber(ARGV[2]))
    return {'deleted'}
  end
  if mode == 'steps' then redis.call('DEL', key) end
  return {'bound', meta.u, meta.a}
end
redis.call('DEL', key)
return {'deleted'}
"#;

/// `rotate` on one node. KEYS: old, new, and the index if ARGV[4] is `=`.
/// ARGV: now, the forward's metadata (it names the new key, so the old
/// key holding it means this rotate ran: a resend answers `rotated`), its
/// TTL, index mode. The record moves as it is, its key issued now; the
/// old key becomes the forward.
const ROTATE: &str = r#"
local old, new, now = KEYS[1], KEYS[2], tonumber(ARGV[1])
if redis.pcall('HGET', old, 'm') == ARGV[2] then return {'rotated'} end
local meta = stored_meta(old)
if meta == false then return {'decode'} end
if not meta or not live(meta, now) then return {'gone'} end
local taken = stored_meta(new)
if taken == false then return {'decode'} end
if taken and live(taken, now) then return {'collision'} end
local indexed, idx = index_of(meta, ARGV[4], KEYS[3])
if not indexed then return {'bound', meta.u, meta.a} end
redis.call('RENAME', old, new)
local moved = encode_meta(meta.c, meta.i, meta.a, meta.v, seen_tail(meta, ARGV[1]))
redis.call('HSET', new, 'm', moved, 'r', ARGV[1])
redis.call('HSET', old, 'm', ARGV[2])
redis.call('PEXPIRE', old, ARGV[3])
if idx then
  redis.call('ZREM', idx, member(old))
  index_add(idx, member(new), earlier(meta.i, meta.a), now)
end
return {'rotated'}
"#;

/// Each script: the shared helpers, the index's, then its body.
pub(crate) fn script(body: &str) -> Script {
    Script::new(&format!(
        "local TOKENS_KEPT, MEMO_ENTRY = {TOKENS_KEPT}, {MEMO_ENTRY}\n{COMMON}\n{INDEX_HELPERS}\n{body}"
    ))
}

pub(crate) static CREATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CREATE));
pub(crate) static UPDATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(UPDATE));
pub(crate) static TOUCH_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(TOUCH));
pub(crate) static CYCLE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(CYCLE));
pub(crate) static DELETE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(DELETE));
pub(crate) static ROTATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(ROTATE));
