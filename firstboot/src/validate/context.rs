//! What every property group's rules share: the environment, the definition's facts, and the
//! findings so far.

use crate::definition::ApplianceFacts;
use crate::env::Environment;
use crate::quote;

use super::Finding;
use super::declared;
use super::keys::ALL;

/// The shared state of one validation run.
pub(super) struct Ctx<'a> {
    pub env: &'a Environment,
    /// Labels, defaults, types and qualifiers of the properties.
    pub facts: &'a ApplianceFacts,
    pub problems: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl<'a> Ctx<'a> {
    pub fn new(env: &'a Environment, facts: &'a ApplianceFacts) -> Self {
        Ctx {
            env,
            facts,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

impl Ctx<'_> {
    fn finding(&self, key: &str, message: String) -> Finding {
        Finding {
            key: key.to_owned(),
            label: self.facts.label(key),
            message,
        }
    }

    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        let f = self.finding(key, message.into());
        self.problems.push(f);
    }

    pub fn warn(&mut self, key: &str, message: impl Into<String>) {
        let f = self.finding(key, message.into());
        self.warnings.push(f);
    }

    /// `Label (key)` of another property, for cross-references in messages.
    pub fn refer(&self, key: &str) -> String {
        format!("{} ({key})", self.facts.label(key))
    }

    /// The value of `key` for a message: quoted, or only its length for a secret.
    pub fn shown(&self, key: &str, value: &str) -> String {
        quote::property(self.facts, key, value)
    }

    /// The value as given, `None` when missing, empty (after trimming) or `null`.
    pub fn given(&self, key: &str) -> Option<&str> {
        let v = self.env.get(key)?;
        let t = v.trim();
        if t.is_empty() || t.eq_ignore_ascii_case("null") {
            None
        } else {
            Some(v)
        }
    }

    /// Trimmed value, or the definition's default.
    pub fn value(&self, key: &str) -> Option<String> {
        match self.given(key) {
            Some(v) => Some(v.trim().to_owned()),
            None => self
                .facts
                .default(key)
                .filter(|d| !d.trim().is_empty())
                .map(|d| d.trim().to_owned()),
        }
    }

    /// Whether `value` keeps the length and value-list qualifiers the definition declares for
    /// `key`; the first one broken is reported.
    pub fn conforms(&mut self, key: &str, value: &str) -> bool {
        let Some(spec) = self.facts.property(key) else {
            return true;
        };
        match declared::violation(spec, value, &self.shown(key, value)) {
            Some(message) => {
                self.problem(key, message);
                false
            }
            None => true,
        }
    }

    /// Keys of the environment that miss a known key by case or spaces (vSphere compares keys
    /// exactly, so a near miss is almost certainly a typo in automation), and known keys given
    /// more than once.
    pub fn environment_keys(&mut self) {
        for p in &self.env.properties {
            if !ALL.contains(&p.key.as_str())
                && let Some(known) = ALL.iter().find(|k| k.eq_ignore_ascii_case(p.key.trim()))
            {
                let given = p.key.clone();
                self.warn(
                    known,
                    format!(
                        "the environment has {}, which is ignored: property keys are \
                         case-sensitive; expected {known}",
                        quote::value(&given)
                    ),
                );
            }
        }
        for dup in self.env.duplicates() {
            if ALL.contains(&dup) {
                self.problem(
                    dup,
                    "appears more than once in the environment; expected it once",
                );
            }
        }
    }
}
