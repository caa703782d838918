//! A TCP proxy in front of a Redis server that loses replies on purpose.
//!
//! It forwards every command and every reply unchanged. Armed, it picks
//! the first successful reply to a matching command (an error reply such
//! as `NOSCRIPT` means the command did not run, so it passes) and either
//! drops it and closes the client's connection — the server ran the
//! command, the client never hears back, as when a connection breaks at
//! the worst moment — or holds it until released, as a slow network would.
//!
//! Several proxies (one per cluster node) can share one [`Faults`]: a test
//! arms them once and counts what fired over all of them. Every command
//! whose reply was forwarded is logged, so a test waits for a step to have
//! happened instead of sleeping.
//!
//! Replies are split by the RESP2 framing redis-rs speaks by default (and
//! the RESP3 types without attributes).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

/// A command as sent: its name and arguments.
pub type Command = Vec<Vec<u8>>;

/// Which commands a fault applies to.
pub type Matcher = Arc<dyn Fn(&[Vec<u8>]) -> bool + Send + Sync>;

/// What happens to the reply a fault picked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Drop,
    Hold,
}

struct Fault {
    action: Action,
    matcher: Matcher,
}

#[derive(Default)]
struct State {
    fault: Option<Fault>,
    dropped: u64,
    held: u64,
    replied: Vec<Command>,
}

/// The faults of one or more proxies, and what they saw.
pub struct Faults {
    state: Mutex<State>,
    changed: Notify,
    released: Semaphore,
}

impl Faults {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            changed: Notify::new(),
            released: Semaphore::new(0),
        })
    }

    /// Drops the next successful reply to a command `matcher` accepts, and
    /// closes that client connection.
    pub fn drop_reply(&self, matcher: impl Fn(&[Vec<u8>]) -> bool + Send + Sync + 'static) {
        self.arm(Action::Drop, Arc::new(matcher));
    }

    /// Holds the next successful reply to a command `matcher` accepts until
    /// [`release`](Self::release).
    pub fn hold_reply(&self, matcher: impl Fn(&[Vec<u8>]) -> bool + Send + Sync + 'static) {
        self.arm(Action::Hold, Arc::new(matcher));
    }

    /// Lets a held reply go on to the client.
    pub fn release(&self) {
        self.released.add_permits(1);
    }

    /// Replies dropped so far.
    pub fn dropped(&self) -> u64 {
        self.state().dropped
    }

    /// Replies held so far.
    pub fn held(&self) -> u64 {
        self.state().held
    }

    /// Waits until a reply is being held.
    pub async fn wait_held(&self) {
        self.wait_until(|state| state.held > 0).await;
    }

    /// Waits until a reply to a command `matcher` accepts was forwarded.
    pub async fn wait_replied(&self, matcher: impl Fn(&[Vec<u8>]) -> bool + Send + Sync) {
        self.wait_until(|state| state.replied.iter().any(|command| matcher(command)))
            .await;
    }

    fn arm(&self, action: Action, matcher: Matcher) {
        self.state().fault = Some(Fault { action, matcher });
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    async fn wait_until(&self, done: impl Fn(&State) -> bool + Send) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so a change in between wakes us.
            changed.as_mut().enable();
            if done(&self.state()) {
                return;
            }
            changed.await;
        }
    }

    /// Whether the armed fault applies to `command`.
    fn matches(&self, command: &[Vec<u8>]) -> bool {
        self.state()
            .fault
            .as_ref()
            .is_some_and(|fault| (fault.matcher)(command))
    }

    /// What to do with a successful reply to a matching command: the armed
    /// fault fires (once) if it still applies.
    fn fire(&self, command: &[Vec<u8>]) -> Option<Action> {
        let mut state = self.state();
        let fault = state.fault.take_if(|fault| (fault.matcher)(command))?;
        match fault.action {
            Action::Drop => state.dropped += 1,
            Action::Hold => state.held += 1,
        }
        drop(state);
        self.changed.notify_waiters();
        Some(fault.action)
    }

    fn log_reply(&self, command: Command) {
        self.state().replied.push(command);
        self.changed.notify_waiters();
    }
}

/// One proxy, listening until dropped.
pub struct ReplyDropper {
    port: u16,
    task: JoinHandle<()>,
}

impl ReplyDropper {
    /// A proxy on a free loopback port to the server at `upstream`.
    pub fn start(upstream: SocketAddr, faults: Arc<Faults>) -> Self {
        Self::serve(reserve_port(), upstream, faults)
    }

    /// A proxy on `listener` (reserved before the server started, so the
    /// server can announce it) to the server at `upstream`.
    pub fn serve(
        listener: std::net::TcpListener,
        upstream: SocketAddr,
        faults: Arc<Faults>,
    ) -> Self {
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, faults.clone()));
            }
        });
        Self { port, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for ReplyDropper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback listener on a free port.
pub fn reserve_port() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}

/// A command sent upstream whose reply has not come back yet.
struct Pending {
    command: Command,
    matched: bool,
}

/// Forwards one client connection until either side closes it or a fault
/// drops a reply.
async fn relay(mut client: TcpStream, upstream: SocketAddr, faults: Arc<Faults>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut requests, mut replies) = (Vec::new(), Vec::new());
    let mut pending = VecDeque::new();
    let (mut from_client, mut from_server) = ([0; 16 * 1024], [0; 16 * 1024]);
    loop {
        tokio::select! {
            read = client.read(&mut from_client) => {
                let Ok(n @ 1..) = read else { return };
                requests.extend_from_slice(&from_client[..n]);
                for command in split_frames(&mut requests) {
                    let command = parse_command(&command);
                    let matched = faults.matches(&command);
                    pending.push_back(Pending { command, matched });
                }
                if server.write_all(&from_client[..n]).await.is_err() {
                    return;
                }
            }
            read = server.read(&mut from_server) => {
                let Ok(n @ 1..) = read else { return };
                replies.extend_from_slice(&from_server[..n]);
                for reply in split_frames(&mut replies) {
                    let Some(sent) = pending.pop_front() else { return };
                    if !deliver(&mut client, reply, sent, &faults).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Passes one reply on, or not; `false` when the connection is to close.
async fn deliver(client: &mut TcpStream, reply: Vec<u8>, sent: Pending, faults: &Faults) -> bool {
    let ran = !reply.starts_with(b"-");
    match (sent.matched && ran)
        .then(|| faults.fire(&sent.command))
        .flatten()
    {
        Some(Action::Drop) => return false,
        Some(Action::Hold) => faults.released.acquire().await.unwrap().forget(),
        None => {}
    }
    if client.write_all(&reply).await.is_err() {
        return false;
    }
    faults.log_reply(sent.command);
    true
}

/// Takes every complete RESP frame off the front of `buffer`.
fn split_frames(buffer: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    while let Some(end) = frame_end(buffer, 0) {
        frames.push(buffer.drain(..end).collect());
    }
    frames
}

/// Where the RESP frame starting at `at` ends, if it is complete.
fn frame_end(buffer: &[u8], at: usize) -> Option<usize> {
    let line = at
        + buffer
            .get(at..)?
            .windows(2)
            .position(|pair| pair == b"\r\n")?;
    let next = line + 2;
    let count = || -> i64 {
        std::str::from_utf8(&buffer[at + 1..line])
            .unwrap()
            .parse()
            .unwrap()
    };
    match buffer[at] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(next),
        b'$' | b'=' | b'!' => match usize::try_from(count()) {
            Ok(len) => (buffer.len() >= next + len + 2).then_some(next + len + 2),
            Err(_) => Some(next), // a null bulk string
        },
        b'*' | b'~' | b'>' => elements_end(buffer, next, count()),
        b'%' => elements_end(buffer, next, 2 * count()),
        other => panic!("reply_dropper: unknown RESP type {:?}", char::from(other)),
    }
}

/// Where `count` frames starting at `at` end (a negative count is a null).
fn elements_end(buffer: &[u8], at: usize, count: i64) -> Option<usize> {
    (0..count.max(0)).try_fold(at, |at, _| frame_end(buffer, at))
}

/// The arguments of a command frame (an array of bulk strings).
fn parse_command(frame: &[u8]) -> Command {
    let mut arguments = Vec::new();
    let mut rest = frame;
    while let Some(start) = rest.iter().position(|&byte| byte == b'$') {
        let line = start + rest[start..].windows(2).position(|p| p == b"\r\n").unwrap();
        let len: usize = std::str::from_utf8(&rest[start + 1..line])
            .unwrap()
            .parse()
            .unwrap();
        arguments.push(rest[line + 2..line + 2 + len].to_vec());
        rest = &rest[line + 2 + len + 2..];
    }
    arguments
}

/// Whether `command` is `name` (any case) on `key`, the key being the
/// argument at `key_at`.
pub fn is_command_on(command: &[Vec<u8>], name: &str, key_at: usize, key: &str) -> bool {
    command
        .first()
        .is_some_and(|first| first.eq_ignore_ascii_case(name.as_bytes()))
        && command.get(key_at).is_some_and(|arg| arg == key.as_bytes())
}

/// Whether `command` runs a script on `key` (`EVALSHA sha 1 key ...`).
pub fn is_script_on(command: &[Vec<u8>], key: &str) -> bool {
    is_command_on(command, "EVALSHA", 3, key)
}
