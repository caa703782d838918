//! Bytes per stored session in the memory backends, by a counting
//! allocator: 100 000 sessions each holding one integer, in this
//! workspace's `MemoryStorage` and in tower-sessions' moka store.
//!
//! ```text
//! cargo run --release --manifest-path bench/Cargo.toml --bin memory
//! ```

use std::time::Duration;

use session_bench::counting::{Counting, allocated};
use session_core::{Deadlines, Record, SessionData, SessionId, SessionStorage, Timestamp};
use session_memory::MemoryStorage;
use tower_sessions::session::{Id, Record as TsRecord};
use tower_sessions::session_store::SessionStore;

const SESSIONS: usize = 100_000;

#[global_allocator]
static GLOBAL: Counting = Counting;

async fn ours() -> isize {
    let before = allocated();
    // New sessions get a fifth of the bound (the probation segment): room
    // for all of them there.
    let storage = MemoryStorage::builder()
        .max_sessions(SESSIONS as u64 * 10)
        .build();
    let now = Timestamp::now();
    let deadlines = Deadlines::new(
        now.saturating_add(Duration::from_secs(3600)),
        now.saturating_add(Duration::from_secs(12 * 3600)),
    );
    for _ in 0..SESSIONS {
        let mut data = SessionData::new();
        data.insert("n", &1_i64).unwrap();
        let key = SessionId::generate().unwrap().key();
        let _ = storage
            .create(&key, &Record::new(data, now, deadlines), now)
            .await
            .unwrap();
    }
    settle().await;
    let used = allocated() - before;
    drop(storage);
    used
}

async fn tower_sessions_moka() -> isize {
    let before = allocated();
    let store = tower_sessions_moka_store::MokaStore::new(Some(SESSIONS as u64 * 2));
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    for _ in 0..SESSIONS {
        let mut record = TsRecord {
            id: Id::default(),
            data: [("n".to_owned(), serde_json::json!(1))]
                .into_iter()
                .collect(),
            expiry_date: expiry,
        };
        store.create(&mut record).await.unwrap();
    }
    settle().await;
    let used = allocated() - before;
    drop(store);
    used
}

/// Gives moka's maintenance (run on later operations and on its own
/// schedule) a moment, so pending bookkeeping is not counted.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ours = ours().await;
    let theirs = tower_sessions_moka().await;
    let per = |bytes: isize| bytes as f64 / SESSIONS as f64;
    println!("sessions\t{SESSIONS}");
    println!("ours-memory\t{:.0} bytes/session", per(ours));
    println!("ts-moka\t{:.0} bytes/session", per(theirs));
}
