//! Host state has an owner (ARCHITECTURE.md, "Architecture Invariant: host state"): the
//! composition root (`service::server`) builds it and hands it down, so that two hosts in one
//! process would not share it. This test reads every file of `host/src` and fails on a
//! `static` holding mutable state (a `Mutex`, `RwLock`, `OnceLock`, `LazyLock`, `Once`,
//! `Atomic*`, `Cell`/`RefCell` in a `thread_local!`, a `Notify`, or any `static mut`) outside
//! the composition root, unless the line, or the line above it, justifies it with a comment
//! starting `// global:` (logging, signal plumbing, a cache of constants, a counter only for
//! unique names, the thread-local context of the running invocation...). It names the file and
//! the line of each.
//!
//! Test modules (from a file's `#[cfg(test)] mod` on) are not checked. The checker's own unit
//! tests (`reports_an_undocumented_static`...) show that an undocumented one is reported with
//! its file and line, and a documented or constant one is not.

mod tidy;

use std::path::Path;

/// The composition root: the files that own host state and may hold it in statics.
const ROOT: &[&str] = &["service/server.rs", "lib.rs", "main.rs"];

/// What makes a static's type mutable state.
const MUTABLE: &[&str] = &[
    "Mutex", "RwLock", "OnceLock", "OnceCell", "LazyLock", "Lazy<", "Once", "Atomic", "Cell<",
    "Notify",
];

/// A static of mutable state with no `// global:` justification.
#[derive(Debug, PartialEq, Eq)]
struct Undocumented {
    file: String,
    line: usize,
    name: String,
}

impl std::fmt::Display for Undocumented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host/src/{}:{}: `static {}` holds mutable state outside the composition root \
             (service::server): move it into the state the server owns and hands down, or \
             justify it with a `// global: <why>` comment on the line or the line above",
            self.file, self.line, self.name
        )
    }
}

/// The statics of `src` (a file at `file`, relative to `host/src`) holding mutable state
/// without a `// global:` comment on their line or the line above.
fn check(file: &str, src: &str) -> Vec<Undocumented> {
    if ROOT.contains(&file) {
        return Vec::new();
    }
    let lines: Vec<&str> = src.lines().collect();
    let mut out = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_start();
        let next = lines.get(i + 1).map_or("", |l| l.trim_start());
        if line.starts_with("#[cfg(test)]") && (next.starts_with("mod ") || next.contains(" mod "))
        {
            break;
        }
        let Some(name) = static_name(line) else {
            continue;
        };
        // The declaration up to its `=` or `;` (its type may span lines).
        let mut decl = String::new();
        for l in &lines[i..] {
            let code = l.split("//").next().unwrap_or("");
            decl.push_str(code);
            decl.push(' ');
            if code.contains('=') || code.contains(';') {
                break;
            }
        }
        let ty = decl
            .split_once(':')
            .map(|(_, t)| t.split('=').next().unwrap_or(t))
            .unwrap_or("");
        let mutable = line.contains("static mut ") || MUTABLE.iter().any(|m| ty.contains(m));
        if !mutable {
            continue;
        }
        let justified = |l: &str| l.contains("// global:");
        if justified(raw) || (i > 0 && justified(lines[i - 1])) {
            continue;
        }
        out.push(Undocumented {
            file: file.to_owned(),
            line: i + 1,
            name,
        });
    }
    out
}

/// The name of the static declared on `line` (trimmed), if it declares one.
fn static_name(line: &str) -> Option<String> {
    if line.starts_with("//") {
        return None;
    }
    let mut rest = line;
    if let Some(r) = rest.strip_prefix("pub") {
        rest = r.trim_start();
        if rest.starts_with('(') {
            rest = rest.split_once(')')?.1.trim_start();
        }
    }
    let rest = rest.strip_prefix("static ")?.trim_start();
    let rest = rest.strip_prefix("mut ").unwrap_or(rest).trim_start();
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && rest[name.len()..].trim_start().starts_with(':')).then_some(name)
}

#[test]
fn host_state_lives_in_the_composition_root() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    tidy::rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "host/src not found at {}", src.display());
    let mut found = Vec::new();
    for path in &files {
        let rel = path
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(path).expect("readable source");
        found.extend(check(&rel, &text));
    }
    let report: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
}

#[test]
fn reports_an_undocumented_static() {
    let src = "//! A module.\nuse std::sync::Mutex;\n\n/// The table.\nstatic TABLE: Mutex<Vec<u8>> = Mutex::new(Vec::new());\n";
    let found = check("http/x.rs", src);
    assert_eq!(
        found,
        vec![Undocumented {
            file: "http/x.rs".into(),
            line: 5,
            name: "TABLE".into()
        }]
    );
    assert!(found[0]
        .to_string()
        .starts_with("host/src/http/x.rs:5: `static TABLE`"));
}

#[test]
fn reports_every_kind_of_mutable_static() {
    for decl in [
        "static mut N: u32 = 0;",
        "pub static A: AtomicU64 = AtomicU64::new(0);",
        "pub(crate) static L: std::sync::LazyLock<Mutex<u8>> =\n    LazyLock::new(Default::default);",
        "static O: OnceLock<Arc<Config>> = OnceLock::new();",
        "static R: RwLock<String> = RwLock::new(String::new());",
        "thread_local! {\n    static C: Cell<Option<u64>> = const { Cell::new(None) };\n}",
        "static I: Once = Once::new();",
        "static N:\n    Notify = Notify::const_new();",
    ] {
        assert_eq!(check("sql_db/x.rs", decl).len(), 1, "{decl}");
    }
}

#[test]
fn accepts_documented_constant_root_and_test_statics() {
    let documented = "// global: logging is process-wide (one subscriber per process)\nstatic LOGGER: LazyLock<Logger> = LazyLock::new(Logger::new);\nstatic PID: LazyLock<u32> = LazyLock::new(std::process::id); // global: a constant of the process\n";
    assert!(check("netsvc/mod.rs", documented).is_empty());
    let constant = "static NAMES: [(&[u8], HeaderName); 1] = [(b\"a\", HeaderName::from_static(\"a\"))];\nconst X: Mutex<u8> = Mutex::new(0);\n// static Y: Mutex<u8>\nlet s = \"static Z: Mutex<u8>\";\n";
    assert!(check("http/response.rs", constant).is_empty());
    let root = "static HOSTS: Mutex<Vec<u8>> = Mutex::new(Vec::new());\n";
    assert!(check("service/server.rs", root).is_empty());
    assert_eq!(check("service/other.rs", root).len(), 1);
    let test =
        "fn f() {}\n#[cfg(test)]\nmod tests {\n    static N: AtomicU32 = AtomicU32::new(0);\n}\n";
    assert!(check("sql_db/mod.rs", test).is_empty());
}
