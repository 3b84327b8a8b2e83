//! The database manager (Odoo's `odoo/service/db.py`, the `db` service): [`dispatch`] runs
//! one of its calls with Odoo's `exp_*` semantics and argument order, for the RPC
//! endpoints, the `web` addon's `/web/database/*` pages (through the host API) and the
//! `inphms-host db` commands.
//!
//! Files by job: [`master`] the master password, [`ops`] create, duplicate, drop and
//! rename, [`dump`] backups, [`restore`] restoring them, [`pg_bin`] PostgreSQL's client
//! programs, [`web`] the entry for addons (`HostApi::db_service`). [`Manager`] is the state (the master password as changed at run time), owned
//! by `server::Host`.
//!
//! Calls without the master password: `list`, `db_exist` (also `exist`), `list_lang`,
//! `server_version`; every other call takes it first (`check_super`). With `list_db` off,
//! everything but `db_exist`, `list_lang` and `server_version` is `AccessDenied`.

pub mod dump;
pub mod master;
pub mod meta_commands;
pub mod ops;
pub mod pg_bin;
pub mod restore;
pub mod web;

#[cfg(test)]
mod tests;

use crate::config::Config;
use crate::modules::registry::Registries;
use crate::service::rpc::fault::RpcFault;
use crate::service::server::Host;
use crate::sql_db::dblist::{self, ListError};
use crate::sql_db::Databases;
use base64::Engine;
use serde_json::{json, Value};
use std::sync::Arc;

const TARGET: &str = "inphms.service.db";

/// What a call of the manager gives.
pub type Result<T> = std::result::Result<T, RpcFault>;

/// A `builtins.Exception` with `message` (Odoo's plain `raise Exception(...)`).
pub fn exception(message: impl Into<String>) -> RpcFault {
    RpcFault::Application {
        name: "builtins.Exception".into(),
        message: message.into(),
    }
}

/// A `UserError` with `message`.
pub fn user_error(message: impl Into<String>) -> RpcFault {
    RpcFault::UserError(message.into())
}

fn access_denied() -> RpcFault {
    RpcFault::AccessDenied("Access Denied".into())
}

/// The languages the host knows (`list_lang`): `[code, name]`.
pub const LANGS: &[(&str, &str)] = &[("en_US", "English (US)")];

/// The countries `list_countries` gives: `[code, name]`, sorted by name.
pub const COUNTRIES: &[(&str, &str)] = &[
    ("be", "Belgium"),
    ("ca", "Canada"),
    ("fr", "France"),
    ("de", "Germany"),
    ("in", "India"),
    ("id", "Indonesia"),
    ("it", "Italy"),
    ("nl", "Netherlands"),
    ("es", "Spain"),
    ("ch", "Switzerland"),
    ("gb", "United Kingdom"),
    ("us", "United States"),
];

/// The database manager of one host: what it reaches and the master password.
#[derive(Debug)]
pub struct Manager {
    pub(crate) config: Arc<Config>,
    pub(crate) databases: Arc<Databases>,
    pub(crate) registries: Arc<Registries>,
    /// The master password.
    pub master: master::MasterPassword,
}

/// Runs the `db` service's `method` with `params` (Odoo's `odoo.service.db.dispatch`).
pub async fn dispatch(host: &Host, method: &str, params: &[Value]) -> Result<Value> {
    host.db_manager.dispatch(method, params).await
}

/// The text argument `i` (`what` names it in the error).
fn text(params: &[Value], i: usize, what: &str) -> Result<String> {
    match params.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(user_error(format!("{what} must be a string, got {other}"))),
        None => Err(exception(format!("missing argument {} ({what})", i + 1))),
    }
}

/// The optional text argument `i`: absent, `null` or `false` (Python's falsy) is `None`.
fn opt_text(params: &[Value], i: usize, what: &str) -> Result<Option<String>> {
    match params.get(i) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
        Some(Value::String(s)) if s.is_empty() || s == "False" => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(user_error(format!("{what} must be a string, got {other}"))),
    }
}

/// The boolean argument `i` (Python's truth: absent, `false`, 0, "" and "False" are false).
fn flag(params: &[Value], i: usize) -> bool {
    match params.get(i) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !(s.is_empty() || s.eq_ignore_ascii_case("false") || s == "0"),
        Some(_) => true,
    }
}

impl Manager {
    /// The manager of a host with these parts.
    pub fn new(
        config: Arc<Config>,
        databases: Arc<Databases>,
        registries: Arc<Registries>,
    ) -> Manager {
        let master = master::MasterPassword::new(&config);
        Manager {
            config,
            databases,
            registries,
            master,
        }
    }

    /// Odoo's `check_super`.
    pub fn check_super(&self, password: &str) -> Result<()> {
        if self.master.verify(password) {
            Ok(())
        } else {
            Err(access_denied())
        }
    }

    /// Odoo's `check_db_management_enabled`.
    pub fn check_enabled(&self) -> Result<()> {
        if self.config.list_db {
            Ok(())
        } else {
            tracing::error!(target: TARGET, "Database management functions blocked, admin disabled database listing");
            Err(access_denied())
        }
    }

    /// The databases (`list`): `AccessDenied` when `list_db` is off.
    pub async fn list(&self) -> Result<Vec<String>> {
        match dblist::list_dbs(&self.databases, &self.config, false).await {
            Ok(l) => Ok(l),
            Err(ListError::AccessDenied) => Err(access_denied()),
            Err(ListError::Db(e)) => Err(exception(e.to_string())),
        }
    }

    /// Whether the database `name` exists (`db_exist`): from the cached list or a pooled
    /// connection (the call needs no password: no connection of its own, which many
    /// concurrent calls would multiply past `db_maxconn`).
    pub async fn exists(&self, name: &str) -> Result<bool> {
        dblist::exists(&self.databases, &self.config, name)
            .await
            .map_err(|e| exception(e.to_string()))
    }

    /// Odoo's `odoo.service.db.dispatch(method, params)`.
    pub async fn dispatch(&self, method: &str, params: &[Value]) -> Result<Value> {
        match method {
            "server_version" => return Ok(json!(crate::release::VERSION)),
            "list_lang" => return Ok(json!(LANGS.iter().map(|(c, n)| [c, n]).collect::<Vec<_>>())),
            "db_exist" | "exist" => {
                return Ok(json!(self.exists(&text(params, 0, "db_name")?).await?))
            }
            "list" => return Ok(json!(self.list().await?)),
            "create_database"
            | "duplicate_database"
            | "drop"
            | "rename"
            | "change_admin_password"
            | "dump"
            | "restore"
            | "list_countries" => {}
            other => {
                return Err(RpcFault::Application {
                    name: "builtins.KeyError".into(),
                    message: format!("Method not found: {other}"),
                })
            }
        }
        let master = match params.first() {
            Some(Value::String(s)) => s.as_str(),
            _ => "",
        };
        self.check_super(master)?;
        let params = &params[1..];
        if method != "list_countries" {
            self.check_enabled()?;
        }
        match method {
            "create_database" => {
                self.create_database(
                    &text(params, 0, "db_name")?,
                    flag(params, 1),
                    opt_text(params, 2, "lang")?.as_deref(),
                    &opt_text(params, 3, "user_password")?.unwrap_or_else(|| "admin".into()),
                    &opt_text(params, 4, "login")?.unwrap_or_else(|| "admin".into()),
                    opt_text(params, 5, "country_code")?.as_deref(),
                    opt_text(params, 6, "phone")?.as_deref(),
                )
                .await?;
                Ok(json!(true))
            }
            "duplicate_database" => {
                self.duplicate_database(
                    &text(params, 0, "db_original_name")?,
                    &text(params, 1, "db_name")?,
                    flag(params, 2),
                )
                .await?;
                Ok(json!(true))
            }
            "drop" => Ok(json!(self.drop(&text(params, 0, "db_name")?).await?)),
            "rename" => {
                self.rename(&text(params, 0, "old_name")?, &text(params, 1, "new_name")?)
                    .await?;
                Ok(json!(true))
            }
            "change_admin_password" => {
                let new = text(params, 0, "new_password")?;
                if new.is_empty() {
                    return Err(user_error("the new master password may not be empty"));
                }
                self.master.set(&self.config, &new).map_err(exception)?;
                Ok(json!(true))
            }
            "dump" => {
                let format =
                    dump::Format::parse(&opt_text(params, 1, "format")?.unwrap_or_default())?;
                let file = self
                    .dump_to_file(&text(params, 0, "db_name")?, format)
                    .await?;
                let bytes = std::fs::read(file.path())
                    .map_err(|e| exception(format!("cannot read the backup: {e}")))?;
                Ok(json!(
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                ))
            }
            "restore" => {
                self.restore_base64(
                    &text(params, 0, "db_name")?,
                    &text(params, 1, "data")?,
                    flag(params, 2),
                )
                .await?;
                Ok(json!(true))
            }
            "list_countries" => Ok(json!(COUNTRIES
                .iter()
                .map(|(c, n)| [c, n])
                .collect::<Vec<_>>())),
            other => Err(RpcFault::Application {
                name: "builtins.KeyError".into(),
                message: format!("Method not found: {other}"),
            }),
        }
    }
}
