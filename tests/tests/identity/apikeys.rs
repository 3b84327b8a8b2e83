//! API keys (Odoo's `res.users.apikeys`), made, listed and revoked with the `users` command,
//! and `auth = "bearer"` routes with a valid, an expired, a revoked and a malformed key.

use super::support::Site;
use inphms_tests::send;
use serde_json::Value;

#[test]
fn keys_are_shown_once_stored_hashed_listed_and_revoked() {
    let site = Site::start("idkeys", &[]);
    let out = site.users(&["apikey", "admin", "--name", "ci", "--expires", "7"], None);
    assert_eq!(out.code, Some(0), "{out}");
    let key = out.stdout.trim().to_owned();
    assert_eq!(key.len(), 40, "{out}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    let stored = site
        .db
        .sql("SELECT index || ' ' || key FROM res_users_apikeys");
    assert_eq!(&stored[..8], &key[..8]);
    assert!(stored[9..].starts_with("$pbkdf2-sha512$6000$"), "{stored}");
    assert!(!stored.contains(&key), "the key itself is never stored");
    let list = site.users(&["apikeys"], None);
    assert!(
        list.stdout.contains("ci") && list.stdout.contains(&key[..8]),
        "{list}"
    );
    assert!(!list.stdout.contains(&key), "{list}");
    let id = site.db.sql("SELECT id FROM res_users_apikeys");
    let out = site.users(&["revoke", &id], None);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(site.db.sql("SELECT count(*) FROM res_users_apikeys"), "0");
    let out = site.users(&["revoke", &id], None);
    assert_eq!(out.code, Some(1), "{out}");
    let out = site.users(&["apikey", "admin"], None);
    assert!(
        out.code == Some(1) && out.stderr.contains("--name"),
        "{out}"
    );
}

/// `inphms-host users -d DB apikey admin --name NAME [--expires DAYS]`: the key printed.
fn new_key(site: &Site, name: &str, expires: Option<&str>) -> String {
    let mut args = vec!["apikey", "admin", "--name", name];
    if let Some(days) = expires {
        args.extend(["--expires", days]);
    }
    let out = site.users(&args, None);
    assert_eq!(out.code, Some(0), "{out}");
    out.stdout.trim().to_owned()
}

#[test]
fn bearer_routes_take_valid_keys_only() {
    let tests = inphms_tests::test_addons_dir();
    let site = Site::start(
        "idbearer",
        &[
            "--load",
            "base,web,test_http",
            "--addons-path",
            tests.to_str().expect("UTF-8"),
        ],
    );
    let valid = new_key(&site, "valid", Some("30"));
    let expired = new_key(&site, "expired", Some("1"));
    site.db.sql("UPDATE res_users_apikeys SET expiration_date = now() - interval '1 day' WHERE name = 'expired'");
    let revoked = new_key(&site, "revoked", None);
    let id = site
        .db
        .sql("SELECT id FROM res_users_apikeys WHERE name = 'revoked'");
    assert_eq!(site.users(&["revoke", &id], None).code, Some(0));

    let call = |auth: Option<String>| {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let resp = send(
            site.port(),
            "POST",
            "/test_http/bearer_uid",
            &headers,
            br#"{"jsonrpc": "2.0", "id": 1, "params": {}}"#,
        );
        let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        (resp, v)
    };
    let (resp, v) = call(Some(format!("Bearer {valid}")));
    assert_eq!(v["result"], 2, "{v}");
    assert!(
        resp.cookie("session_id").is_none(),
        "a bearer request saves no session"
    );
    let (_, v) = call(Some(format!("bearer   {valid}")));
    assert_eq!(v["result"], 2, "the scheme is case-insensitive: {v}");
    for (what, auth) in [
        ("expired", Some(format!("Bearer {expired}"))),
        ("revoked", Some(format!("Bearer {revoked}"))),
        ("malformed", Some("Bearer not-a-key".to_owned())),
        ("wrong", Some(format!("Bearer {}", wrong_last_char(&valid)))),
    ] {
        let (_, v) = call(auth);
        assert_eq!(
            v["error"]["data"]["name"], "werkzeug.exceptions.Unauthorized",
            "{what}: {v}"
        );
        assert_eq!(
            v["error"]["data"]["message"], "Invalid apikey",
            "{what}: {v}"
        );
    }
    // No key (a bare "Bearer" is none, as Odoo's `^bearer\s+(.+)$`), no session.
    let (_, v) = call(Some("Bearer ".to_owned()));
    assert_eq!(
        v["error"]["data"]["name"], "werkzeug.exceptions.Unauthorized",
        "{v}"
    );
    let (_, v) = call(None);
    assert_eq!(
        v["error"]["data"]["message"], "User not authenticated, use the \"Authorization\" header",
        "{v}"
    );
    // http: 401 with WWW-Authenticate, 200 with a valid key.
    let resp = send(
        site.port(),
        "GET",
        "/test_http/bearer_uid_http",
        &[("Authorization", &format!("Bearer {revoked}"))],
        b"",
    );
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
    let resp = send(
        site.port(),
        "GET",
        "/test_http/bearer_uid_http",
        &[("Authorization", &format!("Bearer {valid}"))],
        b"",
    );
    assert_eq!((resp.status, resp.text()), (200, "2".to_owned()));
    // A key used as a password at the login form: refused (interactive logins take passwords only).
    let mut c = site.client("10.5.0.1");
    let denied = c.authenticate(&site.db.name, "admin", &valid);
    assert_eq!(
        denied["error"]["data"]["message"], "Access Denied",
        "{denied}"
    );
}

/// `key` with its last character changed (a key that differs from it in its hash part
/// only; never the key itself, whatever its last character was).
fn wrong_last_char(key: &str) -> String {
    let (head, last) = key.split_at(key.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}
