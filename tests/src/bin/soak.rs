//! The chaos soak: mixed session traffic against an in-process server on
//! one backend, with faults injected, checked by an oracle
//! (`session_tests::soak` says what it checks).
//!
//! ```text
//! cargo run --release -p session-tests --bin soak -- --backend memory|redis|sqlite
//!     [--seconds 60] [--faults on|off] [--seed N] [--users 32] [--inflight 3]
//!     [--fault-every 15] [--fault-secs 3] [--grace 3]
//!     [--break lose-writes|ignore-deletes] [--tsv]
//! ```
//!
//! `--break` is the self-check: the same soak on deliberately broken
//! storage, which must fail. `--tsv` adds a header and a line of figures.
//! Exit status: 0 when the oracle found nothing, 1 when it found
//! violations (or the soak itself failed), 2 for bad arguments or a
//! backend that could not be set up.

use std::process::ExitCode;
use std::time::Duration;

use session_tests::soak::{self, Backend, Breakage, Options, Report};

const USAGE: &str = "usage: soak --backend memory|redis|sqlite [--seconds 60] [--faults on|off] \
    [--seed N] [--users 32] [--inflight 3] [--fault-every 15] [--fault-secs 3] [--grace 3] \
    [--break lose-writes|ignore-deletes] [--tsv]";

/// The command line.
struct Cli {
    options: Options,
    tsv: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Cli, String> {
    let mut backend = None;
    let mut options = Options::new(Backend::Memory, Duration::from_secs(60));
    let mut tsv = false;
    while let Some(arg) = args.next() {
        if arg == "--tsv" {
            tsv = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--backend" => {
                backend = Some(Backend::parse(&value).ok_or(format!("unknown backend {value:?}"))?);
            }
            "--seconds" => options.duration = seconds(&arg, &value)?,
            "--faults" => options.faults = on_off(&value)?,
            "--seed" => options.seed = number(&arg, &value)?,
            "--users" => options.users = number(&arg, &value)?,
            "--inflight" => options.incrementers = number(&arg, &value)?,
            "--fault-every" => options.fault_every = seconds(&arg, &value)?,
            "--fault-secs" => options.fault_length = seconds(&arg, &value)?,
            "--grace" => options.grace = seconds(&arg, &value)?,
            "--break" => {
                let breakage =
                    Breakage::parse(&value).ok_or(format!("unknown breakage {value:?}"))?;
                options.breakage = Some(breakage);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    options.backend = backend.ok_or("--backend is required")?;
    if options.fault_every <= options.fault_length {
        return Err("--fault-every must be longer than --fault-secs".to_owned());
    }
    Ok(Cli { options, tsv })
}

fn number<T: std::str::FromStr>(arg: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{arg}: {value:?} is not a number"))
}

fn seconds(arg: &str, value: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(number(arg, value)?)
        .map_err(|_| format!("{arg}: {value:?} is not a number of seconds"))
}

fn on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("--faults takes on or off, not {value:?}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match parse(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("soak: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let options = &cli.options;
    // Said first, so a run that has to be stopped can still be repeated.
    println!("soak: starting, seed {}", options.seed);
    let report = match soak::run(options).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("soak: {error}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.summary());
    if cli.tsv {
        println!("{}\n{}", Report::TSV_HEADER, report.tsv());
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
