//! The load generator: N virtual users, each with its own keep-alive
//! connection(s) and session cookie, in a closed loop; a warm-up, then a
//! measured window.
//!
//! ```text
//! load --addr 127.0.0.1:PORT[,127.0.0.1:PORT2] --route /counter [--users 64]
//!      [--inflight 1] [--warmup 2] [--duration 5] [--server-pid PID[,PID2]]
//!      [--redis-port PORT]
//! ```
//!
//! Prints one TSV line: route, users, inflight, requests/s, p50 µs, p99 µs,
//! errors, wrong answers, server CPU µs per request, Redis round trips per
//! request, acknowledged increments, lost increments, 503 answers (of the
//! errors). With `--inflight K` above 1, K connections share each session:
//! the final counter is checked against the increments the server
//! acknowledged. With several addresses (server processes on one store),
//! each session's connections take turns at the addresses, so every
//! session is written by every process; the server CPU is the sum over the
//! given pids.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Options {
    addrs: Vec<SocketAddr>,
    route: String,
    users: usize,
    inflight: usize,
    warmup: Duration,
    duration: Duration,
    server_pids: Vec<u32>,
    redis_port: Option<u16>,
}

fn options() -> Options {
    let mut options = Options {
        addrs: vec![SocketAddr::from(([127, 0, 0, 1], 3000))],
        route: "/counter".to_owned(),
        users: 64,
        inflight: 1,
        warmup: Duration::from_secs(2),
        duration: Duration::from_secs(5),
        server_pids: Vec::new(),
        redis_port: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        let seconds = |value: &str| Duration::from_secs_f64(value.parse().expect("seconds"));
        match arg.as_str() {
            "--addr" => options.addrs = list(&value, "--addr"),
            "--route" => options.route = value,
            "--users" => options.users = value.parse().expect("--users"),
            "--inflight" => options.inflight = value.parse().expect("--inflight"),
            "--warmup" => options.warmup = seconds(&value),
            "--duration" => options.duration = seconds(&value),
            "--server-pid" => options.server_pids = list(&value, "--server-pid"),
            "--redis-port" => options.redis_port = Some(value.parse().expect("--redis-port")),
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

/// A comma-separated list of `what`'s values.
fn list<T: std::str::FromStr>(value: &str, what: &str) -> Vec<T> {
    value
        .split(',')
        .map(|item| item.parse().unwrap_or_else(|_| panic!("{what}: {item}")))
        .collect()
}

/// The servers' CPU time so far, summed.
fn cpu_times(pids: &[u32]) -> Option<Duration> {
    (!pids.is_empty()).then(|| pids.iter().copied().map(cpu_time).sum())
}

async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// One request: status, the session cookie it set, the body.
async fn get(
    sender: &mut SendRequest<Empty<Bytes>>,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(path).header(header::HOST, "bench");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    sender.ready().await.expect("connection ready");
    let response = sender
        .send_request(request.body(Empty::new()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, cookie, String::from_utf8_lossy(&body).into_owned())
}

/// Server CPU time so far (user + system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime; the name was field 2), in
    // clock ticks of 10 ms.
    let tick = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = tick(11) + tick(12);
    Duration::from_millis(ticks * 10)
}

/// Redis round trips so far: counted by the server's storage where it
/// offers them (`/__round-trips`), else the commands Redis processed (the
/// same where no scripts run: a script's own commands count there too).
async fn redis_round_trips(addr: SocketAddr, port: u16) -> u64 {
    let mut sender = connect(addr).await;
    let (status, _, body) = get(&mut sender, "/__round-trips", None).await;
    if status == StatusCode::OK {
        return body.trim().parse().unwrap_or(0);
    }
    // INFO itself is one command.
    let commands = redis_info(port, "stats", &["total_commands_processed"]).await;
    (commands as u64).saturating_sub(1)
}

/// Redis server CPU time so far (user + system, main thread and children).
async fn redis_cpu(port: u16) -> Duration {
    let seconds = redis_info(port, "cpu", &["used_cpu_sys", "used_cpu_user"]).await;
    Duration::from_secs_f64(seconds)
}

/// The sum of `fields` in `section` of the Redis server's `INFO`.
async fn redis_info(port: u16, section: &str, fields: &[&str]) -> f64 {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("redis");
    let command = format!("*2\r\n$4\r\nINFO\r\n${}\r\n{section}\r\n", section.len());
    stream.write_all(command.as_bytes()).await.expect("INFO");
    // A bulk string: `$<length>\r\n<text>\r\n`.
    let mut reply = Vec::new();
    let mut buffer = [0; 4096];
    while !complete_bulk(&reply) {
        let read = stream.read(&mut buffer).await.expect("INFO reply");
        if read == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&reply);
    fields
        .iter()
        .filter_map(|field| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{field}:")))
                .and_then(|value| value.trim().parse::<f64>().ok())
        })
        .sum()
}

/// Whether `reply` holds a whole RESP bulk string.
fn complete_bulk(reply: &[u8]) -> bool {
    let Some(header_end) = reply.windows(2).position(|pair| pair == b"\r\n") else {
        return false;
    };
    let length: usize = String::from_utf8_lossy(&reply[1..header_end])
        .parse()
        .unwrap_or(0);
    reply.len() >= header_end + 2 + length + 2
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    errors: AtomicU64,
    /// Errors that were 503s (for `/counter-atomic`: `Contended`, or a
    /// failed store).
    unavailable: AtomicU64,
    wrong: AtomicU64,
}

#[tokio::main]
async fn main() {
    let options = Arc::new(options());
    let creates_sessions = options.route == "/new";
    let first = options.addrs[0];
    // Each user's session, created before the clock starts.
    let mut cookies = Vec::new();
    if !creates_sessions {
        for _ in 0..options.users {
            let mut sender = connect(first).await;
            let (status, cookie, _) = get(&mut sender, "/new", None).await;
            assert_eq!(status, StatusCode::OK, "creating a session");
            // `bare` sets none: its users send no cookie.
            cookies.push(cookie.unwrap_or_default());
        }
    }
    let start = Instant::now() + options.warmup;
    let end = start + options.duration;
    let counts = Arc::new(Counts::default());
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..options.users).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for user in 0..options.users {
        for connection in 0..options.inflight {
            let addr = options.addrs[(user + connection) % options.addrs.len()];
            let (options, counts, acknowledged) =
                (options.clone(), counts.clone(), acknowledged.clone());
            let cookie = cookies
                .get(user)
                .cloned()
                .filter(|cookie| !cookie.is_empty());
            tasks.push(tokio::spawn(async move {
                let mut sender = connect(addr).await;
                let mut latencies = Vec::new();
                let mut expected = 2_i64;
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let (status, _, body) =
                        get(&mut sender, &options.route, cookie.as_deref()).await;
                    let done = Instant::now();
                    let measured = sent >= start && done < end;
                    if status == StatusCode::OK {
                        if options.route.starts_with("/counter") && cookie.is_some() {
                            acknowledged[user].fetch_add(1, Ordering::Relaxed);
                            if options.inflight == 1 {
                                if body.trim().parse::<i64>().ok() != Some(expected) && measured {
                                    counts.wrong.fetch_add(1, Ordering::Relaxed);
                                }
                                expected = body.trim().parse::<i64>().unwrap_or(expected) + 1;
                            }
                        }
                    } else if measured {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                        if status == StatusCode::SERVICE_UNAVAILABLE {
                            counts.unavailable.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if measured {
                        counts.requests.fetch_add(1, Ordering::Relaxed);
                        latencies.push(
                            u32::try_from(done.duration_since(sent).as_micros())
                                .unwrap_or(u32::MAX),
                        );
                    }
                }
                latencies
            }));
        }
    }
    tokio::time::sleep_until(start.into()).await;
    let cpu_before = cpu_times(&options.server_pids);
    let redis_before = match options.redis_port {
        Some(port) => Some((redis_round_trips(first, port).await, redis_cpu(port).await)),
        None => None,
    };
    tokio::time::sleep_until(end.into()).await;
    let cpu_after = cpu_times(&options.server_pids);
    let redis_after = match options.redis_port {
        Some(port) => Some((redis_round_trips(first, port).await, redis_cpu(port).await)),
        None => None,
    };
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("user task"));
    }
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(index).copied().unwrap_or(0)
    };
    let requests = counts.requests.load(Ordering::Relaxed);
    let seconds = options.duration.as_secs_f64();
    let cpu_per_request = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) if requests > 0 => {
            (after - before).as_secs_f64() * 1e6 / requests as f64
        }
        _ => f64::NAN,
    };
    let (commands_per_request, redis_cpu_per_request) = match (redis_before, redis_after) {
        (Some(before), Some(after)) if requests > 0 => (
            (after.0 - before.0) as f64 / requests as f64,
            (after.1 - before.1).as_secs_f64() * 1e6 / requests as f64,
        ),
        _ => (f64::NAN, f64::NAN),
    };
    // Lost increments: the final counter against 1 + acknowledged ones.
    let (mut acked, mut lost) = (0_u64, 0_i64);
    if options.route.starts_with("/counter") && cookies.iter().all(|cookie| !cookie.is_empty()) {
        let mut sender = connect(first).await;
        for (user, cookie) in cookies.iter().enumerate() {
            let (_, _, body) = get(&mut sender, "/read", Some(cookie)).await;
            let final_value: i64 = body.trim().parse().unwrap_or(0);
            let user_acked = acknowledged[user].load(Ordering::Relaxed);
            acked += user_acked;
            lost += (1 + user_acked as i64 - final_value).max(0);
        }
    }
    println!(
        "{}\t{}\t{}\t{:.0}\t{}\t{}\t{}\t{}\t{:.2}\t{:.2}\t{:.2}\t{}\t{}\t{}",
        options.route,
        options.users,
        options.inflight,
        requests as f64 / seconds,
        percentile(0.5),
        percentile(0.99),
        counts.errors.load(Ordering::Relaxed),
        counts.wrong.load(Ordering::Relaxed),
        cpu_per_request,
        commands_per_request,
        redis_cpu_per_request,
        acked,
        lost,
        counts.unavailable.load(Ordering::Relaxed)
    );
}
