//! [`CountedStore`]: a session store counting the sessions read and written, for the
//! metrics (`inphms_sessions_read_total`, `inphms_sessions_written_total`, labelled with the
//! wrapped store's [`SessionStore::store_type`]). One atomic addition per read or write.

use super::session::{SessionData, SessionError, SessionStore, StoredSession};
use crate::metrics::SessionMetrics;
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::time::Duration;

/// Wraps a store and counts its reads (sessions found) and writes.
pub struct CountedStore {
    inner: Arc<dyn SessionStore>,
    read: Counter,
    written: Counter,
}

impl CountedStore {
    /// `inner`, counted in `metrics` under its store type.
    pub fn new(inner: Arc<dyn SessionStore>, metrics: &SessionMetrics) -> CountedStore {
        let (read, written) = metrics.counters(inner.store_type());
        CountedStore {
            inner,
            read,
            written,
        }
    }
}

impl SessionStore for CountedStore {
    fn new_sid(&self) -> String {
        self.inner.new_sid()
    }

    fn get(&self, sid: &str) -> Result<Option<StoredSession>, SessionError> {
        let found = self.inner.get(sid)?;
        if found.is_some() {
            self.read.inc();
        }
        Ok(found)
    }

    fn save(&self, sid: &str, data: &SessionData) -> Result<(), SessionError> {
        self.inner.save(sid, data)?;
        self.written.inc();
        Ok(())
    }

    fn delete(&self, sid: &str) -> Result<(), SessionError> {
        self.inner.delete(sid)
    }

    fn rotate(&self, old: &str) -> Result<String, SessionError> {
        self.inner.rotate(old)
    }

    fn vacuum(&self, max_age: Duration) -> Result<usize, SessionError> {
        self.inner.vacuum(max_age)
    }

    fn store_type(&self) -> &'static str {
        self.inner.store_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::session::FilesystemSessionStore;
    use crate::metrics::Metrics;

    #[test]
    fn reads_and_writes_are_counted_under_the_store_type() {
        let tmp = tempfile::tempdir().unwrap();
        let metrics = Metrics::new(true);
        let fs = FilesystemSessionStore::new(tmp.path().join("sessions")).unwrap();
        let store = CountedStore::new(Arc::new(fs), &metrics.sessions);
        let sid = store.new_sid();
        assert!(store.get(&sid).unwrap().is_none());
        store.save(&sid, &SessionData::default_session()).unwrap();
        assert!(store.get(&sid).unwrap().is_some());
        let text = metrics.encode();
        assert!(
            text.contains("inphms_sessions_read_total{store=\"filesystem\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("inphms_sessions_written_total{store=\"filesystem\"} 1"),
            "{text}"
        );
    }
}
