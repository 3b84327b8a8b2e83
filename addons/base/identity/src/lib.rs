//! The identity logic of the `base` addon (Odoo's `res.users` and `res.users.apikeys`):
//! password hashes in passlib's format ([`crypt`]), the `res_users` table and the password
//! check ([`users`]), groups ([`groups`]), login throttling ([`cooldown`]).
//!
//! It is a library of `base`'s, linked by `base` (its `users` command) and by `web` (the
//! login routes), since addons cannot call each other's functions across their images; the
//! tables it reads are created by `base`'s data file.

pub mod apikeys;
pub mod cooldown;
pub mod crypt;
pub mod groups;
pub mod users;

/// Logs `login` in on the request's database, from `addr`, with `password` (Odoo's
/// `res.users._login` under `_assert_can_auth`): the user's id, or `AccessDenied` (wrong
/// credentials, or the address on cooldown).
pub fn login(
    cr: &mut inphms_sdk::Cursor,
    login: &str,
    password: &str,
    addr: &str,
) -> inphms_sdk::Result<i64> {
    let settings = cooldown::Settings::read(cr)?;
    let db = cr.dbname().to_owned();
    cooldown::assert_can_auth(settings, &db, addr, login, || {
        users::check_password(cr, login, password, addr)
    })
}
