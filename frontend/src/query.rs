//! Reading the provider's redirect (query and provider) and checking return paths.

use keyway_shared::CallbackRequest;

/// Parses the query of the redirect to the callback route (`?code=..&state=..&iss=..`
/// or `?error=..&error_description=..&state=..`; the leading `?` is optional)
/// into the body of `POST /bff/callback`. Empty parameters count as absent.
pub fn parse_callback_query(search: &str) -> CallbackRequest {
    let Ok(params) = web_sys::UrlSearchParams::new_with_str(search) else {
        return CallbackRequest::default();
    };
    let get = |name: &str| params.get(name).filter(|v| !v.is_empty());
    CallbackRequest {
        code: get("code"),
        state: get("state"),
        iss: get("iss"),
        error: get("error"),
        error_description: get("error_description"),
    }
}

/// Reads the callback query of the current URL and at once replaces the
/// history entry with the same path without the query (and fragment), so the
/// authorization code does not stay in the history or get bookmarked.
pub fn take_callback_query() -> CallbackRequest {
    let Some(window) = web_sys::window() else {
        return CallbackRequest::default();
    };
    let location = window.location();
    let search = location.search().unwrap_or_default();
    let request = parse_callback_query(&search);
    if !search.is_empty() || location.hash().is_ok_and(|h| !h.is_empty()) {
        let path = location
            .pathname()
            .unwrap_or_else(|_| "/callback".to_owned());
        if let Ok(history) = window.history() {
            // A router keeps its own state in `history.state`: keep it.
            let state = history.state().unwrap_or(wasm_bindgen::JsValue::NULL);
            let _ = history.replace_state_with_url(&state, "", Some(&path));
        }
    }
    request
}

/// The provider of a per-provider redirect URI: `corp` for a path ending in
/// `/callback/corp` (percent-decoded); `None` for the single-provider
/// `/callback` or any other path.
pub fn callback_provider_from_path(path: &str) -> Option<String> {
    let path = path.trim_end_matches('/');
    let (rest, last) = path.rsplit_once('/')?;
    if !rest.ends_with("/callback") || last.is_empty() {
        return None;
    }
    js_sys::decode_uri_component(last)
        .ok()
        .map(String::from)
        .filter(|p| !p.is_empty())
}

/// `path` if it is a same-origin relative path (`/...`, but not `//host` or
/// `/\host`), else `/`. Guards client-side navigation to a `return_to`.
pub fn safe_return_to(path: &str) -> &str {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(char::is_control);
    if ok { path } else { "/" }
}

/// The path and query of the current page (e.g. `/orders?status=open`), as
/// a `return_to`; `/` when there is none.
pub fn current_path() -> String {
    web_sys::window()
        .map(|w| {
            let l = w.location();
            l.pathname().unwrap_or_default() + &l.search().unwrap_or_default()
        })
        .filter(|p| p.starts_with('/'))
        .unwrap_or_else(|| "/".to_owned())
}
