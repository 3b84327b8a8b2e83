//! Identity (issue 19) through the real binary, `base` and `web`, real HTTP on loopback and
//! the real PostgreSQL: passwords in passlib's format (both ways, with Python's passlib),
//! the `users` command, the start-up warning of the default admin password, the web session
//! API with Odoo's shapes, the session token (a password change ends other sessions), the
//! login form (CSRF, no open redirect, Odoo's messages), login throttling, API keys.
//!
//! One test binary, a module per area: `cargo xtask test --test identity`.

mod apikeys;
mod browser;
mod login_form;
mod passwords;
mod review;
mod session_api;
mod support;
mod throttle;
mod websocket;
mod websocket_async;
