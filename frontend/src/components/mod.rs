//! The headless components.
//!
//! None has markup of its own beyond the one `<button>` an action needs: no
//! class, no id, no style, no text. Labels, progress, errors and fallbacks
//! are the caller's views; attributes given to a button component
//! (`attr:class="…"`, `attr:id`, or after a `{..}` marker) land on its
//! `<button>`. State for the caller's own markup comes from
//! [`use_auth`](crate::use_auth) as signals.

mod button;
mod callback_page;
mod login_button;
mod logout_button;
mod require_auth;

pub use callback_page::CallbackPage;
pub use login_button::LoginButton;
pub use logout_button::LogoutButton;
pub use require_auth::RequireAuth;
