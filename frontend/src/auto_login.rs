//! Remembers (per tab, in `sessionStorage`) that a guard just sent the
//! visitor to sign in for a path, so that a guard which sees no session again
//! right after the sign-in (e.g. the cookie is refused) does not loop.
//!
//! What is stored is a time and a path of the app: never a token.

const KEY: &str = "keyway.auto-login";
const WINDOW_MS: u64 = 60_000;

// Whole milliseconds: formatting and parsing floats costs kilobytes of wasm.
fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

/// Notes that a sign-in for `path` starts now.
pub(crate) fn mark(path: &str) {
    if let Some(s) = storage() {
        let _ = s.set_item(KEY, &format!("{}\n{path}", now_ms()));
    }
}

/// Whether a sign-in for `path` started less than a minute ago.
pub(crate) fn recently_started(path: &str) -> bool {
    let Some(value) = storage().and_then(|s| s.get_item(KEY).ok().flatten()) else {
        return false;
    };
    let Some((at, marked)) = value.split_once('\n') else {
        return false;
    };
    let at: u64 = at.parse().unwrap_or(0);
    marked == path && now_ms().saturating_sub(at) < WINDOW_MS
}

/// Forgets the note (the sign-in completed, or failed visibly).
pub(crate) fn clear() {
    if let Some(s) = storage() {
        let _ = s.remove_item(KEY);
    }
}
