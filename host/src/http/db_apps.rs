//! [`DatabaseApps`]: the applications of the databases a generation serves, each derived
//! once from the generation and a database's [`Registry`] (its route table: the server-wide
//! addons' routes and those of the addons installed there).
//!
//! The cache belongs to the generation (the base [`Application`]), so a swap starts with an
//! empty one, and it is keyed by the registry itself: a registry built again (after an
//! install) or evicted from the LRU and loaded again is a new `Arc`, and gets a new
//! application. An entry holds its registry weakly; entries whose registry is gone are
//! dropped when another is added. A lookup is one lock and a pointer comparison per entry,
//! as the registry's own slot was.

use super::application::Application;
use crate::modules::registry::Registry;
use std::sync::{Arc, Mutex, Weak};

/// The derived applications of one generation, by registry.
#[derive(Default)]
pub struct DatabaseApps {
    entries: Mutex<Vec<(Weak<Registry>, Arc<Application>)>>,
}

impl DatabaseApps {
    /// The application of `registry`'s database for the generation `base`, derived on the
    /// first request for it.
    pub fn get(
        &self,
        base: &Application,
        registry: &Arc<Registry>,
    ) -> Result<Arc<Application>, crate::Error> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, app)) = entries
            .iter()
            .find(|(r, _)| std::ptr::eq(r.as_ptr(), Arc::as_ptr(registry)))
        {
            return Ok(Arc::clone(app));
        }
        let app = Arc::new(base.derive(
            &registry.db_name,
            registry.addons(&base.addons),
            registry.secret.as_deref(),
        )?);
        entries.retain(|(r, _)| r.strong_count() > 0);
        entries.push((Arc::downgrade(registry), Arc::clone(&app)));
        Ok(app)
    }
}
