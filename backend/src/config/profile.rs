//! `profile = "fapi2"` and the settings it governs: `dpop` (RFC 9449
//! sender-constrained tokens) and `par` (RFC 9126). The profile turns both
//! on, with `private_key_jwt` ([`super::client_auth`]) and a required `iss`
//! (RFC 9207, checked at the callback); a setting that contradicts it stops
//! start-up with a message naming the setting. What the provider must
//! advertise is checked when its discovery is loaded
//! (`provider::discovery`).

use super::error::ConfigErrors;
use super::provider::Names;
use super::raw::RawProvider;
use serde::Serialize;

/// A security profile a provider demands of its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Profile {
    /// The FAPI 2.0 Security Profile: PAR, PKCE S256, `iss` required,
    /// DPoP-bound tokens, `private_key_jwt`.
    #[serde(rename = "fapi2")]
    Fapi2,
}

/// What [`read`] found.
pub(super) struct ProfileSettings {
    /// The profile, if any.
    pub profile: Option<Profile>,
    /// Whether tokens are DPoP-bound.
    pub dpop: bool,
    /// Whether authorization requests are pushed.
    pub par: bool,
}

/// Reads `profile`, `dpop` and `par`; `oidc` tells whether the provider is
/// an OpenID Connect one (DPoP and the profile need its discovery).
pub(super) fn read(
    errs: &mut ConfigErrors,
    names: &Names<'_>,
    raw: &RawProvider,
    oidc: bool,
) -> ProfileSettings {
    let profile = match raw.profile.as_deref() {
        None => None,
        Some("fapi2") => Some(Profile::Fapi2),
        Some(other) => {
            errs.push(
                names.of("profile"),
                format!("`{other}` is not a known profile (fapi2)"),
            );
            None
        }
    };
    let fapi2 = profile == Some(Profile::Fapi2);
    for (setting, value) in [("dpop", raw.dpop), ("par", raw.par)] {
        if fapi2 && value == Some(false) {
            errs.push(
                names.of(setting),
                format!("profile = \"fapi2\" needs {setting}: remove `{setting} = false`"),
            );
        }
    }
    let dpop = fapi2 || raw.dpop.unwrap_or(false);
    if !oidc {
        for (setting, on) in [
            ("profile", profile.is_some()),
            ("dpop", raw.dpop == Some(true)),
        ] {
            if on {
                errs.push(
                    names.of(setting),
                    "supported for OpenID Connect providers only (a plain OAuth 2.0 provider has no discovery to check)",
                );
            }
        }
    }
    ProfileSettings {
        profile,
        dpop,
        par: fapi2 || raw.par.unwrap_or(false),
    }
}
