//! [`GaugeFn`]: gauges (and counters kept elsewhere) whose values are read at scrape time
//! from the state that owns them (requests in flight, websockets open, pool connections, the
//! pools' waits...), so that nothing is kept up to date on the request path and the layers
//! below need no metrics type.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// One value of a [`GaugeFn`], with its labels (none for a plain gauge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// `(name, value)` pairs.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: i64,
}

impl Sample {
    /// A value without labels.
    pub fn plain(value: i64) -> Sample {
        Sample {
            labels: Vec::new(),
            value,
        }
    }

    /// A value with one label.
    pub fn labelled(name: &'static str, label: impl Into<String>, value: i64) -> Sample {
        Sample {
            labels: vec![(name, label.into())],
            value,
        }
    }
}

type Read = dyn Fn() -> Vec<Sample> + Send + Sync;

/// A gauge family (or a counter family, [`GaugeFn::counter`]) read at each scrape by a
/// function of the layer that owns the state.
pub struct GaugeFn {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    read: Box<Read>,
}

impl GaugeFn {
    /// The gauge `name` (prefixed `inphms_` when registered), described by `help`, whose
    /// samples `read` gives at each scrape.
    pub fn new(
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> Vec<Sample> + Send + Sync + 'static,
    ) -> GaugeFn {
        GaugeFn {
            name,
            help,
            kind: MetricType::Gauge,
            read: Box::new(read),
        }
    }

    /// A counter kept by another layer (an atomic that only grows), read at each scrape:
    /// `name` gets the `_total` suffix.
    pub fn counter(
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> Vec<Sample> + Send + Sync + 'static,
    ) -> GaugeFn {
        GaugeFn {
            kind: MetricType::Counter,
            ..GaugeFn::new(name, help, read)
        }
    }
}

impl std::fmt::Debug for GaugeFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaugeFn").field("name", &self.name).finish()
    }
}

impl Collector for GaugeFn {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let samples = (self.read)();
        let mut family = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        for s in samples {
            let labelled = family.encode_family(&s.labels)?;
            match self.kind {
                MetricType::Counter => {
                    ConstCounter::new(u64::try_from(s.value).unwrap_or(0)).encode(labelled)?
                }
                _ => ConstGauge::new(s.value).encode(labelled)?,
            }
        }
        Ok(())
    }
}
