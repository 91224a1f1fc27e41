//! Tests of the settings of issue 17: `profile`, `dpop`, `client_auth`, the
//! private keys, `assertion_audience`, and `dpop` on APIs.

use super::*;
use crate::jose::{PrivateKey, SigningAlg};
use std::io::Write;

const RSA_PEM: &str = include_str!("../../../tests/fixtures/lying-provider-key.pem");

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("KEYWAY_ISSUER", "https://sso.example.com"),
        ("KEYWAY_CLIENT_ID", "app"),
        ("KEYWAY_SESSION_STORE", "memory"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in pairs {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// A private JWK (P-256) and its thumbprint.
fn ec_jwk() -> (String, String) {
    let (key, scalar) = PrivateKey::generate_p256();
    let mut jwk = serde_json::to_value(key.public_jwk()).unwrap();
    jwk["d"] = scalar.expose().into();
    (jwk.to_string(), key.thumbprint().to_owned())
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn problems(e: &ConfigErrors) -> Vec<(String, String)> {
    e.0.iter()
        .map(|e| (e.setting.clone(), e.problem.clone()))
        .collect()
}

#[test]
fn fapi2_turns_everything_on_and_needs_no_secret() {
    let (jwk, thumbprint) = ec_jwk();
    let c = Config::from_sources(
        None,
        &env(&[("KEYWAY_PROFILE", "fapi2"), ("KEYWAY_PRIVATE_KEY", &jwk)]),
    )
    .unwrap();
    let p = &c.providers[0];
    assert_eq!(p.profile, Some(Profile::Fapi2));
    assert!(p.dpop && p.par);
    assert_eq!(p.client_auth, Some(ClientAuthMethod::PrivateKeyJwt));
    assert_eq!(p.assertion_audience, AssertionAudience::Issuer);
    assert!(p.client_secret.is_none());
    assert_eq!(p.private_keys[0].kid(), thumbprint);
    let shown = c.describe();
    assert!(shown.contains("profile = \"fapi2\""), "{shown}");
    assert!(shown.contains(&thumbprint), "{shown}");
    assert!(!shown.contains("\"d\""), "{shown}");
    let d: serde_json::Value = serde_json::from_str(&jwk).unwrap();
    assert!(!shown.contains(d["d"].as_str().unwrap()), "{shown}");
}

#[test]
fn fapi2_without_a_key_names_what_is_missing() {
    let e = Config::from_sources(None, &env(&[("KEYWAY_PROFILE", "fapi2")])).unwrap_err();
    let p = problems(&e);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "KEYWAY_PRIVATE_KEY_FILE");
    assert!(
        p[0].1.contains("fapi2") && p[0].1.contains("private_key_jwt"),
        "{p:?}"
    );
}

#[test]
fn fapi2_refuses_what_contradicts_it() {
    let (jwk, _) = ec_jwk();
    let key = file_with(&jwk);
    let toml = format!(
        r#"
        [[providers]]
        issuer = "https://sso.example.com"
        client_id = "app"
        client_secret_env = "SECRET"
        profile = "fapi2"
        private_key_file = "{}"
        client_auth = "client_secret_basic"
        dpop = false
        par = false
        assertion_audience = "endpoint"
        "#,
        key.path().display()
    );
    let mut vars = env(&[("SECRET", "s")]);
    vars.remove("KEYWAY_ISSUER");
    vars.remove("KEYWAY_CLIENT_ID");
    let e = Config::from_sources(Some(&toml), &vars).unwrap_err();
    let settings: Vec<String> = problems(&e).into_iter().map(|(s, _)| s).collect();
    for want in [
        "providers[0].client_auth",
        "providers[0].dpop",
        "providers[0].par",
        "providers[0].assertion_audience",
        "providers[0].private_key_file",
    ] {
        assert!(
            settings.iter().any(|s| s == want),
            "{want} not in {settings:?}"
        );
    }
}

#[test]
fn a_malformed_key_stops_start_up_naming_the_setting_not_quoting_the_key() {
    let garbage =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1icm9rZW4=\n-----END PRIVATE KEY-----\n";
    let key = file_with(garbage);
    let path = key.path().display().to_string();
    let e = Config::from_sources(
        None,
        &env(&[
            ("KEYWAY_CLIENT_AUTH", "private_key_jwt"),
            ("KEYWAY_PRIVATE_KEY_FILE", &path),
        ]),
    )
    .unwrap_err();
    let p = problems(&e);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "KEYWAY_PRIVATE_KEY_FILE");
    assert!(
        p[0].1.contains(&path) && p[0].1.contains("not a usable private key"),
        "{p:?}"
    );
    assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
}

#[test]
fn rsa_keys_sign_rs256_or_ps256_and_fapi2_refuses_rs256() {
    let key = file_with(RSA_PEM);
    let path = key.path().display().to_string();
    let c = Config::from_sources(None, &env(&[("KEYWAY_PRIVATE_KEY_FILE", &path)])).unwrap();
    let p = &c.providers[0];
    assert_eq!(
        p.client_auth,
        Some(ClientAuthMethod::PrivateKeyJwt),
        "a key implies it"
    );
    assert_eq!(p.private_keys[0].alg(), SigningAlg::RS256);
    let c = Config::from_sources(
        None,
        &env(&[
            ("KEYWAY_PRIVATE_KEY_FILE", &path),
            ("KEYWAY_PROFILE", "fapi2"),
        ]),
    )
    .unwrap();
    assert_eq!(c.providers[0].private_keys[0].alg(), SigningAlg::PS256);
    let e = Config::from_sources(
        None,
        &env(&[
            ("KEYWAY_PRIVATE_KEY_FILE", &path),
            ("KEYWAY_PROFILE", "fapi2"),
            ("KEYWAY_PRIVATE_KEY_ALG", "RS256"),
        ]),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("RS256, which FAPI 2.0 does not allow"),
        "{e}"
    );
}

#[test]
fn several_keys_rotate_the_first_signs() {
    let (a, ka) = ec_jwk();
    let (b, kb) = ec_jwk();
    let set = format!(r#"{{"keys":[{b},{a}]}}"#);
    let key = file_with(&set);
    let path = key.path().display().to_string();
    let c = Config::from_sources(None, &env(&[("KEYWAY_PRIVATE_KEY_FILE", &path)])).unwrap();
    let kids: Vec<&str> = c.providers[0]
        .private_keys
        .iter()
        .map(|k| k.kid())
        .collect();
    assert_eq!(kids, [kb.as_str(), ka.as_str()]);
    let twice = format!("{path} {path}");
    let e = Config::from_sources(None, &env(&[("KEYWAY_PRIVATE_KEY_FILE", &twice)])).unwrap_err();
    assert!(e.to_string().contains("used twice"), "{e}");
}

#[test]
fn a_secret_method_still_needs_the_secret_and_no_key() {
    let e = Config::from_sources(None, &env(&[("KEYWAY_CLIENT_AUTH", "client_secret_jwt")]))
        .unwrap_err();
    assert_eq!(problems(&e)[0].0, "KEYWAY_CLIENT_SECRET");
    let (jwk, _) = ec_jwk();
    let e = Config::from_sources(
        None,
        &env(&[
            ("KEYWAY_CLIENT_AUTH", "client_secret_post"),
            ("KEYWAY_CLIENT_SECRET", "s"),
            ("KEYWAY_PRIVATE_KEY", &jwk),
        ]),
    )
    .unwrap_err();
    assert_eq!(problems(&e)[0].0, "KEYWAY_PRIVATE_KEY");
    let e = Config::from_sources(None, &env(&[("KEYWAY_CLIENT_AUTH", "mtls")])).unwrap_err();
    assert_eq!(problems(&e)[0].0, "KEYWAY_CLIENT_AUTH");
}

#[test]
fn an_api_binds_its_calls_as_its_provider_binds_its_tokens() {
    let api = |dpop: &str| {
        format!(
            r#"
            [[apis]]
            name = "orders"
            url = "http://127.0.0.1:1/v1"
            {dpop}
            "#
        )
    };
    let secret = [("KEYWAY_CLIENT_SECRET", "s")];
    let with_dpop = [("KEYWAY_CLIENT_SECRET", "s"), ("KEYWAY_DPOP", "true")];
    let c = Config::from_sources(Some(&api("")), &env(&with_dpop)).unwrap();
    assert!(c.providers[0].dpop && c.apis[0].dpop);
    let c = Config::from_sources(Some(&api("")), &env(&secret)).unwrap();
    assert!(!c.apis[0].dpop);
    let e = Config::from_sources(Some(&api("dpop = true")), &env(&secret)).unwrap_err();
    assert_eq!(problems(&e)[0].0, "apis[0].dpop");
    let e = Config::from_sources(Some(&api("dpop = false")), &env(&with_dpop)).unwrap_err();
    assert_eq!(problems(&e)[0].0, "apis[0].dpop");
}

#[test]
fn plain_oauth2_providers_have_no_profile_nor_dpop() {
    let mut vars = env(&[
        ("KEYWAY_PROVIDER", "github"),
        ("KEYWAY_CLIENT_SECRET", "s"),
        ("KEYWAY_DPOP", "true"),
    ]);
    vars.remove("KEYWAY_ISSUER");
    let e = Config::from_sources(None, &vars).unwrap_err();
    assert!(problems(&e).iter().any(|(s, _)| s == "KEYWAY_DPOP"), "{e}");
}
