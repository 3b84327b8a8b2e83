//! API keys (Odoo's `res.users.apikeys`), made, listed and revoked with the `users` command.

use super::support::Site;

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
