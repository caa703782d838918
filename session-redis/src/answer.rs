//! What a script answers, and the one place that turns an answer into an
//! operation's outcome or into the error it stands for (the answers are
//! listed in [`scripts`](crate::scripts)).

use std::str::FromStr;

use session_core::{
    Conflict, CreateOutcome, CycleOutcome, Error, LoginOutcome, RotateOutcome, SessionKey,
    Timestamp, TouchOutcome, UpdateOutcome, UserKey, Value,
};

use crate::layout::{self, Fields};

/// What a script answered.
#[derive(Debug)]
pub(crate) enum Answer {
    Created,
    Collision,
    Updated(u64),
    Touched,
    Cycled,
    Gone,
    Decode,
    TooLarge(usize),
    Conflict(Conflict),
    /// A record sealed for a cluster `cycle`: its metadata and data fields.
    // Parsed in every build so that one function reads every answer; only
    // the cluster's `cycle` reads it back.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    Sealed(Vec<u8>, Fields),
    /// The record is bound to this user, whose index the write must keep,
    /// and ends by this absolute deadline: nothing was written.
    Bound(UserKey, Timestamp),
    Deleted,
    /// A create met a tombstone: the login it is a step of was revoked.
    Revoked,
    /// The user's index changed since the caller read it: nothing written.
    Retry,
    LoggedIn(u64),
    /// A revoke ended this many live sessions.
    Ended(u64),
    Indexed,
    /// A cluster revoke's step on one member found it sealed by a cycle to
    /// the session key of this hex, and deleted it.
    #[cfg_attr(not(feature = "cluster"), allow(dead_code))]
    InCycle(String),
    /// A cluster revoke's step found no live record (and left a tombstone
    /// if the member's score is still ahead).
    Absent,
    /// A cluster revoke's step found a record that is not the user's.
    Other,
    /// A short script's check failed (see [`fast`](crate::fast)): nothing
    /// written, the full script decides.
    Stale,
    Rotated,
    /// A `delete` met a forward and deleted it: the key it names.
    Forward(SessionKey),
}

/// Reads a script's reply.
pub(crate) fn parse(reply: Vec<Vec<u8>>) -> Result<Answer, Error> {
    let mut rest = reply.into_iter();
    let outcome = rest.next().unwrap_or_default();
    Ok(match outcome.as_slice() {
        b"created" => Answer::Created,
        b"collision" => Answer::Collision,
        b"updated" => Answer::Updated(number(rest.next())?),
        b"touched" => Answer::Touched,
        b"cycled" => Answer::Cycled,
        b"gone" => Answer::Gone,
        b"decode" => Answer::Decode,
        b"too_large" => Answer::TooLarge(number(rest.next())?),
        b"conflict" => Answer::Conflict(parse_conflict(rest.collect())?),
        b"sealed" => {
            let meta = rest.next().unwrap_or_default();
            let fields: Vec<Vec<u8>> = rest.collect();
            let pairs = fields
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect();
            Answer::Sealed(meta, pairs)
        }
        b"bound" => Answer::Bound(user(rest.next())?, at(rest.next())?),
        b"deleted" => Answer::Deleted,
        b"revoked" => Answer::Revoked,
        b"retry" => Answer::Retry,
        b"logged_in" => Answer::LoggedIn(number(rest.next())?),
        b"ended" => Answer::Ended(number(rest.next())?),
        b"indexed" => Answer::Indexed,
        b"in_cycle" => Answer::InCycle(number(rest.next())?),
        b"absent" => Answer::Absent,
        b"other" => Answer::Other,
        b"stale" => Answer::Stale,
        b"rotated" => Answer::Rotated,
        b"forward" => Answer::Forward(key(rest.next())?),
        _ => return Err(Error::backend("unexpected answer from a session script")),
    })
}

/// The decimal number an answer carries after its outcome.
fn number<T>(part: Option<Vec<u8>>) -> Result<T, Error>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    String::from_utf8(part.unwrap_or_default())
        .map_err(Error::backend)?
        .parse()
        .map_err(Error::backend)
}

/// The time in Unix milliseconds an answer carries.
fn at(part: Option<Vec<u8>>) -> Result<Timestamp, Error> {
    number(part).map(Timestamp::from_unix_millis)
}

/// The user key whose hex an answer carries.
fn user(part: Option<Vec<u8>>) -> Result<UserKey, Error> {
    let hex: String = number(part)?;
    layout::hex_bytes(&hex)
        .map(UserKey::from_bytes)
        .ok_or_else(|| Error::backend("a user key that is not 64 hex digits"))
}

/// The session key whose hex an answer carries.
fn key(part: Option<Vec<u8>>) -> Result<SessionKey, Error> {
    let hex: String = number(part)?;
    layout::hex_bytes(&hex)
        .map(SessionKey::from_bytes)
        .ok_or_else(|| Error::backend("a session key that is not 64 hex digits"))
}

/// `<field> <present> <value>` triples into the current values.
fn parse_conflict(items: Vec<Vec<u8>>) -> Result<Conflict, Error> {
    let mut current = Vec::new();
    for triple in items.chunks_exact(3) {
        let name = layout::value_name(&triple[0]).unwrap_or(&triple[0]);
        let name = String::from_utf8(name.to_vec()).map_err(Error::decode)?;
        let value = (triple[1] == b"1").then(|| Value::from_bytes(triple[2].clone()));
        current.push((name, value));
    }
    Ok(Conflict::new(current))
}

/// An operation's outcome, as one of its script's answers.
pub(crate) trait Outcome: Sized {
    /// The outcome `answer` stands for, or the answer back if it is not one
    /// of this operation's outcomes.
    fn from_answer(answer: Answer) -> Result<Self, Answer>;
}

/// The outcome `answer` stands for, or the error: records over `limit`
/// bytes are [`Error::TooLarge`].
pub(crate) fn outcome<T: Outcome>(answer: Answer, limit: usize) -> Result<T, Error> {
    T::from_answer(answer).map_err(|other| failure(other, limit))
}

/// The error an answer that is no outcome stands for.
fn failure(answer: Answer, limit: usize) -> Error {
    match answer {
        Answer::Decode => Error::decode("stored session metadata cannot be decoded"),
        Answer::TooLarge(size) => Error::TooLarge { size, limit },
        other => Error::backend(format!(
            "unexpected answer from a session script: {other:?}"
        )),
    }
}

impl Outcome for CreateOutcome {
    fn from_answer(answer: Answer) -> Result<Self, Answer> {
        match answer {
            Answer::Created => Ok(Self::Created),
            // A tombstone holds the key: taken, for a plain create.
            Answer::Collision | Answer::Revoked => Ok(Self::Collision),
            other => Err(other),
        }
    }
}

impl Outcome for UpdateOutcome {
    fn from_answer(answer: Answer) -> Result<Self, Answer> {
        match answer {
            Answer::Updated(version) => Ok(Self::Updated { version }),
            Answer::Gone => Ok(Self::Gone),
            Answer::Conflict(current) => Ok(Self::Conflict { current }),
            other => Err(other),
        }
    }
}

impl Outcome for TouchOutcome {
    fn from_answer(answer: Answer) -> Result<Self, Answer> {
        match answer {
            Answer::Touched => Ok(Self::Touched),
            Answer::Gone => Ok(Self::Gone),
            other => Err(other),
        }
    }
}

impl Outcome for CycleOutcome {
    fn from_answer(answer: Answer) -> Result<Self, Answer> {
        match answer {
            Answer::Cycled => Ok(Self::Cycled),
            Answer::Gone => Ok(Self::Gone),
            Answer::Collision => Ok(Self::Collision),
            Answer::Conflict(current) => Ok(Self::Conflict { current }),
            other => Err(other),
        }
    }
}

impl Outcome for RotateOutcome {
    fn from_answer(answer: Answer) -> Result<Self, Answer> {
        match answer {
            Answer::Rotated => Ok(Self::Rotated),
            Answer::Gone => Ok(Self::Gone),
            Answer::Collision => Ok(Self::Collision),
            other => Err(other),
        }
    }
}

impl Outcome for LoginOutcome {
    fn from_answer(answer: Answer) -> Result<Self, Answer> {
        match answer {
            Answer::LoggedIn(revoked) => Ok(Self::LoggedIn { revoked }),
            Answer::Gone | Answer::Revoked => Ok(Self::Gone),
            Answer::Collision => Ok(Self::Collision),
            Answer::Conflict(current) => Ok(Self::Conflict { current }),
            other => Err(other),
        }
    }
}
