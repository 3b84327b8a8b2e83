//! The deployment example of `deploy/` (issue 21) is valid, checked by the tools that read
//! it, its paths substituted into a temporary folder: the nginx site by `nginx -t` (inside a
//! minimal `nginx.conf`, with a self-signed certificate made by `openssl`), the systemd units
//! by `systemd-analyze verify` (no warning either: it exits 0 on unknown keys), and the
//! logrotate snippet by a real forced rotation of a running host's log file, whose
//! `postrotate` (SIGUSR1) makes the host write on in the new file. Each check is also shown
//! to fail on a broken copy, so that a tool that accepts anything cannot pass it. The tools
//! are required (`.ci/test-deps` installs nginx and systemd when missing): a missing one
//! fails the test, it is never skipped.

use inphms_tests::paths::{host_bin, repo_root};
use inphms_tests::{http_get, wait_until, TestDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn deploy(rel: &str) -> PathBuf {
    repo_root().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The tool `name`, from PATH or the sbin folders (root's PATH may lack them).
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is needed by this test: run .ci/test-deps"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn show(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `nginx -t` of the site `site` (text) included in a minimal main configuration in `dir`.
fn nginx_check(dir: &Path, site: &str) -> Output {
    let d = dir.display();
    std::fs::write(dir.join("inphms.conf"), site).expect("write the site");
    let main = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n\
         \x20 access_log {d}/access.log;\n\
         \x20 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n\
         \x20 scgi_temp_path {d}/scgi;\n\
         \x20 include {d}/inphms.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
    run(Command::new(tool("nginx"))
        .arg("-t")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf")))
}

#[test]
fn the_nginx_site_passes_nginx_t() {
    let td = TestDir::new();
    let dir = td.join("nginx");
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(Command::new(tool("openssl"))
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=erp.example.com", "-keyout"])
        .arg(dir.join("privkey.pem"))
        .arg("-out")
        .arg(dir.join("fullchain.pem")));
    assert!(out.status.success(), "openssl: {}", show(&out));
    let site = read(&deploy("nginx/inphms.conf"));
    let here = format!("{}/", dir.display());
    let site = site
        .replace("/etc/ssl/inphms/", &here)
        .replace("/var/log/nginx/", &here);
    // Every path of a directive is in the test's folder now (comments aside).
    let directives = site.lines().filter(|l| !l.trim_start().starts_with('#'));
    for line in directives {
        assert!(!line.contains("/etc/") && !line.contains("/var/"), "{line}");
    }
    // What the example promises: the hosts with passive checks, the websocket upgrade,
    // the retries and the forwarded headers proxy mode reads.
    for needle in [
        "max_fails=3 fail_timeout=10s",
        "proxy_set_header Upgrade           $http_upgrade;",
        "proxy_set_header Connection        $connection_upgrade;",
        "proxy_next_upstream error timeout http_502 http_503 http_504;",
        "proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Host  $host;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "location /websocket",
        "/web/health?db_server_status=1",
    ] {
        assert!(
            site.contains(needle),
            "deploy/nginx/inphms.conf lacks {needle}"
        );
    }
    let out = nginx_check(&dir, &site);
    assert!(out.status.success(), "nginx -t: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("test is successful"),
        "{}",
        show(&out)
    );
    // A broken copy is refused (the check can fail).
    let broken = site.replacen("keepalive 32;", "keepalive 32", 1);
    let out = nginx_check(&dir, &broken);
    assert!(
        !out.status.success(),
        "nginx -t accepted a broken site: {}",
        show(&out)
    );
}

/// `systemd-analyze verify` of the units in `dir`: its output (warnings included).
fn systemd_verify(dir: &Path) -> Output {
    run(Command::new(tool("systemd-analyze"))
        .arg("verify")
        .arg(dir.join("inphms.socket"))
        .arg(dir.join("inphms.service")))
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let td = TestDir::new();
    let dir = td.join("systemd");
    std::fs::create_dir_all(&dir).unwrap();
    let socket = read(&deploy("systemd/inphms.socket"));
    let service = read(&deploy("systemd/inphms.service"));
    // The socket the host takes over (LISTEN_FDS), and the port nginx's upstream names.
    assert!(socket.contains("ListenStream=0.0.0.0:8069"), "{socket}");
    assert!(read(&deploy("nginx/inphms.conf")).contains(":8069 max_fails"));
    assert!(service.contains("Requires=inphms.socket"), "{service}");
    // verify requires the executable to exist: the host just built.
    let service = service.replace(
        "/usr/local/bin/inphms-host",
        host_bin().to_str().expect("a UTF-8 path"),
    );
    std::fs::write(dir.join("inphms.socket"), &socket).unwrap();
    std::fs::write(dir.join("inphms.service"), &service).unwrap();
    let out = systemd_verify(&dir);
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}",
        show(&out)
    );
    let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&out.stdout).lines())
        .filter(|l| l.contains("inphms."))
        .map(str::to_owned)
        .collect();
    assert!(complaints.is_empty(), "{}", show(&out));
    // A typo'd key is reported (exit 0, one line naming the unit): the check can fail.
    std::fs::write(
        dir.join("inphms.service"),
        service.replace("Type=simple", "Tpye=simple"),
    )
    .unwrap();
    let out = systemd_verify(&dir);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("inphms.service"),
        "no complaint about a typo'd key: {}",
        show(&out)
    );
}

#[test]
fn the_logrotate_snippet_rotates_a_running_hosts_log_and_sigusr1_reopens_it() {
    let td = TestDir::new();
    let logs = td.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let logfile = logs.join("inphms.log");
    let server = td
        .test_http_server(&["--logfile", logfile.to_str().expect("a UTF-8 path")])
        .start_healthy();
    let port = server.port();
    let logged = |needle: &str| std::fs::read_to_string(&logfile).is_ok_and(|t| t.contains(needle));
    assert_eq!(
        http_get(port, "/web/health?before=rotation", &[]).status,
        200
    );
    assert!(wait_until(Duration::from_secs(10), || logged(
        "before=rotation"
    )));

    // The snippet as installed, for this folder, the test's user (root) and this host's pid.
    let snippet = read(&deploy("logrotate/inphms"));
    let postrotate = "systemctl kill --signal=SIGUSR1 --kill-whom=main inphms.service";
    assert!(snippet.contains(postrotate), "{snippet}");
    let conf = snippet
        .replace("/var/log/inphms/", &format!("{}/", logs.display()))
        .replace("su inphms inphms", "su root root")
        .replace("create 0640 inphms inphms", "create 0640 root root")
        .replace(postrotate, &format!("kill -USR1 {}", server.pid()));
    let conf_path = td.write("logrotate.conf", &conf);
    let out = run(Command::new(tool("logrotate"))
        .arg("-v")
        .arg("-f")
        .arg("-s")
        .arg(td.join("logrotate.state"))
        .arg(&conf_path));
    let text = show(&out);
    assert!(out.status.success(), "logrotate: {text}");
    assert!(!text.contains("error:"), "logrotate: {text}");
    let rotated = logs.join("inphms.log.1");
    assert!(rotated.is_file(), "no {}: {text}", rotated.display());
    // The host writes on, in the new file (reopened at SIGUSR1), not in the rotated one.
    assert_eq!(
        http_get(port, "/web/health?after=rotation", &[]).status,
        200
    );
    assert!(
        wait_until(Duration::from_secs(10), || logged("after=rotation")),
        "the host did not write to the new log file\n{}",
        std::fs::read_to_string(&rotated).unwrap_or_default()
    );
    assert!(!read(&rotated).contains("after=rotation"));
    assert!(read(&rotated).contains("before=rotation"));
    // The same check refuses a broken snippet.
    let broken = td.write("broken.conf", conf.replacen("daily", "dailly", 1));
    let out = run(Command::new(tool("logrotate"))
        .arg("-d")
        .arg("-s")
        .arg(td.join("logrotate.state2"))
        .arg(&broken));
    assert!(show(&out).contains("error:"), "{}", show(&out));
}
