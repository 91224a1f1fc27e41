//! The demo's pages, one module each.

mod account;
mod api_call;
mod callback;
mod home;
mod not_found;
mod profile;
mod sessions;

pub use account::Account;
pub use api_call::ApiCall;
pub use callback::Callback;
pub use home::Home;
pub use not_found::NotFound;
pub use profile::Profile;
