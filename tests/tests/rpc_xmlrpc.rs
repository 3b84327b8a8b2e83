//! Odoo's XML-RPC API (issue 20) through the real binary, `base` and the real PostgreSQL,
//! with Python's stdlib `xmlrpc.client` as the client: `common` (version, login,
//! authenticate with an API key), `db.list`, `object.execute_kw` on the `res.users` methods
//! `base` registers, Odoo's faults (integer codes on `/xmlrpc/2`, strings on `/xmlrpc`);
//! and hostile bodies (a 50 MB nest of arrays, a billion laughs, invalid base64, deep
//! nesting) answered with clear faults while the server keeps serving.

mod rpc_support;

use inphms_tests::{http_get, post, TestDir};
use rpc_support::{api_key, python, Site, ADMIN_PW};
use serde_json::json;

const CLIENT: &str = r#"
import json, sys, xmlrpc.client
url, db, pw, key = sys.argv[1:5]
common = xmlrpc.client.ServerProxy(url + '/xmlrpc/2/common')
dbs = xmlrpc.client.ServerProxy(url + '/xmlrpc/2/db')
obj = xmlrpc.client.ServerProxy(url + '/xmlrpc/2/object')
obj1 = xmlrpc.client.ServerProxy(url + '/xmlrpc/object')
out = {}
def fault(f, *a):
    try:
        return ['ok', f(*a)]
    except xmlrpc.client.Fault as e:
        return [e.faultCode, e.faultString]
out['version'] = common.version()
out['about'] = common.about()
uid = common.login(db, 'admin', pw)
out['login'] = uid
out['login_wrong'] = common.login(db, 'admin', 'wrong')
out['login_unknown'] = common.login(db, 'nobody', pw)
out['authenticate_key'] = common.authenticate(db, 'admin', key, {})
out['db_list'] = dbs.list()
out['server_version'] = dbs.server_version()
out['db_exist'] = [dbs.db_exist(db), dbs.db_exist(db + '_none')]
out['search_read'] = obj.execute_kw(db, uid, pw, 'res.users', 'search_read',
    [[('login', '=', 'admin')]], {'fields': ['login', 'name', 'active']})
out['search_read_key'] = obj.execute_kw(db, uid, key, 'res.users', 'search_read',
    [[('id', 'in', [uid])]], {'fields': ['login']})
out['read'] = obj.execute_kw(db, uid, pw, 'res.users', 'read', [[uid], ['login']])
out['execute'] = obj.execute(db, uid, pw, 'res.users', 'context_get')
out['wrong_pw'] = fault(obj.execute_kw, db, uid, 'wrong', 'res.users', 'read', [[uid]])
out['wrong_pw_1'] = fault(obj1.execute_kw, db, uid, 'wrong', 'res.users', 'read', [[uid]])
out['unknown_model'] = fault(obj.execute_kw, db, uid, pw, 'res.foo', 'read', [[1]])
out['unknown_model_1'] = fault(obj1.execute_kw, db, uid, pw, 'res.foo', 'read', [[1]])
out['unknown_method'] = fault(obj.execute_kw, db, uid, pw, 'res.users', 'frobnicate', [])
out['private'] = fault(obj.execute_kw, db, uid, pw, 'res.users', '_login', [])
out['unknown_common'] = fault(common.frobnicate)
out['missing'] = fault(obj.execute_kw, db, uid, pw, 'res.users', 'read', [[999999]])
print(json.dumps(out))
"#;

#[test]
fn python_xmlrpc_client_gets_odoos_answers() {
    let site = Site::start("rpcxml", &[]);
    let key = api_key(&site);
    let url = format!("http://127.0.0.1:{}", site.port());
    let out = python(CLIENT, &[&url, &site.db.name, ADMIN_PW, &key]);
    let serie = out["version"]["server_serie"]
        .as_str()
        .expect("serie")
        .to_owned();
    assert_eq!(
        out["version"],
        json!({
            "server_version": serie,
            "server_version_info": out["version"]["server_version_info"],
            "server_serie": serie,
            "protocol_version": 1,
        })
    );
    assert_eq!(out["version"]["server_version_info"][3], "final");
    assert_eq!(out["about"], "See http://openerp.com");
    let uid = out["login"].as_i64().expect("login gives the uid");
    assert!(uid > 1, "{out}");
    assert_eq!(out["login_wrong"], false);
    assert_eq!(out["login_unknown"], false);
    assert_eq!(out["authenticate_key"], uid);
    assert!(
        out["db_list"]
            .as_array()
            .unwrap()
            .contains(&json!(site.db.name)),
        "{out}"
    );
    assert_eq!(out["server_version"], serie);
    assert_eq!(out["db_exist"], json!([true, false]));
    assert_eq!(
        out["search_read"],
        json!([{"id": uid, "login": "admin", "name": out["search_read"][0]["name"], "active": true}])
    );
    assert_eq!(
        out["search_read_key"],
        json!([{"id": uid, "login": "admin"}])
    );
    assert_eq!(out["read"], json!([{"id": uid, "login": "admin"}]));
    assert_eq!(
        out["execute"],
        json!({"lang": "en_US", "tz": false, "uid": uid})
    );
    assert_eq!(out["wrong_pw"], json!([3, "Access Denied"]));
    assert_eq!(out["wrong_pw_1"], json!(["AccessDenied", "Access Denied"]));
    // Odoo's `execute_cr` raises a UserError: code 2 (WARNING), not 1.
    assert_eq!(
        out["unknown_model"],
        json!([2, "Object res.foo doesn't exist"])
    );
    assert_eq!(
        out["unknown_model_1"],
        json!(["warning -- UserError\n\nObject res.foo doesn't exist", ""])
    );
    assert_eq!(out["unknown_method"][0], 1);
    assert!(
        out["unknown_method"][1].as_str().unwrap().ends_with(
            "AttributeError: The method 'frobnicate' does not exist on the model 'res.users'\n"
        ),
        "{out}"
    );
    assert_eq!(
        out["private"],
        json!([
            4,
            "Private methods (such as _login) cannot be called remotely."
        ])
    );
    assert_eq!(out["unknown_common"][0], 1);
    assert!(out["unknown_common"][1]
        .as_str()
        .unwrap()
        .contains("Method not found: frobnicate"));
    assert_eq!(out["missing"][0], 2, "MissingError is a UserError: {out}");
    assert!(
        site.server.stderr().contains("Login failed for db:"),
        "wrong passwords are logged"
    );
}

#[test]
fn list_db_false_refuses_the_list() {
    let site = Site::start("rpcnolist", &["--no-database-list"]);
    let url = format!("http://127.0.0.1:{}", site.port());
    let out = python(
        r#"
import json, sys, xmlrpc.client
dbs = xmlrpc.client.ServerProxy(sys.argv[1] + '/xmlrpc/2/db')
try:
    print(json.dumps(['ok', dbs.list()]))
except xmlrpc.client.Fault as e:
    print(json.dumps([e.faultCode, e.faultString]))
"#,
        &[&url],
    );
    assert_eq!(out, json!([3, "Access Denied"]));
}

/// The fault string of an XML-RPC answer (`faultCode` must be `code`), checked to be
/// Odoo's shape.
fn fault_of(body: &str, code: i32) -> String {
    assert!(
        body.starts_with("<?xml version=\"1.0\"?>\n<methodResponse>\n<fault>\n"),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "<name>faultCode</name>\n<value><int>{code}</int></value>"
        )),
        "{body}"
    );
    let start = body
        .find("<name>faultString</name>\n<value><string>")
        .expect("faultString")
        + "<name>faultString</name>\n<value><string>".len();
    let end = body[start..].find("</string>").expect("end") + start;
    body[start..end].to_owned()
}

fn xmlrpc_post(port: u16, body: &[u8]) -> String {
    let resp = post(port, "/xmlrpc/2/common", "text/xml", body);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("text/xml; charset=utf-8"));
    resp.text()
}

#[test]
fn hostile_xml_gets_clear_faults_and_the_server_stays_up() {
    let td = TestDir::new();
    let server = td.test_http_server(&[]).start_healthy();
    let port = server.port();
    // 30 MB of nested arrays (the routes take 32 MiB at most): refused at the 65th level, never built.
    let mut big = b"<?xml version=\"1.0\"?><methodCall><methodName>version</methodName><params><param><value>".to_vec();
    let open = b"<array><data><value>";
    while big.len() < 30 * 1024 * 1024 {
        big.extend_from_slice(open);
    }
    let fault = fault_of(&xmlrpc_post(port, &big), 1);
    assert!(fault.contains("nested deeper than 64 levels"), "{fault}");
    assert!(fault.contains("ExpatError"), "{fault}");
    // A billion laughs: the DOCTYPE is refused, no entity is expanded.
    let laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<methodCall><methodName>version</methodName><params><param><value>&lol9;</value></param></params></methodCall>"#;
    let fault = fault_of(&xmlrpc_post(port, laughs), 1);
    assert!(fault.contains("DOCTYPE is not allowed"), "{fault}");
    // An entity never declared is not expanded either.
    let fault = fault_of(
        &xmlrpc_post(
            port,
            b"<methodCall><methodName>&lol9;</methodName></methodCall>",
        ),
        1,
    );
    assert!(fault.contains("entit"), "{fault}");
    // Invalid base64.
    let b64 = b"<methodCall><methodName>about</methodName><params><param><value><base64>not*base64!</base64></value></param></params></methodCall>";
    let fault = fault_of(&xmlrpc_post(port, b64), 1);
    assert!(fault.contains("invalid base64"), "{fault}");
    // 65 levels: refused; 64: read (and `about` ignores what it does not need).
    let nest = |levels: usize| {
        format!(
            "<methodCall><methodName>about</methodName><params><param><value>{}<i4>1</i4>{}</value></param></params></methodCall>",
            "<array><data><value>".repeat(levels - 1),
            "</value></data></array>".repeat(levels - 1),
        )
    };
    let fault = fault_of(&xmlrpc_post(port, nest(65).as_bytes()), 1);
    assert!(fault.contains("nested deeper than 64"), "{fault}");
    let ok = xmlrpc_post(port, nest(64).as_bytes());
    assert!(
        ok.contains("<string>See http://openerp.com</string>"),
        "{ok}"
    );
    // Not XML at all, and truncated.
    fault_of(&xmlrpc_post(port, b"hello"), 1);
    fault_of(&xmlrpc_post(port, b"<methodCall><methodName>version"), 1);
    // An unknown service is Odoo's KeyError; the server still serves.
    let resp = post(
        port,
        "/xmlrpc/2/nope",
        "text/xml",
        b"<methodCall><methodName>x</methodName></methodCall>",
    );
    assert!(fault_of(&resp.text(), 1).contains("KeyError: nope"));
    let ok = xmlrpc_post(
        port,
        b"<methodCall><methodName>version</methodName><params/></methodCall>",
    );
    assert!(
        ok.contains("<name>protocol_version</name>\n<value><int>1</int></value>"),
        "{ok}"
    );
    assert_eq!(http_get(port, "/web/health", &[]).status, 200);
}
