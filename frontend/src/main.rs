//! Entry point of the Keyway SPA: mounts the demo app on `<body>`.

fn main() {
    leptos::mount::mount_to_body(keyway_frontend::demo::App);
}
