//! What one user's session may hold, from what the server acknowledged:
//! the oracle's expectations, and the check of a read against them.

use std::collections::BTreeMap;

use super::app::COUNTER;
use super::oracle::Problem;

/// A read of the whole session: key -> value.
pub(crate) type Dump = BTreeMap<String, String>;

/// The `key=value` lines of a `/dump` answer.
pub(crate) fn parse(body: &str) -> Dump {
    body.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The values a key may hold: the last acknowledged one (`None`: absent),
/// or one of the writes after it whose answer was an error (each may or
/// may not have happened).
#[derive(Debug, Default)]
struct Allowed {
    acknowledged: Option<String>,
    unknown: Vec<Option<String>>,
}

impl Allowed {
    fn allows(&self, value: Option<&String>) -> bool {
        self.acknowledged.as_ref() == value
            || self.unknown.iter().any(|unknown| unknown.as_ref() == value)
    }
}

/// One session's expected keys. Writes of a user are serialized, so at any
/// moment each key has exactly this set of possible values.
#[derive(Debug, Default)]
pub(crate) struct Model {
    keys: BTreeMap<String, Allowed>,
}

impl Model {
    /// The server acknowledged setting `key` to `value` (`None`: removed).
    pub(crate) fn acknowledged(&mut self, key: &str, value: Option<String>) {
        self.keys.insert(
            key.to_owned(),
            Allowed {
                acknowledged: value,
                unknown: Vec::new(),
            },
        );
    }

    /// Setting `key` to `value` got an error answer: it may have happened.
    pub(crate) fn failed(&mut self, key: &str, value: Option<String>) {
        self.keys
            .entry(key.to_owned())
            .or_default()
            .unknown
            .push(value);
    }

    /// What is wrong with `dump` (the counter aside).
    pub(crate) fn problems(&self, dump: &Dump) -> Vec<(Problem, String)> {
        let mut problems = Vec::new();
        for (key, allowed) in &self.keys {
            let value = dump.get(key);
            if !allowed.allows(value) {
                let detail = format!(
                    "{key} holds {value:?}; acknowledged {:?}, unknown outcomes {:?}",
                    allowed.acknowledged, allowed.unknown
                );
                problems.push((Problem::LostKey, detail));
            }
        }
        for (key, value) in dump {
            if key != COUNTER && !self.keys.contains_key(key) {
                let detail = format!("{key}={value} was never written to this session");
                problems.push((Problem::UnexpectedKey, detail));
            }
        }
        problems
    }
}

/// What the counter may be: at least every acknowledged increment (and at
/// least the highest count any of them answered), at most every attempted
/// one (an error answer may or may not have counted).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub(crate) acknowledged: u64,
    pub(crate) highest: u64,
    pub(crate) attempted: u64,
}

impl Bounds {
    /// What is wrong with `count`, if anything.
    pub(crate) fn problem(&self, count: u64) -> Option<String> {
        let floor = self.acknowledged.max(self.highest);
        (count < floor || count > self.attempted).then(|| {
            format!(
                "{COUNTER}={count}, acknowledged {} (highest answer {}), attempted {}",
                self.acknowledged, self.highest, self.attempted
            )
        })
    }
}

/// The counter in `dump` (absent: 0).
pub(crate) fn count(dump: &Dump) -> Result<u64, String> {
    match dump.get(COUNTER) {
        None => Ok(0),
        Some(count) => count
            .parse()
            .map_err(|_| format!("{COUNTER}={count} is not a count")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(pairs: &[(&str, &str)]) -> Dump {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn a_key_may_hold_its_acknowledged_value_or_a_failed_later_write() {
        let mut model = Model::default();
        model.acknowledged("k", Some("a".to_owned()));
        model.failed("k", Some("b".to_owned()));
        assert!(model.problems(&dump(&[("k", "a")])).is_empty());
        assert!(model.problems(&dump(&[("k", "b")])).is_empty());
        assert_eq!(model.problems(&dump(&[("k", "c")]))[0].0, Problem::LostKey);
        assert_eq!(model.problems(&dump(&[]))[0].0, Problem::LostKey);
        model.acknowledged("k", None);
        assert!(model.problems(&dump(&[])).is_empty());
        let stray = model.problems(&dump(&[("x", "1"), (COUNTER, "3")]));
        assert_eq!(stray.len(), 1);
        assert_eq!(stray[0].0, Problem::UnexpectedKey);
    }

    #[test]
    fn the_counter_lies_between_acknowledged_and_attempted() {
        let bounds = Bounds {
            acknowledged: 2,
            highest: 3,
            attempted: 5,
        };
        assert_eq!(bounds.problem(4), None);
        assert!(bounds.problem(2).is_some());
        assert!(bounds.problem(6).is_some());
        assert_eq!(count(&dump(&[])), Ok(0));
        assert_eq!(count(&dump(&[(COUNTER, "4")])), Ok(4));
        assert!(count(&dump(&[(COUNTER, "x")])).is_err());
    }
}
