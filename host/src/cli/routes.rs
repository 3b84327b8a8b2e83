//! `inphms-host routes [-d DB]`: the effective route table (Odoo's `ir.http.routing_map`)
//! of the server-wide addons, or of a database's (the server-wide addons and those
//! installed there): path, methods, type, auth, the addon serving it and the addons whose
//! routes it overrides (nearest first); then the `ir.http` hooks, and the routes refused.

use super::command::EarlyOptions;
use crate::config::Config;
use crate::http::ir_http::{Hooks, RouteMap};
use crate::modules::{self, module, LoadedAddon};
use crate::service::server::Host;
use crate::sql_db::dblist as db;
use std::ffi::OsString;
use std::sync::Arc;

super::command::register_command!(
    "routes",
    "Lists the route table (path, methods, type, auth, addon, overrides) and the ir.http hooks; -d DB for a database's.",
    run
);

const USAGE: &str = "usage: inphms-host routes [-d DB] [server options...]";

fn run(mut args: Vec<OsString>, early: &EarlyOptions) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    if let Some(path) = &early.addons_path_arg {
        args.splice(0..0, [OsString::from("--addons-path"), path.clone()]);
    }
    let config = match Config::parse(&args) {
        Ok(c) => Arc::new(c),
        Err(e) => return super::report_config_error(&e),
    };
    if let Err(e) = crate::netsvc::init(&config) {
        return super::report_config_error(&e);
    }
    let names = db::db_names(&config);
    if names.len() > 1 {
        eprintln!("{USAGE}\none database at most (-d DB)");
        return 1;
    }
    let runtime = match super::command_runtime(1) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let host = Host::new(Arc::clone(&config), Some(runtime.handle().clone()));
    let set = module::discover(&modules::addons_paths(&config.addons_path));
    let wide = modules::server_wide_names(&config.server_wide_modules);
    let report = modules::load_addons(&set, &wide, &config.data_dir.join("run"), host.api);
    report.log_refused();
    let server_wide: Vec<Arc<LoadedAddon>> = report.loaded.into_iter().map(Arc::new).collect();
    host.registries
        .setup(Arc::clone(&config), server_wide.clone(), host.api);
    let addons = match names.first() {
        None => server_wide,
        Some(dbname) => match runtime.block_on(host.registries.get(dbname)) {
            Ok(registry) => registry.addons(&server_wide),
            Err(e) => {
                eprintln!("cannot load the registry of {dbname}: {e}");
                return 1;
            }
        },
    };
    print!("{}", table(&addons));
    0
}

/// The route table and hooks of `addons` (in dependency order), as printed.
pub fn table(addons: &[Arc<LoadedAddon>]) -> String {
    let hooks = Hooks::of(addons);
    let has_dispatcher = |t: &str| {
        t == "http"
            || t == "json"
            || addons
                .iter()
                .any(|a| a.items.dispatchers.iter().any(|d| d.routing_type == t))
    };
    let map = RouteMap::build(addons, has_dispatcher, &hooks);
    let name = |i: u32| addons.get(i as usize).map_or("?", |a| a.name.as_str());
    let mut rows: Vec<[String; 6]> = map
        .routes
        .iter()
        .map(|m| {
            [
                m.path.clone(),
                if m.methods.is_empty() {
                    "*".to_owned()
                } else {
                    m.methods.join(",")
                },
                m.route.routing_type.to_string(),
                m.route.auth.to_string(),
                name(m.addon).to_owned(),
                if m.overrides.is_empty() {
                    "-".to_owned()
                } else {
                    m.overrides.join(" < ")
                },
            ]
        })
        .collect();
    rows.sort();
    rows.insert(
        0,
        ["PATH", "METHODS", "TYPE", "AUTH", "ADDON", "OVERRIDES"].map(String::from),
    );
    let mut out = columns(&rows);
    let mut hook_rows = vec![["HOOK", "NAME", "ADDON"].map(String::from)];
    let mut auth: Vec<_> = hooks.auth.iter().collect();
    auth.sort();
    for (method, &(a, _)) in auth {
        hook_rows.push(["auth".into(), method.clone(), name(a).into()]);
    }
    let lists = [
        ("pre_dispatch", &hooks.pre_dispatch),
        ("post_dispatch", &hooks.post_dispatch),
        ("handle_error", &hooks.handle_error),
        ("fallback", &hooks.fallback),
    ];
    for (kind, list) in lists {
        for &(a, id) in list {
            let hook_name = addons
                .get(a as usize)
                .and_then(|addon| addon.items.hooks.iter().find(|h| h.id == id))
                .map_or_else(String::new, |h| h.name.to_string());
            hook_rows.push([kind.into(), hook_name, name(a).into()]);
        }
    }
    if hook_rows.len() > 1 {
        out.push('\n');
        out.push_str(&columns(&hook_rows));
    }
    for e in &map.errors {
        out.push_str(&format!("refused: {e}\n"));
    }
    out
}

/// Rows as left-aligned columns two spaces apart, one line each.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
