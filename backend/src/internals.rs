//! Keyway's inner parts, for its own tests, benchmark and fuzz targets
//! (hidden from the docs). Not a stable API: applications use the items at
//! the crate's root.

pub use crate::login::pending::{self, PendingLogin};
pub use crate::login::return_to;
pub use crate::provider::api_client::{ApiCallError, ApiClient};
pub use crate::provider::claims::{Identity, KeywayClaims};
pub use crate::provider::discovery::{ClientBase, Discovered, Metadata};
pub use crate::provider::http::{HttpClient, HttpOptions, install_crypto_provider};
pub use crate::provider::jwk::ProviderKey;
pub use crate::provider::verify::{self, SignedToken};
pub use crate::proxy::headers as proxy_headers;
pub use crate::proxy::path as proxy_path;
pub use crate::session::codec::Codec;
pub use crate::session::cookie;
pub use crate::session::data::{SessionData, Tokens, now_secs};
pub use crate::session::id::SessionId;
pub use crate::session::store::open as open_store;
pub use crate::session::store::{cached::CachedStore, memory::MemoryStore, redis::CACHE_MAX_AGE};
pub use crate::session::{Session, Sessions, Updated};

/// Runs one expiry pass of the PostgreSQL store at `url` now (the store's
/// own task runs it every minute); how many rows went.
pub async fn postgres_expire_now(url: &str) -> Result<u64, String> {
    crate::session::store::postgres::PostgresStore::open_for_expiry(url)
        .await?
        .delete_expired()
        .await
        .map_err(|e| e.to_string())
}
