//! RPC methods (`#[rpc]`) of a model `test_db.note`, for the RPC tests: a third-party
//! addon's methods reached by `object.execute_kw`, their transaction (committed on `Ok`,
//! rolled back on `Err`), the caller's uid and context, and a panic.

use inphms_sdk::{params, rpc, Error, Result, RpcContext};
use serde_json::{json, Map, Value};

/// `create({'name': ...})`: the new note's id. A name `fail` is inserted, then refused
/// (a `UserError`): the insert must be rolled back.
#[rpc(model = "test_db.note", method = "create")]
fn create(ctx: &mut RpcContext, args: Vec<Value>, _kwargs: Map<String, Value>) -> Result<Value> {
    let name = args
        .first()
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .ok_or_else(|| Error::user("create needs {'name': ...}"))?
        .to_owned();
    let mut cr = ctx.cursor()?;
    let rows = cr.execute(
        "INSERT INTO test_db_note (name) VALUES ($1) RETURNING id",
        params![name.as_str()],
    )?;
    let id: i64 = rows.first().expect("one row").at(0)?;
    if name == "fail" {
        return Err(Error::user("notes named 'fail' are refused"));
    }
    Ok(json!(id))
}

/// `search_count(domain)`: the number of notes (the domain is ignored).
#[rpc(model = "test_db.note", method = "search_count")]
fn search_count(
    ctx: &mut RpcContext,
    _args: Vec<Value>,
    _kwargs: Map<String, Value>,
) -> Result<Value> {
    let mut cr = ctx.cursor()?;
    let n: i64 = cr
        .execute("SELECT count(*) FROM test_db_note", &[])?
        .first()
        .expect("one row")
        .at(0)?;
    Ok(json!(n))
}

/// `whoami(*args, **kwargs)`: the caller's uid, the context, and what else it was given.
#[rpc(model = "test_db.note", method = "whoami")]
fn whoami(ctx: &mut RpcContext, args: Vec<Value>, kwargs: Map<String, Value>) -> Result<Value> {
    Ok(
        json!({"uid": ctx.uid, "db": ctx.db, "context": ctx.context, "args": args, "kwargs": kwargs}),
    )
}

/// `explode()`: panics (caught in the addon: an application error, the server keeps going).
#[rpc(model = "test_db.note", method = "explode")]
fn explode(_ctx: &mut RpcContext, _args: Vec<Value>, _kwargs: Map<String, Value>) -> Result<Value> {
    panic!("boom");
}
