//! The login in a real headless browser: Debian's `chromium` and `chromium-driver` driven
//! by Python's `selenium` (`browser_login.py`; `.ci/run` installs them when missing). The
//! browser opens `/web`, is sent to the login form, types the credentials, submits, and
//! lands on `/web`, an `auth = "user"` page showing the user's login.

use super::support::Site;
use std::process::Command;

#[test]
fn a_headless_browser_logs_in_through_the_form() {
    for (what, path) in [
        ("chromium", "/usr/bin/chromium"),
        ("chromium-driver", "/usr/bin/chromedriver"),
    ] {
        assert!(
            std::path::Path::new(path).exists(),
            "{what} is missing ({path}): `apt-get install chromium chromium-driver` (.ci/run does)"
        );
    }
    let site = Site::start("idbrowser", &[]);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/identity/browser_login.py");
    let base = format!("http://127.0.0.1:{}", site.port());
    let out = Command::new("python3")
        .arg(&script)
        .args([&base, "admin", "admin-pw"])
        .output()
        .expect("python3 (with selenium: .ci/run installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser login failed:\n{stdout}\n{}\n--- server ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        site.server.stderr()
    );
    // Back on `/web` (`/web?`: the login page's `redirect` is werkzeug's full path, as Odoo's).
    let expected = [
        format!("logged-in admin at {base}/web"),
        format!("logged-in admin at {base}/web?"),
    ];
    assert!(expected.contains(&stdout.trim().to_owned()), "{stdout}");
    let log = site.server.stderr();
    assert!(
        log.contains(&format!(
            "Login successful for db:{} login:admin",
            site.db.name
        )),
        "{log}"
    );
}
