//! The `res_users` table (Odoo's `res.users`): finding a user by login, checking a password
//! (Odoo's `_login` / `_check_credentials`), setting one, listing and adding users, and the
//! session token of a user.

use crate::crypt;
use inphms_sdk::{params, Cursor, Error, Result, SqlValue};

const TARGET: &str = "inphms.addons.base.models.res_users";

/// The statement whose row is the key of the session token (Odoo 18's
/// `_get_session_token_query_params`: the database secret, then the fields of
/// `_get_session_token_fields` sorted by name). `base`'s manifest declares the same text
/// for the host, which checks the token of every request whose session has a user.
pub const SESSION_TOKEN_QUERY: &str = "SELECT (SELECT value FROM ir_config_parameter WHERE key = 'database.secret'), res_users.active, res_users.id, res_users.login, res_users.password FROM res_users WHERE res_users.id = $1";

/// The message of Odoo's `AccessDenied()`.
pub const ACCESS_DENIED: &str = "Access Denied";

/// Odoo's `AccessDenied` (`data.name` of the JSON-RPC error; 403 for http routes).
pub fn access_denied(message: &str) -> Error {
    Error::access(message).with_name(inphms_sdk::exceptions::ACCESS_DENIED)
}

/// A value of `ir_config_parameter`, if set.
pub fn get_param(cr: &mut Cursor, key: &str) -> Result<Option<String>> {
    let rows = cr.execute(
        "SELECT value FROM ir_config_parameter WHERE key = $1",
        params![key],
    )?;
    Ok(rows.first().and_then(|r| r.at::<String>(0).ok()))
}

/// The environment variable that lets `password.hashing.rounds` go below
/// [`crypt::DEFAULT_ROUNDS`] (`1`): for tests and development only, where hashing at
/// Odoo's minimum would make every login slow. Never set it in production.
pub const WEAK_ROUNDS_ENV: &str = "INPHMS_DEV_WEAK_HASHING_ROUNDS";

/// The rounds of new password hashes: `password.hashing.rounds`, at least
/// [`crypt::DEFAULT_ROUNDS`] (Odoo's `max(MIN_ROUNDS, value)`; a lower value is raised, with
/// a warning, unless [`WEAK_ROUNDS_ENV`] is `1`); an unreadable value is ignored.
pub fn hashing_rounds(cr: &mut Cursor) -> Result<u32> {
    let Some(text) = get_param(cr, "password.hashing.rounds")? else {
        return Ok(crypt::DEFAULT_ROUNDS);
    };
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=crypt::MAX_ROUNDS).contains(&n) => {
            if n >= crypt::DEFAULT_ROUNDS {
                return Ok(n);
            }
            if std::env::var(WEAK_ROUNDS_ENV).is_ok_and(|v| v == "1") {
                tracing::warn!(target: TARGET, "password.hashing.rounds = {n} on {}: below Odoo's minimum {}, allowed by {WEAK_ROUNDS_ENV} (tests and development only)", cr.dbname(), crypt::DEFAULT_ROUNDS);
                return Ok(n);
            }
            tracing::warn!(target: TARGET, "password.hashing.rounds = {n} on {} is below the minimum: using {}", cr.dbname(), crypt::DEFAULT_ROUNDS);
            Ok(crypt::DEFAULT_ROUNDS)
        }
        _ => {
            tracing::warn!(target: TARGET, "password.hashing.rounds = {text:?} on {} is not a count of rounds (1 to {}): using {}", cr.dbname(), crypt::MAX_ROUNDS, crypt::DEFAULT_ROUNDS);
            Ok(crypt::DEFAULT_ROUNDS)
        }
    }
}

/// The most characters of a client's login written to the log.
pub const LOGGED_LOGIN_CHARS: usize = 64;

/// A client's login as logged (with `{:?}`, so control characters are escaped): its first
/// [`LOGGED_LOGIN_CHARS`] characters.
pub fn loggable(login: &str) -> &str {
    match login.char_indices().nth(LOGGED_LOGIN_CHARS) {
        Some((end, _)) => &login[..end],
        None => login,
    }
}

/// A user as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `res_users.id`.
    pub id: i64,
    /// The login.
    pub login: String,
    /// The display name (the login when unset).
    pub name: String,
    /// Whether the user can log in.
    pub active: bool,
    /// Whether a password is set.
    pub has_password: bool,
}

/// Every user, by id.
pub fn list(cr: &mut Cursor) -> Result<Vec<User>> {
    list_where(cr, "true ORDER BY id", &[])
}

/// The user with id `uid`, if any.
pub fn browse(cr: &mut Cursor, uid: i64) -> Result<Option<User>> {
    Ok(list_where(cr, "id = $1", &[SqlValue::Int(uid)])?
        .into_iter()
        .next())
}

/// The user whose login is `login`, if any (active or not).
pub fn by_login(cr: &mut Cursor, login: &str) -> Result<Option<User>> {
    Ok(list_where(cr, "login = $1", params![login])?
        .into_iter()
        .next())
}

fn list_where(cr: &mut Cursor, condition: &str, args: &[SqlValue]) -> Result<Vec<User>> {
    let rows = cr.execute(
        &format!(
            "SELECT id, login, COALESCE(name, login) AS name, active, \
             COALESCE(password, '') <> '' AS has_password FROM res_users WHERE {condition}"
        ),
        args,
    )?;
    rows.iter()
        .map(|r| {
            Ok(User {
                id: r.get("id")?,
                login: r.get("login")?,
                name: r.get("name")?,
                active: r.get("active")?,
                has_password: r.get("has_password")?,
            })
        })
        .collect()
}

/// Adds an active user `login` (without a password: set one with [`set_password`]); its id.
/// A login already taken is a user error naming it.
pub fn add(cr: &mut Cursor, login: &str, name: Option<&str>) -> Result<i64> {
    let login = check_login(login)?;
    if by_login(cr, login)?.is_some() {
        return Err(Error::user(format!("The login '{login}' is already taken")));
    }
    let rows = cr.execute(
        "INSERT INTO res_users (login, name, active) VALUES ($1, $2, true) RETURNING id",
        params![login, name.unwrap_or(login)],
    )?;
    rows.first()
        .ok_or_else(|| Error::internal("INSERT ... RETURNING gave no row"))?
        .get("id")
}

/// A login as stored: trimmed, not empty, at most 256 characters, no control characters.
pub fn check_login(login: &str) -> Result<&str> {
    let login = login.trim();
    if login.is_empty() {
        return Err(Error::user("A login cannot be empty"));
    }
    if login.chars().count() > 256 || login.chars().any(char::is_control) {
        return Err(Error::user(format!(
            "Invalid login {login:?}: at most 256 characters, none of them control characters"
        )));
    }
    Ok(login)
}

/// Sets the password of `uid` (Odoo's `_set_password`): stripped, not empty (Odoo's
/// message), hashed with the database's rounds. Every session of the user ends at its next
/// request (the hash is part of the session token).
pub fn set_password(cr: &mut Cursor, uid: i64, password: &str) -> Result<()> {
    let password = password.trim();
    if password.is_empty() {
        return Err(Error::user(
            "Setting empty passwords is not allowed for security reasons!",
        ));
    }
    let rounds = hashing_rounds(cr)?;
    let hashed = crypt::hash(password, rounds);
    let n = cr
        .execute(
            "UPDATE res_users SET password = $1 WHERE id = $2",
            params![hashed, uid],
        )?
        .rowcount();
    if n != 1 {
        return Err(Error::user(format!("No user with id {uid}")));
    }
    Ok(())
}

/// Checks `password` for the active user `login` (Odoo's `_login` with a password
/// credential): the user's id, or `AccessDenied`. A valid legacy hash (plaintext, other
/// rounds) is replaced by a fresh one. A login that no stored one can be (longer than 256
/// characters, control characters) is refused before any query. An unknown or inactive
/// login, an empty password or a user without a password costs a hash at the configured
/// rounds all the same, so the time of the answer does not tell which logins exist. Logs
/// `Login failed|successful for db:.. login:.. from ..` as Odoo (a refused login escaped and
/// truncated, [`loggable`]: no forged lines, no unbounded ones), never the password. The caller applies the cooldown ([`crate::cooldown`]).
pub fn check_password(cr: &mut Cursor, login: &str, password: &str, addr: &str) -> Result<i64> {
    let db = cr.dbname().to_owned();
    if login.chars().count() > 256 || login.chars().any(char::is_control) {
        let shown = loggable(login);
        tracing::info!(target: TARGET, "Login failed for db:{db} login:{shown:?} from {addr} (not a valid login)");
        return Err(access_denied(ACCESS_DENIED));
    }
    let rounds = hashing_rounds(cr)?;
    let found = if password.is_empty() {
        None
    } else {
        let rows = cr.execute(
            "SELECT id, COALESCE(password, '') AS password FROM res_users \
             WHERE login = $1 AND active ORDER BY COALESCE(name, login), login LIMIT 1",
            params![login],
        )?;
        match rows.first() {
            Some(r) => Some((r.get::<i64>("id")?, r.get::<String>("password")?)),
            None => None,
        }
    };
    let checked = match found {
        Some((uid, stored)) if !stored.is_empty() => {
            let v = crypt::verify(password, &stored, rounds);
            if v.valid && v.needs_update {
                let hashed = crypt::hash(password, rounds);
                cr.execute(
                    "UPDATE res_users SET password = $1 WHERE id = $2",
                    params![hashed, uid],
                )?;
                tracing::info!(target: TARGET, "password hash of user #{uid} updated on {db} ({} rounds)", rounds);
            }
            v.valid.then_some(uid)
        }
        _ => {
            // No usable hash: one computed all the same (Odoo's dummy check), then refused.
            std::hint::black_box(crypt::hash(password, rounds));
            None
        }
    };
    match checked {
        Some(uid) => {
            tracing::info!(target: TARGET, "Login successful for db:{db} login:{login} from {addr}");
            Ok(uid)
        }
        None => {
            tracing::info!(target: TARGET, "Login failed for db:{db} login:{login} from {addr}");
            Err(access_denied(ACCESS_DENIED))
        }
    }
}

/// The session token of `uid` for the session `sid` ([`inphms_sdk::session::session_token`]
/// over the row of [`SESSION_TOKEN_QUERY`]); `None` when the user does not exist.
pub fn session_token(cr: &mut Cursor, uid: i64, sid: &str) -> Result<Option<String>> {
    let rows = cr.execute(SESSION_TOKEN_QUERY, &[SqlValue::Int(uid)])?;
    if rows.len() != 1 {
        return Ok(None);
    }
    let row = rows
        .first()
        .map(|r| r.values().to_vec())
        .unwrap_or_default();
    Ok(Some(inphms_sdk::session::session_token(&row, sid)))
}
