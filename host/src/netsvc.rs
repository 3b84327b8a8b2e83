//! Logging (Odoo's `odoo/netsvc.py`).
