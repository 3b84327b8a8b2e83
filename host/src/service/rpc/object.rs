//! The `object` service (Odoo's `odoo/service/model.py`): `execute` and `execute_kw`,
//! after checking the caller's uid and password or API key (the `base` addon's private RPC
//! method `res.users._check_uid_passwd`), dispatched to the `#[rpc]` methods the
//! database's addons register.

use super::{call_method, missing, registry, str_arg, type_name, RpcFault};
use crate::service::server::Host;
use serde_json::{json, Map, Value};

/// The model and private method that check a uid and its password or API key.
pub const CHECK: (&str, &str) = ("res.users", "_check_uid_passwd");

/// `object.<method>(db, uid, password, ...)`.
pub fn dispatch(host: &Host, method: &str, params: &[Value]) -> Result<Value, RpcFault> {
    let db = str_arg(params, 0, "dispatch", "db")?;
    let uid = uid_arg(params.get(1))?;
    let password = str_arg(params, 2, "dispatch", "password")?;
    let reg = registry(host, db)?;
    // Odoo's `security.check`: an empty password is refused without a query.
    if password.is_empty() {
        return Err(RpcFault::access_denied());
    }
    let args = vec![json!(uid), json!(password)];
    call_method(host, &reg, 1, CHECK.0, CHECK.1, args, Map::new())?;
    let (model, name, args, kwargs) = match method {
        "execute" => {
            let model = str_arg(params, 3, "execute", "obj")?;
            let name = str_arg(params, 4, "execute", "method")?;
            (
                model,
                name,
                params.get(5..).unwrap_or_default().to_vec(),
                Map::new(),
            )
        }
        "execute_kw" => {
            let model = str_arg(params, 3, "execute_kw", "obj")?;
            let name = str_arg(params, 4, "execute_kw", "method")?;
            let args = match params.get(5) {
                Some(Value::Array(a)) => a.clone(),
                Some(other) => {
                    return Err(RpcFault::application(
                        "builtins.TypeError",
                        format!(
                        "odoo.service.model.execute() argument after * must be an iterable, not {}",
                        type_name(other)
                    ),
                    ))
                }
                None => return Err(missing("execute_kw", "args")),
            };
            let kwargs = match params.get(6) {
                Some(Value::Object(k)) => k.clone(),
                None | Some(Value::Null) => Map::new(),
                Some(other) => {
                    return Err(RpcFault::application(
                        "builtins.TypeError",
                        format!(
                        "odoo.service.model.execute() argument after ** must be a mapping, not {}",
                        type_name(other)
                    ),
                    ))
                }
            };
            (model, name, args, kwargs)
        }
        other => {
            return Err(RpcFault::application(
                "builtins.NameError",
                format!("Method not available {other}"),
            ))
        }
    };
    check_method_name(name)?;
    call_method(host, &reg, uid, model, name, args, kwargs)
}

/// Odoo's `int(params[1])`: an integer, or a string of one.
fn uid_arg(v: Option<&Value>) -> Result<i64, RpcFault> {
    match v {
        Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or(0)),
        Some(Value::Bool(b)) => Ok(*b as i64),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| {
            RpcFault::application(
                "builtins.ValueError",
                format!("invalid literal for int() with base 10: {s:?}"),
            )
        }),
        Some(other) => Err(RpcFault::application(
            "builtins.TypeError",
            format!(
                "int() argument must be a string, a bytes-like object or a real number, not '{}'",
                type_name(other)
            ),
        )),
        None => Err(missing("dispatch", "uid")),
    }
}

/// Odoo's `check_method_name`: private methods (`_...`, `init`) are not callable remotely.
pub fn check_method_name(name: &str) -> Result<(), RpcFault> {
    if name.starts_with('_') || name == "init" {
        return Err(RpcFault::AccessError(format!(
            "Private methods (such as {name}) cannot be called remotely."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_methods_are_refused() {
        assert!(check_method_name("_login").is_err());
        assert!(check_method_name("init").is_err());
        assert!(check_method_name("search_read").is_ok());
    }

    #[test]
    fn uids_read_as_python_int() {
        assert_eq!(uid_arg(Some(&json!(2))), Ok(2));
        assert_eq!(uid_arg(Some(&json!(" 7"))), Ok(7));
        assert!(uid_arg(Some(&json!("x"))).is_err());
        assert!(uid_arg(Some(&json!([1]))).is_err());
    }
}
