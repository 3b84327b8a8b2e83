//! The limits of a socket's connection, from the configuration ([`Settings`]), and Odoo's
//! rate limit ([`RateLimit`]).

use std::time::Duration;

/// The limits of a socket's connection (from the configuration, see [`Settings::new`]).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Sockets open at most (`websocket_max_connections`).
    pub max_open: usize,
    /// How long a socket stays open (`websocket_keep_alive_timeout`); `None`: for ever.
    pub keep_alive: Option<Duration>,
    /// Messages a client may send in excess of one per `rate_delay`; 0: no limit.
    pub rate_burst: usize,
    /// Odoo's `websocket_rate_limit_delay`.
    pub rate_delay: Duration,
    /// Silence from the peer after which it is pinged, and how long it then has to answer
    /// (`websocket_ping_interval`).
    pub ping_after: Duration,
    /// Bytes queued to write on one socket, at most (`websocket_send_buffer`).
    pub send_buffer: usize,
    /// Bytes queued to write on all the sockets together, at most
    /// (`websocket_send_buffer_total`).
    pub send_buffer_total: usize,
    /// How long a loop handler's send waits for room in its socket's queue
    /// (`limit_time_real`; `None`: as long as the socket is open).
    pub send_wait: Option<Duration>,
}

/// The longest `websocket_keep_alive_timeout` accepted (ten years): a larger one would
/// overflow the clock's instants.
pub const MAX_KEEP_ALIVE_SECS: u64 = 10 * 365 * 24 * 3600;

/// The longest `websocket_rate_limit_delay` accepted (one day).
pub const MAX_RATE_DELAY_SECS: f64 = 86_400.0;

impl Settings {
    /// The settings of `config`; `http_cap` the cap on open HTTP connections
    /// (`http_max_connections`, computed or configured; `None`: not capped).
    ///
    /// An upgraded connection keeps its HTTP connection slot and is never evicted, so the
    /// websockets must leave HTTP slots free: `websocket_max_connections` defaults to half
    /// the HTTP cap, and a configured value at or above it is refused. A keep-alive or a
    /// rate-limit delay out of range is refused too (rather than overflowing, or turning
    /// the limit off).
    pub fn new(
        config: &crate::config::Config,
        http_cap: Option<usize>,
    ) -> Result<Settings, crate::Error> {
        let configured = usize::try_from(config.websocket_max_connections).unwrap_or(usize::MAX);
        let max_open = match (configured, http_cap) {
            (0, Some(cap)) => (cap / 2).max(1),
            (0, None) => usize::MAX,
            (n, Some(cap)) if n >= cap => {
                return Err(crate::Error::Invalid {
                    value: format!("websocket_max_connections {n}"),
                    expected: format!(
                        "fewer than the {cap} connections of http_max_connections (a websocket keeps its HTTP connection: at or above that cap websockets could take every HTTP slot); leave it 0 for half of it ({})",
                        (cap / 2).max(1)
                    ),
                });
            }
            (n, _) => n,
        };
        if config.websocket_keep_alive_timeout > MAX_KEEP_ALIVE_SECS {
            return Err(crate::Error::Invalid {
                value: format!(
                    "websocket_keep_alive_timeout {}",
                    config.websocket_keep_alive_timeout
                ),
                expected: format!("at most {MAX_KEEP_ALIVE_SECS} seconds (0: never)"),
            });
        }
        let delay = config.websocket_rate_limit_delay;
        let rate_delay = match Duration::try_from_secs_f64(delay) {
            Ok(d) if delay <= MAX_RATE_DELAY_SECS => d,
            _ => {
                return Err(crate::Error::Invalid {
                    value: format!("websocket_rate_limit_delay {delay}"),
                    expected: format!(
                        "seconds between 0 and {MAX_RATE_DELAY_SECS} (websocket_rate_limit_burst 0 turns the limit off)"
                    ),
                });
            }
        };
        Ok(Settings {
            max_open,
            keep_alive: (config.websocket_keep_alive_timeout > 0)
                .then(|| Duration::from_secs(config.websocket_keep_alive_timeout)),
            rate_burst: usize::try_from(config.websocket_rate_limit_burst).unwrap_or(usize::MAX),
            rate_delay,
            ping_after: Duration::from_secs(
                config.websocket_ping_interval.clamp(1, MAX_KEEP_ALIVE_SECS),
            ),
            send_buffer: usize::try_from(config.websocket_send_buffer.max(1)).unwrap_or(usize::MAX),
            send_buffer_total: usize::try_from(config.websocket_send_buffer_total.max(1))
                .unwrap_or(usize::MAX),
            send_wait: (config.limit_time_real > 0)
                .then(|| Duration::from_secs(config.limit_time_real.min(MAX_KEEP_ALIVE_SECS))),
        })
    }
}

/// Odoo's rate limit: at most `burst` messages within `burst` × `delay` (the times of
/// the last `burst` kept).
pub(super) struct RateLimit {
    burst: usize,
    window: Duration,
    recent: std::collections::VecDeque<tokio::time::Instant>,
}

impl RateLimit {
    pub(super) fn new(settings: &Settings) -> RateLimit {
        RateLimit {
            burst: settings.rate_burst,
            window: settings
                .rate_delay
                .saturating_mul(u32::try_from(settings.rate_burst).unwrap_or(u32::MAX)),
            recent: std::collections::VecDeque::new(),
        }
    }

    /// Records a message arriving `now`; whether it is one too many.
    pub(super) fn exceeded(&mut self, now: tokio::time::Instant) -> bool {
        if self.burst == 0 {
            return false;
        }
        if self.recent.len() >= self.burst {
            if let Some(oldest) = self.recent.front() {
                if now.duration_since(*oldest) < self.window {
                    return true;
                }
            }
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        false
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_as_odoo() {
        let settings = Settings {
            max_open: 1,
            keep_alive: None,
            rate_burst: 3,
            rate_delay: Duration::from_millis(100),
            ping_after: Duration::from_secs(30),
            send_buffer: 1,
            send_buffer_total: 1,
            send_wait: None,
        };
        let mut rate = RateLimit::new(&settings);
        let t0 = tokio::time::Instant::now();
        // Three at once are the burst; a fourth within 3 x 100 ms of the first is refused.
        for _ in 0..3 {
            assert!(!rate.exceeded(t0));
        }
        assert!(rate.exceeded(t0 + Duration::from_millis(299)));
        // Once the first three are 300 ms old, three more are fine, and the window slides:
        // a fourth within 300 ms of those is refused.
        let t1 = t0 + Duration::from_millis(300);
        for ms in 0..3 {
            assert!(!rate.exceeded(t1 + Duration::from_millis(ms)));
        }
        assert!(rate.exceeded(t1 + Duration::from_millis(3)));
        assert!(!rate.exceeded(t1 + Duration::from_millis(300)));
        // A burst of 0 turns the limit off.
        let mut off = RateLimit::new(&Settings {
            rate_burst: 0,
            ..settings
        });
        assert!((0..1000).all(|_| !off.exceeded(t0)));
    }

    #[test]
    fn settings_from_the_configuration() {
        let mut config = crate::config::Config::defaults();
        let s = Settings::new(&config, Some(672)).unwrap();
        // Half the HTTP cap: websockets never take every HTTP slot.
        assert_eq!(s.max_open, 336);
        assert_eq!(s.keep_alive, Some(Duration::from_secs(3600)));
        assert_eq!(
            (s.rate_burst, s.rate_delay),
            (10, Duration::from_millis(200))
        );
        assert_eq!(Settings::new(&config, Some(1)).unwrap().max_open, 1);
        config.websocket_max_connections = 5;
        config.websocket_keep_alive_timeout = 0;
        let s = Settings::new(&config, Some(20_000)).unwrap();
        assert_eq!((s.max_open, s.keep_alive), (5, None));
        config.websocket_max_connections = 0;
        assert_eq!(Settings::new(&config, None).unwrap().max_open, usize::MAX);
    }

    #[test]
    fn settings_refuse_values_out_of_range() {
        let mut config = crate::config::Config::defaults();
        config.websocket_max_connections = 672;
        let e = Settings::new(&config, Some(672)).unwrap_err().to_string();
        assert!(e.contains("websocket_max_connections 672"), "{e}");
        assert!(e.contains("http_max_connections"), "{e}");
        assert!(Settings::new(&config, Some(673)).is_ok());
        assert!(Settings::new(&config, None).is_ok());
        config.websocket_max_connections = 0;
        config.websocket_keep_alive_timeout = u64::MAX;
        let e = Settings::new(&config, None).unwrap_err().to_string();
        assert!(e.contains("websocket_keep_alive_timeout"), "{e}");
        config.websocket_keep_alive_timeout = MAX_KEEP_ALIVE_SECS;
        assert!(Settings::new(&config, None).is_ok());
        for bad in [1e300, -1.0, f64::NAN, f64::INFINITY] {
            config.websocket_rate_limit_delay = bad;
            let e = Settings::new(&config, None).unwrap_err().to_string();
            assert!(e.contains("websocket_rate_limit_delay"), "{e}");
        }
    }
}
