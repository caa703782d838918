//! What the run saw: requests by kind and status, 5xx inside and outside
//! the fault windows, sessions and increments, and every violation of the
//! guarantees (with the first few described).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;

use super::client::Answer;
use super::lock;
use super::timeline::Timeline;

/// The violations of each kind described in full; the rest are only
/// counted.
const EXAMPLES: u64 = 5;

/// A kind of request, for the counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Read every key.
    Dump,
    /// Write a key.
    Put,
    /// Remove a key.
    Del,
    /// `Session::update` of the counter.
    Incr,
    /// `cycle_id`.
    Login,
    /// `destroy`.
    Logout,
    /// Read with an id that was logged out or cycled away.
    Zombie,
    /// Read to settle an unknown outcome or to take the final count.
    Check,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Dump => "read",
            Self::Put => "write",
            Self::Del => "remove",
            Self::Incr => "increment",
            Self::Login => "login",
            Self::Logout => "logout",
            Self::Zombie => "old-id",
            Self::Check => "check",
        }
    }

    pub(crate) fn method(self) -> Method {
        match self {
            Self::Dump | Self::Zombie | Self::Check => Method::GET,
            Self::Put | Self::Del | Self::Incr | Self::Login | Self::Logout => Method::POST,
        }
    }
}

/// A broken guarantee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// A key does not hold its last acknowledged value (or one written
    /// after it with an unknown outcome).
    LostKey,
    /// A key nobody wrote to this session.
    UnexpectedKey,
    /// An id that was logged out or cycled away still loads data.
    Resurrected,
    /// The counter is below the acknowledged increments or above the
    /// attempted ones.
    Counter,
    /// A 5xx outside every fault window and its grace period.
    ServerError,
    /// No answer in time, or a broken connection.
    NoAnswer,
    /// A status no route gives when the library keeps its promises.
    Status,
    /// The session cookie changed when it should not have (a new session
    /// replacing a live one), or did not when it should have.
    Cookie,
}

impl Problem {
    pub fn name(self) -> &'static str {
        match self {
            Self::LostKey => "lost or stale key",
            Self::UnexpectedKey => "unexpected key",
            Self::Resurrected => "resurrected session",
            Self::Counter => "counter out of bounds",
            Self::ServerError => "5xx outside fault windows",
            Self::NoAnswer => "no answer",
            Self::Status => "unexpected status",
            Self::Cookie => "wrong cookie",
        }
    }
}

/// One broken guarantee, described.
#[derive(Clone, Debug)]
pub struct Violation {
    /// When, from the start of the run.
    pub at: Duration,
    /// Which virtual user saw it.
    pub user: usize,
    pub problem: Problem,
    pub detail: String,
}

/// Increments of the sessions whose final count was read (after logout
/// quiesced them, or at the end of the run).
#[derive(Clone, Copy, Debug, Default)]
pub struct Increments {
    pub acknowledged: u64,
    pub final_count: u64,
    pub attempted: u64,
}

/// How sessions ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sessions {
    pub created: u64,
    pub logins: u64,
    pub logouts: u64,
    /// Cycled away by a login whose answer was an error: the data lives on
    /// under an id nobody received.
    pub lost_to_failed_login: u64,
    /// A logout or check still failing long after the run ended.
    pub unresolved: u64,
}

/// The run's counts.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub requests: BTreeMap<&'static str, u64>,
    pub statuses: BTreeMap<u16, u64>,
    /// 5xx answers to requests that overlapped a fault window (or its
    /// grace period): allowed, counted.
    pub server_errors_in_windows: u64,
    pub increments: Increments,
    pub sessions: Sessions,
    pub violations: BTreeMap<Problem, u64>,
    pub examples: Vec<Violation>,
    /// The soak's own failures (a fault that could not be injected, a
    /// task that died): they fail the run like violations.
    pub harness_errors: Vec<String>,
}

impl Counts {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    pub fn total_violations(&self) -> u64 {
        self.violations.values().sum()
    }

    pub fn server_errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| **status >= 500)
            .map(|(_, count)| count)
            .sum()
    }
}

/// Collects what every virtual user sees.
pub(crate) struct Oracle {
    timeline: Arc<Timeline>,
    counts: Mutex<Counts>,
}

impl Oracle {
    pub(crate) fn new(timeline: Arc<Timeline>) -> Self {
        Self {
            timeline,
            counts: Mutex::default(),
        }
    }

    pub(crate) fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// Records an exchange sent at `sent`, and what is wrong with it alone:
    /// no answer, a 5xx outside the fault windows, a status none of the
    /// routes should give.
    pub(crate) fn answered(
        &self,
        user: usize,
        kind: Kind,
        sent: Duration,
        answer: &Result<Answer, String>,
    ) {
        let answered = self.timeline.now();
        self.count(|counts| *counts.requests.entry(kind.name()).or_default() += 1);
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                return self.violation(
                    user,
                    Problem::NoAnswer,
                    format!("{}: {error}", kind.name()),
                );
            }
        };
        let status = answer.status.as_u16();
        self.count(|counts| *counts.statuses.entry(status).or_default() += 1);
        if answer.status.is_server_error() {
            if self.timeline.excuses(sent, answered) {
                self.count(|counts| counts.server_errors_in_windows += 1);
            } else {
                let mut detail = format!(
                    "{} answered {status} (sent at {:.3} s, answered at {:.3} s)",
                    kind.name(),
                    sent.as_secs_f64(),
                    answered.as_secs_f64()
                );
                if let Some(share) = self.timeline.contended(sent, answered) {
                    detail.push_str(&format!(
                        "; other processes used {:.0}% of the machine's CPU meanwhile",
                        share * 100.0
                    ));
                }
                self.violation(user, Problem::ServerError, detail);
            }
        } else if !answer.status.is_success() {
            let detail = format!("{} answered {status}: {}", kind.name(), answer.body);
            self.violation(user, Problem::Status, detail);
        }
    }

    pub(crate) fn violation(&self, user: usize, problem: Problem, detail: String) {
        let at = self.timeline.now();
        self.count(|counts| {
            let seen = counts.violations.entry(problem).or_default();
            *seen += 1;
            if *seen <= EXAMPLES {
                counts.examples.push(Violation {
                    at,
                    user,
                    problem,
                    detail,
                });
            }
        });
    }

    pub(crate) fn harness_error(&self, error: String) {
        self.count(|counts| counts.harness_errors.push(error));
    }

    /// A session's final count was read: its increments join the totals.
    pub(crate) fn counted(&self, increments: Increments) {
        self.count(|counts| {
            let totals = &mut counts.increments;
            totals.acknowledged += increments.acknowledged;
            totals.final_count += increments.final_count;
            totals.attempted += increments.attempted;
        });
    }

    pub(crate) fn sessions(&self, change: impl FnOnce(&mut Sessions)) {
        self.count(|counts| change(&mut counts.sessions));
    }

    pub(crate) fn counts(&self) -> Counts {
        lock(&self.counts).clone()
    }

    fn count(&self, change: impl FnOnce(&mut Counts)) {
        change(&mut lock(&self.counts));
    }
}
