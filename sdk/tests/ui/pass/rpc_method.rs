use inphms_sdk::{rpc, Result, RpcContext};
use serde_json::{json, Map, Value};

/// An RPC method: the caller, its arguments, a cursor.
#[rpc(model = "res.partner", method = "search_count")]
fn search_count(ctx: &mut RpcContext, args: Vec<Value>, kwargs: Map<String, Value>) -> Result<Value> {
    let _cursor = ctx.cursor();
    Ok(json!({"uid": ctx.uid, "args": args.len(), "kwargs": kwargs.len()}))
}

fn main() {}
