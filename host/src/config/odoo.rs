//! Odoo's options that Inphms accepts without using them, the old names of options, and
//! the suggestion for a key that looks like a typo of a known option.
//!
//! An `odoo.conf` written by `odoo-bin -s` holds every option Odoo has; none of them makes
//! the file fail here. The ones with no effect ([`UNUSED`], [`ODOO_ONLY`]) are listed once
//! (and those with an effect in workers mode only, [`WORKERS_ONLY`], when workers are off)
//! in a warning at start when set to another value than their default; keys that are no option at all are kept for addons, with a warning
//! only when they are a small edit away from a known option ([`suggestion`]).

use super::options::OPTIONS;

/// Options of the table that nothing reads yet: accepted, listed in the start-up warning
/// when set to another value than their default.
pub(crate) const UNUSED: &[&str] = &["without_demo"];

/// Options that have an effect in workers mode only (`--workers` > 0): set to another value
/// than their default without workers, they are listed in a start-up warning
/// ([`workers_only_warning`]).
pub(crate) const WORKERS_ONLY: &[&str] = &["limit_time_cpu", "limit_request", "worker_connections"];

/// The warning listing the options of [`WORKERS_ONLY`] set to another value than their
/// default while `workers` is 0 (none when workers mode is on or none is set).
pub(crate) fn workers_only_warning(cfg: &super::Config) -> Option<String> {
    if cfg.workers > 0 {
        return None;
    }
    let defaults = super::Config::defaults();
    let set: Vec<&str> = WORKERS_ONLY
        .iter()
        .copied()
        .filter(|k| cfg.get_toml(k) != defaults.get_toml(k))
        .collect();
    (!set.is_empty()).then(|| {
        format!(
            "options that apply only with --workers (workers = 0 here): {}",
            set.join(", ")
        )
    })
}

/// Odoo's options with no counterpart here, and the values Odoo's `-s` writes for their
/// defaults (besides the unset `False`, `None` and empty): accepted, kept for addons
/// (`Host::config("options", key)`), listed in the start-up warning when set to another
/// value.
pub(crate) const ODOO_ONLY: &[(&str, &[&str])] = &[
    ("gevent_port", &["8072"]),
    ("longpolling_port", &["8072"]),
    ("limit_time_worker_cron", &["0"]),
    ("db_replica_host", &[]),
    ("db_replica_port", &[]),
    ("db_app_name", &["odoo-{pid}"]),
    ("osv_memory_count_limit", &["0"]),
    ("osv_memory_age_limit", &["1.0"]),
    ("transient_age_limit", &["1.0"]),
    ("unaccent", &[]),
    ("geoip_database", &["/usr/share/GeoIP/GeoLite2-City.mmdb"]),
    ("geoip_city_db", &["/usr/share/GeoIP/GeoLite2-City.mmdb"]),
    (
        "geoip_country_db",
        &["/usr/share/GeoIP/GeoLite2-Country.mmdb"],
    ),
    ("smtp_server", &["localhost"]),
    ("smtp_port", &["25"]),
    ("smtp_ssl", &[]),
    ("smtp_user", &[]),
    ("smtp_password", &[]),
    ("smtp_ssl_certificate_filename", &[]),
    ("smtp_ssl_private_key_filename", &[]),
    ("email_from", &[]),
    ("from_filter", &[]),
    ("csv_internal_sep", &[","]),
    ("reportgz", &[]),
    ("screencasts", &[]),
    ("screenshots", &["/tmp/odoo_tests"]),
    ("test_enable", &[]),
    ("test_file", &[]),
    ("test_tags", &[]),
    ("translate_modules", &["['all']"]),
    ("log_db", &[]),
    ("log_db_level", &["warning"]),
    ("demo", &["{}"]),
    ("import_partial", &[]),
    ("upgrade_path", &[]),
    ("pre_upgrade_scripts", &[]),
    ("shell_interface", &[]),
    ("x_sendfile", &[]),
    (
        "publisher_warranty_url",
        &["http://services.odoo.com/publisher-warranty/"],
    ),
    ("bin_path", &[]),
    ("load_language", &[]),
    ("language", &[]),
    ("translate_out", &[]),
    ("translate_in", &[]),
    ("overwrite_existing_translations", &[]),
    ("xmlrpcs", &["True"]),
    ("xmlrpcs_interface", &[]),
    ("xmlrpcs_port", &["8071"]),
    ("secure_cert_file", &["server.cert"]),
    ("secure_pkey_file", &["server.pkey"]),
    ("root_path", &[]),
    ("addons_data_dir", &[]),
];

/// Old names of options in the file (Odoo still reads them): `(old, option)`.
pub(crate) const ALIASES: &[(&str, &str)] = &[
    ("xmlrpc_port", "http_port"),
    ("xmlrpc_interface", "http_interface"),
    ("xmlrpc", "http_enable"),
];

/// The option an old name stands for.
pub(crate) fn alias(key: &str) -> Option<&'static str> {
    ALIASES.iter().find(|(old, _)| *old == key).map(|(_, k)| *k)
}

/// Whether `key` is one of Odoo's options with no counterpart here ([`ODOO_ONLY`]).
pub(crate) fn odoo_only(key: &str) -> bool {
    ODOO_ONLY.iter().any(|(k, _)| *k == key)
}

/// Whether the value `text` of the Odoo-only option `key` is its default (so setting it
/// changes nothing Odoo would do either).
pub(crate) fn is_odoo_default(key: &str, text: &str) -> bool {
    ODOO_ONLY
        .iter()
        .find(|(k, _)| *k == key)
        .is_some_and(|(_, defaults)| defaults.contains(&text.trim()))
}

/// The known option `key` is probably a typo of: the nearest option of the table or of
/// [`ODOO_ONLY`] within one edit (none for a known key) (keys of up to 6 characters) or two (longer keys).
pub(crate) fn suggestion(key: &str) -> Option<&'static str> {
    let limit = if key.chars().count() <= 6 { 1 } else { 2 };
    let (d, near) = OPTIONS
        .iter()
        .map(|d| d.key)
        .chain(ODOO_ONLY.iter().map(|(k, _)| *k))
        .chain(ALIASES.iter().map(|(old, _)| *old))
        .map(|k| (distance(key, k), k))
        .min_by_key(|(d, _)| *d)?;
    (d > 0 && d <= limit).then_some(near)
}

/// The Damerau-Levenshtein (optimal string alignment) distance between `a` and `b`: an
/// insertion, a deletion, a substitution or a swap of neighbours is one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_options_only() {
        assert_eq!(distance("http_portt", "http_port"), 1);
        assert_eq!(distance("db_hsot", "db_host"), 1);
        assert_eq!(suggestion("http_portt"), Some("http_port"));
        assert_eq!(suggestion("db_hsot"), Some("db_host"));
        assert_eq!(suggestion("wokrers"), Some("workers"));
        assert_eq!(suggestion("http_port"), None);
        assert_eq!(suggestion("my_custom_key"), None);
        assert_eq!(suggestion("api_key"), None);
    }

    #[test]
    fn lists_are_disjoint_from_the_table() {
        let odoo_only = ODOO_ONLY.iter().map(|(k, _)| k);
        for key in odoo_only.chain(ALIASES.iter().map(|(old, _)| old)) {
            assert!(!OPTIONS.iter().any(|d| d.key == *key), "{key} is an option");
        }
        for key in UNUSED.iter().chain(WORKERS_ONLY) {
            assert!(OPTIONS.iter().any(|d| d.key == *key), "{key} is no option");
        }
        assert!(is_odoo_default("gevent_port", " 8072"));
        assert!(!is_odoo_default("gevent_port", "8073"));
        for (_, option) in ALIASES {
            assert!(OPTIONS.iter().any(|d| d.key == *option), "{option}");
        }
    }
}
