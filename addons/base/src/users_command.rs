//! `inphms-host users -d DB SUBCOMMAND`: the operator's users and API keys, from the
//! command line (Odoo's user form and API-key wizard).
//!
//! ```text
//! users -d DB list                         every user: id, login, name, active, password
//!                                          set, groups
//! users -d DB add LOGIN [--name NAME] [--group XMLID]...
//!                                          a new active user in base.group_user and each
//!                                          --group (with the groups they imply), its
//!                                          password read as for passwd
//! users -d DB passwd LOGIN                 sets the password, read from stdin (one line) or,
//!                                          on a terminal, prompted twice without echo
//! users -d DB apikey LOGIN --name NAME [--expires DAYS]   prints a new API key, once
//! users -d DB apikeys [LOGIN]              the API keys (id, login, name, index, dates)
//! users -d DB revoke ID                    removes the API key ID
//! ```
//!
//! A password is never taken from the command line (it would show in `ps` and the shell's
//! history). The host runs the command in one transaction on `-d`'s database, committed
//! only when it succeeds. The SDK's commands get their arguments as strings: the parsing is
//! done here by hand (no declared options, no generated help; issue 18 adds those).

use base_identity::{apikeys, groups, users};
use inphms_sdk::{command, Cursor, Error, Result};
use std::io::{BufRead, IsTerminal, Read, Write};

const USAGE: &str = "usage: inphms-host users -d DB (list | add LOGIN [--name NAME] [--group XMLID]... | passwd LOGIN | apikey LOGIN --name NAME [--expires DAYS] | apikeys [LOGIN] | revoke ID)";

/// The most bytes of a password read (Odoo's login form takes 4096 characters).
const MAX_PASSWORD: usize = 4096;

/// The arguments, parsed.
#[derive(Debug, Default)]
struct Args {
    db: Option<String>,
    positional: Vec<String>,
    name: Option<String>,
    expires: Option<String>,
    groups: Vec<String>,
}

fn parse(args: &[String]) -> std::result::Result<Args, String> {
    // Options the host reads (connection, configuration), skipped here with their value.
    const HOST_OPTIONS: &[&str] = &[
        "-c",
        "--config",
        "--db_host",
        "--db_port",
        "--db_user",
        "--db_password",
        "--db_sslmode",
        "--log-level",
        "--logfile",
    ];
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("option '{flag}' needs a value"))
        };
        match a.as_str() {
            "-d" | "--database" => out.db = Some(value(a)?),
            "--name" => out.name = Some(value(a)?),
            "--expires" => out.expires = Some(value(a)?),
            "--group" => out.groups.push(value(a)?),
            "-h" | "--help" => return Err(String::new()),
            f if HOST_OPTIONS.contains(&f) => {
                value(f)?;
            }
            f if f.starts_with("--database=") => out.db = Some(f["--database=".len()..].into()),
            f if f.starts_with("--name=") => out.name = Some(f["--name=".len()..].into()),
            f if f.starts_with("--expires=") => out.expires = Some(f["--expires=".len()..].into()),
            f if f.starts_with("--group=") => out.groups.push(f["--group=".len()..].into()),
            f if f.starts_with("-d") && !f.starts_with("--") => out.db = Some(f[2..].into()),
            f if f.starts_with("--") && f.contains('=') => {}
            f if f.starts_with('-') => return Err(format!("unknown option '{f}'")),
            p => out.positional.push(p.to_owned()),
        }
    }
    Ok(out)
}

/// The `users` command.
#[command(
    name = "users",
    help = "Lists and adds the users of a database (-d DB), sets passwords (from stdin), makes and revokes API keys."
)]
fn users_command(args: &[String]) -> i32 {
    let parsed = match parse(args) {
        Ok(p) => p,
        Err(reason) if reason.is_empty() => {
            println!("{USAGE}");
            return 0;
        }
        Err(reason) => {
            eprintln!("{reason}\n{USAGE}");
            return 2;
        }
    };
    let Some(db) = parsed.db.clone() else {
        eprintln!("a database is needed (-d DB)\n{USAGE}");
        return 2;
    };
    let mut cr = match Cursor::command(&db) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("no database: {e}");
            return 1;
        }
    };
    match run(&mut cr, &parsed) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("users: {}", e.message());
            1
        }
    }
}

fn run(cr: &mut Cursor, args: &Args) -> Result<()> {
    let pos: Vec<&str> = args.positional.iter().map(String::as_str).collect();
    match pos.as_slice() {
        ["list"] => {
            println!(
                "{:>5}  {:<24} {:<24} {:<7} {:<8} groups",
                "id", "login", "name", "active", "password"
            );
            let with_groups = groups::tables_exist(cr)?;
            for u in users::list(cr)? {
                let member_of = if with_groups {
                    groups::of_user(cr, u.id)?.join(",")
                } else {
                    "-".to_owned()
                };
                println!(
                    "{:>5}  {:<24} {:<24} {:<7} {:<8} {member_of}",
                    u.id,
                    u.login,
                    u.name,
                    u.active,
                    if u.has_password { "set" } else { "-" }
                );
            }
            Ok(())
        }
        ["add", login] => {
            let uid = users::add(cr, login, args.name.as_deref())?;
            for xmlid in
                std::iter::once(groups::GROUP_USER).chain(args.groups.iter().map(String::as_str))
            {
                groups::add_user(cr, uid, xmlid)?;
            }
            let password = read_password(&format!("Password for {login}: "))?;
            users::set_password(cr, uid, &password)?;
            println!(
                "user {login} added (id {uid}; groups {})",
                groups::of_user(cr, uid)?.join(", ")
            );
            Ok(())
        }
        ["passwd", login] => {
            let user = find(cr, login)?;
            let password = read_password(&format!("New password for {login}: "))?;
            users::set_password(cr, user.id, &password)?;
            tracing::info!(target: "inphms.addons.base.models.res_users", "Password change for {login:?} (#{}) from the command line on {}", user.id, cr.dbname());
            println!("password of {login} changed: its sessions end at their next request");
            Ok(())
        }
        ["apikey", login] => {
            let user = find(cr, login)?;
            let name = args
                .name
                .as_deref()
                .ok_or_else(|| Error::user("an API key needs a name (--name NAME)"))?;
            let days = match args.expires.as_deref() {
                None => None,
                Some(d) => Some(d.trim().parse::<f64>().map_err(|_| {
                    Error::user(format!("--expires {d:?}: a number of days was expected"))
                })?),
            };
            let key = apikeys::generate(cr, user.id, name, days)?;
            println!("{key}");
            Ok(())
        }
        ["apikeys"] | ["apikeys", _] => {
            let keys = apikeys::list(cr, pos.get(1).copied())?;
            println!(
                "{:>5}  {:<20} {:<20} {:<8}  {:<19}  expires",
                "id", "login", "name", "index", "created"
            );
            for k in keys {
                println!(
                    "{:>5}  {:<20} {:<20} {:<8}  {:<19}  {}",
                    k.id,
                    k.login,
                    k.name,
                    k.index,
                    k.create_date,
                    if k.expiration_date.is_empty() {
                        "never"
                    } else {
                        &k.expiration_date
                    }
                );
            }
            Ok(())
        }
        ["revoke", id] => {
            let id: i64 = id
                .parse()
                .map_err(|_| Error::user(format!("revoke {id:?}: an API key id was expected")))?;
            if !apikeys::revoke(cr, id)? {
                return Err(Error::user(format!("no API key with id {id}")));
            }
            println!("API key {id} revoked");
            Ok(())
        }
        _ => Err(Error::user(USAGE)),
    }
}

fn find(cr: &mut Cursor, login: &str) -> Result<users::User> {
    users::by_login(cr, login)?
        .ok_or_else(|| Error::user(format!("no user with login {login:?} in {}", cr.dbname())))
}

/// A password from stdin: on a terminal, prompted twice with the echo off; else the first
/// line. Never empty, at most [`MAX_PASSWORD`] bytes.
fn read_password(prompt: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = prompt_hidden(prompt)?;
        let second = prompt_hidden("Again: ")?;
        if first != second {
            return Err(Error::user("the two passwords differ"));
        }
        return check_password_text(first);
    }
    let mut line = Vec::new();
    stdin
        .lock()
        .take(MAX_PASSWORD as u64 + 2)
        .read_until(b'\n', &mut line)
        .map_err(|e| Error::user(format!("cannot read the password from stdin: {e}")))?;
    if line.len() > MAX_PASSWORD + 1 {
        return Err(Error::user(format!(
            "a password is at most {MAX_PASSWORD} bytes"
        )));
    }
    let text = String::from_utf8(line)
        .map_err(|_| Error::user("the password read from stdin is not UTF-8"))?;
    check_password_text(text.trim_end_matches(['\n', '\r']).to_owned())
}

fn check_password_text(password: String) -> Result<String> {
    if password.trim().is_empty() {
        return Err(Error::user(
            "Setting empty passwords is not allowed for security reasons!",
        ));
    }
    Ok(password)
}

/// Reads a line from the terminal with the echo off (`stty -echo`, restored after).
fn prompt_hidden(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let hidden = stty("-echo");
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_PASSWORD as u64 + 2)
        .read_line(&mut line);
    if hidden {
        stty("echo");
    }
    eprintln!();
    read.map_err(|e| Error::user(format!("cannot read the password: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
