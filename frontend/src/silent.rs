//! Silent sign-in bookkeeping, per tab in `sessionStorage` (like the
//! guard's loop protection): whether a silent attempt (`prompt=none`) was
//! made in this tab's session already — it is made at most once, so a
//! provider that answers `login_required` can never cause a loop — and the
//! page it started from, where the callback route sends the visitor back
//! when the provider says nobody is signed in there.
//!
//! What is stored is a flag and a path of the app: never a token.

const TRIED: &str = "keyway.silent-tried";
const RETURN: &str = "keyway.silent-return";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

/// Whether a silent sign-in was attempted in this tab's session.
pub(crate) fn tried() -> bool {
    storage().is_some_and(|s| s.get_item(TRIED).ok().flatten().is_some())
}

/// Notes that a silent sign-in from `path` starts now.
pub(crate) fn mark(path: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(TRIED, "1");
        let _ = s.set_item(RETURN, path);
    }
}

/// The page a silent sign-in under way started from (forgotten once read).
pub(crate) fn take_return() -> Option<String> {
    let s = storage()?;
    let path = s.get_item(RETURN).ok().flatten();
    let _ = s.remove_item(RETURN);
    path
}
