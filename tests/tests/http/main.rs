//! The HTTP runtime (issue 4) through the real binary, real addons (`base`, `web`,
//! `test_http`) and real sockets on loopback: the json and http dispatchers with every error
//! shape, a dispatcher registered by an addon, proxy mode, sessions (cookie, files, modes,
//! rotation, hostile ids, corrupt files, no fixation), CSRF, CORS, static files (traversal,
//! revalidation, ranges), body limits, multipart forms, slow and idle clients, the
//! concurrency cap, websockets (round trip, handshake refusals, Close 1001 at shutdown),
//! the access log, and the synchronous path (inline routes) answering as the asynchronous one.
//!
//! One test binary, a module per area. Build first: `cargo build --workspace`, then
//! `cargo test -p inphms-tests --test http` (or `cargo xtask test --test http`).

mod access_log;
mod cors;
mod csrf;
mod dispatch;
mod json;
mod limits;
mod proxy;
mod sessions;
mod static_files;
mod support;
mod synchronous;
mod websocket;
