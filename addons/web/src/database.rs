//! The database manager pages (Odoo's `addons/web/controllers/database.py`): `GET
//! /web/database/selector` and `/web/database/manager` (plain HTML forms, no JavaScript),
//! and the forms' `POST /web/database/create|duplicate|drop|backup|restore|change_password`
//! (`create` logs the new admin in through `GET /web/database/created`, on the new database).
//! As in Odoo the POSTs are `csrf = false`: the master password guards them. Every action
//! goes to the host's database manager (`cursor::db_service`, Odoo's `dispatch_rpc('db',
//! ...)`); a failure renders the manager again with the error.

use crate::session;
use inphms_sdk::cursor::db_service;
use inphms_sdk::escape_html as escape;
use inphms_sdk::{route, Error, Request, Response, Result};
use serde_json::{json, Value};
use std::io::{Read, Write};

/// Odoo's `DBNAME_PATTERN`, as the form's `pattern`.
const DBNAME_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9_.\\-]+$";

/// The largest backup `/web/database/restore` declares it takes (Odoo: no limit; spooled
/// to disk). The host's `limit_disk_bodies` (1 GiB by default) caps any body spooled to disk
/// first: raise it to restore larger backups through this page.
const MAX_RESTORE: u64 = 64 << 30;

fn param(req: &Request, name: &str) -> String {
    req.params()
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// A form's checkbox (`on`, `true`, `1`).
fn checked(req: &Request, name: &str) -> bool {
    matches!(param(req, name).as_str(), "on" | "true" | "True" | "1")
}

fn page_head(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} | Inphms</title>\n<link rel=\"stylesheet\" href=\"/web/static/src/main.css\">\n</head>\n<body>\n<main>\n",
        escape(title)
    )
}

fn finish(mut body: String, status: u16) -> Response {
    body.push_str("</main>\n</body>\n</html>\n");
    Response::html(body)
        .with_status(status)
        .header("X-Frame-Options", "DENY")
        .header("Cache-Control", "no-store")
}

/// The languages and countries the host knows, as `<option>`s.
fn options(method: &str, master: Option<&str>, selected: &str) -> String {
    let params = match master {
        Some(m) => json!([m]),
        None => json!([]),
    };
    let list = db_service(method, &params).unwrap_or_else(|_| json!([]));
    let mut out = String::new();
    for item in list.as_array().into_iter().flatten() {
        let (Some(code), Some(name)) = (
            item.get(0).and_then(Value::as_str),
            item.get(1).and_then(Value::as_str),
        ) else {
            continue;
        };
        let sel = if code == selected { " selected" } else { "" };
        out.push_str(&format!(
            "<option value=\"{}\"{sel}>{}</option>",
            escape(code),
            escape(name)
        ));
    }
    out
}

/// The manager page (`manage`) or the selector, with `error` shown.
fn render(req: &Request, manage: bool, error: Option<&str>) -> Response {
    let title = if manage {
        "Database manager"
    } else {
        "Databases"
    };
    let mut body = page_head(title);
    body.push_str(&format!("<h1>{title}</h1>\n"));
    let databases = inphms_sdk::cursor::db_list(req.host());
    let Ok(databases) = databases else {
        body.push_str("<p class=\"alert alert-danger\" role=\"alert\" id=\"manager_disabled\">The database manager has been disabled by the administrator</p>\n");
        return finish(body, 403);
    };
    if let Some(error) = error {
        body.push_str(&format!(
            "<p class=\"alert alert-danger\" role=\"alert\" id=\"db_error\">{}</p>\n",
            escape(error)
        ));
    }
    let insecure = db_service("is_default_master", &json!([]))
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if insecure && manage {
        body.push_str("<p class=\"alert alert-warning\" role=\"alert\" id=\"insecure\">Warning, your Inphms database manager is not protected. Please set a master password to secure it (the one you give below becomes it).</p>\n");
    }
    if databases.is_empty() {
        body.push_str("<p id=\"no_database\">No database yet.</p>\n");
    } else {
        body.push_str("<ul id=\"databases\">\n");
        for db in &databases {
            let enc = encode(db);
            body.push_str(&format!(
                "<li class=\"o_database_list\" data-db=\"{0}\"><a href=\"/web/login?db={1}\">{0}</a>",
                escape(db),
                escape(&enc)
            ));
            if manage {
                body.push_str(&format!(
                    " <a href=\"#backup\" data-db=\"{0}\">Backup</a> <a href=\"#duplicate\" data-db=\"{0}\">Duplicate</a> <a href=\"#drop\" data-db=\"{0}\">Delete</a>",
                    escape(db)
                ));
            }
            body.push_str("</li>\n");
        }
        body.push_str("</ul>\n");
    }
    if !manage {
        body.push_str("<p><a href=\"/web/database/manager\">Manage databases</a></p>\n");
        return finish(body, 200);
    }
    let master = "<p><label>Master Password <input type=\"password\" name=\"master_pwd\" required autocomplete=\"off\"></label></p>\n";
    let db_select = |name: &str| {
        let mut s = format!("<p><label>Database <select name=\"{name}\" required>");
        for db in &databases {
            s.push_str(&format!("<option value=\"{0}\">{0}</option>", escape(db)));
        }
        s.push_str("</select></label></p>\n");
        s
    };
    let pattern = escape(DBNAME_PATTERN);
    body.push_str(&format!(
        "<section id=\"create\"><h2>Create Database</h2>\n<form method=\"post\" action=\"/web/database/create\">\n{master}\
         <p><label>Database Name <input type=\"text\" name=\"name\" required pattern=\"{pattern}\"></label></p>\n\
         <p><label>Email <input type=\"text\" name=\"login\" required></label></p>\n\
         <p><label>Password <input type=\"password\" name=\"password\" required autocomplete=\"new-password\"></label></p>\n\
         <p><label>Phone number <input type=\"tel\" name=\"phone\"></label></p>\n\
         <p><label>Language <select name=\"lang\">{}</select></label></p>\n\
         <p><label>Country <select name=\"country_code\"><option value=\"\"></option>{}</select></label></p>\n\
         <p><label><input type=\"checkbox\" name=\"demo\" value=\"1\"> Demo data</label></p>\n\
         <p><button type=\"submit\">Create database</button></p>\n</form></section>\n",
        options("list_lang", None, "en_US"),
        // Odoo's dispatch asks list_countries for the master password; the page shows the
        // host's list without it (`countries`, a call only addons get).
        options("countries", None, "")
    ));
    if !databases.is_empty() {
        body.push_str(&format!(
            "<section id=\"duplicate\"><h2>Duplicate Database</h2>\n<form method=\"post\" action=\"/web/database/duplicate\">\n{master}{}\
             <p><label>New Name <input type=\"text\" name=\"new_name\" required pattern=\"{pattern}\"></label></p>\n\
             <p><label><input type=\"checkbox\" name=\"neutralize_database\" value=\"1\"> Neutralize</label></p>\n\
             <p><button type=\"submit\">Continue</button></p>\n</form></section>\n",
            db_select("name")
        ));
        body.push_str(&format!(
            "<section id=\"drop\"><h2>Delete Database</h2>\n<form method=\"post\" action=\"/web/database/drop\">\n{master}{}\
             <p><button type=\"submit\">Delete</button></p>\n</form></section>\n",
            db_select("name")
        ));
        body.push_str(&format!(
            "<section id=\"backup\"><h2>Backup Database</h2>\n<form method=\"post\" action=\"/web/database/backup\">\n{master}{}\
             <p><label>Backup Format <select name=\"backup_format\"><option value=\"zip\">zip (includes filestore)</option><option value=\"dump\">pg_dump custom format (without filestore)</option></select></label></p>\n\
             <p><button type=\"submit\">Backup</button></p>\n</form></section>\n",
            db_select("name")
        ));
    }
    body.push_str(&format!(
        "<section id=\"restore\"><h2>Restore Database</h2>\n<form method=\"post\" action=\"/web/database/restore\" enctype=\"multipart/form-data\">\n{master}\
         <p><label>File <input type=\"file\" name=\"backup_file\" required></label></p>\n\
         <p><label>Database Name <input type=\"text\" name=\"name\" required pattern=\"{pattern}\"></label></p>\n\
         <p><label><input type=\"radio\" name=\"copy\" value=\"true\"> This database is a copy</label> \
         <label><input type=\"radio\" name=\"copy\" value=\"false\" checked> This database was moved</label></p>\n\
         <p><button type=\"submit\">Continue</button></p>\n</form></section>\n"
    ));
    body.push_str(
        "<section id=\"change_password\"><h2>Set Master Password</h2>\n<form method=\"post\" action=\"/web/database/change_password\">\n\
         <p><label>Master Password <input type=\"password\" name=\"master_pwd\" required autocomplete=\"off\"></label></p>\n\
         <p><label>New Master Password <input type=\"password\" name=\"master_pwd_new\" required autocomplete=\"new-password\"></label></p>\n\
         <p><button type=\"submit\">Continue</button></p>\n</form></section>\n",
    );
    finish(body, 200)
}

/// A query value: letters, digits and `-._~` as they are, the rest percent-encoded.
fn encode(s: &str) -> String {
    const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Odoo's `str(e) or repr(e)`.
fn reason(e: &Error) -> String {
    if e.message().is_empty() {
        e.name().to_owned()
    } else {
        e.message().to_owned()
    }
}

/// While the master password is still `admin`, the first other one given becomes it
/// (Odoo's `insecure` branch).
fn adopt_master_password(master: &str) {
    if master.is_empty() || master == "admin" {
        return;
    }
    let insecure = db_service("is_default_master", &json!([]))
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if insecure {
        if let Err(e) = db_service("change_admin_password", &json!(["admin", master])) {
            tracing::warn!(target: "inphms.addons.web", "cannot set the master password: {e}");
        }
    }
}

/// `GET /web/database/selector`: the visible databases, each a link to its login form;
/// with none yet, the manager (to create one).
#[route("/web/database/selector", type = "http", auth = "none")]
fn selector(req: &mut Request) -> Response {
    if inphms_sdk::cursor::db_list(req.host()).is_ok_and(|l| l.is_empty()) {
        return Response::redirect("/web/database/manager", 303);
    }
    render(req, false, None)
}

/// `GET /web/database/manager`.
#[route("/web/database/manager", type = "http", auth = "none")]
fn manager(req: &mut Request) -> Response {
    render(req, true, None)
}

/// `POST /web/database/create`: the new database, its admin logged in, then `/web`.
#[route("/web/database/create", type = "http", auth = "none", methods = ["POST"], csrf = false, readonly = false)]
fn create(req: &mut Request) -> Result<Response> {
    let master = param(req, "master_pwd");
    let name = param(req, "name");
    let login = param(req, "login");
    let password = param(req, "password");
    adopt_master_password(&master);
    let params = json!([
        master,
        name,
        checked(req, "demo"),
        param(req, "lang"),
        password,
        login,
        param(req, "country_code"),
        param(req, "phone"),
    ]);
    let created = db_service("create_database", &params)
        .and_then(|_| db_service("authenticate", &json!([name, login, password])));
    match created {
        Ok(v) => {
            // The login is finished on the new database (`created`): the session token is
            // drawn in a request on it.
            let uid = v.get("uid").and_then(Value::as_i64).unwrap_or(2);
            req.session.set("db", &name);
            req.session.set(
                PENDING_LOGIN,
                json!({"db": name, "login": login, "uid": uid}),
            );
            Ok(Response::redirect("/web/database/created", 303))
        }
        Err(e) => Ok(render(
            req,
            true,
            Some(&format!("Database creation error: {}", reason(&e))),
        )),
    }
}

/// The session key holding the login `create` checked, finished by `created`.
const PENDING_LOGIN: &str = "db_manager_login";

/// `GET /web/database/created`: on the database just created (the session's), logs its
/// admin in as `create` checked (Odoo's `session.authenticate` after `create_database`),
/// then `/web`.
#[route(
    "/web/database/created",
    type = "http",
    auth = "none",
    readonly = false
)]
fn created(req: &mut Request) -> Response {
    let pending = req.session.get::<Value>(PENDING_LOGIN);
    req.session.remove(PENDING_LOGIN);
    let Some(pending) = pending else {
        return Response::redirect("/web/login", 303);
    };
    let db = pending.get("db").and_then(Value::as_str).unwrap_or("");
    let login = pending.get("login").and_then(Value::as_str).unwrap_or("");
    match (req.db(), pending.get("uid").and_then(Value::as_i64)) {
        (Some(current), Some(uid)) if current == db && !login.is_empty() => {
            let (db, login) = (db.to_owned(), login.to_owned());
            session::finalize(req, &db, &login, uid);
            Response::redirect("/web", 303)
        }
        _ => Response::redirect("/web/login", 303),
    }
}

/// `POST /web/database/duplicate`.
#[route("/web/database/duplicate", type = "http", auth = "none", methods = ["POST"], csrf = false)]
fn duplicate(req: &mut Request) -> Result<Response> {
    let master = param(req, "master_pwd");
    adopt_master_password(&master);
    let params = json!([
        master,
        param(req, "name"),
        param(req, "new_name"),
        checked(req, "neutralize_database")
    ]);
    match db_service("duplicate_database", &params) {
        Ok(_) => Ok(Response::redirect("/web/database/manager", 303)),
        Err(e) => Ok(render(
            req,
            true,
            Some(&format!("Database duplication error: {}", reason(&e))),
        )),
    }
}

/// `POST /web/database/drop` (the session leaves the dropped database).
#[route("/web/database/drop", type = "http", auth = "none", methods = ["POST"], csrf = false)]
fn drop_db(req: &mut Request) -> Result<Response> {
    let master = param(req, "master_pwd");
    let name = param(req, "name");
    adopt_master_password(&master);
    match db_service("drop", &json!([master, name])) {
        Ok(_) => {
            if req.session.get::<String>("db").as_deref() == Some(name.as_str()) {
                req.session.logout(false);
            }
            Ok(Response::redirect("/web/database/manager", 303))
        }
        Err(e) => Ok(render(
            req,
            true,
            Some(&format!("Database deletion error: {}", reason(&e))),
        )),
    }
}

/// A file read in 256 KiB chunks, for a streamed response.
struct Chunks(std::fs::File);

impl Iterator for Chunks {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 256 * 1024];
        match self.0.read(&mut buf) {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(buf)
            }
        }
    }
}

/// `POST /web/database/backup`: the backup as an attachment, streamed from a temporary
/// file (removed once opened).
#[route("/web/database/backup", type = "http", auth = "none", methods = ["POST"], csrf = false)]
fn backup(req: &mut Request) -> Result<Response> {
    let master = param(req, "master_pwd");
    let name = param(req, "name");
    let mut format = param(req, "backup_format");
    if format.is_empty() {
        format = "zip".into();
    }
    let made = db_service("backup_file", &json!([master, name, format]));
    let path = match made {
        Ok(v) => v
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        Err(e) => {
            return Ok(render(
                req,
                true,
                Some(&format!("Database backup error: {}", reason(&e))),
            ))
        }
    };
    let file = std::fs::File::open(&path);
    let _ = std::fs::remove_file(&path);
    let file = file.map_err(|e| Error::internal(format!("cannot open the backup {path}: {e}")))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let ts = chrono::Utc::now().format("%Y-%m-%d_%H-%M-%S");
    let filename = format!("{name}_{ts}.{format}");
    Ok(Response::stream(Chunks(file))
        .length(len)
        .header("Content-Type", "application/octet-stream; charset=binary")
        .header(
            "Content-Disposition",
            &format!("attachment; filename=\"{}\"", filename.replace('"', "")),
        ))
}

/// `POST /web/database/restore` (multipart: `backup_file`, `name`, `copy`): the upload is
/// written to a temporary file the host restores from.
#[route("/web/database/restore", type = "http", auth = "none", methods = ["POST"], csrf = false, max_content_length = MAX_RESTORE)]
fn restore(req: &mut Request) -> Result<Response> {
    let master = param(req, "master_pwd");
    let name = param(req, "name");
    let copy = matches!(param(req, "copy").as_str(), "true" | "True" | "1" | "on");
    adopt_master_password(&master);
    let content_type = req.header("content-type").unwrap_or("").to_owned();
    let parts = inphms_sdk::multipart::parse_ref(&content_type, req.body()).map_err(|e| {
        Error::bad_request(format!("the upload is not a valid multipart form: {e}"))
    })?;
    let Some(part) = parts
        .iter()
        .find(|p| p.name == "backup_file" && p.is_file())
    else {
        return Ok(render(
            req,
            true,
            Some("Database restore error: no backup file was sent (field backup_file)"),
        ));
    };
    // The master password first: nothing is written for a caller who does not have it.
    if let Err(e) = db_service("check_master", &json!([master])) {
        return Ok(render(
            req,
            true,
            Some(&format!("Database restore error: {}", reason(&e))),
        ));
    }
    // A new file of a random name, made exclusively (no symlink followed), removed on drop.
    let written = tempfile::Builder::new()
        .prefix("inphms-upload-")
        .suffix(".bak")
        .tempfile()
        .and_then(|mut f| f.write_all(part.data).and_then(|()| f.flush()).map(|()| f));
    drop(parts);
    let result = match &written {
        Ok(file) => db_service(
            "restore_file",
            &json!([master, name, file.path().to_string_lossy(), copy]),
        ),
        Err(e) => Err(Error::internal(format!("cannot keep the upload: {e}"))),
    };
    drop(written);
    match result {
        Ok(_) => Ok(Response::redirect("/web/database/manager", 303)),
        Err(e) => Ok(render(
            req,
            true,
            Some(&format!("Database restore error: {}", reason(&e))),
        )),
    }
}

/// `POST /web/database/change_password`.
#[route("/web/database/change_password", type = "http", auth = "none", methods = ["POST"], csrf = false)]
fn change_password(req: &mut Request) -> Result<Response> {
    let params = json!([param(req, "master_pwd"), param(req, "master_pwd_new")]);
    match db_service("change_admin_password", &params) {
        Ok(_) => Ok(Response::redirect("/web/database/manager", 303)),
        Err(e) => Ok(render(
            req,
            true,
            Some(&format!("Master password update error: {}", reason(&e))),
        )),
    }
}
