//! Version information of the server (Odoo's `odoo/release.py`): what `version_info`
//! answers and what addon manifests' series must match.

/// The series (major version) addons are written for: a manifest version `S.S.x.y.z`
/// must start with it.
pub const SERIE: &str = "1.0";

/// The full version, e.g. `1.0`.
pub const VERSION: &str = "1.0";

/// The version as Odoo's `version_info` tuple: major, minor, micro, level, serial.
pub const VERSION_INFO: (u32, u32, u32, &str, u32) = (1, 0, 0, "final", 0);

/// The crate version of the host binary.
pub const HOST_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The version of `inphms-sdk` the host was built with; addons must be compatible with it.
pub const SDK_VERSION: &str = inphms_sdk::SDK_VERSION;
