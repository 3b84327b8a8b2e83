//! The web session API with Odoo's shapes, and the session token: a password change ends
//! the user's other sessions at their next request.

use super::support::Site;
use serde_json::Value;

/// The keys of `session_info` the issue lists (and that Odoo's clients read).
const SESSION_INFO_KEYS: &[&str] = &[
    "uid",
    "is_admin",
    "is_system",
    "user_context",
    "db",
    "server_version",
    "server_version_info",
    "name",
    "username",
    "partner_id",
    "is_public",
    "is_internal_user",
    "web.base.url",
    "max_file_upload_size",
    "cache_hashes",
    "currencies",
    "bundle_params",
];

fn assert_session_info(v: &Value, db: &str) {
    for key in SESSION_INFO_KEYS {
        assert!(v.get(*key).is_some(), "session_info lacks {key}: {v}");
    }
    assert_eq!(v["uid"], 2);
    assert_eq!(v["username"], "admin");
    assert_eq!(v["db"], db);
    assert_eq!(v["is_admin"], true);
    assert_eq!(v["is_system"], true);
    assert_eq!(v["partner_id"], Value::Null);
    assert_eq!(v["user_context"]["uid"], 2);
    assert!(v["server_version_info"].is_array(), "{v}");
}

#[test]
fn authenticate_answers_session_info_and_the_session_routes_follow_odoo() {
    let site = Site::start("idsession", &[]);
    let db = site.db.name.clone();
    let mut c = site.client("10.2.0.1");

    // Not logged in: code 100.
    let answer = c.rpc("/web/session/get_session_info", serde_json::json!({}));
    assert_eq!(answer["error"]["code"], 100, "{answer}");
    let before = c.cookie.clone();

    // A wrong password: Odoo's AccessDenied shape, no session change.
    let denied = c.authenticate(&db, "admin", "wrong");
    assert_eq!(denied["error"]["code"], 200, "{denied}");
    assert_eq!(denied["error"]["message"], "Odoo Server Error");
    assert_eq!(
        denied["error"]["data"]["name"],
        "odoo.exceptions.AccessDenied"
    );
    assert_eq!(denied["error"]["data"]["message"], "Access Denied");
    assert_eq!(
        denied["error"]["data"]["arguments"],
        serde_json::json!(["Access Denied"])
    );
    assert!(denied.get("result").is_none());

    // Another database: Odoo's "Database not found.".
    let other = c.authenticate("no_such_db", "admin", "admin-pw");
    assert_eq!(
        other["error"]["data"]["message"], "Database not found.",
        "{other}"
    );

    let ok = c.authenticate(&db, "admin", "admin-pw");
    assert_session_info(&ok["result"], &db);
    assert!(
        c.cookie.is_some() && c.cookie != before,
        "the session id is new after login"
    );
    let stored = site.db.sql("SELECT 1");
    assert_eq!(stored, "1");

    let info = c.rpc("/web/session/get_session_info", serde_json::json!({}));
    assert_session_info(&info["result"], &db);
    // check and destroy answer without a `result` key.
    let check = c.rpc("/web/session/check", serde_json::json!({}));
    assert_eq!(check, serde_json::json!({"jsonrpc": "2.0", "id": 7}));
    let destroy = c.rpc("/web/session/destroy", serde_json::json!({}));
    assert_eq!(destroy, serde_json::json!({"jsonrpc": "2.0", "id": 7}));
    let after = c.rpc("/web/session/check", serde_json::json!({}));
    assert_eq!(after["error"]["code"], 100, "{after}");
    assert_eq!(
        after["error"]["data"]["name"],
        "odoo.http.SessionExpiredException"
    );
}

#[test]
fn a_password_changed_with_the_command_ends_other_live_sessions() {
    let site = Site::start("idtoken", &[]);
    let db = site.db.name.clone();
    let mut json_client = site.client("10.2.0.2");
    let mut browser = site.client("10.2.0.3");
    assert_eq!(
        json_client.authenticate(&db, "admin", "admin-pw")["result"]["uid"],
        2
    );
    assert_eq!(
        browser.authenticate(&db, "admin", "admin-pw")["result"]["uid"],
        2
    );
    let page = browser.get("/web");
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("<span id=\"user_login\">admin</span>"));
    assert_eq!(
        json_client.rpc("/web/session/check", serde_json::json!({}))["id"],
        7
    );

    let out = site.users(&["passwd", "admin"], Some("changed-pw"));
    assert_eq!(out.code, Some(0), "{out}");

    // json: code 100, and the session logged out under a new id.
    let old_sid = json_client.cookie.clone();
    let expired = json_client.rpc("/web/session/check", serde_json::json!({}));
    assert_eq!(expired["error"]["code"], 100, "{expired}");
    assert_ne!(
        json_client.cookie, old_sid,
        "the expired session gets a new id"
    );
    assert_eq!(
        json_client.rpc("/web/session/check", serde_json::json!({}))["error"]["code"],
        100
    );
    // http: 303 to the login page.
    let redirected = browser.get("/web");
    assert_eq!(redirected.status, 303);
    assert_eq!(
        redirected.header("location"),
        Some("/web/login?redirect=%2Fweb%3F")
    );
    // The new password works, the old one does not.
    assert!(browser.authenticate(&db, "admin", "admin-pw")["error"].is_object());
    assert_eq!(
        browser.authenticate(&db, "admin", "changed-pw")["result"]["uid"],
        2
    );
    assert_eq!(browser.get("/web").status, 200);
}

#[test]
fn logout_redirects_locally_and_ends_the_session() {
    let site = Site::start("idlogout", &[]);
    let mut c = site.client("10.2.0.4");
    assert_eq!(
        c.authenticate(&site.db.name, "admin", "admin-pw")["result"]["uid"],
        2
    );
    let out = c.get("/web/session/logout?redirect=%2F%2Fevil.example%2Fx");
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/x"));
    let page = c.get("/web");
    assert_eq!(page.status, 303, "logged out");
    let out = c.get("/web/session/logout");
    assert_eq!(out.header("location"), Some("/web"));
}

#[test]
fn auth_public_binds_the_public_user_when_nobody_is_logged_in() {
    let tests = inphms_tests::test_addons_dir();
    let site = Site::start(
        "idpublic",
        &[
            "--load",
            "base,web,test_http",
            "--addons-path",
            tests.to_str().expect("UTF-8"),
        ],
    );
    let public: i64 = site
        .db
        .sql("SELECT id FROM res_users WHERE login = 'public'")
        .parse()
        .expect("the public user's id");
    let mut c = site.client("10.2.0.5");
    let seen = c.rpc("/test_http/public_uid", serde_json::json!({}));
    assert_eq!(seen["result"], public, "{seen}");
    // The session the handler changed is saved, without the public user in it.
    let sid = c.cookie.clone().expect("the changed session is saved");
    let stored = site.td.read(format!("data/sessions/{}/{sid}", &sid[..2]));
    assert!(
        stored.contains("\"seen_public\":true") && stored.contains("\"uid\":null"),
        "{stored}"
    );
    let again = c.rpc("/web/session/check", serde_json::json!({}));
    assert_eq!(again["error"]["code"], 100, "not logged in: {again}");
    assert_eq!(
        c.rpc("/test_http/public_uid", serde_json::json!({}))["result"],
        public
    );
    // Logged in: the session's user.
    assert_eq!(
        c.authenticate(&site.db.name, "admin", "admin-pw")["result"]["uid"],
        2
    );
    assert_eq!(
        c.rpc("/test_http/public_uid", serde_json::json!({}))["result"],
        2
    );
}
