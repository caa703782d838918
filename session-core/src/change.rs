//! Change sets: what one request did to a session, applied by storage
//! atomically to the record as it is at that moment.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Lifetime, SessionData, Value};

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
    lifetime: Option<Lifetime>,
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

    /// Gives the session its own `lifetime` (the default [`Lifetime`]: its
    /// layer's again), written with the rest of the set: the record's
    /// [`lifetime`](crate::Record::lifetime). Not part of the data, so
    /// [`clear`](Self::clear) leaves it, and [`apply`](Self::apply) does
    /// not apply it.
    pub fn set_lifetime(&mut self, lifetime: Lifetime) {
        self.lifetime = Some(lifetime);
    }

    /// The lifetime the set gives the session, if it changes it.
    pub fn lifetime(&self) -> Option<Lifetime> {
        self.lifetime
    }

    /// Whether the set changes nothing (conditions alone change nothing).
    pub fn is_empty(&self) -> bool {
        !self.cleared
            && self.inserts.is_empty()
            && self.removals.is_empty()
            && self.lifetime.is_none()
    }

    /// Whether the set drops all stored values before its other changes.
    pub fn is_cleared(&self) -> bool {
        self.cleared
    }

    /// What the set makes of `name`: `Some(Some(value))` if it sets it,
    /// `Some(None)` if it removes it (or clears every value), `None` if the
    /// stored value stands. So data with the set applied can be read
    /// without applying it:
    ///
    /// ```
    /// use session_core::{ChangeSet, SessionData, Value};
    ///
    /// let mut stored = SessionData::new();
    /// stored.insert("n", &1)?;
    /// stored.insert("theme", "dark")?;
    /// let mut changes = ChangeSet::new();
    /// changes.insert("n", Value::encode(&2)?);
    ///
    /// fn read<'a>(stored: &'a SessionData, changes: &'a ChangeSet, name: &str) -> Option<&'a Value> {
    ///     changes.effect(name).unwrap_or_else(|| stored.get_value(name))
    /// }
    /// assert_eq!(read(&stored, &changes, "n"), Some(&Value::encode(&2)?));
    /// assert_eq!(read(&stored, &changes, "theme"), Some(&Value::encode("dark")?));
    /// changes.clear();
    /// assert_eq!(read(&stored, &changes, "theme"), None);
    /// # Ok::<(), session_core::Error>(())
    /// ```
    pub fn effect(&self, name: &str) -> Option<Option<&Value>> {
        if let Some(value) = self.inserts.get(name) {
            return Some(Some(value));
        }
        (self.cleared || self.removals.contains(name)).then_some(None)
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

    /// Every sequence of up to three calls on two names, over data holding
    /// one of them and another: reading through the set's effect sees
    /// what applying it makes.
    #[test]
    fn the_effect_of_a_set_is_what_applying_it_makes() {
        let calls: [fn(&mut ChangeSet); 5] = [
            |c| c.insert("a", value(7)),
            |c| c.insert("b", value(8)),
            |c| c.remove("a"),
            |c| c.remove("b"),
            ChangeSet::clear,
        ];
        let mut stored = SessionData::new();
        stored.insert_value("a".into(), value(1));
        stored.insert_value("c".into(), value(3));
        let sequences = (0..=3_u32).flat_map(|length| {
            (0..5_usize.pow(length)).map(move |mut n| {
                let mut sequence = Vec::new();
                for _ in 0..length {
                    sequence.push(n % 5);
                    n /= 5;
                }
                sequence
            })
        });
        for sequence in sequences {
            let mut changes = ChangeSet::new();
            for &call in &sequence {
                calls[call](&mut changes);
            }
            let mut applied = stored.clone();
            changes.apply(&mut applied);
            for name in ["a", "b", "c"] {
                let read = changes
                    .effect(name)
                    .unwrap_or_else(|| stored.get_value(name));
                assert_eq!(read, applied.get_value(name), "{sequence:?} {name}");
            }
        }
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
