//! Configuration (Odoo's `odoo/tools/config.py`).

/// The effective configuration.
#[derive(Debug, Default)]
pub struct Config {}
