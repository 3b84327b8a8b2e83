use inphms_sdk::{rpc, Result, RpcContext};
use serde_json::{Map, Value};

#[rpc(model = "res.partner")]
fn count(_ctx: &mut RpcContext, _args: Vec<Value>, _kwargs: Map<String, Value>) -> Result<Value> {
    Ok(Value::Null)
}

fn main() {}
