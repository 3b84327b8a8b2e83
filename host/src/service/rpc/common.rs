//! The `common` service (Odoo's `odoo/service/common.py`): `version`, `about`, `login`,
//! `authenticate`, `set_loglevel`. Credentials are checked by the `base` addon's private
//! RPC method `res.users._login` (its identity logic), which the host calls directly.

use super::{call_method, missing, registry, str_arg, RpcFault};
use crate::release;
use crate::service::server::Host;
use serde_json::{json, Map, Value};

/// The model and private method that check a login and its password or API key.
pub const LOGIN: (&str, &str) = ("res.users", "_login");

/// Odoo's `RPC_VERSION_1`, for this host's version.
pub fn version() -> Value {
    let mut parts = release::HOST_VERSION
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor, micro) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    json!({
        "server_version": release::VERSION,
        "server_version_info": [major, minor, micro, "final", 0, ""],
        "server_serie": release::SERIE,
        "protocol_version": 1,
    })
}

/// `common.<method>(*params)`; an unknown method is Odoo's `Exception("Method not found")`.
pub fn dispatch(host: &Host, method: &str, params: &[Value]) -> Result<Value, RpcFault> {
    match method {
        "version" => Ok(version()),
        "about" => {
            let info = "See http://openerp.com";
            Ok(match params.first() {
                Some(Value::Bool(true)) => json!([info, release::VERSION]),
                _ => json!(info),
            })
        }
        "login" => {
            let db = str_arg(params, 0, "exp_login", "db")?;
            let login = str_arg(params, 1, "exp_login", "login")?;
            let password = str_arg(params, 2, "exp_login", "password")?;
            authenticate(host, db, login, password, Map::new())
        }
        "authenticate" => {
            let db = str_arg(params, 0, "exp_authenticate", "db")?;
            let login = str_arg(params, 1, "exp_authenticate", "login")?;
            let password = str_arg(params, 2, "exp_authenticate", "password")?;
            let env = match params.get(3) {
                Some(Value::Object(env)) => env.clone(),
                Some(Value::Null) => Map::new(),
                Some(_) => {
                    return Err(RpcFault::application(
                        "builtins.TypeError",
                        "user_agent_env must be a dict",
                    ))
                }
                None => return Err(missing("exp_authenticate", "user_agent_env")),
            };
            authenticate(host, db, login, password, env)
        }
        "set_loglevel" => Ok(Value::Bool(true)),
        other => Err(RpcFault::application(
            "builtins.Exception",
            format!("Method not found: {other}"),
        )),
    }
}

/// Odoo's `exp_authenticate`: the user's id, or `false` for wrong credentials (a password,
/// or an API key: the call is not interactive).
fn authenticate(
    host: &Host,
    db: &str,
    login: &str,
    password: &str,
    mut env: Map<String, Value>,
) -> Result<Value, RpcFault> {
    let reg = registry(host, db)?;
    env.insert("interactive".into(), Value::Bool(false));
    let args = vec![json!(login), json!(password), Value::Object(env)];
    match call_method(host, &reg, 1, LOGIN.0, LOGIN.1, args, Map::new()) {
        Ok(uid) => Ok(uid),
        Err(RpcFault::AccessDenied(_)) => Ok(Value::Bool(false)),
        Err(e) => Err(e),
    }
}
