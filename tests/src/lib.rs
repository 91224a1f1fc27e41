//! Test support for Keyway's end-to-end tests: real parts started on free
//! loopback ports and stopped when dropped.

pub mod bff;
pub mod browser;
pub mod fake_github;
pub mod lying_provider;
pub mod provider;
pub mod redis;
pub mod trunk;
pub mod upstream;
pub mod wait;
