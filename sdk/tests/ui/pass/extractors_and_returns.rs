//! Every extractor and return type the macro accepts.
use inphms_sdk::{route, status, Cursor, Error, Form, Json, Params, Request, Response, Result, Session};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
struct Item {
    id: i64,
    name: Option<String>,
}

#[route("/a/<int:id>/<string:name>/<path:rest>/<float:x>/<default:d>/<plain>", auth = "none")]
fn all_converters(id: u32, name: String, rest: String, x: f64, d: String, plain: String) -> String {
    format!("{id}{name}{rest}{x}{d}{plain}")
}

#[route("/b/<int:id>", auth = "none")]
fn request_anywhere(id: Option<i64>, req: &mut Request, tags: Vec<String>, #[param(default = 10)] limit: u8) -> (u16, String) {
    (status::CREATED, format!("{id:?}{}{tags:?}{limit}", req.path()))
}

#[route("/c/<int:id>", auth = "none")]
fn whole(p: Params<Item>, session: &Session) -> Result<Vec<u8>> {
    let _ = session.id();
    Ok(p.id.to_le_bytes().to_vec())
}

#[route("/d", methods = ["POST"], auth = "none", csrf = false)]
fn form(Form(item): Form<Item>, Json(other): Json<Item>, cr: Cursor) -> std::io::Result<Response> {
    let _ = (item, other, cr);
    Ok(Response::redirect("/x", status::SEE_OTHER))
}

#[route("/e", type = "json", auth = "none")]
fn json_struct(r#type: String) -> Result<Item> {
    Ok(Item { id: 1, name: Some(r#type) })
}

#[route("/f", type = "json", auth = "none")]
fn json_boxed(n: String) -> std::result::Result<Vec<i64>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(vec![n.parse::<i64>()?])
}

#[route("/g", type = "json", auth = "none")]
fn json_unit(_session: &mut Session) -> Result<()> {
    Err(Error::user("no"))
}

#[route("/h", auth = "none")]
fn static_bytes() -> &'static [u8] {
    b"bytes"
}

inphms_sdk::addon!();

fn main() {}
