//! `revoke` on Redis Cluster, where the index and each of its members may
//! live on different nodes.
//!
//! The index is read (with scores), then each selected member is ended by
//! a script on its own node, and only then taken out of the index, so a
//! failure at any point leaves every session that still lives listed:
//!
//! - a live record (or one with no binding) is deleted;
//! - a record sealed by a cycle or login in flight is deleted, and the new
//!   key its seal names is ended with a tombstone: the session does not
//!   come back under it, whether its create already ran or not;
//! - no record at all, while the member's score is still ahead: a login
//!   is in flight between adding the member and creating the record, so
//!   the key gets a tombstone until that score, and the create fails.
//!
//! A revoke of all (or all but one) reads the index again afterwards and
//! ends what joined it meanwhile, so a session that moved to a new key
//! while the revoke ran is not left behind.

use std::collections::HashSet;
use std::sync::LazyLock;

use redis::Script;
use session_core::{Error, Revoke, SessionKey, Timestamp, UserKey};

use crate::accounts::Member;
use crate::answer::Answer;
use crate::layout::hex_bytes;
use crate::scripts::script;
use crate::steps;
use crate::storage::RedisStorage;

/// How long the tombstone at the new key of a sealed record lives: longer
/// than any create of a move can still be in flight.
const TOMBSTONE_MS: u64 = 10 * 60 * 1000;

/// How often a revoke of all reads the index again for sessions that
/// joined it while it ran.
const PASSES: usize = 3;

/// Ends one member on its node. KEYS: the session. ARGV: now, the user's
/// hex, the member's score. Answers `ended 1`, `in_cycle <new key hex>`,
/// `absent` or `other` (not the user's: left alone).
const END_MEMBER: &str = r#"
local key, now, user = KEYS[1], tonumber(ARGV[1]), ARGV[2]
local raw = redis.pcall('HGET', key, 'm')
if type(raw) == 'table' then return {'other'} end
if raw and string.sub(raw, 1, 2) == 'S;' then
  local new = string.match(raw, '^S;[^;]*;(%x+);')
  redis.call('DEL', key)
  return {'in_cycle', new or ''}
end
if not raw or raw == 'R' then
  local ttl = tonumber(ARGV[3]) - now
  if ttl > 0 then
    redis.call('DEL', key)
    redis.call('HSET', key, 'm', 'R')
    redis.call('PEXPIRE', key, string.format('%.0f', ttl))
  end
  return {'absent'}
end
local meta = parse_meta(raw)
if type(meta) ~= 'table' or (meta.u and meta.u ~= user) then return {'other'} end
redis.call('DEL', key)
if live(meta, now) then return {'ended', '1'} end
return {'absent'}
"#;

/// Ends the new key of a sealed record, whatever it holds: a tombstone.
/// KEYS: the key. ARGV: its TTL in milliseconds.
const TOMBSTONE: &str = r#"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'm', 'R')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {'absent'}
"#;

static END_MEMBER_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(END_MEMBER));
static TOMBSTONE_SCRIPT: LazyLock<Script> = LazyLock::new(|| script(TOMBSTONE));

/// What a revoke ended so far.
#[derive(Default)]
pub(crate) struct Tally {
    /// Live records deleted.
    ended: HashSet<SessionKey>,
    /// The new keys of sealed records ended: each sealed record is one
    /// session, whichever of its two keys the revoke met first.
    moved_to: HashSet<SessionKey>,
    sealed: u64,
}

impl Tally {
    /// The live sessions ended: sealed records count once, with their new
    /// key.
    pub(crate) fn count(&self) -> u64 {
        let ended = self.ended.difference(&self.moved_to).count();
        self.sealed + u64::try_from(ended).unwrap_or(u64::MAX)
    }
}

impl RedisStorage {
    /// `revoke` in steps.
    pub(crate) async fn revoke_in_steps(
        &self,
        user: &UserKey,
        which: &Revoke,
        now: Timestamp,
    ) -> Result<u64, Error> {
        let mut met = HashSet::new();
        let mut tally = Tally::default();
        for _ in 0..PASSES {
            self.step(steps::REVOKE_READ).await?;
            let members = self.read_index(user, now).await?;
            let fresh: Vec<Member> = members
                .into_iter()
                .filter(|member| which.selects(&member.key) && met.insert(member.key))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for member in fresh {
                self.revoke_member(user, member, now, &mut tally).await?;
            }
            if matches!(which, Revoke::One(_)) {
                break;
            }
        }
        Ok(tally.count())
    }

    /// Ends one member on its node, then takes it out of the index.
    pub(crate) async fn revoke_member(
        &self,
        user: &UserKey,
        member: Member,
        now: Timestamp,
        tally: &mut Tally,
    ) -> Result<(), Error> {
        self.step(steps::REVOKE_MEMBER).await?;
        let mut invocation = END_MEMBER_SCRIPT.prepare_invoke();
        invocation
            .key(self.redis_key(&member.key))
            .arg(now.as_unix_millis())
            .arg(user.to_string())
            .arg(member.score);
        let mut unindex = vec![member.key];
        match self.script(invocation).await? {
            Answer::Ended(_) => {
                tally.ended.insert(member.key);
            }
            Answer::InCycle(new) => {
                tally.sealed += 1;
                if let Some(new) = hex_bytes(&new).map(SessionKey::from_bytes) {
                    self.tombstone(&new).await?;
                    tally.moved_to.insert(new);
                    unindex.push(new);
                }
            }
            Answer::Absent | Answer::Other => {}
            other => {
                return Err(Error::backend(format!(
                    "unexpected revoke answer {other:?}"
                )));
            }
        }
        self.step(steps::REVOKE_UNINDEX).await?;
        for key in unindex {
            self.index_step(user, "remove", &key, now, now).await?;
        }
        Ok(())
    }

    /// A tombstone at the new key of a sealed record.
    async fn tombstone(&self, key: &SessionKey) -> Result<(), Error> {
        let mut invocation = TOMBSTONE_SCRIPT.prepare_invoke();
        invocation.key(self.redis_key(key)).arg(TOMBSTONE_MS);
        self.script(invocation).await.map(|_| ())
    }
}
