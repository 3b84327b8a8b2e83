//! PostgreSQL's client programs (`pg_dump`, `psql`, `pg_restore`; Odoo's `find_pg_tool`
//! and `exec_pg_environ`): found in `pg_path` or on `PATH`, run with the connection
//! coordinates of the `db_*` options in their environment, their standard error kept and
//! reported when they fail.

use crate::config::Config;
use crate::sql_db::ConnInfo;
use std::path::PathBuf;
use std::process::Stdio;

/// The most of a program's standard error kept for its error message.
const STDERR_KEPT: usize = 4000;

/// Where the program `name` is: in `pg_path` when set, else the first on `PATH`.
pub fn find(config: &Config, name: &str) -> Result<PathBuf, String> {
    if !config.pg_path.is_empty() {
        let p = PathBuf::from(&config.pg_path).join(name);
        if p.is_file() {
            return Ok(p);
        }
        return Err(format!(
            "{name} not found in pg_path {:?}; expected the folder of PostgreSQL's client programs",
            config.pg_path
        ));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("{name} not found on PATH; install PostgreSQL's client programs or set pg_path")
        })
}

/// Runs the PostgreSQL program `name` with `args`, its standard output discarded; an error
/// gives its exit status and the end of its standard error.
pub async fn run(config: &Config, name: &str, args: &[String]) -> Result<(), String> {
    let exe = find(config, name)?;
    let info = ConnInfo::from_config(config);
    let mut cmd = tokio::process::Command::new(&exe);
    cmd.args(args)
        .env("PGHOST", &info.host)
        .env("PGPORT", info.port.to_string())
        .env("PGUSER", &info.user)
        .env("PGSSLMODE", &info.sslmode)
        .env("PGAPPNAME", &info.application_name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match &info.password {
        Some(p) => cmd.env("PGPASSWORD", p),
        None => cmd.env_remove("PGPASSWORD"),
    };
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    let tail = if stderr.len() > STDERR_KEPT {
        let mut start = stderr.len() - STDERR_KEPT;
        while !stderr.is_char_boundary(start) {
            start += 1;
        }
        &stderr[start..]
    } else {
        stderr
    };
    Err(format!("{name} failed ({}): {tail}", out.status))
}
