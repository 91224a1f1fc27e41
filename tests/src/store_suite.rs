//! One suite for every session store: the same test bodies run against the
//! memory, SQLite and Redis stores (`tests/stores.rs`) and against a store
//! written in a test (`tests/custom_store.rs`), through the public
//! [`Store`] trait and through a BFF built on the store.
//!
//! A store under test is a [`Target`]; [`store_suite!`](crate::store_suite)
//! makes one `#[tokio::test]` per body for a target.

use crate::bff::{
    Reserved, SpaClient, TestBff, assert_error, client_for, env_for, json_of, rebind, reserve,
};
use crate::provider::{ProviderConfig, TestProvider};
use crate::redis::RedisServer;
use crate::wait::eventually;
use async_trait::async_trait;
use keyway_backend::internals::open_store;
use keyway_backend::internals::{
    Identity, SessionData, SessionId, Sessions, Tokens, Updated, now_secs,
};
use keyway_backend::{Payload, Secret, SessionKey, SessionSettings, Store, StoreSetting, Update};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A store the suite runs against.
#[async_trait]
pub trait Target: Send + Sync {
    /// Opens the store as one more instance would (a store in memory: a new,
    /// empty one).
    async fn open(&self) -> Arc<dyn Store>;
    /// Whether two openings see the same data (as two instances would).
    fn shared(&self) -> bool;
    /// Everything the store holds outside the process, as raw bytes (`None`:
    /// nothing is outside the process).
    fn raw_contents(&self) -> Option<Vec<u8>>;
    /// The keys the store holds (Redis), to check their names and expiry.
    fn keys_with_ttl(&self) -> Option<Vec<(String, i64)>> {
        None
    }
    /// Empties the Lua script cache of every server (`SCRIPT FLUSH`);
    /// `false` when the store has none (not Redis).
    fn flush_scripts(&self) -> bool {
        false
    }
}

/// `KEYWAY_SESSION_KEY` of the suite (the 32 bytes 0..31).
pub const KEY_A: &str = crate::bff::TEST_SESSION_KEY;

/// The key of [`KEY_A`].
pub fn key_a() -> SessionKey {
    SessionKey(std::array::from_fn(|i| i as u8))
}

/// Another key.
pub fn key_b() -> SessionKey {
    SessionKey([7; 32])
}

/// Session settings with `keys` (the store itself is given separately).
pub fn settings(keys: Vec<SessionKey>) -> SessionSettings {
    SessionSettings {
        store: StoreSetting::Memory,
        idle_timeout: Duration::from_secs(3600),
        absolute_timeout: Duration::from_secs(7200),
        login_timeout: Duration::from_secs(600),
        keys,
    }
}

/// Sessions (with [`KEY_A`]) on a new opening of the target.
pub async fn sessions(target: &dyn Target) -> Sessions {
    Sessions::new(target.open().await, &settings(vec![key_a()]))
}

/// A session of `sub` with recognisable token values.
pub fn sample_session(sub: &str) -> SessionData {
    let now = now_secs();
    SessionData {
        identity: Identity {
            sub: sub.into(),
            name: None,
            email: None,
            email_verified: None,
            picture: None,
        },
        provider: "default".into(),
        sid: Some("provider-sid".into()),
        nonce: None,
        tokens: Tokens {
            access_token: Secret::new("access-token-value"),
            access_expires_at: Some(now + 3600),
            access_issued_at: now,
            refresh_token: Some(Secret::new("refresh-token-value")),
            id_token: None,
            dpop_key: None,
        },
        created_at: now,
        last_seen: now,
        auth: Default::default(),
    }
}

fn contains_jwt(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .any(|w| w.starts_with("eyJ") && w.matches('.').count() >= 2)
}

/// The `keyway=` cookie value a response sets.
pub fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("keyway="))
        .and_then(|c| c.split(';').next())
        .filter(|v| !v.is_empty())
        .expect("a session cookie")
        .to_owned()
}

/// A provider and a BFF on `store`; also returns the BFF's environment.
pub async fn stack_on(store: Arc<dyn Store>) -> (TestProvider, TestBff, BTreeMap<String, String>) {
    let reserved = reserve().await;
    let provider = TestProvider::start(ProviderConfig {
        clients: vec![client_for(&reserved.origin)],
        ..ProviderConfig::default()
    })
    .await
    .expect("provider starts");
    let mut env = env_for(&reserved.origin, &provider.issuer);
    env.insert("KEYWAY_SESSION_KEY".into(), KEY_A.into());
    let bff = start_bff(reserved, &env, store).await;
    (provider, bff, env)
}

async fn start_bff(
    reserved: Reserved,
    env: &BTreeMap<String, String>,
    store: Arc<dyn Store>,
) -> TestBff {
    let config = keyway_backend::Config::from_sources(None, env).expect("config");
    TestBff::start_built(reserved, keyway_backend::Builder::new(config).store(store))
        .await
        .expect("BFF starts")
}

// ---------------------------------------------------------------- targets

/// Keyway's memory store: a new one at each opening.
pub struct Memory;

#[async_trait]
impl Target for Memory {
    async fn open(&self) -> Arc<dyn Store> {
        open_store(&StoreSetting::Memory).await.unwrap()
    }
    fn shared(&self) -> bool {
        false
    }
    fn raw_contents(&self) -> Option<Vec<u8>> {
        None
    }
}

/// Keyway's SQLite store on a file in a temporary directory.
pub struct Sqlite {
    dir: tempfile::TempDir,
}

impl Sqlite {
    /// A store file in a new temporary directory.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Default for Sqlite {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Target for Sqlite {
    async fn open(&self) -> Arc<dyn Store> {
        open_store(&StoreSetting::Sqlite(self.dir.path().join("keyway.db")))
            .await
            .unwrap()
    }
    fn shared(&self) -> bool {
        true
    }
    fn raw_contents(&self) -> Option<Vec<u8>> {
        let mut all = Vec::new();
        for f in std::fs::read_dir(self.dir.path()).unwrap() {
            all.extend(std::fs::read(f.unwrap().path()).unwrap());
        }
        Some(all)
    }
}

/// Keyway's Redis store on a real redis-server.
pub struct Redis {
    /// The server.
    pub server: RedisServer,
}

impl Redis {
    /// Starts a redis-server.
    pub async fn start() -> Self {
        Self {
            server: RedisServer::start().await.expect("redis-server starts"),
        }
    }
}

#[async_trait]
impl Target for Redis {
    async fn open(&self) -> Arc<dyn Store> {
        open_store(&StoreSetting::parse(&self.server.url()).unwrap())
            .await
            .unwrap()
    }
    fn shared(&self) -> bool {
        true
    }
    fn raw_contents(&self) -> Option<Vec<u8>> {
        let mut all = Vec::new();
        for (k, v) in self.server.contents().unwrap() {
            all.extend(k.into_bytes());
            all.push(b'\n');
            all.extend(v);
        }
        Some(all)
    }
    fn keys_with_ttl(&self) -> Option<Vec<(String, i64)>> {
        let keys = self.server.contents().unwrap().into_iter().map(|(k, _)| k);
        Some(
            keys.map(|k| {
                let out = self.server.cli(&["TTL", &k]).unwrap();
                let ttl = String::from_utf8_lossy(&out).trim().parse().unwrap();
                (k, ttl)
            })
            .collect(),
        )
    }
    fn flush_scripts(&self) -> bool {
        self.server.cli(&["SCRIPT", "FLUSH"]).expect("SCRIPT FLUSH");
        true
    }
}

// ---------------------------------------------------------------- the suite

/// The whole journey on this store.
pub async fn full_flow_login_user_userinfo_logout(target: &dyn Target) {
    let (provider, bff, _) = stack_on(target.open().await).await;
    let spa = SpaClient::new(&bff);
    let (s, body) = json_of(spa.get("/bff/user").await).await;
    assert_error(s, &body, 401, "unauthenticated");
    let (s, body) = json_of(spa.login(&provider, "alice", "wonderland").await).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["user"]["sub"], "alice");
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 200, "{user}");
    assert_eq!(user["email"], "alice@example.com");
    let (s, info) = json_of(spa.get("/bff/userinfo").await).await;
    assert_eq!(s, 200, "{info}");
    assert_eq!(info["sub"], "alice");
    let (s, body) = json_of(spa.post("/bff/logout", &json!({})).await).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = json_of(spa.get("/bff/user").await).await;
    assert_error(s, &body, 401, "unauthenticated");
}

/// A cookie that names no session is an anonymous request, not an error.
pub async fn garbage_session_cookie_is_anonymous(target: &dyn Target) {
    let (_provider, bff, _) = stack_on(target.open().await).await;
    let http = reqwest::Client::new();
    for cookie in [
        "keyway=garbage",
        "keyway=AAAAAAAAAAAAAAAAAAAAAA",
        "keyway=kws_AAAAAAAAAAAAAAAAAA",
        "keyway=%ZZ; keyway-login-x=%7F",
    ] {
        let r = http
            .get(bff.url("/bff/user"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let (s, b) = json_of(r).await;
        assert_error(s, &b, 401, "unauthenticated");
    }
}

/// Each login gets a new session id; the old one is dead.
pub async fn session_id_is_rotated_at_login(target: &dyn Target) {
    let (provider, bff, _) = stack_on(target.open().await).await;
    let spa = SpaClient::new(&bff);
    let first = session_cookie(&spa.login(&provider, "alice", "wonderland").await);
    let second = session_cookie(&spa.login(&provider, "alice", "wonderland").await);
    assert_ne!(first, second);
    let old = reqwest::Client::new()
        .get(bff.url("/bff/user"))
        .header("cookie", format!("keyway={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401, "the pre-login id is dead");
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    assert_eq!(s, 200, "{user}");
}

/// A record sealed with a key this instance lacks is anonymous; rotation
/// reads old records and writes new ones with the new key.
pub async fn record_sealed_with_another_key_is_anonymous(target: &dyn Target) {
    let sessions = sessions(target).await;
    let created = sessions.create(sample_session("alice")).await.unwrap();
    let text = created.id.to_string();
    assert!(sessions.load(&text).await.unwrap().is_some());
    let other = sessions.with_keys(&[key_b()]);
    assert!(other.load(&text).await.unwrap().is_none());
    let rotated = sessions.with_keys(&[key_b(), key_a()]);
    let read = rotated
        .load(&text)
        .await
        .unwrap()
        .expect("old key decrypts");
    assert_eq!(read.data.identity.sub, "alice");
    let saved = rotated.update(&read, (*read.data).clone()).await.unwrap();
    assert!(matches!(saved, Updated::Saved(_)), "{saved:?}");
    assert!(
        sessions.load(&text).await.unwrap().is_none(),
        "old key alone"
    );
    assert!(other.load(&text).await.unwrap().is_some(), "new key");
    if target.shared() {
        // Over HTTP too: a BFF whose key cannot open the record is anonymous.
        let reserved = reserve().await;
        let mut env = env_for(&reserved.origin, "http://127.0.0.1:1");
        env.insert(
            "KEYWAY_SESSION_KEY".into(),
            "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=".into(),
        );
        let config = keyway_backend::Config::from_sources(None, &env).unwrap();
        let app = keyway_backend::Builder::new(config)
            .store(target.open().await)
            .router()
            .await
            .unwrap();
        let listener = reserved.listener;
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        let fresh = sessions.create(sample_session("bob")).await.unwrap();
        let r = reqwest::Client::new()
            .get(format!("{}bff/user", reserved.origin))
            .header("cookie", format!("keyway={}", fresh.id))
            .send()
            .await
            .unwrap();
        let (s, b) = json_of(r).await;
        assert_error(s, &b, 401, "unauthenticated");
        task.abort();
    }
}

/// Records are written only by compare-and-set: a stale version is a
/// conflict, a deleted record is gone for good, a taken key is not
/// overwritten — on one instance and across instances.
pub async fn writes_are_compare_and_set(target: &dyn Target) {
    let a = target.open().await;
    let b = if target.shared() {
        target.open().await
    } else {
        a.clone()
    };
    let key = format!("kws_suite{}", SessionId::random());
    let far = now_secs() + 600;
    let payload = |text: &str| Payload::from_bytes(text.as_bytes().to_vec());
    assert!(a.create(&key, &payload("one"), far).await.unwrap());
    assert!(
        !b.create(&key, &payload("other"), far).await.unwrap(),
        "a taken key is not overwritten"
    );
    let read = b.load(&key).await.unwrap().expect("written");
    assert_eq!(read.version, 1);
    assert_eq!(read.payload.bytes().as_ref(), b"one");
    assert_eq!(
        b.update(&key, 1, &payload("two"), far).await.unwrap(),
        Update::Written(2)
    );
    assert_eq!(
        a.update(&key, 1, &payload("stale"), far).await.unwrap(),
        Update::Conflict
    );
    let fresh = a.load_fresh(&key).await.unwrap().expect("there");
    assert_eq!(
        (fresh.version, fresh.payload.bytes().as_ref()),
        (2, &b"two"[..])
    );
    assert!(b.delete(&key).await.unwrap());
    assert_eq!(
        a.update(&key, 2, &payload("revived"), far).await.unwrap(),
        Update::Gone
    );
    assert!(
        a.load_fresh(&key).await.unwrap().is_none(),
        "deleted stays deleted"
    );
    assert!(!a.delete(&key).await.unwrap());
    // An expired record is gone too.
    let past = format!("kws_suite{}", SessionId::random());
    assert!(
        a.create(&past, &payload("old"), now_secs().saturating_sub(1))
            .await
            .unwrap()
    );
    assert!(b.load(&past).await.unwrap().is_none());
    assert_eq!(
        b.update(&past, 1, &payload("x"), far).await.unwrap(),
        Update::Gone
    );
}

/// A logout that lands while a copy of the session is held elsewhere (an
/// idle-time touch, a refresh) is never undone by that copy's write.
pub async fn a_deleted_session_stays_deleted(target: &dyn Target) {
    let a = sessions(target).await;
    let b = if target.shared() {
        sessions(target).await
    } else {
        a.clone()
    };
    let created = a.create(sample_session("alice")).await.unwrap();
    let held = b
        .load(&created.id.to_string())
        .await
        .unwrap()
        .expect("b reads it");
    assert!(a.delete(created.id).await.unwrap());
    let mut refreshed = (*held.data).clone();
    refreshed.tokens.refresh_token = Some(Secret::new("rotated"));
    assert!(matches!(
        b.update(&held, refreshed).await.unwrap(),
        Updated::Gone
    ));
    let mut stale = (*held.data).clone();
    stale.last_seen = 0;
    let stale = keyway_backend::internals::Session {
        data: Arc::new(stale),
        ..held.clone()
    };
    assert!(
        b.touch(stale).await.unwrap().is_none(),
        "a touch of a deleted session"
    );
    assert!(a.load(&created.id.to_string()).await.unwrap().is_none());
    assert!(b.load_fresh(created.id).await.unwrap().is_none());
}

/// The replay cache: a name is accepted once until it expires.
pub async fn claims_are_accepted_once(target: &dyn Target) {
    let a = sessions(target).await;
    let b = if target.shared() {
        sessions(target).await
    } else {
        a.clone()
    };
    let name = format!("jti\0suite\0{}", SessionId::random());
    let until = now_secs() + 60;
    assert!(a.claim_once(&name, until).await.unwrap());
    assert!(!b.claim_once(&name, until).await.unwrap(), "a replay");
    assert!(!a.claim_once(&name, until).await.unwrap(), "a replay");
    let other = format!("{name}-other");
    assert!(b.claim_once(&other, until).await.unwrap());
    // An expired claim can be made again.
    let old = format!("{name}-old");
    assert!(
        a.claim_once(&old, now_secs().saturating_sub(5))
            .await
            .unwrap()
    );
    assert!(b.claim_once(&old, until).await.unwrap());
}

/// The login index finds sessions by the provider's `sid` and by `sub`,
/// each once, expired entries gone, across key rotation.
pub async fn login_index_finds_sessions_by_sid_and_sub(target: &dyn Target) {
    let sessions = sessions(target).await;
    let now = now_secs();
    let (a1, a2, other, old) = (
        SessionId::random(),
        SessionId::random(),
        SessionId::random(),
        SessionId::random(),
    );
    let index = |p: &'static str, sid: Option<&'static str>, id, until| {
        let sessions = sessions.clone();
        async move {
            sessions
                .index_login(p, sid, "alice", id, until)
                .await
                .unwrap()
        }
    };
    index("corp", Some("sid-1"), a1, now + 600).await;
    index("corp", Some("sid-2"), a2, now + 60).await;
    index("corp", None, a2, now + 60).await;
    index("home", Some("sid-1"), other, now + 600).await;
    index("corp", Some("sid-1"), old, now.saturating_sub(1)).await;
    assert_eq!(
        sessions.sessions_by_sid("corp", "sid-1").await.unwrap(),
        [a1]
    );
    assert_eq!(
        sessions.sessions_by_sid("corp", "sid-2").await.unwrap(),
        [a2]
    );
    assert_eq!(
        sessions.sessions_by_sid("home", "sid-1").await.unwrap(),
        [other]
    );
    assert!(
        sessions
            .sessions_by_sid("corp", "nope")
            .await
            .unwrap()
            .is_empty()
    );
    let subs = sessions.sessions_by_sub("corp", "alice").await.unwrap();
    assert_eq!(subs.len(), 2, "each id once, the expired one gone");
    assert!(subs.contains(&a1) && subs.contains(&a2));
    assert!(
        sessions
            .sessions_by_sub("corp", "bob")
            .await
            .unwrap()
            .is_empty()
    );
    let rotated = sessions.with_keys(&[key_b(), key_a()]);
    assert_eq!(
        rotated.sessions_by_sid("corp", "sid-1").await.unwrap(),
        [a1]
    );
    assert!(
        sessions
            .with_keys(&[key_b()])
            .sessions_by_sub("corp", "alice")
            .await
            .unwrap()
            .is_empty()
    );
    if target.shared() {
        let second = self::sessions(target).await;
        assert_eq!(second.sessions_by_sid("corp", "sid-1").await.unwrap(), [a1]);
    }
}

/// An index name as Keyway makes them (32 hex digits, a keyed hash), new
/// at each call so that runs on one server do not meet.
fn fresh_index_name(label: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{label}\0{}", SessionId::random()));
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The members of index `name`, sorted and each once.
async fn members_of(store: &dyn Store, name: &str) -> Vec<String> {
    let mut members = store.index_members(name).await.unwrap();
    members.sort();
    members.dedup();
    members
}

/// [`Store::index_add_all`] files every entry under its own name (a login's
/// `sid` and `sub` entries; on a Cluster, keys on different shards), each
/// listed until the end given and not after; an empty slice is fine, and so
/// are two members of one name and an entry given twice in one call.
pub async fn index_add_all_files_every_entry_until_its_end(target: &dyn Target) {
    let store = target.open().await;
    let now = now_secs();
    let [sid, sub, old_a, old_b, short, pair] =
        ["sid", "sub", "old-a", "old-b", "short", "pair"].map(fresh_index_name);
    store.index_add_all(&[], now + 600).await.unwrap();
    store
        .index_add_all(
            &[(&sid, "member-of-sid"), (&sub, "member-of-sub")],
            now + 600,
        )
        .await
        .unwrap();
    assert_eq!(members_of(&*store, &sid).await, ["member-of-sid"]);
    assert_eq!(members_of(&*store, &sub).await, ["member-of-sub"]);
    // Ended already: listed under neither name, and nothing else changes.
    let past = now.saturating_sub(1);
    store
        .index_add_all(&[(&old_a, "gone"), (&old_b, "gone")], past)
        .await
        .unwrap();
    store
        .index_add_all(&[(&sid, "late"), (&sub, "late")], past)
        .await
        .unwrap();
    assert!(members_of(&*store, &old_a).await.is_empty());
    assert!(members_of(&*store, &old_b).await.is_empty());
    assert_eq!(members_of(&*store, &sid).await, ["member-of-sid"]);
    assert_eq!(members_of(&*store, &sub).await, ["member-of-sub"]);
    store
        .index_add_all(
            &[
                (&pair, "one"),
                (&sub, "again"),
                (&pair, "two"),
                (&pair, "one"),
            ],
            now + 600,
        )
        .await
        .unwrap();
    assert_eq!(members_of(&*store, &pair).await, ["one", "two"]);
    assert_eq!(members_of(&*store, &sub).await, ["again", "member-of-sub"]);
    if let Some(keys) = target.keys_with_ttl() {
        // Redis: the index keys expire with their newest entry.
        for name in [&sid, &sub, &pair] {
            let (key, ttl) = keys
                .iter()
                .find(|(k, _)| k.ends_with(name.as_str()))
                .unwrap_or_else(|| panic!("no key for {name}: {keys:?}"));
            assert!((1..=600).contains(ttl), "{key} has TTL {ttl}");
        }
    }
    if target.shared() {
        let second = target.open().await;
        assert_eq!(members_of(&*second, &sid).await, ["member-of-sid"]);
        assert_eq!(members_of(&*second, &sub).await, ["again", "member-of-sub"]);
    }
    // Entries that end in two seconds are listed, then not.
    store
        .index_add_all(&[(&short, "brief"), (&sid, "brief")], now + 2)
        .await
        .unwrap();
    assert_eq!(members_of(&*store, &short).await, ["brief"]);
    assert_eq!(members_of(&*store, &sid).await, ["brief", "member-of-sid"]);
    eventually(Duration::from_secs(6), "the short entries end", || {
        let store = store.clone();
        let (short, sid) = (short.clone(), sid.clone());
        async move {
            members_of(&*store, &short).await.is_empty()
                && members_of(&*store, &sid).await == ["member-of-sid"]
        }
    })
    .await;
}

/// Writes made with Lua scripts on Redis (create, update, the login index,
/// unlock) still succeed after the servers forget every script (`SCRIPT
/// FLUSH`, as after a restart or a failover): the store loads them again
/// (on a Cluster, each shard on its own). On the other stores, the same
/// writes simply succeed.
pub async fn scripted_writes_succeed_after_a_script_flush(target: &dyn Target) {
    let sessions = sessions(target).await;
    let now = now_secs();
    // Every script run once, so that the servers have them cached.
    let first = sessions.create(sample_session("alice")).await.unwrap();
    sessions
        .index_login("corp", Some("sid-before"), "alice", first.id, now + 600)
        .await
        .unwrap();
    let lock = sessions.try_lock("flush:a", Duration::from_secs(30)).await;
    lock.unwrap().expect("a free lock").release().await.unwrap();
    let flushed = target.flush_scripts();

    let second = sessions.create(sample_session("bob")).await.unwrap();
    let mut renamed = (*second.data).clone();
    renamed.identity.name = Some("Bob B.".into());
    let Updated::Saved(saved) = sessions.update(&second, renamed).await.unwrap() else {
        panic!("the update after the flush did not write (flushed: {flushed})");
    };
    assert_eq!(saved.version, 2);
    let read = sessions
        .load_fresh(second.id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(read.data.identity.name.as_deref(), Some("Bob B."));
    target.flush_scripts();
    sessions
        .index_login("corp", Some("sid-after"), "bob", second.id, now + 600)
        .await
        .unwrap();
    target.flush_scripts();
    sessions
        .index_login("corp", None, "carol", first.id, now + 600)
        .await
        .unwrap();
    assert_eq!(
        sessions.sessions_by_sid("corp", "sid-after").await.unwrap(),
        [second.id]
    );
    assert_eq!(
        sessions.sessions_by_sub("corp", "bob").await.unwrap(),
        [second.id]
    );
    assert_eq!(
        sessions.sessions_by_sub("corp", "carol").await.unwrap(),
        [first.id]
    );
    let held = sessions.try_lock("flush:b", Duration::from_secs(30)).await;
    let held = held.unwrap().expect("a free lock");
    target.flush_scripts();
    held.release().await.unwrap();
    let again = sessions.try_lock("flush:b", Duration::from_secs(30)).await;
    assert!(
        again.unwrap().is_some(),
        "the unlock after a flush freed the lock"
    );
}

/// Locks are exclusive across instances, expire, and are freed by release
/// or drop, never by a late holder.
pub async fn try_lock_is_exclusive_and_expires(target: &dyn Target) {
    let a = sessions(target).await;
    let b = if target.shared() {
        sessions(target).await
    } else {
        a.clone()
    };
    let held = a
        .try_lock("refresh:x", Duration::from_millis(400))
        .await
        .unwrap()
        .expect("free lock is taken");
    assert!(
        b.try_lock("refresh:x", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none(),
        "exclusive across instances"
    );
    assert!(
        a.try_lock("refresh:y", Duration::from_secs(5))
            .await
            .unwrap()
            .is_some(),
        "keys are independent"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let taken = loop {
        if let Some(lock) = b
            .try_lock("refresh:x", Duration::from_secs(30))
            .await
            .unwrap()
        {
            break lock;
        }
        assert!(Instant::now() < deadline, "the lock did not expire");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    held.release().await.unwrap();
    assert!(
        a.try_lock("refresh:x", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none(),
        "a late release does not free the new holder's lock"
    );
    taken.release().await.unwrap();
    let again = a
        .try_lock("refresh:x", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("released lock is free");
    drop(again);
    eventually(Duration::from_secs(5), "a dropped lock is freed", || {
        let b = b.clone();
        async move {
            b.try_lock("refresh:x", Duration::from_secs(1))
                .await
                .unwrap()
                .is_some()
        }
    })
    .await;
}

/// What the store holds outside the process has no token, no usable id and
/// no subject in the clear; every key expires.
pub async fn raw_store_holds_no_token_or_cookie_in_the_clear(target: &dyn Target) {
    if target.raw_contents().is_none() {
        return; // nothing outside the process to read
    }
    let (provider, bff, _) = stack_on(target.open().await).await;
    let spa = SpaClient::new(&bff);
    let r = spa.login(&provider, "alice", "wonderland").await;
    assert_eq!(r.status(), 200);
    let cookie = session_cookie(&r);
    spa.start_login(Some("/later")).await;
    let read = sessions(target)
        .await
        .load(&cookie)
        .await
        .unwrap()
        .expect("in the store");
    drop(bff);
    let raw = target.raw_contents().expect("raw contents");
    assert!(!raw.is_empty());
    let text = String::from_utf8_lossy(&raw);
    assert!(!contains_jwt(&text), "a JWT is stored in the clear");
    let tokens = &read.data.tokens;
    assert!(
        !text.contains(tokens.access_token.expose()),
        "the access token is in the clear"
    );
    if let Some(refresh) = &tokens.refresh_token {
        assert!(
            !text.contains(refresh.expose()),
            "the refresh token is in the clear"
        );
    }
    assert!(
        !text.contains(&cookie),
        "a usable session id is in the store"
    );
    assert!(!text.contains("alice"), "the subject is in the clear");
    if let Some(keys) = target.keys_with_ttl() {
        assert!(
            keys.iter().all(|(k, _)| k.starts_with("keyway:")),
            "every key says what it is: {keys:?}"
        );
        assert!(
            keys.iter()
                .any(|(k, _)| k.starts_with("keyway:s:kws_") || k.starts_with("keyway:s:{kws_")),
            "{keys:?}"
        );
        for (k, ttl) in &keys {
            assert!(*ttl > 0, "{k} has TTL {ttl}");
        }
    }
}

/// A restart keeps sessions on stores outside the process.
pub async fn restart_keeps_the_session_on_persistent_stores(target: &dyn Target) {
    let (provider, bff, env) = stack_on(target.open().await).await;
    let spa = SpaClient::new(&bff);
    let (s, body) = json_of(spa.login(&provider, "alice", "wonderland").await).await;
    assert_eq!(s, 200, "{body}");
    let origin = bff.origin.clone();
    bff.stop().await;
    let bff = start_bff(rebind(&origin).await, &env, target.open().await).await;
    let (s, user) = json_of(spa.get("/bff/user").await).await;
    if target.shared() {
        assert_eq!(s, 200, "{user}");
        assert_eq!(user["sub"], "alice");
        let (s, info) = json_of(spa.get("/bff/userinfo").await).await;
        assert_eq!(s, 200, "{info}");
    } else {
        assert_error(s, &user, 401, "unauthenticated");
    }
    drop(bff);
}

/// A store that counts the writes reaching another (to prove that
/// anonymous traffic writes nothing).
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn Store>,
    /// Writes: creates, updates, deletes, index entries, claims.
    pub writes: AtomicUsize,
}

#[async_trait]
impl Store for CountingStore {
    async fn load(
        &self,
        key: &str,
    ) -> Result<Option<keyway_backend::Record>, keyway_backend::StoreError> {
        self.inner.load(key).await
    }
    async fn create(
        &self,
        key: &str,
        p: &Payload,
        e: u64,
    ) -> Result<bool, keyway_backend::StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.create(key, p, e).await
    }
    async fn update(
        &self,
        key: &str,
        v: u64,
        p: &Payload,
        e: u64,
    ) -> Result<Update, keyway_backend::StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.update(key, v, p, e).await
    }
    async fn delete(&self, key: &str) -> Result<bool, keyway_backend::StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key).await
    }
    async fn index_add(&self, n: &str, m: &str, u: u64) -> Result<(), keyway_backend::StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.index_add(n, m, u).await
    }
    async fn index_add_all(
        &self,
        entries: &[(&str, &str)],
        u: u64,
    ) -> Result<(), keyway_backend::StoreError> {
        self.writes.fetch_add(entries.len(), Ordering::SeqCst);
        self.inner.index_add_all(entries, u).await
    }
    async fn index_members(&self, n: &str) -> Result<Vec<String>, keyway_backend::StoreError> {
        self.inner.index_members(n).await
    }
    async fn try_lock(
        &self,
        n: &str,
        t: &str,
        ttl: Duration,
    ) -> Result<bool, keyway_backend::StoreError> {
        self.inner.try_lock(n, t, ttl).await
    }
    async fn unlock(&self, n: &str, t: &str) -> Result<(), keyway_backend::StoreError> {
        self.inner.unlock(n, t).await
    }
    async fn claim_once(&self, n: &str, u: u64) -> Result<bool, keyway_backend::StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.claim_once(n, u).await
    }
    async fn ping(&self) -> Result<(), keyway_backend::StoreError> {
        self.inner.ping().await
    }
}

/// A flood of anonymous login starts writes nothing to the store (the
/// pending logins live in the browsers' sealed cookies), and the BFF still
/// completes a real login afterwards.
pub async fn login_starts_cost_the_store_nothing(target: &dyn Target) {
    let counting = Arc::new(CountingStore {
        inner: target.open().await,
        writes: AtomicUsize::new(0),
    });
    let raw_before = target.raw_contents();
    let (provider, bff, _) = stack_on(counting.clone()).await;
    let http = reqwest::Client::new();
    let url = bff.url("/bff/login");
    let mut starts = Vec::new();
    for _ in 0..1000 {
        starts.push(
            http.post(&url)
                .header("x-csrf", "1")
                .json(&json!({}))
                .send(),
        );
    }
    for chunk in starts.chunks_mut(50) {
        for r in futures_util::future::join_all(chunk.iter_mut()).await {
            assert_eq!(r.unwrap().status(), 200);
        }
    }
    assert_eq!(
        counting.writes.load(Ordering::SeqCst),
        0,
        "a login start wrote to the store"
    );
    if let (Some(before), Some(after)) = (raw_before, target.raw_contents()) {
        assert_eq!(before.len(), after.len(), "the store grew");
    }
    let spa = SpaClient::new(&bff);
    assert_eq!(
        spa.login(&provider, "alice", "wonderland").await.status(),
        200
    );
    assert!(
        counting.writes.load(Ordering::SeqCst) > 0,
        "a completed login is stored"
    );
}

/// Generates one `#[tokio::test]` per suite body for a target: `$module`
/// names the test module, `$make` is an `async fn() -> impl Target`.
#[macro_export]
macro_rules! store_suite {
    ($module:ident, $make:path) => {
        mod $module {
            $crate::store_suite!(@tests $make,
                full_flow_login_user_userinfo_logout,
                garbage_session_cookie_is_anonymous,
                session_id_is_rotated_at_login,
                record_sealed_with_another_key_is_anonymous,
                writes_are_compare_and_set,
                a_deleted_session_stays_deleted,
                claims_are_accepted_once,
                login_index_finds_sessions_by_sid_and_sub,
                index_add_all_files_every_entry_until_its_end,
                scripted_writes_succeed_after_a_script_flush,
                try_lock_is_exclusive_and_expires,
                raw_store_holds_no_token_or_cookie_in_the_clear,
                restart_keeps_the_session_on_persistent_stores,
                login_starts_cost_the_store_nothing,
            );
        }
    };
    (@tests $make:path, $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let target = $make().await;
                $crate::store_suite::$test(&target).await;
            }
        )*
    };
}

/// What a test asks of [`Sessions`] beyond the application's needs.
pub trait SessionsExt {
    /// Whether sessions are served from this process's memory right now.
    fn cache_on(&self) -> bool;
}

impl SessionsExt for Sessions {
    fn cache_on(&self) -> bool {
        self.store().serves_from_memory()
    }
}
