//! The service layer (Odoo's `odoo/service`): running the server process: start-up, the
//! signal-driven lifecycle (graceful stop, addon swap, dump), the phoenix re-exec, and the
//! memory and time limits.

pub mod cron;
pub mod db;
pub mod limits;
pub mod phoenix;
pub mod reload;
pub mod server;
pub mod signals;
