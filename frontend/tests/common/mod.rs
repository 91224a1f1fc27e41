//! Helpers of the browser tests: a scriptable fake `fetch` that records
//! every request, bounded waits, and mounting into a fresh element.
#![allow(dead_code)] // each test file uses part of it

use js_sys::{Function, Promise, Reflect};
use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A user as the BFF sends it.
pub const ADA: &str = r#"{"sub":"u1","provider":"corp","name":"Ada","email":"ada@example.com","expires_at":4000000000}"#;
/// The BFF's "no session" answer.
pub const UNAUTHENTICATED: &str = r#"{"error":"unauthenticated","message":"Not signed in."}"#;
/// One provider.
pub const ONE_PROVIDER: &str = r#"[{"id":"corp","name":"Corp SSO","kind":"oidc"}]"#;
/// Where the fake `POST /bff/login` sends the window: a fragment of this
/// page, so the test page is not unloaded.
pub const AT_PROVIDER: &str = "#at-provider";

/// Replaces `window.fetch` with a fake that records each request in
/// `window.__calls` (method, path, search, headers of interest, body) and
/// answers from `window.__routes` (`"METHOD /path"` or `"/path"` to
/// `[status, body]`); anything else gets a 404.
///
/// First lets the event loop run once, so that requests a previous test
/// left queued are made before the record starts.
pub async fn fake_fetch() {
    next_task().await;
    run_js(
        r#"
        window.__calls = [];
        window.__routes = {};
        window.fetch = async (input, init) => {
            const req = input instanceof Request ? input : new Request(input, init);
            const url = new URL(req.url);
            window.__calls.push({
                method: req.method, path: url.pathname, search: url.search,
                csrf: req.headers.get('x-csrf'), accept: req.headers.get('accept'),
                contentType: req.headers.get('content-type'), body: await req.clone().text(),
            });
            const route = window.__routes[req.method + ' ' + url.pathname] || window.__routes[url.pathname]
                || [404, '{"error":"not_found","message":"No such route."}'];
            const [status, body] = route;
            const empty = status === 204 || status === 205 || status === 304;
            return new Response(empty ? null : body,
                { status, headers: { 'content-type': 'application/json' } });
        };
        "#,
    );
}

/// Answers `route` (`"POST /bff/login"` or `"/bff/user"`) with `status` and `body`.
pub fn route(route: &str, status: u16, body: &str) {
    let routes = Reflect::get(&window(), &"__routes".into()).unwrap();
    let answer = js_sys::Array::of2(&JsValue::from(status), &JsValue::from_str(body));
    Reflect::set(&routes, &route.into(), &answer).unwrap();
}

/// The usual answers: no session, one provider, a login that "goes" to
/// [`AT_PROVIDER`], a logout without end-session page.
pub async fn anonymous_bff() {
    fake_fetch().await;
    route("/bff/user", 401, UNAUTHENTICATED);
    route("/bff/providers", 200, ONE_PROVIDER);
    route(
        "POST /bff/login",
        200,
        &format!(r#"{{"authorization_url":"{AT_PROVIDER}"}}"#),
    );
    route("POST /bff/logout", 200, r#"{"end_session_url":null}"#);
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub search: String,
    pub csrf: Option<String>,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// The requests recorded so far.
pub fn calls() -> Vec<Call> {
    let calls: js_sys::Array = Reflect::get(&window(), &"__calls".into())
        .unwrap()
        .unchecked_into();
    calls
        .iter()
        .map(|c| {
            let s = |k: &str| Reflect::get(&c, &k.into()).unwrap().as_string();
            Call {
                method: s("method").unwrap(),
                path: s("path").unwrap(),
                search: s("search").unwrap_or_default(),
                csrf: s("csrf"),
                accept: s("accept"),
                content_type: s("contentType"),
                body: s("body").unwrap_or_default(),
            }
        })
        .collect()
}

/// The recorded requests to `path` (any method).
pub fn calls_to(path: &str) -> Vec<Call> {
    calls().into_iter().filter(|c| c.path == path).collect()
}

/// Runs a script in the page.
pub fn run_js(script: &str) -> JsValue {
    Function::new_no_args(script).call0(&JsValue::NULL).unwrap()
}

/// Lets the event loop run once: every pending promise job (spawned
/// futures, effects) runs before this returns. Not a delay: the next task.
pub async fn next_task() {
    let promise = Promise::new(&mut |resolve, _| {
        window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0)
            .unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Waits, polling once per event-loop task, for `cond`; gives up after 3 s.
pub async fn until(cond: impl FnMut() -> bool) -> bool {
    until_ms(3_000, cond).await
}

/// Waits, polling once per event-loop task, for `cond`; gives up after `ms`.
pub async fn until_ms(ms: u32, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = js_sys::Date::now() + f64::from(ms);
    while js_sys::Date::now() < deadline {
        if cond() {
            return true;
        }
        next_task().await;
    }
    cond()
}

/// Replaces the URL (path, query, fragment) without a navigation.
pub fn set_url(url: &str) {
    window()
        .history()
        .unwrap()
        .replace_state_with_url(&JsValue::NULL, "", Some(url))
        .unwrap();
}

/// A mounted view; dropping it unmounts the view and cleans up everything
/// it created (listeners, effects, signals), as leaving the page would, so
/// that nothing of one test reacts in the next.
pub struct Mounted {
    owner: Owner,
    handle: Option<Box<dyn std::any::Any>>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        self.handle.take();
        self.owner.cleanup();
    }
}

/// Mounts `view` into `root`.
pub fn mount<F, N>(root: &web_sys::HtmlElement, view: F) -> Mounted
where
    F: FnOnce() -> N + 'static,
    N: IntoView + 'static,
{
    let owner = Owner::new();
    let handle = owner.with(|| leptos::mount::mount_to(root.clone(), view));
    Mounted {
        owner,
        handle: Some(Box::new(handle)),
    }
}

/// A fresh element at the end of `<body>` to mount into.
pub fn host() -> web_sys::HtmlElement {
    let document = document();
    let host = document.create_element("div").unwrap();
    document.body().unwrap().append_child(&host).unwrap();
    host.unchecked_into()
}

/// The text of the first element matching `css` under `root`, if any.
pub fn text_of(root: &web_sys::HtmlElement, css: &str) -> Option<String> {
    root.query_selector(css)
        .unwrap()
        .map(|el| el.text_content().unwrap_or_default())
}

/// How many elements under `root` match `css`.
pub fn count(root: &web_sys::HtmlElement, css: &str) -> u32 {
    root.query_selector_all(css).unwrap().length()
}

/// Clicks the first element matching `css` under `root`.
pub fn click(root: &web_sys::HtmlElement, css: &str) {
    root.query_selector(css)
        .unwrap()
        .unwrap_or_else(|| panic!("no {css} in {}", root.inner_html()))
        .unchecked_into::<web_sys::HtmlElement>()
        .click();
}

/// The page's `location.hash`.
pub fn hash() -> String {
    window().location().hash().unwrap()
}

/// The page's path.
pub fn pathname() -> String {
    window().location().pathname().unwrap()
}

/// Parses a recorded JSON body.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}
