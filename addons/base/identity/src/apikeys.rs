//! API keys (Odoo's `res.users.apikeys`): 40 hexadecimal characters shown once, stored as
//! their first 8 (the index) and a pbkdf2_sha512 hash at 6,000 rounds (Odoo's
//! `KEY_CRYPT_CONTEXT`; a key is random, so fewer rounds than a password need).

use crate::crypt;
use inphms_sdk::{params, Cursor, Error, Result, SqlValue};

const TARGET: &str = "inphms.addons.base.models.res_users";

/// Odoo's `API_KEY_SIZE`, in bytes (the key is their hex: 40 characters).
pub const API_KEY_SIZE: usize = 20;
/// Odoo's `INDEX_SIZE`, in characters.
pub const INDEX_SIZE: usize = 8;
/// The rounds of key hashes (Odoo's `pbkdf2_sha512__rounds=6000`).
pub const KEY_ROUNDS: u32 = 6000;

/// Makes a key for `uid` named `name`, expiring in `expires_days` days (never when `None`);
/// returns the key, to be shown once.
pub fn generate(
    cr: &mut Cursor,
    uid: i64,
    name: &str,
    expires_days: Option<f64>,
) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::user("An API key needs a name (--name NAME)"));
    }
    let bytes: [u8; API_KEY_SIZE] = rand::random();
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hashed = crypt::hash(&key, KEY_ROUNDS);
    let expires = match expires_days {
        Some(d) if d.is_finite() && d > 0.0 && d <= 36_500.0 => SqlValue::Float(d),
        Some(d) => {
            return Err(Error::user(format!(
                "Invalid expiration {d} days: a number of days above 0, at most 36500"
            )))
        }
        None => SqlValue::Null,
    };
    cr.execute(
        "INSERT INTO res_users_apikeys (name, user_id, scope, expiration_date, key, index) \
         VALUES ($1, $2, NULL, (now() AT TIME ZONE 'UTC') + make_interval(secs => $3::float8 * 86400), $4, $5)",
        &[
            SqlValue::Text(name.to_owned()),
            SqlValue::Int(uid),
            expires,
            SqlValue::Text(hashed),
            SqlValue::Text(key[..INDEX_SIZE].to_owned()),
        ],
    )?;
    tracing::info!(target: TARGET, "API key generated: scope: <None> for user #{uid} on {}", cr.dbname());
    Ok(key)
}

/// The user of `key` for `scope` (Odoo's `_check_credentials(scope, key)`): an active user's
/// key of that scope (or global), not expired, whose hash verifies. A key that is not 40
/// hexadecimal characters is refused without a query.
pub fn check(cr: &mut Cursor, scope: &str, key: &str) -> Result<Option<i64>> {
    if key.len() != 2 * API_KEY_SIZE || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let rows = cr.execute(
        "SELECT k.user_id, k.key FROM res_users_apikeys k JOIN res_users u ON u.id = k.user_id \
         WHERE u.active AND k.index = $1 AND (k.scope IS NULL OR k.scope = $2) \
         AND (k.expiration_date IS NULL OR k.expiration_date >= now() AT TIME ZONE 'UTC')",
        params![&key[..INDEX_SIZE], scope],
    )?;
    for row in rows.iter() {
        let hashed: String = row.get("key")?;
        if crypt::verify(key, &hashed, KEY_ROUNDS).valid {
            return Ok(Some(row.get("user_id")?));
        }
    }
    Ok(None)
}

/// A key as listed (never the key itself).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// `res_users_apikeys.id`, what `revoke` takes.
    pub id: i64,
    /// The owner's login.
    pub login: String,
    /// The key's name.
    pub name: String,
    /// Its first 8 characters.
    pub index: String,
    /// When it was made and when it expires (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub create_date: String,
    /// Empty for a key that never expires.
    pub expiration_date: String,
}

/// The keys (of `login` when given), by id.
pub fn list(cr: &mut Cursor, login: Option<&str>) -> Result<Vec<KeyInfo>> {
    let rows = cr.execute(
        "SELECT k.id, u.login, k.name, k.index, \
         COALESCE(to_char(k.create_date, 'YYYY-MM-DD HH24:MI:SS'), '') AS create_date, \
         COALESCE(to_char(k.expiration_date, 'YYYY-MM-DD HH24:MI:SS'), '') AS expiration_date \
         FROM res_users_apikeys k JOIN res_users u ON u.id = k.user_id \
         WHERE $1::varchar IS NULL OR u.login = $1 ORDER BY k.id",
        &[login
            .map(|l| SqlValue::Text(l.to_owned()))
            .unwrap_or(SqlValue::Null)],
    )?;
    rows.iter()
        .map(|r| {
            Ok(KeyInfo {
                id: r.get("id")?,
                login: r.get("login")?,
                name: r.get("name")?,
                index: r.get("index")?,
                create_date: r.get("create_date")?,
                expiration_date: r.get("expiration_date")?,
            })
        })
        .collect()
}

/// Removes the key `id`; whether there was one.
pub fn revoke(cr: &mut Cursor, id: i64) -> Result<bool> {
    let n = cr
        .execute(
            "DELETE FROM res_users_apikeys WHERE id = $1",
            &[SqlValue::Int(id)],
        )?
        .rowcount();
    if n > 0 {
        tracing::info!(target: TARGET, "API key #{id} revoked on {}", cr.dbname());
    }
    Ok(n > 0)
}
