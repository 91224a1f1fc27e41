//! Keyway's demo SPA: a `leptos_router` app whose sign-in, guard, callback
//! route and API calls come from `keyway-leptos`; this crate only supplies
//! the pages and their look.

#![forbid(unsafe_code)]

mod a11y;
mod app;
mod format;
mod pages;
mod settings;
mod views;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
