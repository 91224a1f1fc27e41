//! Test support for Keyway's end-to-end tests: real parts started on free
//! loopback ports and stopped when dropped.

pub mod bff;
pub mod browser;
pub mod captured_logs;
pub mod dpop_api;
pub mod fake_github;
pub mod fapi;
pub mod lying_provider;
pub mod nginx;
pub mod postgres;
pub mod presets;
pub mod provider;
pub mod raw_http;
pub mod redis;
pub mod redis_ha;
pub mod store_suite;
pub mod store_targets;
pub mod tls;
pub mod trunk;
pub mod upstream;
pub mod wait;
pub mod walk;
