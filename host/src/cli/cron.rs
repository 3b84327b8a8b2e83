//! `inphms-host cron -d DB [--run JOB] [OPTIONS]`: lists the cron jobs of a database with
//! their last start, end and outcome and their next due time; `--run JOB` (an id or a name)
//! runs one job now, taking the job's lock without waiting ("already running" when a worker
//! runs it), as Odoo's "Run Manually".

use super::command::EarlyOptions;
use crate::config::Config;
use crate::modules::{self, module};
use crate::service::cron;
use crate::service::server::Host;
use crate::sql_db::dblist as db;
use std::ffi::OsString;
use std::sync::Arc;

super::command::register_command!(
    "cron",
    "Lists the cron jobs of a database (-d DB) and their last and next runs; --run JOB runs one now.",
    run
);

const USAGE: &str = "usage: inphms-host cron -d DB [--run JOB] [server options...]";

fn run(mut args: Vec<OsString>, early: &EarlyOptions) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    let mut job: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        if let Some(v) = a.strip_prefix("--run=") {
            job = Some(v.to_owned());
            args.remove(i);
        } else if a == "--run" && i + 1 < args.len() {
            job = Some(args[i + 1].to_string_lossy().into_owned());
            args.drain(i..i + 2);
        } else {
            i += 1;
        }
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
    let [dbname] = names.as_slice() else {
        eprintln!("{USAGE}\none database is needed (-d DB)");
        return 1;
    };
    let runtime = match super::command_runtime(2) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let host = Host::new(Arc::clone(&config), Some(runtime.handle().clone()));
    runtime.block_on(async {
        match job {
            None => list(&host, dbname).await,
            Some(job) => run_job(&host, dbname, &job).await,
        }
    })
}

async fn list(host: &Host, dbname: &str) -> i32 {
    let jobs = match cron::list_jobs(&host.databases, dbname).await {
        Ok(j) => j,
        Err(e) => {
            eprintln!("cannot list the cron jobs of {dbname}: {e}");
            return 1;
        }
    };
    let fmt = |t: Option<chrono::NaiveDateTime>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into())
    };
    let mut rows = vec![[
        "ID",
        "NAME",
        "HANDLER",
        "ACTIVE",
        "INTERVAL",
        "LAST START",
        "LAST END",
        "OUTCOME",
        "NEXT DUE",
        "FAILURES",
    ]
    .map(String::from)];
    for j in jobs {
        rows.push([
            j.id.to_string(),
            j.name,
            j.handler,
            if j.active { "yes" } else { "no" }.into(),
            j.interval,
            fmt(j.last_start),
            fmt(j.last_end),
            j.last_outcome.unwrap_or_else(|| "-".into()),
            if j.active {
                fmt(j.next_due)
            } else {
                "-".into()
            },
            j.failure_count.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..10)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    0
}

async fn run_job(host: &Host, dbname: &str, job: &str) -> i32 {
    let config = &host.config;
    let paths = modules::addons_paths(&config.addons_path);
    let set = module::discover(&paths);
    let names = modules::server_wide_names(&config.server_wide_modules);
    let report = modules::load_addons(&set, &names, &config.data_dir.join("run"), host.api);
    host.registries.setup(
        Arc::clone(config),
        report.loaded.into_iter().map(Arc::new).collect(),
        host.api,
    );
    match cron::run_manually(&host.cron, dbname, job).await {
        Ok(cron::RunOutcome::Done) => {
            println!("job {job} done");
            0
        }
        Ok(cron::RunOutcome::Failed(m)) => {
            eprintln!("job {job} failed: {m}");
            1
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
