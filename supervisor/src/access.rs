//! Which declared daemons a guest may reach: the `daemons` key of its
//! plugin's entry, in the configuration that declares the daemons (so a
//! name no daemon has is refused when it loads). Names only: a guest can
//! observe or control daemons the host declared, never declare one.
//!
//! ```toml
//! [[plugin]]
//! name = "summary"
//! component = "summary.wasm"
//! daemons = { observe = ["web"], control = ["worker"] }
//! ```

use serde::Deserialize;

/// The daemons one guest may reach (`daemons` of its `[[plugin]]` entry);
/// the default reaches none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonAccess {
    /// Daemons whose status and recent output the guest may read.
    #[serde(default)]
    pub observe: Vec<String>,
    /// Daemons the guest may also start, stop and restart.
    #[serde(default)]
    pub control: Vec<String>,
}

impl DaemonAccess {
    /// Whether the guest may read this daemon's status and output.
    pub fn can_observe(&self, name: &str) -> bool {
        self.can_control(name) || self.observe.iter().any(|n| n == name)
    }

    /// Whether the guest may start, stop and restart this daemon.
    pub fn can_control(&self, name: &str) -> bool {
        self.control.iter().any(|n| n == name)
    }
}
