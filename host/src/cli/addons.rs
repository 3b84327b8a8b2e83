//! `inphms-host addons`: lists the addons found on the addons paths in dependency order, with
//! their version, folder, dependencies and library state (built, missing, stale,
//! incompatible), then the broken ones with the reason.

use super::command::EarlyOptions;
use crate::modules::library::{self, LibraryState};
use crate::modules::{self, graph, loader, module};
use std::ffi::OsString;

super::command::register_command!(
    "addons",
    "Lists the addons found on the addons paths and the state of their libraries.",
    run
);

fn run(args: Vec<OsString>, early: &EarlyOptions) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: inphms-host [--addons-path=PATHS] addons");
        return 0;
    }
    let paths = modules::addons_paths(&early.addons_path);
    let set = module::discover(&paths);
    let (order, errors) = graph::order_all(&set);
    let run_dir = std::env::temp_dir().join(format!("inphms-run-{}", nix::unistd::getuid()));
    let mut rows = vec![[
        "NAME".to_owned(),
        "VERSION".into(),
        "LIBRARY".into(),
        "DEPENDS".into(),
        "PATH".into(),
    ]];
    for name in &order {
        let addon = set.get(name).expect("ordered addons exist");
        let Ok(manifest) = &addon.manifest else {
            continue;
        };
        let state = match library::locate(name, &addon.dir, manifest) {
            LibraryState::Missing(_) => "missing".to_owned(),
            found => match loader::load(name, found.path().expect("found"), &run_dir) {
                Ok(_) => found.label().to_owned(),
                Err(e) if e.incompatible => "incompatible".to_owned(),
                Err(_) => "unloadable".to_owned(),
            },
        };
        let depends = if manifest.depends.is_empty() {
            "-".to_owned()
        } else {
            manifest.depends.join(",")
        };
        rows.push([
            name.clone(),
            manifest.version.clone(),
            state,
            depends,
            addon.dir.display().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 4 {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    for e in &errors {
        println!("broken: {}: {e}", e.addon);
    }
    0
}
