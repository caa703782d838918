//! Reading a suite's own source, for the checks that every test of a suite
//! is registered where it is defined (this suite's and the HTTP suite's in
//! the workspace's tests). Not a stable API.

use std::collections::BTreeSet;

/// The tests a suite file defines: each `pub async fn` whose signature
/// contains `marker` (the harness parameter), with whether a `///` doc
/// precedes it.
pub fn tests_in(source: &str, marker: &str) -> Vec<(String, bool)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut tests = Vec::new();
    let mut offset = 0;
    for (index, line) in lines.iter().enumerate() {
        let start = offset;
        offset += line.len() + 1;
        let Some(rest) = line.strip_prefix("pub async fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let signature = &source[start..];
        let signature = &signature[..signature.find('{').unwrap_or(signature.len())];
        if !signature.contains(marker) {
            continue;
        }
        let documented = lines[..index]
            .iter()
            .rev()
            .find(|line| !line.starts_with("#["))
            .is_some_and(|line| line.starts_with("///"));
        tests.push((name, documented));
    }
    tests
}

/// The body of `macro_rules! NAME { ... }` in `source`, if defined.
pub fn macro_body<'a>(source: &'a str, name: &str) -> Option<&'a str> {
    let start = source.find(&format!("macro_rules! {name} {{"))?;
    let body = &source[start..];
    Some(&body[..body.find("\n}\n")?])
}

/// The identifiers of `text`.
pub fn words(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .collect()
}
