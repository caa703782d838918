//! Change sets: what one request did to a session, applied by storage
//! atomically to the record as it is at that moment.

use std::collections::{BTreeMap, BTreeSet};

use crate::{SessionData, Value};

/// The changes one request made to a session, and the conditions under which
/// they may be written.
///
/// Storage applies a change set atomically and all-or-nothing to the record
/// as it is *now*, not to the copy the request read. So concurrent requests
/// that change different names all keep their changes, and the same name
/// without a condition is last writer wins. A condition ([`require`]) makes
/// the write depend on what the request read: if it no longer holds, nothing
/// is written and the current values are reported.
///
/// Applying: if [`clear`] was called, all stored values are dropped first;
/// then the removals, then the inserts. Later calls override earlier ones on
/// the same name, as they would on a map.
///
/// ```
/// use session_core::{ChangeSet, SessionData, Value};
///
/// let mut stored = SessionData::new();
/// stored.insert("n", &1)?;
/// stored.insert("theme", "dark")?;
///
/// let mut changes = ChangeSet::new();
/// changes.require("n", Some(Value::encode(&1)?)); // only if n is still 1
/// changes.insert("n", Value::encode(&2)?);
/// changes.remove("theme");
///
/// changes.check(&stored).expect("n is still 1");
/// changes.apply(&mut stored);
/// assert_eq!(stored.get::<i32>("n")?, Some(2));
/// assert!(!stored.contains("theme"));
///
/// // Applied again, the condition no longer holds: the conflict reports n = 2.
/// let conflict = changes.check(&stored).unwrap_err();
/// assert_eq!(conflict.value("n").map(|v| v.decode::<i32>()).transpose()?, Some(2));
/// # Ok::<(), session_core::Error>(())
/// ```
///
/// [`require`]: ChangeSet::require
/// [`clear`]: ChangeSet::clear
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    cleared: bool,
    inserts: BTreeMap<String, Value>,
    removals: BTreeSet<String>,
    conditions: BTreeMap<String, Option<Value>>,
}

impl ChangeSet {
    /// An empty change set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        let name = name.into();
        self.removals.remove(&name);
        self.inserts.insert(name, value);
    }

    /// Removes `name`.
    pub fn remove(&mut self, name: impl Into<String>) {
        let name = name.into();
        self.inserts.remove(&name);
        self.removals.insert(name);
    }

    /// Removes every stored value, including ones other requests wrote;
    /// changes recorded earlier in this set are dropped, later ones apply.
    pub fn clear(&mut self) {
        self.inserts.clear();
        self.removals.clear();
        self.cleared = true;
    }

    /// Writes only if `name` still holds exactly `expected` (encoded bytes),
    /// or is still absent when `expected` is `None`.
    pub fn require(&mut self, name: impl Into<String>, expected: Option<Value>) {
        self.conditions.insert(name.into(), expected);
    }

    /// Whether the set changes nothing (conditions alone change nothing).
    pub fn is_empty(&self) -> bool {
        !self.cleared && self.inserts.is_empty() && self.removals.is_empty()
    }

    /// Whether the set drops all stored values before its other changes.
    pub fn is_cleared(&self) -> bool {
        self.cleared
    }

    /// The names set, with their new values.
    pub fn inserts(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.inserts
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }

    /// The names removed.
    pub fn removals(&self) -> impl Iterator<Item = &str> {
        self.removals.iter().map(String::as_str)
    }

    /// The conditions: each name with the value it must hold (`None`: absent).
    pub fn conditions(&self) -> impl Iterator<Item = (&str, Option<&Value>)> {
        self.conditions
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_ref()))
    }

    /// Checks the conditions against `current`.
    ///
    /// # Errors
    ///
    /// A [`Conflict`] holding the current value of every conditioned name if
    /// any condition does not hold.
    pub fn check(&self, current: &SessionData) -> Result<(), Conflict> {
        let holds = self
            .conditions
            .iter()
            .all(|(name, expected)| current.get_value(name) == expected.as_ref());
        if holds {
            return Ok(());
        }
        let values = self
            .conditions
            .keys()
            .map(|name| (name.clone(), current.get_value(name).cloned()))
            .collect();
        Err(Conflict { values })
    }

    /// Applies the changes to `data` (conditions are not checked here).
    pub fn apply(&self, data: &mut SessionData) {
        if self.cleared {
            data.clear();
        }
        for name in &self.removals {
            data.remove(name);
        }
        for (name, value) in &self.inserts {
            data.insert_value(name.clone(), value.clone());
        }
    }
}

/// The current values of the conditioned names, reported when a condition of
/// a [`ChangeSet`] no longer held and nothing was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conflict {
    values: BTreeMap<String, Option<Value>>,
}

impl Conflict {
    /// A conflict reporting these current values (for backends that check
    /// conditions themselves, such as in a server-side script).
    pub fn new(values: impl IntoIterator<Item = (String, Option<Value>)>) -> Self {
        Self {
            values: values.into_iter().collect(),
        }
    }

    /// The current value of a conditioned name; `None` if it is absent now
    /// (or was not conditioned).
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values.get(name).and_then(Option::as_ref)
    }

    /// Every conditioned name with its current value.
    pub fn values(&self) -> impl Iterator<Item = (&str, Option<&Value>)> {
        self.values
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(n: u32) -> Value {
        Value::encode(&n).unwrap()
    }

    #[test]
    fn clear_then_insert_keeps_only_later_changes() {
        let mut stored = SessionData::new();
        stored.insert_value("a".into(), value(1));
        let mut changes = ChangeSet::new();
        changes.insert("b", value(2));
        changes.clear();
        changes.insert("c", value(3));
        changes.apply(&mut stored);
        assert_eq!(stored.names().collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn last_call_on_a_key_wins() {
        let mut changes = ChangeSet::new();
        changes.insert("k", value(1));
        changes.remove("k");
        let mut stored = SessionData::new();
        stored.insert_value("k".into(), value(0));
        changes.apply(&mut stored);
        assert!(stored.is_empty());

        changes.insert("k", value(2));
        changes.apply(&mut stored);
        assert_eq!(stored.get::<u32>("k").unwrap(), Some(2));
    }

    #[test]
    fn absence_is_a_condition_too() {
        let mut changes = ChangeSet::new();
        changes.require("k", None);
        assert!(changes.is_empty());
        let mut stored = SessionData::new();
        assert!(changes.check(&stored).is_ok());
        stored.insert_value("k".into(), value(7));
        let conflict = changes.check(&stored).unwrap_err();
        assert_eq!(conflict.value("k"), Some(&value(7)));
        assert_eq!(conflict.values().count(), 1);
    }
}
