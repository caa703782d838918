//! The conformance suite on the memory backend.

use session_memory::{MemoryHarness, MemoryStorage};

session_core::conformance_tests!(|| async { MemoryHarness::new(MemoryStorage::new()) });
