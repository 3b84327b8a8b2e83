//! `inphms-host scaffold NAME [DEST]` (Odoo's `odoo/cli/scaffold.py`): writes a new addon
//! crate (manifest, `Cargo.toml` depending on the SDK, `src/lib.rs` with one route and one
//! command) that builds with `cargo build` and loads in the host with no edits.

use super::command::EarlyOptions;
use crate::error::Error;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

super::command::register_command!("scaffold", "Generates an Inphms addon skeleton.", run);

const USAGE: &str = "usage: inphms-host scaffold NAME [DEST]\n\n\
    Writes the addon NAME (snake_cased) as a cargo project in DEST (default: the current \
    folder).";

fn run(args: Vec<OsString>, _early: &EarlyOptions) -> i32 {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return if args.is_empty() { 1 } else { 0 };
    }
    if args.len() > 2 {
        eprintln!("scaffold: too many arguments\n{USAGE}");
        return 1;
    }
    let dest = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("."));
    match scaffold(&args[0], &dest) {
        Ok(dir) => {
            println!(
                "Addon '{}' written to {}",
                dir.file_name().unwrap_or_default().to_string_lossy(),
                dir.display()
            );
            println!(
                "Build it with: cargo build --manifest-path {}",
                dir.join("Cargo.toml").display()
            );
            0
        }
        Err(e) => {
            eprintln!("scaffold: {e}");
            1
        }
    }
}

/// Odoo's `snake`: a space before each capital that follows a non-capital, lower case, then
/// words joined with `_`.
pub fn snake(name: &str) -> String {
    let mut spaced = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if c.is_ascii_uppercase()
            && prev.is_some_and(|p| !p.is_ascii_uppercase() && !p.is_whitespace())
        {
            spaced.push(' ');
        }
        spaced.push(c);
        prev = Some(c);
    }
    spaced
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
}

/// Writes the addon `name` into `dest`; returns its folder.
pub fn scaffold(name: &str, dest: &Path) -> Result<PathBuf, Error> {
    let technical = snake(name);
    let valid = technical
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && technical
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(Error::Invalid {
            value: format!("'{name}' gives the addon name '{technical}'"),
            expected: "letters, digits and _, starting with a letter".to_owned(),
        });
    }
    let dir = dest.join(&technical);
    if dir.exists() {
        return Err(Error::Exists { path: dir });
    }
    // The SDK by version, as a published addon depends on it; with the host's SDK source at
    // hand (`inphms-host sdk-path`), a `[patch]` builds against that source wherever the
    // addon is moved (an absolute path).
    let patch = match sdk_path() {
        Some(p) => format!(
            "\n# The SDK source of the host that scaffolded this addon (`inphms-host sdk-path`);\n\
             # remove this section to build against the published inphms-sdk.\n\
             [patch.crates-io]\ninphms-sdk = {{ path = {} }}\n",
            toml_string(&p.display().to_string())
        ),
        None => String::new(),
    };
    let render = |t: &str| {
        t.replace("{{name}}", &technical)
            .replace("{{title}}", &title(&technical))
            .replace("{{sdk}}", &format!("\"{}\"", crate::release::SDK_VERSION))
            .replace("{{patch}}", &patch)
    };
    let files = [
        ("__manifest__.toml", include_str!("templates/manifest.toml")),
        ("Cargo.toml", include_str!("templates/Cargo.toml")),
        ("src/lib.rs", include_str!("templates/lib.rs")),
        (".gitignore", include_str!("templates/gitignore")),
    ];
    for (path, template) in files {
        let target = dir.join(path);
        let parent = target.parent().expect("files have a parent");
        std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
        std::fs::write(&target, render(template))
            .map_err(|e| Error::io("cannot write", &target, e))?;
    }
    Ok(dir)
}

/// `my_shop` → `My Shop`.
fn title(technical: &str) -> String {
    technical
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` as a TOML basic string (quoted, `\\` and `"` escaped).
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The SDK's source folder, when the host knows it (beside the built-in addons, or the tree
/// the host was built from): what `inphms-host sdk-path` prints, and a scaffolded addon's
/// `[patch.crates-io]` points to.
pub(super) fn sdk_path() -> Option<PathBuf> {
    let beside = crate::modules::builtin_addons_dir().map(|a| a.join("../sdk"));
    let source = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk"));
    [beside, source]
        .into_iter()
        .flatten()
        .find(|p| p.join("Cargo.toml").is_file())
        .map(|p| p.canonicalize().unwrap_or(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_like_odoo() {
        assert_eq!(snake("MyShop"), "my_shop");
        assert_eq!(snake("my shop"), "my_shop");
        assert_eq!(snake("HTTPServer"), "httpserver");
        assert_eq!(snake("sale_stock"), "sale_stock");
        assert_eq!(title("my_shop"), "My Shop");
        assert_eq!(toml_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
    }

    #[test]
    fn refuses_existing_and_invalid() {
        let t = tempfile::tempdir().unwrap();
        scaffold("Shop", t.path()).unwrap();
        assert!(t.path().join("shop/src/lib.rs").is_file());
        assert!(scaffold("Shop", t.path())
            .unwrap_err()
            .to_string()
            .contains("already exists"));
        assert!(scaffold("9lives", t.path()).is_err());
    }
}
