//! `inphms-host db [server options...] SUBCOMMAND ...` (Odoo 18's `odoo db`): the database
//! manager for the operator, without the master password (whoever runs it can reach
//! PostgreSQL already), through the same core as the `db` service
//! (`service::db_manager`):
//!
//! - `init DB [--with-demo] [--force] [--language LANG] [--username LOGIN] [--password PWD] [--country CODE]`
//! - `dump DB [PATH] [--format zip|dump]` (standard output without `PATH`)
//! - `load DB FILE [--force] [--neutralize]`
//! - `duplicate SOURCE TARGET [--force] [--neutralize]`
//! - `rename SOURCE TARGET [--force]`
//! - `drop DB`
//!
//! `--force` drops an existing target first. Errors name the database and what failed.

use super::command::EarlyOptions;
use crate::config::Config;
use crate::service::db_manager::{dump, Manager};
use crate::service::rpc::fault::RpcFault;
use crate::service::server::Host;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

super::command::register_command!(
    "db",
    "Creates, dumps, loads, duplicates, renames or drops a database (db init|dump|load|duplicate|rename|drop).",
    run
);

const USAGE: &str = "usage: inphms-host db [server options...] SUBCOMMAND ...
  init DB [--with-demo] [--force] [--language LANG] [--username LOGIN] [--password PWD] [--country CODE]
  dump DB [PATH] [--format zip|dump]      (to standard output without PATH)
  load DB FILE [--force] [--neutralize]
  duplicate SOURCE TARGET [--force] [--neutralize]
  rename SOURCE TARGET [--force]
  drop DB";

const SUBCOMMANDS: &[&str] = &["init", "dump", "load", "duplicate", "rename", "drop"];

/// The subcommand's words: positional arguments, flags, and `--name value` options.
#[derive(Debug, Default)]
struct Words {
    positional: Vec<String>,
    flags: Vec<String>,
    values: Vec<(String, String)>,
}

impl Words {
    fn parse(args: &[String], with_value: &[&str], flags: &[&str]) -> Result<Words, String> {
        let mut w = Words::default();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            if let Some((k, v)) = a.split_once('=').filter(|(k, _)| k.starts_with("--")) {
                if !with_value.contains(&k) {
                    return Err(format!("unknown option {k}"));
                }
                w.values.push((k.to_owned(), v.to_owned()));
            } else if with_value.contains(&a.as_str()) {
                let Some(v) = args.get(i + 1) else {
                    return Err(format!("{a} needs a value"));
                };
                w.values.push((a.clone(), v.clone()));
                i += 1;
            } else if flags.contains(&a.as_str()) {
                w.flags.push(a.clone());
            } else if a.starts_with('-') && a != "-" {
                return Err(format!("unknown option {a}"));
            } else {
                w.positional.push(a.clone());
            }
            i += 1;
        }
        Ok(w)
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Exactly `names.len()` positional arguments (`optional` more at most).
    fn positional(&self, names: &[&str], optional: usize) -> Result<&[String], String> {
        let n = self.positional.len();
        if n < names.len() || n > names.len() + optional {
            return Err(format!("expected {}", names.join(" ")));
        }
        Ok(&self.positional)
    }
}

fn run(mut args: Vec<OsString>, early: &EarlyOptions) -> i32 {
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return if args.is_empty() { 1 } else { 0 };
    }
    let Some(at) = args
        .iter()
        .position(|a| SUBCOMMANDS.iter().any(|s| a == *s))
    else {
        eprintln!(
            "{USAGE}\nno subcommand: expected one of {}",
            SUBCOMMANDS.join(", ")
        );
        return 1;
    };
    let sub_args: Vec<String> = args
        .split_off(at)
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
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
    let runtime = match super::command_runtime(2) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let host = Host::new(Arc::clone(&config), Some(runtime.handle().clone()));
    let sub = sub_args[0].clone();
    let result = runtime.block_on(subcommand(&host.db_manager, &sub, &sub_args[1..]));
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("inphms-host db {sub}: {e}");
            1
        }
    }
}

/// The message of a fault, for the terminal.
fn message(f: RpcFault) -> String {
    match f {
        RpcFault::AccessDenied(m) | RpcFault::AccessError(m) | RpcFault::UserError(m) => m,
        RpcFault::Application { message, .. } => message,
    }
}

/// Drops `name` when `force` and it exists.
async fn make_room(m: &Manager, name: &str, force: bool) -> Result<(), String> {
    if force && m.exists(name).await.map_err(message)? {
        m.drop(name).await.map_err(message)?;
    }
    Ok(())
}

async fn subcommand(m: &Manager, sub: &str, args: &[String]) -> Result<(), String> {
    match sub {
        "init" => {
            let w = Words::parse(
                args,
                &["--language", "--username", "--password", "--country"],
                &["--with-demo", "--force"],
            )?;
            let db = &w.positional(&["DB"], 0)?[0];
            make_room(m, db, w.flag("--force")).await?;
            m.create_database(
                db,
                w.flag("--with-demo"),
                Some(w.value("--language").unwrap_or("en_US")),
                w.value("--password").unwrap_or("admin"),
                w.value("--username").unwrap_or("admin"),
                w.value("--country"),
                None,
            )
            .await
            .map_err(message)?;
            println!("database {db} created");
        }
        "dump" => {
            let w = Words::parse(args, &["--format"], &[])?;
            let p = w.positional(&["DB"], 1)?;
            let format =
                dump::Format::parse(w.value("--format").unwrap_or("zip")).map_err(message)?;
            let file = m.dump_to_file(&p[0], format).await.map_err(message)?;
            match p.get(1).filter(|p| *p != "-") {
                Some(path) => {
                    let path = PathBuf::from(path);
                    std::fs::copy(file.path(), &path)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    eprintln!("database {} dumped to {}", p[0], path.display());
                }
                None => {
                    let mut f = std::fs::File::open(file.path()).map_err(|e| e.to_string())?;
                    std::io::copy(&mut f, &mut std::io::stdout().lock())
                        .map_err(|e| format!("cannot write to standard output: {e}"))?;
                }
            }
        }
        "load" => {
            let w = Words::parse(args, &[], &["--force", "--neutralize"])?;
            let p = w.positional(&["DB", "FILE"], 0)?;
            let file = PathBuf::from(&p[1]);
            if !file.is_file() {
                return Err(format!("{}: no such file", file.display()));
            }
            make_room(m, &p[0], w.flag("--force")).await?;
            m.restore_file(&p[0], &file, true).await.map_err(message)?;
            if w.flag("--neutralize") {
                m.neutralize(&p[0]).await.map_err(message)?;
            }
            println!("database {} loaded from {}", p[0], file.display());
        }
        "duplicate" => {
            let w = Words::parse(args, &[], &["--force", "--neutralize"])?;
            let p = w.positional(&["SOURCE", "TARGET"], 0)?;
            make_room(m, &p[1], w.flag("--force")).await?;
            m.duplicate_database(&p[0], &p[1], w.flag("--neutralize"))
                .await
                .map_err(message)?;
            println!("database {} duplicated to {}", p[0], p[1]);
        }
        "rename" => {
            let w = Words::parse(args, &[], &["--force"])?;
            let p = w.positional(&["SOURCE", "TARGET"], 0)?;
            if !m.exists(&p[0]).await.map_err(message)? {
                return Err(format!("database {} does not exist", p[0]));
            }
            make_room(m, &p[1], w.flag("--force")).await?;
            m.rename(&p[0], &p[1]).await.map_err(message)?;
            println!("database {} renamed to {}", p[0], p[1]);
        }
        "drop" => {
            let w = Words::parse(args, &[], &[])?;
            let db = &w.positional(&["DB"], 0)?[0];
            if !m.drop(db).await.map_err(message)? {
                return Err(format!("database {db} does not exist (or is not listed)"));
            }
            println!("database {db} dropped");
        }
        other => return Err(format!("unknown subcommand {other}")),
    }
    Ok(())
}
