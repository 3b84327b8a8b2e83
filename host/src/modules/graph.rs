//! Dependency order (Odoo's `odoo/modules/graph.py`): resolves a set of addons and their
//! dependencies into a load order where every addon comes after what it depends on, and
//! explains a missing dependency or a cycle with the manifest that causes it.

use super::module::AddonSet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why a set of addons cannot be ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// The addon the error is about.
    pub addon: String,
    /// The full message (names the manifest file).
    pub message: String,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for GraphError {}

/// Orders `roots` and their dependencies: dependencies first, then by depth, then by name
/// (deterministic, as Odoo's graph). Fails on the first missing addon, broken manifest or
/// cycle found.
pub fn order(set: &AddonSet, roots: &[String]) -> Result<Vec<String>, GraphError> {
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    let mut stack: Vec<String> = Vec::new();
    for root in roots {
        visit(set, root, None, &mut stack, &mut depth)?;
    }
    let mut ordered: Vec<(usize, String)> = depth.into_iter().map(|(n, d)| (d, n)).collect();
    ordered.sort();
    Ok(ordered.into_iter().map(|(_, n)| n).collect())
}

/// Orders each of `roots` with its dependencies, leaving out the roots that cannot be
/// ordered (a broken manifest, a missing dependency, a cycle): returns the order of the
/// others, and each root left out with its error.
pub fn order_each(set: &AddonSet, roots: &[String]) -> (Vec<String>, Vec<(String, GraphError)>) {
    let mut good = Vec::new();
    let mut errors = Vec::new();
    let mut seen = BTreeSet::new();
    for root in roots.iter().filter(|r| seen.insert(r.as_str())) {
        match order(set, std::slice::from_ref(root)) {
            Ok(_) => good.push(root.clone()),
            Err(e) => errors.push((root.clone(), e)),
        }
    }
    // Each of them orders alone, so they order together.
    let ordered = order(set, &good).unwrap_or(good);
    (ordered, errors)
}

/// Orders every addon of `set`: the good ones in dependency order, and the ones that cannot
/// be ordered with their error.
pub fn order_all(set: &AddonSet) -> (Vec<String>, Vec<GraphError>) {
    let all: Vec<String> = set.addons.keys().cloned().collect();
    let (ordered, errors) = order_each(set, &all);
    (ordered, errors.into_iter().map(|(_, e)| e).collect())
}

/// Depth-first visit; returns the addon's depth (0 for no dependency).
fn visit(
    set: &AddonSet,
    name: &str,
    parent: Option<&str>,
    stack: &mut Vec<String>,
    depth: &mut BTreeMap<String, usize>,
) -> Result<usize, GraphError> {
    if let Some(d) = depth.get(name) {
        return Ok(*d);
    }
    let Some(addon) = set.get(name) else {
        let message = match parent.and_then(|p| set.get(p)) {
            Some(p) => format!(
                "{}: depends on '{name}', which is in none of the addons paths {}",
                p.manifest_file().display(),
                set.paths_text()
            ),
            None => format!(
                "addon '{name}' is in none of the addons paths {}",
                set.paths_text()
            ),
        };
        return Err(GraphError {
            addon: parent.unwrap_or(name).to_owned(),
            message,
        });
    };
    if let Some(pos) = stack.iter().position(|s| s == name) {
        let mut cycle: Vec<&str> = stack[pos..].iter().map(String::as_str).collect();
        cycle.push(name);
        return Err(GraphError {
            addon: name.to_owned(),
            message: format!(
                "{}: dependency cycle: {}",
                addon.manifest_file().display(),
                cycle.join(" -> ")
            ),
        });
    }
    let manifest = addon.manifest.as_ref().map_err(|e| GraphError {
        addon: name.to_owned(),
        message: e.to_string(),
    })?;
    if !manifest.installable {
        return Err(GraphError {
            addon: name.to_owned(),
            message: format!(
                "{}: addon '{name}' is not installable",
                addon.manifest_file().display()
            ),
        });
    }
    stack.push(name.to_owned());
    let mut d = 0;
    for dep in &manifest.depends {
        d = d.max(visit(set, dep, Some(name), stack, depth)? + 1);
    }
    stack.pop();
    depth.insert(name.to_owned(), d);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::module::discover;
    use std::fs;

    fn addon(root: &std::path::Path, name: &str, depends: &[&str]) {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        let deps: Vec<String> = depends.iter().map(|d| format!("\"{d}\"")).collect();
        fs::write(
            dir.join("__manifest__.toml"),
            format!(
                "name = \"{name}\"\nlicense = \"MIT\"\ndepends = [{}]\n",
                deps.join(",")
            ),
        )
        .unwrap();
    }

    #[test]
    fn orders_dependencies_first() {
        let t = tempfile::tempdir().unwrap();
        addon(t.path(), "base", &[]);
        addon(t.path(), "web", &["base"]);
        addon(t.path(), "shop", &["web", "base"]);
        addon(t.path(), "aaa", &["base"]);
        let set = discover(&[t.path().to_owned()]);
        let order = order(&set, &["shop".into(), "aaa".into()]).unwrap();
        assert_eq!(order, ["base", "aaa", "web", "shop"]);
    }

    #[test]
    fn missing_and_cycle() {
        let t = tempfile::tempdir().unwrap();
        addon(t.path(), "shop", &["stock"]);
        addon(t.path(), "a", &["b"]);
        addon(t.path(), "b", &["a"]);
        let set = discover(&[t.path().to_owned()]);
        let e = order(&set, &["shop".into()]).unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "{}: depends on 'stock', which is in none of the addons paths ({})",
                t.path().join("shop/__manifest__.toml").display(),
                t.path().display()
            )
        );
        let e = order(&set, &["a".into()]).unwrap_err();
        assert!(
            e.message.ends_with("dependency cycle: a -> b -> a"),
            "{}",
            e.message
        );
        let (good, errors) = order_all(&set);
        assert!(good.is_empty());
        assert_eq!(errors.len(), 3);
    }

    #[test]
    fn order_each_leaves_out_the_roots_that_cannot_be_ordered() {
        let t = tempfile::tempdir().unwrap();
        addon(t.path(), "base", &[]);
        addon(t.path(), "web", &["base"]);
        addon(t.path(), "shop", &["stock"]);
        addon(t.path(), "a", &["b"]);
        addon(t.path(), "b", &["a"]);
        let set = discover(&[t.path().to_owned()]);
        let roots: Vec<String> = ["shop", "base", "a", "web", "ghost", "web"]
            .map(String::from)
            .to_vec();
        let (order, errors) = order_each(&set, &roots);
        assert_eq!(order, ["base", "web"]);
        let left_out: Vec<&str> = errors.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(left_out, ["shop", "a", "ghost"]);
        assert!(errors[0].1.message.contains("depends on 'stock'"));
        assert!(errors[1]
            .1
            .message
            .ends_with("dependency cycle: a -> b -> a"));
        assert!(errors[2].1.message.starts_with("addon 'ghost' is in none"));
    }
}
