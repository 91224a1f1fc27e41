//! Tests of the configuration: layering, names of settings, every problem
//! at once, redaction.

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The environment of a valid single-provider configuration.
fn base_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("KEYWAY_ISSUER", "https://sso.example.com"),
        ("KEYWAY_CLIENT_ID", "app"),
        ("KEYWAY_CLIENT_SECRET", "s3cret-value"),
        ("KEYWAY_SESSION_STORE", "memory"),
    ]
}

fn settings_of(e: &ConfigErrors) -> Vec<&str> {
    e.0.iter().map(|e| e.setting.as_str()).collect()
}

#[test]
fn env_alone_is_enough_for_one_provider() {
    let c = Config::from_sources(
        None,
        &env(&[
            ("KEYWAY_ISSUER", "http://127.0.0.1:9000"),
            ("KEYWAY_CLIENT_ID", "app"),
            ("KEYWAY_CLIENT_SECRET", "s3cret"),
            ("KEYWAY_SESSION_KEY", KEY),
            ("KEYWAY_AUTH_PARAMS", "prompt=consent&access_type=offline"),
        ]),
    )
    .unwrap();
    assert_eq!(c.providers.len(), 1);
    let p = &c.providers[0];
    assert_eq!(p.scopes, ["openid", "profile", "email"]);
    assert!(
        p.auth_params
            .contains(&("access_type".into(), "offline".into()))
    );
    assert_eq!(c.session.store, StoreSetting::Sqlite("keyway.db".into()));
    assert_eq!(p.redirect_uri.as_str(), "http://127.0.0.1:8080/callback");
    assert_eq!(
        p.protocol,
        Protocol::Oidc(OidcSettings {
            issuer: "http://127.0.0.1:9000".into(),
            issuer_template: None
        }),
        "the issuer is kept exactly as written (no slash added)"
    );
    assert!(!c.is_https());
    assert!(!format!("{c:?}").contains("s3cret"));
    assert!(!c.describe().contains("s3cret"));
}

#[test]
fn each_provider_has_its_own_redirect_uri_when_there_are_several() {
    let text = r#"
        public_url = "https://app.example.com"
        [session]
        store = "memory"
        [[providers]]
        id = "corp"
        issuer = "https://sso.example.com/realms/main"
        client_id = "keyway"
        client_secret_env = "CORP_SECRET"
        [[providers]]
        preset = "github"
        client_id = "gh"
        client_secret_env = "GH_SECRET"
    "#;
    let c = Config::from_sources(
        Some(text),
        &env(&[("CORP_SECRET", "a"), ("GH_SECRET", "b")]),
    )
    .unwrap();
    assert_eq!(
        c.providers[0].redirect_uri.as_str(),
        "https://app.example.com/callback/corp"
    );
    assert_eq!(
        c.providers[1].redirect_uri.as_str(),
        "https://app.example.com/callback/github"
    );
    assert_eq!(c.providers[1].kind(), keyway_shared::ProviderKind::Oauth2);
}

#[test]
fn plain_http_is_refused_off_loopback() {
    let mut vars = base_env();
    vars.push(("KEYWAY_PUBLIC_URL", "http://app.example.com"));
    let e = Config::from_sources(None, &env(&vars)).unwrap_err();
    assert_eq!(settings_of(&e), ["KEYWAY_PUBLIC_URL"], "{e}");
}

#[test]
fn persistent_store_needs_a_key_and_bad_keys_are_named() {
    let base = [
        ("KEYWAY_ISSUER", "https://sso.example.com"),
        ("KEYWAY_CLIENT_ID", "app"),
        ("KEYWAY_CLIENT_SECRET", "s"),
    ];
    let e = Config::from_sources(None, &env(&base)).unwrap_err();
    assert_eq!(settings_of(&e), ["KEYWAY_SESSION_KEY"]);
    let mut bad = base.to_vec();
    bad.push(("KEYWAY_SESSION_KEY", "c2hvcnQ="));
    let e = Config::from_sources(None, &env(&bad)).unwrap_err();
    assert!(e.0[0].problem.contains("must be 32"), "{e}");
    let mut two = base.to_vec();
    let pair = format!("{KEY},{KEY}");
    two.push(("KEYWAY_SESSION_KEY", &pair));
    let c = Config::from_sources(None, &env(&two)).unwrap();
    assert_eq!(c.session.keys.len(), 2);
}

#[test]
fn file_with_several_providers_apis_and_secret_from_env() {
    let text = r#"
        public_url = "https://app.example.com"
        [session]
        store = "memory"
        idle_timeout = "1h"
        [[providers]]
        id = "corp"
        issuer = "https://sso.example.com/realms/main"
        client_id = "keyway"
        client_secret_env = "CORP_SECRET"
        auth_params = { prompt = "consent" }
        [[providers]]
        id = "other"
        issuer = "https://other.example.com"
        client_id = "k2"
        client_secret_env = "OTHER_SECRET"
        [[apis]]
        name = "orders"
        url = "https://orders.internal.example/v1"
        provider = "corp"
    "#;
    let c = Config::from_sources(
        Some(text),
        &env(&[("CORP_SECRET", "a"), ("OTHER_SECRET", "b")]),
    )
    .unwrap();
    assert_eq!(c.providers.len(), 2);
    assert_eq!(c.providers[0].client_secret.as_ref().unwrap().expose(), "a");
    assert_eq!(c.session.idle_timeout, Duration::from_secs(3600));
    assert_eq!(c.apis[0].token, ApiToken::User);
    assert_eq!(c.apis[0].provider, "corp");
    assert!(c.is_https());
}

#[test]
fn an_api_must_say_whose_tokens_it_takes_when_there_are_several_providers() {
    let text = r#"
        [session]
        store = "memory"
        [[providers]]
        id = "a"
        issuer = "https://a.example.com"
        client_id = "k"
        client_secret_env = "S"
        [[providers]]
        id = "b"
        issuer = "https://b.example.com"
        client_id = "k"
        client_secret_env = "S"
        [[apis]]
        name = "orders"
        url = "https://orders.example.com"
        [[apis]]
        name = "stock"
        url = "https://stock.example.com"
        provider = "c"
        [[apis]]
        name = "plain"
        url = "http://plain.example.com"
        provider = "a"
    "#;
    let e = Config::from_sources(Some(text), &env(&[("S", "x")])).unwrap_err();
    assert_eq!(
        settings_of(&e),
        ["apis[0].provider", "apis[1].provider", "apis[2].url"],
        "{e}"
    );
    let allowed = text.replace(
        "provider = \"a\"",
        "provider = \"a\"\n        allow_http = true",
    );
    let e = Config::from_sources(Some(&allowed), &env(&[("S", "x")])).unwrap_err();
    assert_eq!(settings_of(&e), ["apis[0].provider", "apis[1].provider"]);
}

#[test]
fn inline_secrets_and_unknown_keys_are_refused_all_at_once() {
    let text = r#"
        lisen = "x"
        [session]
        store = "memory"
        key = "inline-key-value"
        stroe = "y"
        [[providers]]
        issuer = "https://sso.example.com"
        client_id = "keyway"
        client_secret = "inline-secret-value"
        scope = "typo"
    "#;
    let e = Config::from_sources(Some(text), &BTreeMap::new()).unwrap_err();
    let names = settings_of(&e);
    for expected in [
        "lisen",
        "session.stroe",
        "session.key",
        "providers[0].scope",
        "providers[0].client_secret",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(!e.to_string().contains("inline-secret-value"));
    assert!(!e.to_string().contains("inline-key-value"));
}

/// With nothing set, every problem is listed (not only the first).
#[test]
fn nothing_set_lists_the_missing_key_and_the_missing_provider() {
    let e = Config::from_sources(None, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        settings_of(&e),
        ["KEYWAY_SESSION_KEY", "KEYWAY_ISSUER"],
        "{e}"
    );
    let e = Config::from_sources(None, &env(&[("KEYWAY_SESSION_STORE", "memory")])).unwrap_err();
    assert_eq!(settings_of(&e), ["KEYWAY_ISSUER"]);
}

#[test]
fn env_provider_and_file_providers_are_exclusive() {
    let text = r#"
        [session]
        store = "memory"
        [[providers]]
        issuer = "https://sso.example.com"
        client_id = "keyway"
        client_secret_env = "S"
    "#;
    let e = Config::from_sources(Some(text), &env(&[("S", "x"), ("KEYWAY_CLIENT_ID", "y")]))
        .unwrap_err();
    assert_eq!(settings_of(&e)[0], "KEYWAY_CLIENT_ID", "{e}");
}

/// Every setting a user can get wrong is reported under the name they used:
/// the variable when it came from the environment, the key when it came
/// from the file.
#[test]
fn every_setting_is_named_by_its_source() {
    // (variable, file key, TOML line, bad value)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("KEYWAY_LISTEN", "listen", "", "nowhere"),
        ("KEYWAY_PUBLIC_URL", "public_url", "", "ftp://x"),
        ("KEYWAY_STATIC_DIR", "static_dir", "", "/nonexistent-dir"),
        ("KEYWAY_LOG_FORMAT", "log_format", "", "xml"),
        ("KEYWAY_HTTP_TIMEOUT", "http_timeout", "", "soon"),
        ("KEYWAY_DISCOVERY_TTL", "discovery_ttl", "", "0s"),
        ("KEYWAY_REFRESH_SKEW", "refresh_skew", "", "x"),
        ("KEYWAY_SHUTDOWN_TIMEOUT", "shutdown_timeout", "", "x"),
        ("KEYWAY_TLS_CA_FILE", "tls_ca_file", "", "/nonexistent.pem"),
        (
            "KEYWAY_HEADER_TIMEOUT",
            "server.header_timeout",
            "server",
            "x",
        ),
        ("KEYWAY_BODY_TIMEOUT", "server.body_timeout", "server", "x"),
        (
            "KEYWAY_SESSION_STORE",
            "session.store",
            "session",
            "mongodb://x",
        ),
        (
            "KEYWAY_SESSION_IDLE_TIMEOUT",
            "session.idle_timeout",
            "session",
            "x",
        ),
        (
            "KEYWAY_SESSION_ABSOLUTE_TIMEOUT",
            "session.absolute_timeout",
            "session",
            "x",
        ),
        (
            "KEYWAY_LOGIN_TIMEOUT",
            "session.login_timeout",
            "session",
            "x",
        ),
        (
            "KEYWAY_SESSION_KEY_FILE",
            "session.key_file",
            "session",
            "/nonexistent-key",
        ),
    ];
    for (var, key, table, bad) in cases {
        let mut vars = base_env();
        vars.push((var, bad));
        let e = Config::from_sources(None, &env(&vars)).unwrap_err();
        assert_eq!(settings_of(&e), [*var], "{var}: {e}");

        let leaf = key.rsplit('.').next().unwrap();
        let text = if table.is_empty() {
            format!("{leaf} = \"{bad}\"\n[session]\nstore = \"memory\"\n")
        } else if *table == "session" {
            format!("[session]\n{leaf} = \"{bad}\"\n")
        } else {
            format!("[{table}]\n{leaf} = \"{bad}\"\n[session]\nstore = \"memory\"\n")
        };
        let text = if *table == "session" && *key != "session.store" {
            text.replace("[session]\n", "[session]\nstore = \"memory\"\n")
        } else {
            text
        };
        let provider_env = [
            ("KEYWAY_ISSUER", "https://sso.example.com"),
            ("KEYWAY_CLIENT_ID", "app"),
            ("KEYWAY_CLIENT_SECRET", "s"),
        ];
        let e = Config::from_sources(Some(&text), &env(&provider_env)).unwrap_err();
        assert_eq!(settings_of(&e), [*key], "{key}: {e}\n{text}");
    }
}

#[test]
fn provider_settings_are_named_by_their_source() {
    // (variable, file key, bad TOML value, bad env value)
    let cases: &[(&str, &str, &str, &str)] = &[
        ("KEYWAY_ISSUER", "issuer", "\"ftp://sso\"", "ftp://sso"),
        ("KEYWAY_PROVIDER_KIND", "kind", "\"saml\"", "saml"),
        ("KEYWAY_SCOPES", "scopes", "[\"profile\"]", "profile"),
        (
            "KEYWAY_AUTH_PARAMS",
            "auth_params",
            "{ state = \"x\" }",
            "state=x",
        ),
        ("KEYWAY_PROVIDER_ID", "id", "\"a b\"", "a b"),
        (
            "KEYWAY_CLIENT_SECRET_FILE",
            "client_secret_file",
            "\"/nonexistent\"",
            "/nonexistent",
        ),
    ];
    for (var, key, toml_value, env_value) in cases {
        let mut vars = vec![
            ("KEYWAY_ISSUER", "https://sso.example.com"),
            ("KEYWAY_CLIENT_ID", "app"),
            ("KEYWAY_SESSION_STORE", "memory"),
        ];
        if *var != "KEYWAY_CLIENT_SECRET_FILE" {
            vars.push(("KEYWAY_CLIENT_SECRET", "s"));
        }
        vars.retain(|(v, _)| v != var);
        vars.push((var, env_value));
        let e = Config::from_sources(None, &env(&vars)).unwrap_err();
        assert_eq!(settings_of(&e), [*var], "{var}: {e}");

        let mut lines = vec![
            "[session]".to_owned(),
            "store = \"memory\"".into(),
            "[[providers]]".into(),
            "client_id = \"app\"".into(),
        ];
        if *key != "issuer" {
            lines.push("issuer = \"https://sso.example.com\"".into());
        }
        if *key != "client_secret_file" {
            lines.push("client_secret_env = \"S\"".into());
        }
        lines.push(format!("{key} = {toml_value}"));
        let e = Config::from_sources(Some(&lines.join("\n")), &env(&[("S", "x")])).unwrap_err();
        assert_eq!(
            settings_of(&e),
            [format!("providers[0].{key}")],
            "{key}: {e}"
        );
    }
    let mut vars = base_env();
    vars.push(("KEYWAY_PAR", "maybe"));
    let e = Config::from_sources(None, &env(&vars)).unwrap_err();
    assert_eq!(settings_of(&e), ["KEYWAY_PAR"]);
}

/// `check-config` shows the real configuration: every setting Keyway runs
/// with (including those the hand-written view once forgot), no secret.
#[test]
fn describe_is_the_configuration_serialized_and_redacted() {
    let text = r#"
        discovery_ttl = "5m"
        refresh_skew = "30s"
        [session]
        store = "redis://:redis-password@cache:6379/2"
        login_timeout = "2m"
        [[apis]]
        name = "orders"
        url = "https://orders.example.com"
        token = "client"
        scopes = ["orders:read"]
        timeout = "3s"
    "#;
    let c = Config::from_sources(
        Some(text),
        &env(&[
            ("KEYWAY_ISSUER", "https://sso.example.com"),
            ("KEYWAY_CLIENT_ID", "app"),
            ("KEYWAY_CLIENT_SECRET", "client-secret-value"),
            ("KEYWAY_SESSION_KEY", KEY),
        ]),
    );
    // The env provider and a file without [[providers]] go together.
    let c = c.unwrap();
    let shown = c.describe();
    for needle in [
        "discovery_ttl = \"5m\"",
        "refresh_skew = \"30s\"",
        "login_timeout = \"2m\"",
        "\"orders:read\"",
        "timeout = \"3s\"",
        "redirect_uri = \"http://127.0.0.1:8080/callback\"",
        "header_timeout",
    ] {
        assert!(shown.contains(needle), "{needle} missing:\n{shown}");
    }
    for secret in ["client-secret-value", "redis-password", KEY] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    toml::from_str::<toml::Table>(&shown).expect("describe() is TOML");
}

#[test]
fn redis_password_is_redacted_in_display() {
    let s = StoreSetting::parse("redis://:pw123@localhost:6379").unwrap();
    assert!(!s.to_string().contains("pw123"));
}

#[test]
fn redis_urls_are_checked() {
    for ok in [
        "redis://127.0.0.1:6379",
        "rediss://cache.example.com:6380",
        "redis://:pw@cache:6379/2",
        "redis://user:pw@cache",
    ] {
        assert!(
            matches!(StoreSetting::parse(ok), Ok(StoreSetting::Redis(_))),
            "{ok}"
        );
    }
    for bad in [
        "redis://",
        "redis://host:notaport",
        "redis://:s3cret@host/db",
    ] {
        let e = StoreSetting::parse(bad).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
