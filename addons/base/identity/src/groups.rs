//! Groups (Odoo's `res.groups`, minimal): a user's membership by external id (Odoo's
//! `res.users.has_group`), the admin and system checks of `session_info` (Odoo's
//! `_is_admin` / `_is_system`), and adding a user to a group with the groups it implies.
//! The tables (`res_groups`, `res_groups_users_rel`, `res_groups_implied_rel`,
//! `ir_model_data`) are made by `base`'s data file, at install and at `-u base`.

use inphms_sdk::{params, Cursor, Error, Result};

/// Odoo's `SUPERUSER_ID`: `__system__`, in every group.
pub const SUPERUSER_ID: i64 = 1;

/// The external id of the system group (Odoo's Settings).
pub const GROUP_SYSTEM: &str = "base.group_system";
/// The external id of the access-rights managers (Odoo's `_is_admin`).
pub const GROUP_ERP_MANAGER: &str = "base.group_erp_manager";
/// The external id of internal users, the group every user made by the `users` command
/// gets (Odoo's default groups of a new internal user).
pub const GROUP_USER: &str = "base.group_user";

const TARGET: &str = "inphms.addons.base.models.res_users";

/// The databases already warned of missing groups' tables: once per database and process,
/// so that clients calling `session_info` cannot flood the log.
static WARNED_NO_GROUPS: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// `module.name` split; a user error naming it when it is not an external id.
fn split_xmlid(xmlid: &str) -> Result<(&str, &str)> {
    match xmlid.split_once('.') {
        Some((module, name)) if !module.is_empty() && !name.is_empty() => Ok((module, name)),
        _ => Err(Error::user(format!(
            "{xmlid:?} is not an external id (module.name, e.g. base.group_system)"
        ))),
    }
}

/// Whether the groups' tables exist: a database made before them has them only after
/// `-u base`.
pub fn tables_exist(cr: &mut Cursor) -> Result<bool> {
    let rows = cr.execute(
        "SELECT to_regclass('res_groups_users_rel') IS NOT NULL AND to_regclass('ir_model_data') IS NOT NULL AS ok",
        &[],
    )?;
    Ok(rows
        .first()
        .map(|r| r.get::<bool>("ok"))
        .transpose()?
        .unwrap_or(false))
}

/// Whether user `uid` is in the group of external id `xmlid` (Odoo's `has_group`).
pub fn has_group(cr: &mut Cursor, uid: i64, xmlid: &str) -> Result<bool> {
    let (module, name) = split_xmlid(xmlid)?;
    let rows = cr.execute(
        "SELECT EXISTS (SELECT 1 FROM res_groups_users_rel r JOIN ir_model_data d \
         ON d.model = 'res.groups' AND d.res_id = r.gid \
         WHERE r.uid = $1 AND d.module = $2 AND d.name = $3) AS member",
        params![uid, module, name],
    )?;
    rows.first()
        .map(|r| r.get::<bool>("member"))
        .transpose()
        .map(|m| m.unwrap_or(false))
}

/// The `is_admin` and `is_system` of `session_info` (Odoo's `_is_admin`: the superuser or
/// a member of `base.group_erp_manager`; `_is_system`: a member of `base.group_system`,
/// here the superuser too). On a database whose groups' tables are not made yet (`-u base`
/// not run since they came), the superuser and `admin` (id 2) are both, as before groups,
/// with a warning.
pub fn admin_and_system(cr: &mut Cursor, uid: i64) -> Result<(bool, bool)> {
    if !tables_exist(cr)? {
        let first = WARNED_NO_GROUPS
            .lock()
            .map(|mut warned| warned.insert(cr.dbname().to_owned()))
            .unwrap_or(false);
        if first {
            tracing::warn!(target: TARGET, "{} has no groups yet: run `inphms-host -d {} -u base` (the superuser and admin count as system users until then)", cr.dbname(), cr.dbname());
        }
        let system = uid == SUPERUSER_ID || uid == 2;
        return Ok((system, system));
    }
    let superuser = uid == SUPERUSER_ID;
    let is_admin = superuser || has_group(cr, uid, GROUP_ERP_MANAGER)?;
    let is_system = superuser || has_group(cr, uid, GROUP_SYSTEM)?;
    Ok((is_admin, is_system))
}

/// Adds user `uid` to the group of external id `xmlid` and to every group it implies
/// (Odoo's implied groups, kept closed). A group that does not exist is a user error
/// naming it.
pub fn add_user(cr: &mut Cursor, uid: i64, xmlid: &str) -> Result<()> {
    let (module, name) = split_xmlid(xmlid)?;
    let rows = cr.execute(
        "SELECT res_id FROM ir_model_data WHERE model = 'res.groups' AND module = $1 AND name = $2",
        params![module, name],
    )?;
    let gid: i64 = rows
        .first()
        .ok_or_else(|| Error::user(format!("no group {xmlid:?} in {}", cr.dbname())))?
        .get("res_id")?;
    cr.execute(
        "WITH RECURSIVE closure (gid) AS (SELECT $1::integer \
         UNION SELECT i.hid FROM res_groups_implied_rel i JOIN closure c ON i.gid = c.gid) \
         INSERT INTO res_groups_users_rel (gid, uid) SELECT gid, $2::integer FROM closure \
         ON CONFLICT DO NOTHING",
        params![gid, uid],
    )?;
    Ok(())
}

/// The external ids of the groups user `uid` is in, sorted.
pub fn of_user(cr: &mut Cursor, uid: i64) -> Result<Vec<String>> {
    let rows = cr.execute(
        "SELECT d.module || '.' || d.name AS xmlid FROM res_groups_users_rel r \
         JOIN ir_model_data d ON d.model = 'res.groups' AND d.res_id = r.gid \
         WHERE r.uid = $1 ORDER BY 1",
        params![uid],
    )?;
    rows.iter().map(|r| r.get("xmlid")).collect()
}
