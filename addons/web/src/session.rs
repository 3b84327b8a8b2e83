//! The web session API (Odoo's `addons/web/controllers/session.py`), with Odoo's shapes:
//! `/web/session/authenticate`, `get_session_info`, `check`, `destroy` (JSON-RPC) and
//! `GET /web/session/logout`. Credentials are checked by `base` (its library
//! `base_identity`); the host checks the session token of every `auth = "user"` request and
//! computes it when a login rotates the session id.

use crate::redirect;
use base_identity::users::{self, User};
use inphms_sdk::{route, Cursor, Error, Host, Request, Response, Result};
use serde_json::{json, Value};

/// The user context (Odoo's `res.users.context_get()`): no languages or time zones are
/// stored yet, so `en_US` and no time zone.
pub fn user_context(uid: i64) -> Value {
    json!({"lang": "en_US", "tz": false, "uid": uid})
}

/// Odoo's `ir.http.session_info()` for the logged-in user `user` on `db`: `is_admin` and
/// `is_system` from the user's groups (`base_identity::groups`, Odoo's `_is_admin` and
/// `_is_system`).
pub fn session_info(cr: &mut Cursor, user: &User) -> Result<Value> {
    let version = crate::version_payload(Host.version().unwrap_or("0.0.0"));
    let base_url = users::get_param(cr, "web.base.url")?.unwrap_or_default();
    let int_param = |cr: &mut Cursor, key: &str, default: i64| -> Result<i64> {
        Ok(users::get_param(cr, key)?
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default))
    };
    let active_ids_limit = int_param(cr, "web.active_ids_limit", 20000)?;
    let max_upload = int_param(cr, "web.max_file_upload_size", 134_217_728)?;
    let (is_admin, is_system) = base_identity::groups::admin_and_system(cr, user.id)?;
    // Odoo's `bool(get_param('base_setup.show_effect'))`.
    let show_effect = users::get_param(cr, "base_setup.show_effect")?
        .is_some_and(|v| !v.trim().is_empty() && v.trim() != "False");
    Ok(json!({
        "uid": user.id,
        "is_system": is_system,
        "is_admin": is_admin,
        "is_public": false,
        "is_internal_user": true,
        "user_context": user_context(user.id),
        "db": cr.dbname(),
        "user_settings": {"id": user.id, "user_id": {"id": user.id}},
        "server_version": version["server_version"],
        "server_version_info": version["server_version_info"],
        "support_url": "https://www.odoo.com/buy",
        "name": user.name,
        "username": user.login,
        "partner_write_date": Value::Null,
        "partner_display_name": user.name,
        "partner_id": Value::Null,
        "web.base.url": base_url,
        "active_ids_limit": active_ids_limit,
        "profile_session": Value::Null,
        "profile_collectors": Value::Null,
        "profile_params": Value::Null,
        "max_file_upload_size": max_upload,
        "home_action_id": false,
        "cache_hashes": {"translations": Value::Null, "load_menus": load_menus_hash()},
        "user_companies": user_companies(),
        "show_effect": show_effect,
        "display_switch_company_menu": false,
        "currencies": {},
        "bundle_params": {"lang": "en_US"},
        "test_mode": false,
        "view_info": {},
    }))
}

/// The web client's menus (Odoo's `ir.ui.menu.load_web_menus`): no menus are stored yet,
/// so the root alone.
pub fn web_menus() -> Value {
    json!({"root": {
        "id": "root", "name": "root", "children": [], "appID": false, "xmlid": "",
        "actionID": false, "actionModel": false, "actionPath": false, "webIcon": Value::Null,
        "webIconData": Value::Null, "webIconDataMimetype": Value::Null,
        "backgroundImage": Value::Null,
    }})
}

/// `cache_hashes.load_menus` (Odoo's `webclient` hash): the first 64 hexadecimal digits of
/// the SHA-512 of the menus' JSON ([`web_menus`], keys sorted).
pub fn load_menus_hash() -> String {
    use sha2::Digest;
    let digest = sha2::Sha512::digest(web_menus().to_string().as_bytes());
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(64)
        .collect()
}

/// `user_companies` (Odoo's `session_info`): without a companies table yet, the single
/// main company (`base.main_company`, id 1), current and only allowed one.
pub fn user_companies() -> Value {
    json!({
        "current_company": 1,
        "allowed_companies": {"1": {
            "id": 1, "name": "My Company", "sequence": 10, "child_ids": [],
            "parent_id": false, "currency_id": false,
        }},
        "disallowed_ancestor_companies": {},
    })
}

/// Logs the request's session in as `login` after a successful check (Odoo's
/// `Session.finalize`): database, login, uid and context set, the id rotated (the host
/// draws the new id and computes the session token for it).
pub fn finalize(req: &mut Request, db: &str, login: &str, uid: i64) {
    req.session.remove("pre_login");
    req.session.remove("pre_uid");
    req.session.set("db", db);
    req.session.set("context", user_context(uid));
    req.session.finalize_login(login, uid);
}

/// Checks `login`/`password` on the request's database from the client's address: the
/// user's id, or `AccessDenied` (the message says why: wrong credentials or cooldown).
pub fn check_credentials(req: &Request, login: &str, password: &str) -> Result<i64> {
    let mut cr = req.cursor()?;
    let uid = base_identity::login(&mut cr, login, password, req.remote_addr())?;
    if login == "admin" && password == "admin" {
        tracing::warn!(target: "inphms.addons.web", "user 'admin' of {} logged in with the default password 'admin': change it with `inphms-host users -d {} passwd admin`", cr.dbname(), cr.dbname());
    }
    Ok(uid)
}

/// `POST /web/session/authenticate` (`{db, login, password}`): Odoo's `session_info` and
/// the new session's cookie; wrong credentials: `AccessDenied`. The host binds this
/// request to the `db` it names when the filter accepts it and it loads (as Odoo logs in to
/// `db` whatever the request's database); another is "Database not found.".
#[route(
    "/web/session/authenticate",
    type = "json",
    auth = "none",
    readonly = false
)]
fn authenticate(req: &mut Request, db: String, login: String, password: String) -> Result<Value> {
    if req.db() != Some(db.as_str()) {
        return Err(Error::access("Database not found."));
    }
    let uid = check_credentials(req, &login, &password)?;
    let mut cr = req.cursor()?;
    let user = users::browse(&mut cr, uid)?
        .ok_or_else(|| Error::internal(format!("user #{uid} vanished during its login")))?;
    finalize(req, &db, &user.login, uid);
    session_info(&mut cr, &user)
}

/// `POST /web/session/get_session_info`: the logged-in session's `session_info` (and the
/// session refreshed).
#[route("/web/session/get_session_info", type = "json", auth = "user")]
fn get_session_info(req: &mut Request) -> Result<Value> {
    req.session.touch();
    let uid = req
        .session
        .uid()
        .ok_or_else(|| Error::session_expired("Session expired"))?;
    let mut cr = req.cursor()?;
    let user =
        users::browse(&mut cr, uid)?.ok_or_else(|| Error::session_expired("Session expired"))?;
    session_info(&mut cr, &user)
}

/// `POST /web/session/check`: nothing (no `result` key); the authentication is the check.
#[route("/web/session/check", type = "json", auth = "user", readonly = true)]
fn check(_req: &mut Request) {}

/// `POST /web/session/destroy`: logs out, the database forgotten too; no `result` key.
#[route("/web/session/destroy", type = "json", auth = "user", readonly = true)]
fn destroy(req: &mut Request) {
    req.session.logout(false);
}

/// `GET /web/session/logout?redirect=/web`: logs out (the database kept) and redirects (303)
/// to `redirect` made local.
#[route("/web/session/logout", type = "http", auth = "none")]
fn logout(req: &mut Request) -> Response {
    let target = req
        .params()
        .get("redirect")
        .and_then(Value::as_str)
        .unwrap_or("/web")
        .to_owned();
    req.session.logout(true);
    Response::redirect(&redirect::local(&target), 303)
}
