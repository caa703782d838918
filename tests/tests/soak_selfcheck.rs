//! The chaos soak's self-check, in process on memory storage for a few
//! seconds: a clean run finds nothing, and each deliberately broken
//! storage is caught by the rule it breaks. (The full soak on every
//! backend, with faults, is the `soak` binary.)

#![allow(clippy::unwrap_used)] // test set-up: a failed unwrap is a failed test

use std::time::Duration;

use session_tests::soak::{self, Backend, Breakage, Options, Problem, Report};

async fn soak(breakage: Option<Breakage>) -> Report {
    let mut options = Options::new(Backend::Memory, Duration::from_secs(3));
    options.users = 8;
    options.seed = 8;
    options.breakage = breakage;
    let report = soak::run(&options).await.unwrap();
    println!("{}", report.summary());
    report
}

fn found(report: &Report, problem: Problem) -> u64 {
    report.counts.violations.get(&problem).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_run_finds_no_violations() {
    let report = soak(None).await;
    assert!(report.passed(), "{}", report.summary());
    let counts = &report.counts;
    // The run really did each kind of request.
    for kind in [
        "read",
        "write",
        "remove",
        "increment",
        "login",
        "logout",
        "old-id",
    ] {
        assert!(
            counts.requests.get(kind).copied().unwrap_or(0) > 0,
            "no {kind}"
        );
    }
    // Memory never fails: every increment was acknowledged and counted.
    let increments = counts.increments;
    assert!(increments.acknowledged > 0);
    assert_eq!(increments.acknowledged, increments.final_count);
    assert_eq!(increments.final_count, increments.attempted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_that_loses_writes_is_caught() {
    let report = soak(Some(Breakage::LoseWrites)).await;
    assert!(!report.passed());
    // An increment acknowledged but never written leaves the counter below
    // the acknowledged count at the session's final read.
    assert!(found(&report, Problem::Counter) > 0, "{}", report.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_that_ignores_deletes_is_caught() {
    let report = soak(Some(Breakage::IgnoreDeletes)).await;
    assert!(!report.passed());
    assert!(
        found(&report, Problem::Resurrected) > 0,
        "{}",
        report.summary()
    );
}
