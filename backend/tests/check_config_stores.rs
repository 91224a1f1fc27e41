//! `keyway check-config` on each URL form of the session store: the real
//! binary accepts the highly available stores' forms and prints them with
//! the password redacted, and refuses malformed ones naming the setting and
//! the fault, never the password.

use std::process::Command;

const KEYWAY: &str = env!("CARGO_BIN_EXE_keyway");
const PASSWORD: &str = "Hidden-store-pw";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Runs `keyway check-config` with a minimal provider and this store.
fn check(store: &str) -> (i32, String, String) {
    let out = Command::new(KEYWAY)
        .env_clear()
        .envs([
            ("KEYWAY_PUBLIC_URL", "https://app.example.com"),
            ("KEYWAY_ISSUER", "https://sso.example.com"),
            ("KEYWAY_CLIENT_ID", "keyway"),
            ("KEYWAY_CLIENT_SECRET", "client-secret"),
            ("KEYWAY_SESSION_KEY", KEY),
            ("KEYWAY_SESSION_STORE", store),
        ])
        .arg("check-config")
        .output()
        .expect("run keyway");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_store_url_form_is_accepted_and_printed_without_its_password() {
    for (given, printed) in [
        (
            format!("redis+sentinel://:{PASSWORD}@s1,s2:26380,s3/mymaster"),
            "redis+sentinel://:[redacted]@s1:26379,s2:26380,s3:26379/mymaster",
        ),
        (
            format!("rediss+sentinel://keyway:{PASSWORD}@s1,s2,s3/mymaster/2"),
            "rediss+sentinel://keyway:[redacted]@s1:26379,s2:26379,s3:26379/mymaster/2",
        ),
        (
            format!("redis+cluster://:{PASSWORD}@n1:7000,n2:7001,n3:7002"),
            "redis+cluster://:[redacted]@n1:7000,n2:7001,n3:7002",
        ),
        (
            "rediss+cluster://n1,n2,n3".to_owned(),
            "rediss+cluster://n1:6379,n2:6379,n3:6379",
        ),
        (
            format!("postgres://keyway:{PASSWORD}@db.example.com:5432/keyway?sslmode=verify-full"),
            "postgres://keyway:%5Bredacted%5D@db.example.com:5432/keyway?sslmode=verify-full",
        ),
        (
            "postgresql://keyway@db.example.com/keyway".to_owned(),
            "postgresql://keyway@db.example.com/keyway",
        ),
        (
            format!("redis://:{PASSWORD}@127.0.0.1:6379/0"),
            "redis://:%5Bredacted%5D@127.0.0.1:6379/0",
        ),
    ] {
        let (code, out, err) = check(&given);
        assert_eq!(code, 0, "{given}\nstdout:\n{out}\nstderr:\n{err}");
        assert!(
            out.contains(&format!("store = \"{printed}\"")),
            "{given}:\n{out}"
        );
        assert!(
            !out.contains(PASSWORD) && !err.contains(PASSWORD),
            "{out}{err}"
        );
    }
}

#[test]
fn malformed_store_urls_are_refused_naming_the_setting_not_the_password() {
    for (given, reason) in [
        (
            format!("redis+sentinel://:{PASSWORD}@s1,s2,s3"),
            "names no service",
        ),
        (
            format!("redis+sentinel://:{PASSWORD}@s1,s2/mymaster/db"),
            "database number",
        ),
        (
            format!("redis+cluster://:{PASSWORD}@n1,n2/0"),
            "a cluster has no service or database",
        ),
        (
            format!("redis+cluster://:{PASSWORD}@n1:port"),
            "invalid port",
        ),
        (format!("redis+shard://:{PASSWORD}@n1"), "unknown scheme"),
        (
            format!("postgres://keyway:{PASSWORD}@db/keyway?sslmode=maybe"),
            "ssl_mode",
        ),
        (
            format!("postgres://keyway:{PASSWORD}@/keyway"),
            "empty host",
        ),
    ] {
        let (code, out, err) = check(&given);
        assert_ne!(code, 0, "{given} was accepted:\n{out}");
        assert!(err.contains("KEYWAY_SESSION_STORE"), "{given}:\n{err}");
        assert!(
            err.contains(reason),
            "{given}: wanted `{reason}` in:\n{err}"
        );
        assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{err}");
    }
}
