//! Secrets that never print.
//!
//! Client secrets, encryption keys and tokens live in [`Secret`], whose
//! `Debug`, `Display` and `Serialize` all give `[redacted]`, so that neither
//! a `{:?}` in a log line, an error message nor a serialized view (`keyway
//! check-config`) can leak them (the same idea as oauth2-rs's
//! `ClientSecret`). The one place that must write the value itself, the
//! session record, opts in field by field with `#[serde(with =
//! "secret::stored")]`.

use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A string that must never appear in logs, errors or `check-config` output.
#[derive(Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(transparent)]
// A boxed `str`, not a `String`: 8 bytes less in every session for each
// token it holds, and never more heap than the value needs.
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The secret itself: call only where it is sent to its one destination.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// Serde for the session record, which must keep the value itself:
/// `#[serde(with = "crate::secret::stored")]` on a `Secret` field.
pub(crate) mod stored {
    use super::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the value itself.
    pub(crate) fn serialize<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    /// Reads the value.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret::new)
    }

    /// The same for an optional secret.
    pub(crate) mod option {
        use super::Secret;
        use serde::{Deserialize, Deserializer, Serializer};

        /// Writes the value itself.
        pub(crate) fn serialize<S: Serializer>(
            secret: &Option<Secret>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match secret {
                Some(v) => s.serialize_some(v.expose()),
                None => s.serialize_none(),
            }
        }

        /// Reads the value.
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Secret>, D::Error> {
            Option::<String>::deserialize(d).map(|v| v.map(Secret::new))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints_nor_serializes() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([redacted])");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn stored_fields_keep_the_value() {
        #[derive(Serialize, Deserialize)]
        struct Record {
            #[serde(with = "stored")]
            token: Secret,
            #[serde(with = "stored::option")]
            refresh: Option<Secret>,
        }
        let json = serde_json::to_string(&Record {
            token: Secret::new("t"),
            refresh: Some(Secret::new("r")),
        })
        .unwrap();
        assert_eq!(json, r#"{"token":"t","refresh":"r"}"#);
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back.token.expose(), "t");
        assert_eq!(back.refresh.unwrap().expose(), "r");
    }
}
