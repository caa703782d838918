//! The demo's command line, and the session settings it makes.

use std::net::SocketAddr;
use std::time::Duration;

use session_http::{ConfigError, SessionConfig};

/// The command line.
pub(crate) struct Options {
    pub(crate) listen: SocketAddr,
    pub(crate) store: String,
    pub(crate) insecure: bool,
    pub(crate) rotate_after: Option<Duration>,
    pub(crate) grace: Option<Duration>,
}

impl Options {
    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            store: "memory".to_owned(),
            insecure: false,
            rotate_after: None,
            grace: None,
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--listen" => {
                    let value = args.next().ok_or("--listen needs an address")?;
                    options.listen = value.parse().map_err(|_| {
                        format!("--listen: {value:?} is not an address like 127.0.0.1:3000")
                    })?;
                }
                "--store" => options.store = args.next().ok_or("--store needs a URL")?,
                "--insecure" => options.insecure = true,
                "--rotate-after" => options.rotate_after = Some(seconds(&arg, args.next())?),
                "--grace" => options.grace = Some(seconds(&arg, args.next())?),
                "--help" | "-h" => return Err(String::new()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(options)
    }

    /// The demo's session settings ([`app::config`](crate::app::config))
    /// with the options': `Secure` unless `--insecure`, rotation if
    /// `--rotate-after`.
    pub(crate) fn config(&self) -> Result<SessionConfig, ConfigError> {
        let mut config = crate::app::config().secure(!self.insecure);
        if let Some(after) = self.rotate_after {
            config = config.rotate_after(after);
        }
        if let Some(grace) = self.grace {
            config = config.rotation_grace(grace);
        }
        config.build()
    }
}

/// The whole seconds of `flag`'s value.
fn seconds(flag: &str, value: Option<String>) -> Result<Duration, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a number of seconds"))?;
    let seconds = value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a whole number of seconds"))?;
    Ok(Duration::from_secs(seconds))
}
