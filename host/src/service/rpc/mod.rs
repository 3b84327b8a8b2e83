//! Odoo's external API (`odoo/service/{common,db,model}.py`): what its calls fail with
//! ([`fault`]).

pub mod fault;
