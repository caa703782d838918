//! Accounts: reading a user's index, and `login`, `list` and `revoke` on
//! one node, where each is one script over keys it declares (the cluster's
//! steps are in `cluster`).

mod script;

use redis::ScriptInvocation;
use session_core::{
    ChangeSet, Deadlines, Error, Listed, Login, LoginOutcome, Record, Revoke, SessionData,
    SessionKey, Timestamp, UserKey,
};

use crate::answer::{Answer, outcome};
use crate::invocation::{push_changes, push_write};
use crate::layout::{self, META, account_tail, decode_meta, hex_bytes};
use crate::storage::RedisStorage;
use crate::write_token;
use script::LOGIN_SCRIPT;

/// How often an account call reads again when the index changed under
/// it, or a record turned out bound to another user, before it gives up.
const ATTEMPTS: usize = 8;

/// One member of a user's index: the session's key and its score (an
/// upper bound of its expiry, Unix milliseconds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Member {
    pub(crate) key: SessionKey,
    // Only the cluster's revoke needs it, for its tombstones.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    pub(crate) score: u64,
}

/// What a login from one node's script needs besides its arguments.
struct LoginKeys<'a> {
    old: Option<&'a SessionKey>,
    new: &'a SessionKey,
    old_user: Option<UserKey>,
    others: Vec<(Member, Option<Record>)>,
    victims: Vec<SessionKey>,
}

impl RedisStorage {
    /// The Redis key of `user`'s index.
    pub(crate) fn index_key(&self, user: &UserKey) -> String {
        layout::index_key(self.prefix(), user)
    }

    /// The index's members, pruned at `now`: those whose score is ahead.
    pub(crate) async fn read_index(
        &self,
        user: &UserKey,
        now: Timestamp,
    ) -> Result<Vec<Member>, Error> {
        let index = self.index_key(user);
        let millis = now.as_unix_millis();
        let (members,): (Vec<(String, f64)>,) = self
            .call(|mut connection| async move {
                redis::pipe()
                    .atomic()
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(&index)
                    .arg("-inf")
                    .arg(millis)
                    .ignore()
                    .cmd("ZRANGE")
                    .arg(&index)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut connection)
                    .await
            })
            .await?;
        Ok(members
            .into_iter()
            .filter_map(|(hex, score)| {
                // Scores are whole milliseconds, written by this crate.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let score = score as u64;
                let key = SessionKey::from_bytes(hex_bytes(&hex)?);
                Some(Member { key, score })
            })
            .collect())
    }

    /// The records of `members` as their metadata describes them (no
    /// data): `None` for absent, sealed, tombstoned or unreadable ones.
    pub(crate) async fn read_metas(
        &self,
        members: &[Member],
    ) -> Result<Vec<Option<Record>>, Error> {
        let keys: Vec<String> = members
            .iter()
            .map(|member| self.redis_key(&member.key))
            .collect();
        let metas: Vec<Option<Vec<u8>>> = if keys.is_empty() {
            Vec::new()
        } else if self.is_cluster() {
            // The members live on different nodes: one call each.
            let mut metas = Vec::with_capacity(keys.len());
            for key in keys {
                metas.push(self.hget_meta(key).await?);
            }
            metas
        } else {
            self.call(|mut connection| async move {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.hget(key, META);
                }
                pipe.query_async(&mut connection).await
            })
            .await?
        };
        Ok(metas
            .into_iter()
            .map(|meta| decode_meta(&meta?, SessionData::new()).ok())
            .collect())
    }

    /// The metadata field of one Redis key.
    async fn hget_meta(&self, key: String) -> Result<Option<Vec<u8>>, Error> {
        // A key of another type is no session: like an absent one here.
        let meta: Result<Option<Vec<u8>>, Error> = self
            .call(|mut connection| async move {
                redis::cmd("HGET")
                    .arg(key)
                    .arg(META)
                    .query_async(&mut connection)
                    .await
            })
            .await;
        match meta {
            Err(Error::Decode(_)) => Ok(None),
            other => other,
        }
    }

    /// The members of `user`'s index with their records, live at `now`
    /// and bound to `user`, or `None`.
    async fn read_sessions(
        &self,
        user: &UserKey,
        now: Timestamp,
    ) -> Result<Vec<(Member, Option<Record>)>, Error> {
        let members = self.read_index(user, now).await?;
        let records = self.read_metas(&members).await?;
        let theirs = |record: &Record| {
            record.is_live(now) && record.account.as_ref().is_some_and(|a| a.user == *user)
        };
        Ok(members
            .into_iter()
            .zip(records)
            .map(|(member, record)| (member, record.filter(theirs)))
            .collect())
    }

    /// `list`: the live sessions of `user` in its index.
    pub(crate) async fn list_sessions(
        &self,
        user: &UserKey,
        now: Timestamp,
    ) -> Result<Vec<Listed>, Error> {
        let sessions = self.read_sessions(user, now).await?;
        let mut listed: Vec<Listed> = sessions
            .iter()
            .filter_map(|(member, record)| Listed::of(&member.key, record.as_ref()?))
            .collect();
        Listed::sort(&mut listed);
        Ok(listed)
    }

    /// `revoke` on one node: read the index, then one script that ends
    /// the selected members if the index is still as read.
    pub(crate) async fn revoke_on_node(
        &self,
        user: &UserKey,
        which: &Revoke,
        now: Timestamp,
    ) -> Result<u64, Error> {
        for _ in 0..ATTEMPTS {
            let members = self.read_index(user, now).await?;
            if !members.iter().any(|member| which.selects(&member.key)) {
                return Ok(0);
            }
            let mut invocation = crate::index::REVOKE_SCRIPT.prepare_invoke();
            invocation.key(self.index_key(user));
            invocation.arg(now.as_unix_millis()).arg(user.to_string());
            for member in &members {
                invocation
                    .key(self.redis_key(&member.key))
                    .arg(if which.selects(&member.key) { "1" } else { "0" });
            }
            match self.script(invocation).await? {
                Answer::Ended(count) => return Ok(count),
                Answer::Retry => {}
                other => {
                    return Err(Error::backend(format!(
                        "unexpected revoke answer {other:?}"
                    )));
                }
            }
        }
        Err(Error::backend(
            "the user's sessions kept changing during a revoke",
        ))
    }

    /// `login` on one node: one script, run again if the old record turns
    /// out bound to another user (whose index it must then declare) or the
    /// limit's choice went stale.
    pub(crate) async fn login_on_node(
        &self,
        (old, new): (Option<&SessionKey>, &SessionKey),
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<LoginOutcome, Error> {
        let limit = self.max_record_bytes();
        let mut old_user = None;
        for _ in 0..ATTEMPTS {
            let (others, victims) = self.limit_choice((old, new), login, now).await?;
            let keys = LoginKeys {
                old,
                new,
                old_user,
                others,
                victims,
            };
            let invocation = self.login_invocation(&keys, changes, deadlines, login, now)?;
            match self.script(invocation).await? {
                Answer::Bound(user, _) => old_user = Some(user),
                Answer::Retry => {}
                answer => return outcome(answer, limit),
            }
        }
        Err(Error::backend("the sessions of a login kept changing"))
    }

    /// With a limit: the user's other sessions as read now (all but the
    /// login's old and new keys), and the ones the limit ends
    /// ([`Login::excess`]).
    pub(crate) async fn limit_choice(
        &self,
        (old, new): (Option<&SessionKey>, &SessionKey),
        login: &Login,
        now: Timestamp,
    ) -> Result<(Vec<(Member, Option<Record>)>, Vec<SessionKey>), Error> {
        if login.session_limit().is_none() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut others = self.read_sessions(&login.user(), now).await?;
        others.retain(|(member, _)| Some(&member.key) != old && member.key != *new);
        let seen = others.iter().filter_map(|(member, record)| {
            let account = record.as_ref()?.account.as_ref()?;
            Some((member.key, account.last_seen))
        });
        let victims = login.excess(seen.collect());
        Ok((others, victims))
    }

    /// The login script with its keys and arguments (see its docs).
    fn login_invocation(
        &self,
        keys: &LoginKeys<'_>,
        changes: &ChangeSet,
        deadlines: Deadlines,
        login: &Login,
        now: Timestamp,
    ) -> Result<ScriptInvocation<'static>, Error> {
        let mut invocation = LOGIN_SCRIPT.prepare_invoke();
        invocation
            .key(self.redis_key(keys.new))
            .key(self.index_key(&login.user()));
        if let Some(old) = keys.old {
            invocation.key(self.redis_key(old));
        }
        if let Some(user) = &keys.old_user {
            invocation.key(self.index_key(user));
        }
        let token = write_token::fresh()?;
        push_write(
            &mut invocation,
            &token,
            deadlines,
            now,
            self.max_record_bytes(),
        );
        invocation
            .arg(account_tail(&login.account(now)))
            .arg(if keys.old.is_some() { "1" } else { "0" })
            .arg(if keys.old_user.is_some() { "1" } else { "0" });
        if login.session_limit().is_some() {
            invocation.arg(keys.others.len());
            for (member, record) in &keys.others {
                let seen = record.as_ref().and_then(|record| record.account.as_ref());
                invocation
                    .key(self.redis_key(&member.key))
                    .arg(seen.map_or("-".to_owned(), |account| {
                        account.last_seen.as_unix_millis().to_string()
                    }))
                    .arg(if keys.victims.contains(&member.key) {
                        "1"
                    } else {
                        "0"
                    });
            }
        } else {
            invocation.arg("-");
        }
        push_changes(&mut invocation, changes);
        Ok(invocation)
    }
}
