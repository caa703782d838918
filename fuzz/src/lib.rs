//! What the fuzz targets share: a session layer over memory storage on a
//! fixed clock ([`app`]), the checks applied to its `Set-Cookie` headers
//! ([`check`]) and the fuzzed cookie configuration ([`config`]).

pub mod app;
pub mod check;
pub mod config;
