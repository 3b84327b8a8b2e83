//! The `db` RPC service (Odoo's `odoo/service/db.py`): the methods free of the master
//! password (`list`, `db_exist`, `list_lang`, `server_version`) and `list_countries`. The
//! database manager's other methods (create, duplicate, drop, rename, dump, restore,
//! change_admin_password) are not here: they answer Odoo's `Method not found`.

use crate::config::Config;
use crate::release;
use crate::service::rpc::{missing, str_arg, RpcFault};
use crate::service::server::Host;
use crate::sql_db::dblist::{self, ListError};
use serde_json::{json, Value};
use std::sync::Arc;

/// The languages the host knows (code, name), sorted by name as Odoo's `exp_list_lang`.
pub const LANGS: &[(&str, &str)] = &[
    ("de_DE", "German / Deutsch"),
    ("en_US", "English (US)"),
    ("es_ES", "Spanish / Español"),
    ("fr_FR", "French / Français"),
    ("it_IT", "Italian / Italiano"),
    ("nl_NL", "Dutch / Nederlands"),
    ("pt_BR", "Portuguese (BR) / Português (BR)"),
];

/// The countries the host knows (code, name), sorted by name as Odoo's
/// `exp_list_countries` (a short list: the host has no country data).
pub const COUNTRIES: &[(&str, &str)] = &[
    ("be", "Belgium"),
    ("br", "Brazil"),
    ("fr", "France"),
    ("de", "Germany"),
    ("in", "India"),
    ("it", "Italy"),
    ("nl", "Netherlands"),
    ("es", "Spain"),
    ("gb", "United Kingdom"),
    ("us", "United States"),
];

/// `db.<method>(*params)`.
pub async fn dispatch(
    host: &Host,
    method: &str,
    params: &[serde_json::Value],
) -> Result<serde_json::Value, RpcFault> {
    let config = host
        .registries
        .config()
        .unwrap_or_else(|| Arc::clone(&host.config));
    match method {
        "list" => match dblist::list_dbs(&host.databases, &config, false).await {
            Ok(list) => Ok(json!(list)),
            Err(ListError::AccessDenied) => Err(RpcFault::access_denied()),
            Err(ListError::Db(e)) => {
                tracing::error!(target: "inphms.service.db", "Listing databases failed: {e}");
                Ok(json!([]))
            }
        },
        "server_version" => Ok(json!(release::VERSION)),
        "db_exist" | "exist" => {
            let db = str_arg(params, 0, "exp_db_exist", "db_name")?;
            Ok(json!(exists(host, db).await))
        }
        "list_lang" => Ok(pairs(LANGS)),
        "list_countries" => {
            check_super(&config, params.first())?;
            Ok(pairs(COUNTRIES))
        }
        other => Err(RpcFault::application(
            "builtins.KeyError",
            format!("Method not found: {other}"),
        )),
    }
}

fn pairs(list: &[(&str, &str)]) -> Value {
    Value::Array(list.iter().map(|(c, n)| json!([c, n])).collect())
}

/// Whether a cursor can be opened on `db` (Odoo's `exp_db_exist`).
async fn exists(host: &Host, db: &str) -> bool {
    let mut cr = host.databases.cursor(db, true);
    let found = cr.execute("SELECT 1", &[]).await.is_ok();
    let _ = cr.rollback().await;
    found
}

/// Odoo's `check_super`: the master password given first; `AccessDenied` unless it is the
/// configured `admin_passwd`.
fn check_super(config: &Config, given: Option<&Value>) -> Result<(), RpcFault> {
    let Some(given) = given else {
        return Err(missing("exp_list_countries", "passwd"));
    };
    let given = given.as_str().unwrap_or("");
    let stored = config.admin_passwd.as_str();
    if !given.is_empty() && verify_admin_password(given, stored) {
        return Ok(());
    }
    Err(RpcFault::access_denied())
}

/// Odoo's `config.verify_admin_password`: a plain value is compared as it is; a passlib
/// hash is not verified here (the database manager owns hashed master passwords).
fn verify_admin_password(given: &str, stored: &str) -> bool {
    !stored.starts_with('$')
        && given.len() == stored.len()
        && given
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}
