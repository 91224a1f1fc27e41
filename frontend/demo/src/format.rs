//! Words and dates for people.

use keyway_leptos::User;
use wasm_bindgen::JsValue;

/// The name to show for a user: name, else e-mail, else subject.
pub fn display_name(user: &User) -> String {
    user.name
        .clone()
        .or_else(|| user.email.clone())
        .unwrap_or_else(|| user.sub.clone())
}

/// Seconds since the epoch as a date and time in the browser's language.
pub fn format_time(secs: u64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(secs as f64 * 1000.0));
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"dateStyle".into(), &"medium".into());
    let _ = js_sys::Reflect::set(&options, &"timeStyle".into(), &"short".into());
    let locale = web_sys::window()
        .and_then(|w| w.navigator().language())
        .unwrap_or_else(|| "en".to_owned());
    date.to_locale_string(&locale, &options).into()
}
