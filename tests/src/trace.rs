//! Capturing every tracing event, at every level and target.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

/// A writer appending to a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs `body` on this thread with every event, TRACE and up from every
/// target, written as text; returns that text and what `body` returned.
pub fn capture<T>(body: impl FnOnce() -> T) -> (String, T) {
    let buffer = Buffer::default();
    let subscriber = writing_to(&buffer);
    let returned = tracing::subscriber::with_default(subscriber, || {
        // Other tests' threads may have registered callsites while this
        // subscriber was being installed, caching "never" for them: make
        // every callsite ask the subscribers again.
        tracing::callsite::rebuild_interest_cache();
        body()
    });
    let text = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    (text, returned)
}

/// Captures every event of this process from now on, TRACE and up from
/// every target and every thread (sqlx, say, logs statements from its
/// worker threads), written as text; the closure returned reads what has
/// been written so far. A process has one such subscriber: for a test
/// binary of one test.
pub fn capture_process() -> impl Fn() -> String {
    let buffer = Buffer::default();
    tracing::subscriber::set_global_default(writing_to(&buffer)).unwrap();
    move || String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned()
}

/// A subscriber writing every event, TRACE and up, as text to `buffer`.
fn writing_to(buffer: &Buffer) -> impl tracing::Subscriber + Send + Sync + use<> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(buffer.clone())
        .finish()
}
