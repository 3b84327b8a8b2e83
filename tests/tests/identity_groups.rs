//! Groups (issue 19's leftovers): `base` makes Odoo's `res_groups`, `res_groups_users_rel`
//! and `res_groups_implied_rel` with the external ids `base.group_user`,
//! `base.group_erp_manager` and `base.group_system` in `ir_model_data`; `session_info`'s
//! `is_admin` / `is_system` follow the user's groups (Odoo's `_is_admin` / `_is_system`),
//! `users add --group XMLID` puts a user in a group and the groups it implies, and a
//! database made before groups gets them at `-u base`. Real binary, real PostgreSQL.

#[path = "identity/support.rs"]
#[allow(dead_code)]
mod support;

use inphms_tests::pg;
use std::time::Duration;
use support::Site;

fn flags(v: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    (
        v["result"]["is_admin"].clone(),
        v["result"]["is_system"].clone(),
    )
}

#[test]
fn session_info_follows_the_users_groups() {
    let site = Site::start("idgroups", &[]);
    let db = site.db.name.clone();

    // The groups and their external ids, as Odoo records them.
    assert_eq!(
        site.db.sql(
            "SELECT string_agg(d.module || '.' || d.name || '=' || (g.name ->> 'en_US'), ',' ORDER BY d.name) \
             FROM ir_model_data d JOIN res_groups g ON g.id = d.res_id WHERE d.model = 'res.groups'"
        ),
        "base.group_erp_manager=Access Rights,base.group_system=Settings,base.group_user=Internal User"
    );
    let groups_of = |login: &str| {
        site.db.sql(&format!(
            "SELECT coalesce(string_agg(d.name, ',' ORDER BY d.name), '') FROM res_groups_users_rel r \
             JOIN res_users u ON u.id = r.uid \
             JOIN ir_model_data d ON d.model = 'res.groups' AND d.res_id = r.gid WHERE u.login = '{login}'"
        ))
    };
    assert_eq!(
        groups_of("admin"),
        "group_erp_manager,group_system,group_user"
    );
    assert_eq!(
        groups_of("__system__"),
        "group_erp_manager,group_system,group_user"
    );
    assert_eq!(groups_of("public"), "");

    // admin: both true.
    let mut c = site.client("10.7.0.1");
    let v = c.authenticate(&db, "admin", "admin-pw");
    assert_eq!(flags(&v), (true.into(), true.into()), "{v}");

    // A plain user added by the command: an internal user, neither admin nor system.
    let out = site.users(&["add", "plain"], Some("plain-pw"));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("groups base.group_user"), "{out}");
    assert_eq!(groups_of("plain"), "group_user");
    let mut c = site.client("10.7.0.2");
    let v = c.authenticate(&db, "plain", "plain-pw");
    assert_eq!(v["result"]["username"], "plain", "{v}");
    assert_eq!(flags(&v), (false.into(), false.into()), "{v}");
    let v = c.rpc("/web/session/get_session_info", serde_json::json!({}));
    assert_eq!(flags(&v), (false.into(), false.into()), "{v}");

    // --group: the group and the groups it implies.
    let out = site.users(
        &["add", "manager", "--group", "base.group_erp_manager"],
        Some("manager-pw"),
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(groups_of("manager"), "group_erp_manager,group_user");
    let v = site
        .client("10.7.0.3")
        .authenticate(&db, "manager", "manager-pw");
    assert_eq!(flags(&v), (true.into(), false.into()), "{v}");
    let out = site.users(
        &["add", "boss", "--group=base.group_system"],
        Some("boss-pw"),
    );
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        groups_of("boss"),
        "group_erp_manager,group_system,group_user"
    );
    let v = site.client("10.7.0.4").authenticate(&db, "boss", "boss-pw");
    assert_eq!(flags(&v), (true.into(), true.into()), "{v}");

    // The list shows the groups.
    let out = site.users(&["list"], None);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("plain") && l.ends_with("base.group_user")),
        "{out}"
    );

    // An unknown group, or a value that is no external id: a clear error, no user left.
    for (bad, message) in [
        ("base.group_nope", "no group \"base.group_nope\""),
        ("group_system", "is not an external id"),
    ] {
        let out = site.users(&["add", "ghost", "--group", bad], Some("ghost-pw"));
        assert!(
            out.code == Some(1) && out.stderr.contains(message),
            "{bad}: {out}"
        );
        assert_eq!(
            site.db
                .sql("SELECT count(*) FROM res_users WHERE login = 'ghost'"),
            "0"
        );
    }
    let out = site.users(&["add", "ghost", "--group"], None);
    assert!(
        out.code == Some(2) && out.stderr.contains("option '--group' needs a value"),
        "{out}"
    );
}

#[test]
fn a_database_made_before_groups_gets_them_at_upgrade() {
    let site = Site::start("idgroupsup", &[]);
    let db = site.db.name.clone();
    let out = site.users(&["add", "plain"], Some("plain-pw"));
    assert_eq!(out.code, Some(0), "{out}");
    // As a database made before groups: none of their tables.
    site.db
        .sql("DROP TABLE res_groups_users_rel, res_groups_implied_rel, res_groups, ir_model_data");
    // Until upgraded: the superuser and admin are the system users (as before groups),
    // with a warning naming the fix; another user is not.
    let v = site
        .client("10.8.0.1")
        .authenticate(&db, "admin", "admin-pw");
    assert_eq!(flags(&v), (true.into(), true.into()), "{v}");
    let v = site
        .client("10.8.0.2")
        .authenticate(&db, "plain", "plain-pw");
    assert_eq!(flags(&v), (false.into(), false.into()), "{v}");
    assert!(
        site.server.wait_for_log(
            &format!("{db} has no groups yet: run `inphms-host -d {db} -u base`"),
            Duration::from_secs(10)
        ),
        "{}",
        site.server.stderr()
    );
    // `-u base` makes them, admin in its groups; the user made before is in none, so
    // neither admin nor system.
    let mut args: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    args.extend(pg::server_args());
    args.extend(["-d", &db, "-u", "base"].map(String::from));
    let out = site.td.cmd(args).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        site.db.sql(
            "SELECT count(*) FROM res_groups_users_rel r JOIN ir_model_data d ON d.res_id = r.gid \
             AND d.model = 'res.groups' WHERE r.uid = 2"
        ),
        "3"
    );
    let v = site
        .client("10.8.0.3")
        .authenticate(&db, "admin", "admin-pw");
    assert_eq!(flags(&v), (true.into(), true.into()), "{v}");
    let v = site
        .client("10.8.0.4")
        .authenticate(&db, "plain", "plain-pw");
    assert_eq!(flags(&v), (false.into(), false.into()), "{v}");
    // Upgrading again changes nothing (the data file is re-runnable).
    let before = site.db.sql(
        "SELECT count(*) || '/' || (SELECT count(*) FROM res_groups_users_rel) FROM res_groups",
    );
    let mut args: Vec<String> = vec!["server".into(), "--stop-after-init".into()];
    args.extend(pg::server_args());
    args.extend(["-d", &db, "-u", "base"].map(String::from));
    let out = site.td.cmd(args).timeout(Duration::from_secs(120)).run();
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        site.db.sql(
            "SELECT count(*) || '/' || (SELECT count(*) FROM res_groups_users_rel) FROM res_groups"
        ),
        before
    );
}
