//! The service layer (Odoo's `odoo/service`): running the server process: start-up, the
//! signal-driven lifecycle (graceful stop, addon swap, dump), the phoenix re-exec, and the
//! memory and time limits, and workers mode (a master process, `prefork`, and its worker
//! processes, `worker`), the database manager (`db_manager`, Odoo's `db`
//! service) and what RPC calls fail with (`rpc`).

pub mod cron;
pub mod db;
pub mod db_manager;
pub mod limits;
pub mod metrics;
pub mod phoenix;
pub mod prefork;
pub mod reload;
pub mod requests_shm;
pub mod rpc;
pub mod server;
pub mod signals;
pub mod worker;
