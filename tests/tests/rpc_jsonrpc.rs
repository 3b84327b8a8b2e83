//! Odoo's JSON-RPC API (issue 20, `POST /jsonrpc`) through the real binary, `base` and the
//! real PostgreSQL: the calls of `rpc_xmlrpc` with the exact JSON shapes Odoo answers
//! (results, and errors as `code` 200 "Odoo Server Error" with Odoo's exception class in
//! `data.name`), and odoorpc connecting, listing the databases, logging in and reading the
//! user.

mod rpc_support;

use rpc_support::{api_key, python, Site, ADMIN_PW};
use serde_json::{json, Value};

/// `/jsonrpc` with `service`, `method` and `args`: the whole answer.
fn call(site: &Site, service: &str, method: &str, args: Value) -> Value {
    site.client("127.0.0.1").rpc(
        "/jsonrpc",
        json!({"service": service, "method": method, "args": args}),
    )
}

/// Odoo's error answer for an exception of class `name` with `message`.
fn error(name: &str, message: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": 7,
        "error": {
            "code": 200,
            "message": "Odoo Server Error",
            "data": {"name": name, "message": message, "arguments": [message], "context": {}},
        },
    })
}

fn result(v: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "result": v})
}

#[test]
fn jsonrpc_answers_in_odoos_shapes() {
    let site = Site::start("rpcjson", &[]);
    let key = api_key(&site);
    let db = site.db.name.as_str();
    let version = call(&site, "common", "version", json!([]));
    let serie = version["result"]["server_serie"].clone();
    let info = version["result"]["server_version_info"].clone();
    assert_eq!(
        version,
        result(json!({
            "server_version": serie,
            "server_version_info": info,
            "server_serie": serie,
            "protocol_version": 1,
        }))
    );
    assert_eq!(info[3], "final");
    let login = call(&site, "common", "login", json!([db, "admin", ADMIN_PW]));
    let uid = login["result"]
        .as_i64()
        .unwrap_or_else(|| panic!("{login}"));
    assert_eq!(
        call(&site, "common", "login", json!([db, "admin", "nope"])),
        result(json!(false))
    );
    assert_eq!(
        call(
            &site,
            "common",
            "authenticate",
            json!([db, "admin", key, {}])
        ),
        result(json!(uid))
    );
    let list = call(&site, "db", "list", json!([]));
    assert!(
        list["result"].as_array().unwrap().contains(&json!(db)),
        "{list}"
    );
    assert_eq!(
        call(&site, "db", "server_version", json!([])),
        result(serie)
    );
    assert_eq!(
        call(&site, "db", "db_exist", json!([db])),
        result(json!(true))
    );
    let langs = call(&site, "db", "list_lang", json!([]));
    assert!(
        langs["result"]
            .as_array()
            .unwrap()
            .contains(&json!(["en_US", "English (US)"])),
        "{langs}"
    );
    // list_countries takes the master password (`admin_passwd`, `admin` by default).
    let countries = call(&site, "db", "list_countries", json!(["admin"]));
    assert!(
        countries["result"]
            .as_array()
            .unwrap()
            .contains(&json!(["be", "Belgium"])),
        "{countries}"
    );
    assert_eq!(
        call(&site, "db", "list_countries", json!(["wrong"])),
        error("odoo.exceptions.AccessDenied", "Access Denied")
    );
    let users = call(
        &site,
        "object",
        "execute_kw",
        json!([db, uid, ADMIN_PW, "res.users", "search_read", [[["login", "=", "admin"]]], {"fields": ["login", "active"]}]),
    );
    assert_eq!(
        users,
        result(json!([{"id": uid, "login": "admin", "active": true}]))
    );
    let by_key = call(
        &site,
        "object",
        "execute_kw",
        json!([db, uid, key, "res.users", "read", [[uid]], {"fields": ["login"], "context": {"lang": "en_US"}}]),
    );
    assert_eq!(by_key, result(json!([{"id": uid, "login": "admin"}])));
    assert_eq!(
        call(
            &site,
            "object",
            "execute_kw",
            json!([db, uid, "wrong", "res.users", "read", [[uid]]])
        ),
        error("odoo.exceptions.AccessDenied", "Access Denied")
    );
    assert_eq!(
        call(
            &site,
            "object",
            "execute_kw",
            json!([db, uid, ADMIN_PW, "res.foo", "read", [[1]]])
        ),
        error("odoo.exceptions.UserError", "Object res.foo doesn't exist")
    );
    assert_eq!(
        call(
            &site,
            "object",
            "execute_kw",
            json!([
                db,
                uid,
                ADMIN_PW,
                "res.users",
                "_check_uid_passwd",
                [uid, ADMIN_PW]
            ])
        ),
        error(
            "odoo.exceptions.AccessError",
            "Private methods (such as _check_uid_passwd) cannot be called remotely."
        )
    );
    assert_eq!(
        call(&site, "object", "fly", json!([db, uid, ADMIN_PW])),
        error("builtins.NameError", "Method not available fly")
    );
    assert_eq!(
        call(&site, "common", "fly", json!([])),
        error("builtins.Exception", "Method not found: fly")
    );
    assert_eq!(
        call(&site, "db", "fly", json!([])),
        error("builtins.KeyError", "Method not found: fly")
    );
    assert_eq!(
        call(&site, "nope", "x", json!([])),
        error("builtins.KeyError", "nope")
    );
    // A database that does not exist: an application error naming it, no crash.
    let gone = call(
        &site,
        "common",
        "login",
        json!(["no_such_db_rpc", "admin", "x"]),
    );
    assert_eq!(gone["error"]["code"], 200, "{gone}");
    assert!(
        gone["error"]["data"]["message"]
            .as_str()
            .unwrap()
            .contains("no_such_db_rpc"),
        "{gone}"
    );
    // A remembered check ends with a password change, a key's with its revocation.
    let read_as = |password: &str| {
        call(
            &site,
            "object",
            "execute_kw",
            json!([db, uid, password, "res.users", "read", [[uid]], {"fields": ["login"]}]),
        )
    };
    assert_eq!(read_as(ADMIN_PW)["result"][0]["login"], "admin");
    let out = site.users(&["passwd", "admin"], Some("new-pw"));
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        read_as(ADMIN_PW),
        error("odoo.exceptions.AccessDenied", "Access Denied")
    );
    assert_eq!(read_as("new-pw")["result"][0]["login"], "admin");
    let id = site
        .db
        .sql("SELECT id FROM res_users_apikeys WHERE name = 'rpc'");
    assert_eq!(site.users(&["revoke", &id], None).code, Some(0));
    assert_eq!(
        read_as(&key),
        error("odoo.exceptions.AccessDenied", "Access Denied")
    );
    // The calls saved no session.
    let resp = inphms_tests::rpc(site.port(), "/jsonrpc", json!({"jsonrpc": "2.0", "id": 1, "method": "call", "params": {"service": "common", "method": "version", "args": []}}).to_string());
    assert!(resp.cookie("session_id").is_none(), "no session cookie");
}

#[test]
fn odoorpc_connects_logs_in_and_reads_the_user() {
    let site = Site::start("rpcodoorpc", &[]);
    let out = python(
        r#"
import json, sys, odoorpc
port, db, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
odoo = odoorpc.ODOO('127.0.0.1', port=port)
out = {'version': odoo.version, 'dbs': odoo.db.list()}
odoo.login(db, 'admin', pw)
uid = odoo.env.uid
out['uid'] = uid
out['user'] = odoo.execute('res.users', 'read', [uid], ['login', 'name'])
out['context'] = odoo.env.context
try:
    odoo.login(db, 'admin', 'wrong')
    out['wrong'] = 'accepted'
except odoorpc.error.RPCError as e:
    out['wrong'] = str(e)
print(json.dumps(out))
"#,
        &[&site.port().to_string(), &site.db.name, ADMIN_PW],
    );
    assert!(
        out["dbs"]
            .as_array()
            .unwrap()
            .contains(&json!(site.db.name)),
        "{out}"
    );
    let uid = out["uid"].as_i64().unwrap_or_else(|| panic!("{out}"));
    assert_eq!(out["user"][0]["login"], "admin", "{out}");
    assert_eq!(out["user"][0]["id"], uid);
    assert_eq!(out["context"]["uid"], uid, "{out}");
    assert_ne!(out["wrong"], "accepted", "{out}");
}

#[test]
fn an_addons_methods_run_in_a_transaction_of_their_own() {
    let addons = format!("--addons-path={}", inphms_tests::with_test_addons(&[]));
    let site = Site::start("rpcaddon", &[&addons, "-i", "test_db"]);
    let db = site.db.name.as_str();
    let login = call(&site, "common", "login", json!([db, "admin", ADMIN_PW]));
    let uid = login["result"]
        .as_i64()
        .unwrap_or_else(|| panic!("{login}"));
    let kw = |method: &str, args: Value, kwargs: Value| {
        call(
            &site,
            "object",
            "execute_kw",
            json!([db, uid, ADMIN_PW, "test_db.note", method, args, kwargs]),
        )
    };
    let created = kw("create", json!([{"name": "first"}]), json!({}));
    assert!(created["result"].as_i64().is_some(), "{created}");
    assert_eq!(kw("search_count", json!([[]]), json!({})), result(json!(1)));
    // An error rolls the method's work back.
    assert_eq!(
        kw("create", json!([{"name": "fail"}]), json!({})),
        error(
            "odoo.exceptions.UserError",
            "notes named 'fail' are refused"
        )
    );
    assert_eq!(site.db.sql("SELECT count(*) FROM test_db_note"), "1");
    // The caller's uid, the context keyword as the context, the other arguments as given.
    assert_eq!(
        kw(
            "whoami",
            json!([1, "two"]),
            json!({"context": {"lang": "fr_FR"}, "x": 3})
        ),
        result(
            json!({"uid": uid, "db": db, "context": {"lang": "fr_FR"}, "args": [1, "two"], "kwargs": {"x": 3}})
        )
    );
    // `execute` passes its extra arguments positionally.
    let by_execute = call(
        &site,
        "object",
        "execute",
        json!([db, uid, ADMIN_PW, "test_db.note", "whoami", 5]),
    );
    assert_eq!(by_execute["result"]["args"], json!([5]), "{by_execute}");
    // A panic is an application error; the server keeps serving.
    let boom = kw("explode", json!([]), json!({}));
    assert_eq!(
        boom["error"]["data"]["name"], "builtins.Exception",
        "{boom}"
    );
    assert_eq!(kw("search_count", json!([[]]), json!({})), result(json!(1)));
    // A method the model lacks: Odoo's AttributeError.
    assert_eq!(
        kw("unlink", json!([[1]]), json!({})),
        error(
            "builtins.AttributeError",
            "The method 'unlink' does not exist on the model 'test_db.note'"
        )
    );
}
