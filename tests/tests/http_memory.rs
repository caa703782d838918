//! The HTTP end-to-end suite on the memory backend.

use session_memory::{MemoryHarness, MemoryStorage};

session_tests::http_suite!(|| async { MemoryHarness::new(MemoryStorage::new()) });
