//! Version information of the server (Odoo's `odoo/release.py`): what `version_info`
//! answers and what addon manifests' series must match. Derived from the host crate's version.

/// The full version of the server (the `inphms-host` crate version), e.g. `1.0.0`.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The series (`major.minor`) addons are written for: a manifest version `S.S.x.y.z` must
/// start with it.
pub const SERIE: &str = concat!(
    env!("CARGO_PKG_VERSION_MAJOR"),
    ".",
    env!("CARGO_PKG_VERSION_MINOR")
);

/// The version as Odoo shows it (`server_version`): the series.
pub const VERSION: &str = SERIE;

/// The version of `inphms-sdk` the host was built with; addons must be compatible with it.
pub const SDK_VERSION: &str = inphms_sdk::SDK_VERSION;
