//! The `res.users` RPC methods `base` answers (Odoo's `res.users`): `read`, `search_read`
//! (a subset of domains) and `context_get` for clients, and the private `_login` and
//! `_check_uid_passwd` the host calls to check credentials (`common.login`,
//! `common.authenticate`, and every `object` call), never callable remotely.
//!
//! Successful `_check_uid_passwd` checks of a password are remembered (Odoo's
//! `@ormcache('uid', 'passwd')` on `res.users.check`), keyed by a digest of the user's
//! stored hash and the password given, so a password change invalidates them without being
//! told; API keys are checked every time, so a revoked key stops working at once.

use base_identity::{apikeys, users};
use inphms_sdk::{params, rpc, Cursor, Error, Result, RpcContext, SqlValue};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Mutex;

/// The fields `base` has on `res.users`.
const FIELDS: &[&str] = &["id", "login", "name", "active"];

/// The most remembered successful checks; past it, all are forgotten at once.
const CHECK_CACHE_SIZE: usize = 10_000;

// global: Odoo's per-registry ormcache of `res.users.check` (bounded; an entry is a digest
// of the database, uid, stored hash and password, so it cannot outlive a password change).
static CHECKED: Mutex<Option<HashSet<[u8; 32]>>> = Mutex::new(None);

fn argument_error(message: impl Into<String>) -> Error {
    Error::internal(message).with_name("builtins.TypeError")
}

/// The `i`th positional argument, else the keyword `name`.
fn arg<'a>(
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
    i: usize,
    name: &str,
) -> Option<&'a Value> {
    args.get(i).or_else(|| kwargs.get(name))
}

/// Checks `login` with `password` (a password, or an API key of scope `rpc` of the same
/// user: the RPC call is not interactive): the user's id and whether it was a key, or
/// `AccessDenied`.
fn check_login(
    cr: &mut Cursor,
    login: &str,
    password: &str,
    interactive: bool,
) -> Result<(i64, bool)> {
    match users::check_password(cr, login, password, "n/a") {
        Ok(uid) => Ok((uid, false)),
        Err(e) if e.name() == inphms_sdk::exceptions::ACCESS_DENIED && !interactive => {
            let Some(key_uid) = apikeys::check(cr, "rpc", password)? else {
                return Err(e);
            };
            match users::by_login(cr, login)? {
                Some(u) if u.id == key_uid && u.active => Ok((key_uid, true)),
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// `_login(login, password, user_agent_env)`: Odoo's `res.users.authenticate`.
#[rpc(model = "res.users", method = "_login")]
fn login(ctx: &mut RpcContext, args: Vec<Value>, _kwargs: Map<String, Value>) -> Result<Value> {
    let (Some(Value::String(login)), Some(Value::String(password))) = (args.first(), args.get(1))
    else {
        return Err(users::access_denied(users::ACCESS_DENIED));
    };
    let interactive = args
        .get(2)
        .and_then(|env| env.get("interactive"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut cr = ctx.cursor()?;
    check_login(&mut cr, login, password, interactive).map(|(uid, _)| json!(uid))
}

/// `_check_uid_passwd(uid, password)`: Odoo's `res.users.check`: the active user `uid`
/// with its password or one of its API keys; `AccessDenied` otherwise.
#[rpc(model = "res.users", method = "_check_uid_passwd")]
fn check_uid_passwd(
    ctx: &mut RpcContext,
    args: Vec<Value>,
    _kwargs: Map<String, Value>,
) -> Result<Value> {
    let denied = || users::access_denied(users::ACCESS_DENIED);
    let (Some(uid), Some(Value::String(password))) =
        (args.first().and_then(Value::as_i64), args.get(1))
    else {
        return Err(denied());
    };
    if password.is_empty() {
        return Err(denied());
    }
    let mut cr = ctx.cursor()?;
    let rows = cr.execute(
        "SELECT login, active, COALESCE(password, '') FROM res_users WHERE id = $1",
        params![uid],
    )?;
    let Some(row) = rows.first() else {
        return Err(denied());
    };
    let (login, active, stored): (String, bool, String) = (row.at(0)?, row.at(1)?, row.at(2)?);
    if !active {
        return Err(denied());
    }
    let digest: [u8; 32] = Sha256::new()
        .chain_update(cr.dbname().as_bytes())
        .chain_update([0])
        .chain_update(uid.to_le_bytes())
        .chain_update(stored.as_bytes())
        .chain_update([0])
        .chain_update(password.as_bytes())
        .finalize()
        .into();
    let mut cache = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if cache.as_ref().is_some_and(|c| c.contains(&digest)) {
        return Ok(json!(true));
    }
    drop(cache);
    let (checked, by_key) = check_login(&mut cr, &login, password, false)?;
    if checked != uid {
        return Err(denied());
    }
    // A key is checked each time (6,000 rounds): a revoked one stops at once.
    if by_key {
        return Ok(json!(true));
    }
    cache = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    let set = cache.get_or_insert_with(HashSet::new);
    if set.len() >= CHECK_CACHE_SIZE {
        set.clear();
    }
    set.insert(digest);
    Ok(json!(true))
}

/// The fields asked (all of `base`'s when none); Odoo's `ValueError` for one it lacks.
fn fields_of(v: Option<&Value>) -> Result<Vec<&'static str>> {
    let asked: Vec<String> = match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => return Ok(FIELDS.to_vec()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|f| f.as_str().unwrap_or("").to_owned())
            .collect(),
        Some(other) => {
            return Err(argument_error(format!(
                "fields must be a list, not {other}"
            )))
        }
    };
    let mut out = vec!["id"];
    for f in asked {
        match FIELDS.iter().find(|k| **k == f) {
            Some(k) if !out.contains(k) => out.push(k),
            Some(_) => {}
            None => {
                return Err(
                    Error::internal(format!("Invalid field '{f}' on model 'res.users'"))
                        .with_name("builtins.ValueError"),
                )
            }
        }
    }
    Ok(out)
}

/// The users matching `condition` (SQL on `res_users`), as records of `fields`.
fn records(
    cr: &mut Cursor,
    condition: &str,
    args: &[SqlValue],
    fields: &[&str],
) -> Result<Vec<Value>> {
    let rows = cr.execute(
        &format!(
            "SELECT id, login, COALESCE(name, login) AS name, active FROM res_users \
             WHERE {condition}"
        ),
        args,
    )?;
    rows.iter()
        .map(|r| {
            let mut rec = Map::new();
            for f in fields {
                let v = match *f {
                    "id" => json!(r.get::<i64>("id")?),
                    "login" => json!(r.get::<String>("login")?),
                    "name" => json!(r.get::<String>("name")?),
                    _ => json!(r.get::<bool>("active")?),
                };
                rec.insert((*f).to_owned(), v);
            }
            Ok(Value::Object(rec))
        })
        .collect()
}

/// Record ids from `ids` (one id or a list of them).
fn ids_of(v: Option<&Value>) -> Result<Vec<i64>> {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .map(|i| vec![i])
            .ok_or_else(|| argument_error("ids must be integers")),
        Some(Value::Array(a)) => a
            .iter()
            .map(|i| {
                i.as_i64()
                    .ok_or_else(|| argument_error(format!("ids must be integers, not {i}")))
            })
            .collect(),
        None | Some(Value::Bool(false)) => Ok(Vec::new()),
        Some(other) => Err(argument_error(format!(
            "ids must be a list of integers, not {other}"
        ))),
    }
}

/// `read(ids, fields=None)`.
#[rpc(model = "res.users", method = "read")]
fn read(ctx: &mut RpcContext, args: Vec<Value>, kwargs: Map<String, Value>) -> Result<Value> {
    let ids = ids_of(args.first())?;
    let fields = fields_of(arg(&args, &kwargs, 1, "fields"))?;
    let mut cr = ctx.cursor()?;
    let found = records(
        &mut cr,
        "id IN (SELECT jsonb_array_elements_text($1::text::jsonb)::int)",
        &[SqlValue::Text(json!(ids).to_string())],
        FIELDS,
    )?;
    // In the order asked, as Odoo's `read`; a missing one is Odoo's MissingError.
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let rec = found
            .iter()
            .find(|r| r.get("id").and_then(Value::as_i64) == Some(id))
            .map(|r| {
                let mut rec = Map::new();
                for f in &fields {
                    rec.insert((*f).to_owned(), r[*f].clone());
                }
                Value::Object(rec)
            });
        match rec {
            Some(r) => out.push(r),
            None => {
                return Err(Error::user(format!(
                "Record does not exist or has been deleted.\n(Record: res.users({id},), User: {})",
                ctx.uid
            ))
                .with_name("odoo.exceptions.MissingError"))
            }
        }
    }
    Ok(Value::Array(out))
}

/// `search_read(domain=None, fields=None, offset=0, limit=None, order=None)`, for the
/// domains `[]`, `[('login', '=', x)]`, `[('id', 'in', [...])]`, `[('id', '=', n)]` and
/// `[('active', '=', b)]` (and-ed). Archived users are left out unless the domain names
/// `active` or the context says `active_test: false`, as Odoo's search.
#[rpc(model = "res.users", method = "search_read")]
fn search_read(
    ctx: &mut RpcContext,
    args: Vec<Value>,
    kwargs: Map<String, Value>,
) -> Result<Value> {
    let fields = fields_of(arg(&args, &kwargs, 1, "fields"))?;
    let offset = arg(&args, &kwargs, 2, "offset")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0);
    let limit = arg(&args, &kwargs, 3, "limit")
        .and_then(Value::as_i64)
        .filter(|l| *l > 0);
    let mut conditions = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    let mut names_active = false;
    let domain = match arg(&args, &kwargs, 0, "domain") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(d)) => d.clone(),
        Some(other) => return Err(argument_error(format!("a domain is a list, not {other}"))),
    };
    for term in &domain {
        let unsupported = || {
            Error::internal(format!("unsupported domain term {term} on res.users (base answers login =, id =, id in, active =)"))
                .with_name("builtins.ValueError")
        };
        let Some([Value::String(field), Value::String(op), value]) =
            term.as_array().map(Vec::as_slice)
        else {
            if term == "&" {
                continue;
            }
            return Err(unsupported());
        };
        let n = params.len() + 1;
        match (field.as_str(), op.as_str(), value) {
            ("login", "=", Value::String(s)) => {
                conditions.push(format!("login = ${n}"));
                params.push(SqlValue::Text(s.clone()));
            }
            ("id", "=", Value::Number(i)) if i.is_i64() => {
                conditions.push(format!("id = ${n}"));
                params.push(SqlValue::Int(i.as_i64().unwrap_or(0)));
            }
            ("id", "in", v) => {
                let ids = ids_of(Some(v))?;
                conditions.push(format!(
                    "id IN (SELECT jsonb_array_elements_text(${n}::text::jsonb)::int)"
                ));
                params.push(SqlValue::Text(json!(ids).to_string()));
            }
            ("active", "=", Value::Bool(b)) => {
                names_active = true;
                conditions.push(format!("active = ${n}"));
                params.push(SqlValue::Bool(*b));
            }
            _ => return Err(unsupported()),
        }
    }
    let active_test = ctx
        .context
        .get("active_test")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if !names_active && active_test {
        conditions.push("active".to_owned());
    }
    let mut sql = if conditions.is_empty() {
        "true".to_owned()
    } else {
        conditions.join(" AND ")
    };
    sql.push_str(" ORDER BY COALESCE(name, login), login");
    if let Some(l) = limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    sql.push_str(&format!(" OFFSET {offset}"));
    let mut cr = ctx.cursor()?;
    Ok(Value::Array(records(&mut cr, &sql, &params, &fields)?))
}

/// `context_get()`: the caller's context (Odoo's `res.users.context_get`): its language,
/// time zone (`false`: not set) and uid.
#[rpc(model = "res.users", method = "context_get")]
fn context_get(
    ctx: &mut RpcContext,
    _args: Vec<Value>,
    _kwargs: Map<String, Value>,
) -> Result<Value> {
    Ok(json!({"lang": "en_US", "tz": false, "uid": ctx.uid}))
}
