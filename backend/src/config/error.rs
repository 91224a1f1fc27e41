//! Configuration problems: each names the setting the way the user wrote it
//! (`KEYWAY_PUBLIC_URL`, `session.store`, `providers[0].issuer`) and never
//! quotes a secret.

use std::fmt;

/// One problem with one setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting, as the user wrote it: an environment variable when the
    /// value came from the environment, else the key in the file.
    pub setting: String,
    /// What is wrong and how to fix it. Never contains a secret.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.problem)
    }
}

/// Every problem found while loading the configuration (never empty when
/// returned as an error).
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Records a problem.
    pub(crate) fn push(&mut self, setting: impl Into<String>, problem: impl Into<String>) {
        self.0.push(ConfigError {
            setting: setting.into(),
            problem: problem.into(),
        });
    }

    /// How many problems so far (to tell whether a section added any).
    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }

    /// `Ok(value)` when no problem was found.
    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}
