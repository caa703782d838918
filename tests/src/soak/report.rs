//! The soak's findings: a summary for people, a TSV line for tables.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Options;
use super::app::HandlerErrors;
use super::oracle::{Counts, Problem};
use super::timeline::{Contention, Window};

/// Fault windows listed one by one in the summary; the rest are counted.
const WINDOWS_LISTED: usize = 12;

/// What a soak run saw.
#[derive(Debug)]
pub struct Report {
    pub options: Options,
    /// The storage, described.
    pub storage: String,
    /// The faults the storage gets when they are on, described.
    pub faults: String,
    /// From the start of the traffic to the end of the final checks.
    pub elapsed: Duration,
    pub windows: Vec<Window>,
    /// Times other processes used much of the machine's CPU.
    pub contention: Vec<Contention>,
    pub counts: Counts,
    pub handler_errors: Arc<HandlerErrors>,
}

impl Report {
    pub fn violations(&self) -> u64 {
        self.counts.total_violations()
    }

    /// No violation and no failure of the soak itself.
    pub fn passed(&self) -> bool {
        self.violations() == 0 && self.counts.harness_errors.is_empty()
    }

    pub fn requests_per_second(&self) -> f64 {
        let requests = self.counts.total_requests() as f64;
        requests / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// Time in which other processes contended for the CPU.
    fn contended(&self) -> Duration {
        self.contention
            .iter()
            .map(|contention| contention.length)
            .sum()
    }

    /// Time spent inside fault windows.
    fn faulted(&self) -> Duration {
        let elapsed = self.elapsed;
        self.windows
            .iter()
            .map(|window| window.end.unwrap_or(elapsed).saturating_sub(window.start))
            .sum()
    }

    /// A multi-line summary.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        self.describe_run(&mut out);
        self.describe_traffic(&mut out);
        self.describe_findings(&mut out);
        out
    }

    fn describe_run(&self, out: &mut String) {
        let options = &self.options;
        let _ = writeln!(
            out,
            "soak: {} for {} s, faults {}, seed {} ({} users, 1 writer + {} incrementers each)",
            options.backend.name(),
            options.duration.as_secs_f64(),
            if options.faults { "on" } else { "off" },
            options.seed,
            options.users,
            options.incrementers
        );
        let _ = writeln!(out, "storage: {}", self.storage);
        let faults = if options.faults { &self.faults } else { "off" };
        let _ = writeln!(out, "faults: {faults}");
        if let Some(breakage) = options.breakage {
            let _ = writeln!(out, "broken on purpose: {}", breakage.name());
        }
        let _ = writeln!(
            out,
            "fault windows: {}, {:.1} s in all",
            self.windows.len(),
            self.faulted().as_secs_f64()
        );
        if !self.windows.is_empty() {
            let listed: Vec<String> = self.windows.iter().take(WINDOWS_LISTED).map(span).collect();
            let more = self.windows.len().saturating_sub(WINDOWS_LISTED);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(out, "  s from start: {}{more}", listed.join(", "));
        }
        let peak = self.contention.iter().map(|c| c.share).reduce(f64::max);
        let _ = writeln!(
            out,
            "other processes: used half the machine's CPU or more for {:.1} s (peak {:.0}%)",
            self.contended().as_secs_f64(),
            peak.unwrap_or_default() * 100.0
        );
    }

    fn describe_traffic(&self, out: &mut String) {
        let counts = &self.counts;
        let _ = writeln!(
            out,
            "requests: {} in {:.1} s, {:.0}/s",
            counts.total_requests(),
            self.elapsed.as_secs_f64(),
            self.requests_per_second()
        );
        let _ = writeln!(out, "  by kind: {}", pairs(counts.requests.iter()));
        let _ = writeln!(out, "  by status: {}", pairs(counts.statuses.iter()));
        let _ = writeln!(
            out,
            "  5xx: {} inside fault windows (+{} s grace), {} outside",
            counts.server_errors_in_windows,
            self.options.grace.as_secs_f64(),
            self.outside_windows()
        );
        let errors = &self.handler_errors;
        let named = [
            ("storage timeout", &errors.timeout),
            ("storage", &errors.storage),
            ("poisoned", &errors.poisoned),
            ("contended", &errors.contended),
            ("gone", &errors.gone),
            ("other", &errors.other),
        ];
        let named = named.map(|(name, count)| (name, count.load(Ordering::Relaxed)));
        let _ = writeln!(
            out,
            "handler errors: {}",
            pairs(named.iter().map(|(n, c)| (n, c)))
        );
        let sessions = &counts.sessions;
        let _ = writeln!(
            out,
            "sessions: created {}, logins {}, logouts {}, lost to a failed login {}, unresolved {}",
            sessions.created,
            sessions.logins,
            sessions.logouts,
            sessions.lost_to_failed_login,
            sessions.unresolved
        );
        let increments = &counts.increments;
        let _ = writeln!(
            out,
            "increments (sessions whose final count was read): acknowledged {}, final {}, attempted {}",
            increments.acknowledged, increments.final_count, increments.attempted
        );
    }

    fn describe_findings(&self, out: &mut String) {
        let counts = &self.counts;
        let _ = write!(out, "violations: {}", self.violations());
        if !counts.violations.is_empty() {
            let by_problem = counts
                .violations
                .iter()
                .map(|(problem, count)| (problem.name(), count));
            let _ = write!(out, " ({})", pairs(by_problem));
        }
        out.push('\n');
        for violation in &counts.examples {
            let _ = writeln!(
                out,
                "  {:.3} s user {} {}: {}",
                violation.at.as_secs_f64(),
                violation.user,
                violation.problem.name(),
                violation.detail
            );
        }
        for error in &counts.harness_errors {
            let _ = writeln!(out, "soak failure: {error}");
        }
        let _ = writeln!(
            out,
            "result: {}",
            if self.passed() { "PASS" } else { "FAIL" }
        );
    }

    fn outside_windows(&self) -> u64 {
        let violations = &self.counts.violations;
        violations.get(&Problem::ServerError).copied().unwrap_or(0)
    }

    /// The column names of [`tsv`](Self::tsv).
    pub const TSV_HEADER: &str = "backend\tseconds\tfaults\tseed\trequests\treq_per_s\twindows\t5xx_in_windows\t5xx_outside\tviolations\tincr_acked\tincr_final\tincr_attempted\tcontended_s";

    /// One line of figures, tab-separated.
    pub fn tsv(&self) -> String {
        let options = &self.options;
        let counts = &self.counts;
        let increments = &counts.increments;
        format!(
            "{}\t{}\t{}\t{}\t{}\t{:.0}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.1}",
            options.backend.name(),
            options.duration.as_secs(),
            if options.faults { "on" } else { "off" },
            options.seed,
            counts.total_requests(),
            self.requests_per_second(),
            self.windows.len(),
            counts.server_errors_in_windows,
            self.outside_windows(),
            self.violations(),
            increments.acknowledged,
            increments.final_count,
            increments.attempted,
            self.contended().as_secs_f64()
        )
    }
}

/// `start-end` in seconds, `start-open` for a window still open.
fn span(window: &Window) -> String {
    let end = window.end.map_or_else(
        || "open".to_owned(),
        |end| format!("{:.1}", end.as_secs_f64()),
    );
    format!("{:.1}-{end}", window.start.as_secs_f64())
}

/// `name count, name count`.
fn pairs<'a, N: std::fmt::Display + 'a, C: std::fmt::Display + 'a>(
    pairs: impl Iterator<Item = (N, &'a C)>,
) -> String {
    pairs
        .map(|(name, count)| format!("{name} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}
