//! The service layer (Odoo's `odoo/service`): starting and stopping the server process.

pub mod server;
