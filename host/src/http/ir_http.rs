//! The `ir.http` of a set of addons (Odoo's `ir.http` model, which addons extend): the
//! effective route table, with the overrides between addons ([`RouteMap`], Odoo's
//! `routing_map` built from the controllers of the loaded modules in dependency order), and
//! the hooks the addons declare ([`Hooks`]: auth methods by name, pre/post-dispatch, error
//! handlers, fallbacks).
//!
//! # Overrides
//! Addons come in dependency order. A route of addon `X` at a path (and methods) already
//! served by a route of addon `Y`:
//! * replaces it when `X` depends on `Y`, directly or not (Odoo's controller inheritance);
//!   the replaced route becomes its super (`call_super`), and it takes its place in the
//!   table (its priority);
//! * is refused, with a line naming both, when `X` does not depend on `Y`;
//! * within one addon, both stay and the first declared wins (the table's own rule).
//!
//! A route declared `overrides = "Z"` must find, at its path, a route first declared by `Z`
//! (the start of the chain, or any addon along it), `Z` being a dependency: else it is
//! refused with a line naming the addon, the route and `Z`.
//!
//! A route whose `auth` is not one of the host's (`none`, `public`, `user`, `bearer`) nor
//! an auth method registered by a loaded addon is refused too.

use crate::modules::LoadedAddon;
use inphms_sdk::abi::{EndpointRef, HookKind, RouteDescriptor};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The auth methods the host implements itself.
pub const HOST_AUTH: [&str; 4] = ["none", "public", "user", "bearer"];

/// A hook: the addon's index and the hook's id.
pub type HookRef = (u32, u32);

/// The hooks of a set of addons, each list in the order they run.
#[derive(Debug, Default, Clone)]
pub struct Hooks {
    /// Auth methods by name (a later addon's replaces an earlier one's).
    pub auth: HashMap<String, HookRef>,
    /// Pre-dispatch hooks, in dependency order.
    pub pre_dispatch: Vec<HookRef>,
    /// Post-dispatch hooks, in dependency order.
    pub post_dispatch: Vec<HookRef>,
    /// Error handlers, the most derived addon first.
    pub handle_error: Vec<HookRef>,
    /// Fallbacks, in dependency order.
    pub fallback: Vec<HookRef>,
}

impl Hooks {
    /// The hooks `addons` (in dependency order) declare.
    pub fn of(addons: &[Arc<LoadedAddon>]) -> Hooks {
        let mut hooks = Hooks::default();
        for (i, addon) in addons.iter().enumerate() {
            for h in addon.items.hooks.iter() {
                let r = (i as u32, h.id);
                match h.kind {
                    HookKind::Auth => {
                        if let Some((prev, _)) = hooks.auth.insert(h.name.to_string(), r) {
                            tracing::info!(target: "inphms.http", "addon {} replaces the auth method '{}' of {}", addon.name, h.name, addons[prev as usize].name);
                        }
                    }
                    HookKind::PreDispatch => hooks.pre_dispatch.push(r),
                    HookKind::PostDispatch => hooks.post_dispatch.push(r),
                    HookKind::HandleError => hooks.handle_error.push(r),
                    HookKind::Fallback => hooks.fallback.push(r),
                }
            }
        }
        hooks.handle_error.reverse();
        hooks
    }

    /// Whether a routed request runs any hook besides its auth method.
    pub fn around_dispatch(&self) -> bool {
        !(self.pre_dispatch.is_empty()
            && self.post_dispatch.is_empty()
            && self.handle_error.is_empty())
    }
}

/// One path of a route in the effective table.
#[derive(Debug, Clone)]
pub struct MappedRoute {
    /// The serving addon's index.
    pub addon: u32,
    /// Its descriptor.
    pub route: RouteDescriptor,
    /// The path pattern.
    pub path: String,
    /// The methods declared, upper-cased (empty: any).
    pub methods: Vec<String>,
    /// The route it overrides (`call_super`), if any.
    pub super_endpoint: Option<EndpointRef>,
    /// The addons whose routes it overrides, the nearest first.
    pub overrides: Vec<String>,
}

/// The effective route table of a set of addons, and the refusals building it met.
#[derive(Debug, Default)]
pub struct RouteMap {
    /// The routes, one per path, in priority order.
    pub routes: Vec<MappedRoute>,
    /// One line per route refused (already logged).
    pub errors: Vec<String>,
    /// The super of each overriding route (by `(addon, route id)`), those overridden in
    /// turn included: a chain's every `call_super`.
    pub supers: HashMap<(u32, u32), EndpointRef>,
}

impl RouteMap {
    /// Builds the table of `addons` (in dependency order); `has_dispatcher` says whether a
    /// routing type is served, `hooks` gives the auth methods. Refusals are logged.
    pub fn build(
        addons: &[Arc<LoadedAddon>],
        has_dispatcher: impl Fn(&str) -> bool,
        hooks: &Hooks,
    ) -> RouteMap {
        let ancestors = ancestors(addons);
        let mut map = RouteMap::default();
        // Path (without its trailing slash) → indexes in `map.routes`.
        let mut by_path: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, addon) in addons.iter().enumerate() {
            let name = addon.name.as_str();
            for r in addon.items.routes.iter() {
                let refuse = |map: &mut RouteMap, why: String| {
                    let line = format!("route {} of addon {name}: {why}; left out", r.endpoint);
                    tracing::error!(target: "inphms.http", "{line}");
                    map.errors.push(line);
                };
                if !has_dispatcher(r.routing_type.as_str()) {
                    refuse(
                        &mut map,
                        format!("no dispatcher for type '{}'", r.routing_type),
                    );
                    continue;
                }
                let auth = r.auth.as_str();
                if !HOST_AUTH.contains(&auth) && !hooks.auth.contains_key(auth) {
                    let mut known: Vec<&str> = HOST_AUTH.to_vec();
                    known.extend(hooks.auth.keys().map(String::as_str));
                    refuse(
                        &mut map,
                        format!(
                            "unknown auth method '{auth}' (known: {}; an addon registers one with #[auth_method])",
                            known.join(", ")
                        ),
                    );
                    continue;
                }
                let methods: Vec<String> =
                    r.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
                for path in r.paths.iter() {
                    let key = strip_trailing_slash(path).to_owned();
                    let same: Vec<usize> = by_path
                        .get(&key)
                        .map(|v| {
                            v.iter()
                                .copied()
                                .filter(|&k| {
                                    map.routes[k].addon != i as u32
                                        && overlap(&map.routes[k].methods, &methods)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let target = r.overrides.as_str();
                    let mine = ancestors.get(i).cloned().unwrap_or_default();
                    if !target.is_empty() && !mine.contains(target) {
                        refuse(
                            &mut map,
                            format!(
                                "overrides = \"{target}\", but {name} does not depend on {target}"
                            ),
                        );
                        continue;
                    }
                    let overridden = if target.is_empty() {
                        same.first().copied()
                    } else {
                        let found = same.iter().copied().find(|&k| {
                            let m = &map.routes[k];
                            addons[m.addon as usize].name == target
                                || m.overrides.iter().any(|a| a == target)
                        });
                        if found.is_none() {
                            refuse(&mut map, format!("overrides {target}'s route {path}, but {target} declares no route at that path{}", method_text(&methods)));
                            continue;
                        }
                        found
                    };
                    let entry = MappedRoute {
                        addon: i as u32,
                        route: r.clone(),
                        path: path.to_string(),
                        methods: methods.clone(),
                        super_endpoint: None,
                        overrides: Vec::new(),
                    };
                    let Some(k) = overridden else {
                        by_path.entry(key).or_default().push(map.routes.len());
                        map.routes.push(entry);
                        continue;
                    };
                    let owner = addons[map.routes[k].addon as usize].name.clone();
                    if !mine.contains(owner.as_str()) {
                        refuse(&mut map, format!("the route {path}{} is already served by addon {owner}, and {name} does not depend on {owner}", method_text(&methods)));
                        continue;
                    }
                    let previous = &map.routes[k];
                    let mut chain = vec![owner];
                    chain.extend(previous.overrides.iter().cloned());
                    let super_endpoint = EndpointRef {
                        addon: previous.addon,
                        route: previous.route.id,
                    };
                    map.supers.insert((i as u32, r.id), super_endpoint);
                    map.routes[k] = MappedRoute {
                        super_endpoint: Some(super_endpoint),
                        overrides: chain,
                        ..entry
                    };
                }
            }
        }
        map
    }
}

/// For each addon, the names of the addons it depends on, directly or not.
fn ancestors(addons: &[Arc<LoadedAddon>]) -> Vec<HashSet<String>> {
    let mut all: Vec<HashSet<String>> = Vec::with_capacity(addons.len());
    for addon in addons {
        let mut set = HashSet::new();
        for dep in &addon.manifest.depends {
            set.insert(dep.clone());
            if let Some(j) = addons.iter().position(|a| &a.name == dep) {
                if let Some(theirs) = all.get(j) {
                    set.extend(theirs.iter().cloned());
                }
            }
        }
        all.push(set);
    }
    all
}

/// Whether two method lists (empty: any) share a method.
fn overlap(a: &[String], b: &[String]) -> bool {
    a.is_empty() || b.is_empty() || a.iter().any(|m| b.contains(m))
}

fn method_text(methods: &[String]) -> String {
    if methods.is_empty() {
        String::new()
    } else {
        format!(" ({})", methods.join(", "))
    }
}

/// Removes one trailing `/`, except from the root (the table's rule: `/a` and `/a/` are
/// the same path).
fn strip_trailing_slash(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}
