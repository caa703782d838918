//! The benchmark server: the app of `session_bench` with a chosen variant.
//!
//! ```text
//! server --variant NAME [--listen 127.0.0.1:0] [--redis URL] [--sqlite FILE]
//! ```
//!
//! Prints the bound address on its first line of output.

use std::net::SocketAddr;

use session_bench::{Backends, app};
use tokio::net::TcpListener;

struct Options {
    variant: String,
    listen: SocketAddr,
    backends: Backends,
}

fn options() -> Options {
    let mut options = Options {
        variant: String::new(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        backends: Backends::default(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--variant" => options.variant = value,
            "--listen" => options.listen = value.parse().expect("--listen ADDR"),
            "--redis" => options.backends.redis = value,
            "--sqlite" => options.backends.sqlite = value,
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

#[tokio::main]
async fn main() {
    let options = options();
    let app = app(&options.variant, &options.backends).await;
    let listener = TcpListener::bind(options.listen).await.expect("bind");
    println!("{}", listener.local_addr().expect("bound address"));
    axum::serve(listener, app).await.expect("serve");
}
