//! Presets: providers Keyway knows by name, so that a user configures only
//! a client id and secret.

use url::Url;

/// Names accepted by `preset = "..."` / `KEYWAY_PROVIDER`.
pub const NAMES: &[&str] = &["google", "gitlab"];

/// The discovery issuer of a preset.
pub fn issuer_for(preset: &str) -> Option<Url> {
    let raw = match preset {
        "google" => "https://accounts.google.com",
        "gitlab" => "https://gitlab.com",
        _ => return None,
    };
    Url::parse(raw).ok()
}

/// The display name of a preset.
pub fn display_name(preset: &str) -> Option<&'static str> {
    match preset {
        "google" => Some("Google"),
        "gitlab" => Some("GitLab"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_preset_resolves() {
        for name in NAMES {
            assert!(issuer_for(name).is_some(), "{name}");
            assert!(display_name(name).is_some(), "{name}");
        }
        assert!(issuer_for("nope").is_none());
    }
}
