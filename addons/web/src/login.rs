//! `GET /web/login` and `POST /web/login` (Odoo's `Home.web_login`): a plain HTML form (no
//! JavaScript), CSRF-checked by the host, that logs in, rotates the session id and
//! redirects to a local `redirect`; wrong credentials re-render it with Odoo's message and
//! a 200. Without a database chosen and not exactly one visible, `GET` sends to
//! `/web/database/selector` (Odoo's `ensure_db`). And `/web` (`/odoo`), the page a login lands on.

use crate::{redirect, session};
use base_identity::{cooldown, users};
use inphms_sdk::escape_html as escape;
use inphms_sdk::{route, Error, Request, Response, Result};
use serde_json::Value;

/// What the form shows besides its fields.
#[derive(Default)]
struct Form<'a> {
    login: &'a str,
    redirect: &'a str,
    error: Option<&'a str>,
}

/// A parameter as text (empty when missing).
fn param(req: &Request, name: &str) -> String {
    req.params()
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// The login page: Odoo's `web.login` fields (`csrf_token`, `db` read-only when several
/// databases are visible, `login`, `password`, `type`, `redirect`); without a database
/// chosen, links choosing one (`?db=`).
fn page(req: &Request, form: &Form<'_>) -> Response {
    let databases = inphms_sdk::cursor::db_list(req.host()).ok();
    let redirect_field = escape(form.redirect);
    let mut body = String::with_capacity(2048);
    body.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Log in | Inphms</title>\n</head>\n<body>\n<main>\n<h1>Log in</h1>\n",
    );
    if let Some(error) = form.error {
        body.push_str(&format!(
            "<p class=\"alert alert-danger\" role=\"alert\" id=\"login_error\">{}</p>\n",
            escape(error)
        ));
    }
    match req.db() {
        None => {
            let list = databases.unwrap_or_default();
            if list.is_empty() {
                body.push_str("<p role=\"alert\">No database is available.</p>\n");
            } else {
                body.push_str("<p>Choose a database:</p>\n<ul>\n");
                for db in &list {
                    let mut query = format!("db={}", encode(db));
                    if !form.redirect.is_empty() {
                        query.push_str(&format!("&redirect={}", encode(form.redirect)));
                    }
                    body.push_str(&format!(
                        "<li><a href=\"/web/login?{}\">{}</a></li>\n",
                        escape(&query),
                        escape(db)
                    ));
                }
                body.push_str("</ul>\n");
            }
        }
        Some(db) => {
            body.push_str("<form method=\"post\" action=\"/web/login\">\n");
            body.push_str(&format!(
                "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n",
                escape(&req.csrf_token())
            ));
            if databases.as_ref().is_some_and(|l| l.len() > 1) {
                body.push_str(&format!(
                    "<p><label for=\"db\">Database</label>\n<input type=\"text\" id=\"db\" name=\"db\" value=\"{}\" readonly> <a href=\"/web/login?db=\">Select another</a></p>\n",
                    escape(db)
                ));
            }
            body.push_str(&format!(
                "<p><label for=\"login\">Email</label>\n<input type=\"text\" id=\"login\" name=\"login\" value=\"{}\" autocomplete=\"username\" autocapitalize=\"off\" required autofocus></p>\n\
                 <p><label for=\"password\">Password</label>\n<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" maxlength=\"4096\" required></p>\n\
                 <input type=\"hidden\" name=\"type\" value=\"password\">\n\
                 <input type=\"hidden\" name=\"redirect\" value=\"{redirect_field}\">\n\
                 <p><button type=\"submit\">Log in</button></p>\n</form>\n",
                escape(form.login)
            ));
        }
    }
    body.push_str("</main>\n</body>\n</html>\n");
    Response::html(body)
        .header("X-Frame-Options", "SAMEORIGIN")
        .header("Content-Security-Policy", "frame-ancestors 'self'")
        .header("Cache-Control", "no-store")
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

/// `GET|POST /web/login`.
#[route(
    "/web/login",
    type = "http",
    auth = "none",
    methods = ["GET", "POST"],
    readonly = false
)]
fn web_login(req: &mut Request) -> Result<Response> {
    let redirect_param = param(req, "redirect");
    if req.method() == "GET" {
        // The form's CSRF token is bound to this session: its cookie must reach the client.
        req.session.touch();
        if req.session.uid().is_some() && !redirect_param.is_empty() {
            return Ok(Response::redirect(&redirect::local(&redirect_param), 303));
        }
        // Odoo's `ensure_db`: no database chosen, and not exactly one visible: the selector.
        if req.db().is_none() && inphms_sdk::cursor::db_list(req.host()).is_ok_and(|l| l.len() != 1)
        {
            return Ok(Response::redirect("/web/database/selector", 303));
        }
        let login = param(req, "login");
        let login = if login.is_empty() {
            req.session.get::<String>("auth_login").unwrap_or_default()
        } else {
            login
        };
        return Ok(page(
            req,
            &Form {
                login: &login,
                redirect: &redirect_param,
                error: None,
            },
        ));
    }
    let login = param(req, "login");
    let password = param(req, "password");
    let Some(db) = req.db().map(str::to_owned) else {
        return Ok(Response::redirect("/web/login", 303));
    };
    match session::check_credentials(req, &login, &password) {
        Ok(uid) => {
            session::finalize(req, &db, &login, uid);
            let target = if redirect_param.is_empty() {
                "/web".to_owned()
            } else {
                redirect::local(&redirect_param)
            };
            Ok(Response::redirect(&target, 303))
        }
        Err(e) if e.name() == inphms_sdk::exceptions::ACCESS_DENIED => {
            let message = if e.message() == users::ACCESS_DENIED {
                "Wrong login/password"
            } else if e.message() == cooldown::COOLDOWN_MESSAGE {
                cooldown::COOLDOWN_MESSAGE
            } else {
                e.message()
            };
            let message = message.to_owned();
            Ok(page(
                req,
                &Form {
                    login: &login,
                    redirect: &redirect_param,
                    error: Some(&message),
                },
            ))
        }
        Err(e) => Err(e),
    }
}

/// `/web` and `/odoo`: the page a login lands on (the web client is not served yet): the
/// logged-in user's name and login, and a logout link.
#[route(["/web", "/odoo"], type = "http", auth = "user")]
fn web_client(req: &mut Request) -> Result<Response> {
    let uid = req
        .session
        .uid()
        .ok_or_else(|| Error::session_expired("Session expired"))?;
    let mut cr = req.cursor()?;
    let user =
        users::browse(&mut cr, uid)?.ok_or_else(|| Error::session_expired("Session expired"))?;
    req.session.touch();
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Inphms</title>\n</head>\n<body>\n<main>\n\
         <h1>Inphms</h1>\n<p>Logged in as <strong id=\"user_name\">{}</strong> (<span id=\"user_login\">{}</span>) on <span id=\"db\">{}</span>.</p>\n\
         <p><a href=\"/web/session/logout\">Log out</a></p>\n</main>\n</body>\n</html>\n",
        escape(&user.name),
        escape(&user.login),
        escape(cr.dbname())
    );
    Ok(Response::html(body)
        .header("X-Frame-Options", "DENY")
        .header("Cache-Control", "no-store"))
}
