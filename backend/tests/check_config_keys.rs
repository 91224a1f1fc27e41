//! `keyway check-config` with the settings of issue 17: a malformed private
//! key stops start-up with one line naming the setting (and never the key);
//! a good FAPI 2.0 configuration is printed with its keys by id only.

use std::process::Command;

const KEYWAY: &str = env!("CARGO_BIN_EXE_keyway");

/// A private key that is PEM but not a key: its base64 must never be printed.
const BROKEN: &str = "-----BEGIN PRIVATE KEY-----\nTm90LWEta2V5LWJ1dC1zZWNyZXQtbG9va2luZw==\n-----END PRIVATE KEY-----\n";

fn check_config(env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(KEYWAY)
        .env_clear()
        .envs(env.iter().copied())
        .envs([
            ("KEYWAY_ISSUER", "https://sso.example.com"),
            ("KEYWAY_CLIENT_ID", "keyway"),
            ("KEYWAY_SESSION_STORE", "memory"),
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
fn a_malformed_private_key_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.pem");
    std::fs::write(&path, BROKEN).unwrap();
    let path = path.display().to_string();
    let (code, out, err) = check_config(&[
        ("KEYWAY_PROFILE", "fapi2"),
        ("KEYWAY_PRIVATE_KEY_FILE", &path),
    ]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line:\n{err}");
    assert!(
        lines[0].starts_with("keyway: invalid configuration: KEYWAY_PRIVATE_KEY_FILE: ")
            && lines[0].contains(&path)
            && lines[0].contains("not a usable private key"),
        "{err}"
    );
    assert!(
        !err.contains("Tm90LWEta2V5") && !out.contains("Tm90LWEta2V5"),
        "the key was printed"
    );
}

#[test]
fn a_fapi2_configuration_shows_its_keys_by_id_only() {
    // A P-256 key in PKCS#8 PEM (a test key, protects nothing).
    let pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxtX5v8rffkX4+MOH\n+UTBQtL8wKftJskZne3NPmryhmuhRANCAARu7hf/9+atpsgIRdaAeGh23u7sDq4H\nS1HqsObdCXEgvE28KoIlO4FOMv8C6GemJoAL/ZAxnU4A9YSK7S/Bceyk\n-----END PRIVATE KEY-----\n";
    let (code, out, err) =
        check_config(&[("KEYWAY_PROFILE", "fapi2"), ("KEYWAY_PRIVATE_KEY", pem)]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for expected in [
        "profile = \"fapi2\"",
        "dpop = true",
        "par = true",
        "client_auth = \"private_key_jwt\"",
        "assertion_audience = \"issuer\"",
        "alg = \"ES256\"",
        "kid = ",
    ] {
        assert!(out.contains(expected), "`{expected}` missing from:\n{out}");
    }
    assert!(
        !out.contains("MIGHAgEAMBMG") && !out.contains("client_secret"),
        "{out}"
    );
}
