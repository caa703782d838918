//! The session cookie: reading it from requests ([`parse`]), writing it
//! ([`render`]), and the rules for when a response carries it and what
//! caching headers follow ([`rules`]). A change to the cookie rules belongs
//! here and nowhere else; what a configuration may say is checked when it
//! is built (`config`).

pub(crate) mod parse;
pub(crate) mod render;
pub(crate) mod rules;
