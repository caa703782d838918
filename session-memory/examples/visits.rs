//! The original demo, at the storage level: the first visit says
//! `First time`, each later visit shows when the previous one was.
//!
//! ```text
//! cargo run -p session-memory --example visits
//! ```

use std::time::Duration;

use session_core::{
    ChangeSet, Deadlines, Record, SessionData, SessionId, SessionStorage, Timestamp, Value,
};
use session_memory::MemoryStorage;

const IDLE: Duration = Duration::from_secs(30 * 60);
const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let storage = MemoryStorage::new();
    // What the browser's cookie would hold; storage only ever sees its hash.
    let id = SessionId::generate()?;
    let key = id.key();

    for visit in 1..=3 {
        let now = Timestamp::now();
        let deadlines = Deadlines::new(now.saturating_add(IDLE), now.saturating_add(ABSOLUTE));
        let message = match storage.load(&key, now).await? {
            None => {
                let mut data = SessionData::new();
                data.insert("now", &now.as_unix_millis())?;
                let _ = storage
                    .create(&key, &Record::new(data, now, deadlines), now)
                    .await?;
                "First time".to_owned()
            }
            Some(record) => {
                let previous: Option<u64> = record.data.get("now")?;
                let mut changes = ChangeSet::new();
                changes.insert("now", Value::encode(&now.as_unix_millis())?);
                let _ = storage.update(&key, &changes, deadlines, now).await?;
                format!(
                    "The time was {} ms after the Unix epoch",
                    previous.unwrap_or_default()
                )
            }
        };
        println!("visit {visit} (session key {key}): {message}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}
