//! Writes the seed corpora under `fuzz/corpus/`, each seed made by the code
//! it feeds: records by the real encoder, configurations in the byte layout
//! `arbitrary` reads (checked by decoding them back).
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`

use std::fs;
use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use session_core::{Deadlines, Record, SessionData, Timestamp};
use session_fuzz::config::{FuzzConfig, SameSiteChoice};

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (target, seeds) in [
        ("cookie_header", cookie_headers()),
        ("record_decode", records()),
        ("set_cookie_config", configs()),
    ] {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes)?;
        }
    }
    Ok(())
}

/// An action byte (`0` read, `1` write, `2` destroy), then headers
/// separated by `\n`; `$ID` is the planted live session.
fn cookie_headers() -> Vec<(&'static str, Vec<u8>)> {
    let seeds: [(&str, &[u8]); 11] = [
        ("read-live", b"0__Host-id=$ID"),
        (
            "write-live-among-others",
            b"1theme=dark; __Host-id=$ID; lang=en",
        ),
        ("destroy-live", b"2__Host-id=$ID"),
        ("write-without-cookie", b"1"),
        ("quoted", b"0theme=\"dark; mode\"; __Host-id=\"$ID\""),
        (
            "duplicates-and-unknown",
            b"0__Host-id=$ID; __Host-id=$ID; __Host-id=ZnV6ei1zZWVkLXNlc3NpbA",
        ),
        (
            "two-headers-invalid-utf8",
            b"0lang=\xff\xfe; __Host-id=$ID\nx=\"unbalanced; __Host-id = $ID ;other=1",
        ),
        (
            "other-names",
            b"1ID=$ID; xid=$ID; __Host%2Did=$ID; i d=$ID; id=$ID; __host-id=$ID",
        ),
        (
            "malformed",
            b"2__Host-id=; __Host-id=malformed; __Host-id=\"abc\"; __Host-id",
        ),
        (
            "over-the-cap",
            b"0__Host-id=AAAAAAAAAAAAAAAAAAAAAA; __Host-id=BBBBBBBBBBBBBBBBBBBBBA; \
              __Host-id=CCCCCCCCCCCCCCCCCCCCCA; __Host-id=DDDDDDDDDDDDDDDDDDDDDA; \
              __Host-id=EEEEEEEEEEEEEEEEEEEEEA; __Host-id=$ID",
        ),
        ("empty-headers", b"1\n;\n=\n__Host-id"),
    ];
    seeds
        .into_iter()
        .map(|(name, bytes)| (name, bytes.to_vec()))
        .collect()
}

/// Records and bare session data, as the encoder writes them.
fn records() -> Vec<(&'static str, Vec<u8>)> {
    let at = Timestamp::from_unix_millis;
    let record = |data: SessionData, deadlines| {
        let mut record = Record::new(data, at(1_800_000_000_000), deadlines);
        record.version = 7;
        record.encode(usize::MAX).expect("seed records encode")
    };
    let deadlines = Deadlines::new(at(1_800_000_900_000), at(1_800_043_200_000));
    let ends = Deadlines::new(Timestamp::MAX, Timestamp::MAX);
    vec![
        ("record-empty", record(SessionData::new(), deadlines)),
        ("record-counter", record(data(&[("n", 1)]), deadlines)),
        ("record-mixed", record(mixed(), deadlines)),
        ("record-latest-deadlines", record(data(&[("n", -1)]), ends)),
        (
            "data-empty",
            SessionData::new().encode().expect("data encodes"),
        ),
        ("data-mixed", mixed().encode().expect("data encodes")),
    ]
}

fn data(values: &[(&str, i64)]) -> SessionData {
    let mut data = SessionData::new();
    for (key, value) in values {
        data.insert(key, value).expect("an i64 encodes");
    }
    data
}

/// Values of the kinds handlers store: text, lists, maps, floats, bytes.
fn mixed() -> SessionData {
    let mut data = data(&[("visits", 41)]);
    let encode = "values encode";
    data.insert("user", "ada").expect(encode);
    data.insert("roles", &["admin", "dev"]).expect(encode);
    data.insert("cart", &std::collections::BTreeMap::from([("tea", 2)]))
        .expect(encode);
    data.insert("ratio", &0.5_f64).expect(encode);
    data.insert("flag", &true).expect(encode);
    data.insert("ключ", &Option::<u8>::None).expect(encode);
    data
}

fn configs() -> Vec<(&'static str, Vec<u8>)> {
    let host = FuzzConfig {
        cookie_name: Some("__Host-id".into()),
        same_site: Some(SameSiteChoice::Strict),
        ..FuzzConfig::default()
    };
    let secure_prefix = FuzzConfig {
        cookie_name: Some("__Secure-sid".into()),
        domain: Some("example.com".into()),
        path: Some("/app".into()),
        persistent: Some(true),
        idle_timeout_ms: Some(5 * 60 * 1000),
        ..FuzzConfig::default()
    };
    let cross_site = FuzzConfig {
        same_site: Some(SameSiteChoice::None),
        secure: Some(true),
        persistent: Some(true),
        absolute_timeout_ms: Some(500 * 24 * 60 * 60 * 1000),
        idle_timeout_ms: Some(450 * 24 * 60 * 60 * 1000),
        ..FuzzConfig::default()
    };
    let insecure = FuzzConfig {
        cookie_name: Some("session".into()),
        secure: Some(false),
        same_site: Some(SameSiteChoice::Lax),
        domain: Some(".example.org".into()),
        path: Some("/a b".into()),
        ..FuzzConfig::default()
    };
    [
        ("defaults", FuzzConfig::default()),
        ("host-prefix", host),
        ("secure-prefix-persistent", secure_prefix),
        ("same-site-none-over-400-days", cross_site),
        ("insecure-leading-dot", insecure),
    ]
    .into_iter()
    .map(|(name, config)| (name, config_bytes(&config)))
    .collect()
}

/// The bytes `arbitrary` reads `config` from, checked by reading them back.
fn config_bytes(config: &FuzzConfig) -> Vec<u8> {
    let mut bytes = ArbitraryBytes::default();
    bytes.option(config.secure, |b, secure| b.front.push(u8::from(secure)));
    bytes.option(config.same_site, |b, choice| b.variant(choice as u64, 3));
    bytes.option(config.persistent, |b, on| b.front.push(u8::from(on)));
    for ms in [config.idle_timeout_ms, config.absolute_timeout_ms] {
        bytes.option(ms, |b, ms| b.front.extend(ms.to_le_bytes()));
    }
    for text in [&config.path, &config.domain, &config.cookie_name] {
        bytes.option(text.as_deref(), ArbitraryBytes::string);
    }
    let bytes = bytes.finish();
    let read = FuzzConfig::arbitrary_take_rest(Unstructured::new(&bytes));
    assert_eq!(read.ok().as_ref(), Some(config), "seed bytes {bytes:?}");
    bytes
}

/// `arbitrary`'s layout (1.x): fixed-size values from the front, and the
/// length of each string from the back, one byte while fewer than 257
/// bytes remain.
#[derive(Default)]
struct ArbitraryBytes {
    front: Vec<u8>,
    /// Lengths in the order they are read, which is from the end.
    back: Vec<u8>,
}

impl ArbitraryBytes {
    fn option<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        self.front.push(u8::from(value.is_some()));
        if let Some(value) = value {
            write(self, value);
        }
    }

    /// Variant `index` of `count`: derive picks `(u32 * count) >> 32`.
    fn variant(&mut self, index: u64, count: u64) {
        let pick = u32::try_from((index << 32).div_ceil(count)).expect("index < count");
        self.front.extend(pick.to_le_bytes());
    }

    fn string(&mut self, text: &str) {
        self.front.extend(text.as_bytes());
        self.back
            .push(u8::try_from(text.len()).expect("seed strings are short"));
    }

    fn finish(mut self) -> Vec<u8> {
        assert!(
            self.front.len() + self.back.len() <= 256,
            "one-byte lengths"
        );
        self.back.reverse();
        self.front.extend(self.back);
        self.front
    }
}
