//! Stored bytes, as a corrupt or hostile store could hand them back:
//! decoding never panics, and whatever decodes survives a round trip
//! unchanged, as a `Record` and as `SessionData` alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_core::{Record, SessionData};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(record) = Record::decode(bytes) {
        // No limit: the size cap is not what this checks.
        let encoded = record.encode(usize::MAX).expect("a decoded record encodes");
        let again = Record::decode(&encoded).expect("an encoded record decodes");
        assert_eq!(again, record);
        assert_eq!(
            again.encode(usize::MAX).ok(),
            Some(encoded),
            "encoding is stable"
        );
    }
    if let Ok(data) = SessionData::decode(bytes) {
        let encoded = data.encode().expect("decoded data encodes");
        let again = SessionData::decode(&encoded).expect("encoded data decodes");
        assert_eq!(again, data);
        assert_eq!(again.encode().ok(), Some(encoded), "encoding is stable");
    }
});
