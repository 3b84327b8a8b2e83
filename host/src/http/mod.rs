//! The HTTP runtime (Odoo's `odoo/http.py` and werkzeug's server): the listener, the
//! [`application::Application`] that serves each request, and the parts it uses, one job
//! per module.

pub mod access_log;
mod addon_request;
pub mod application;
pub mod body;
mod connection;
pub mod connections;
pub mod csrf;
pub mod db_apps;
pub mod dispatcher;
pub mod file_body;
pub mod idle;
pub mod inflight;
pub mod ir_http;
pub mod proxy;
mod request_session;
pub mod response;
pub mod routing;
pub mod server;
pub mod services;
pub mod session;
pub mod session_counts;
pub mod session_merge;
pub mod session_pg;
pub mod static_files;
pub mod stream_body;
pub mod timeouts;
pub mod websocket;

pub use application::{call_endpoint, csrf_token};
pub use services::Services;
