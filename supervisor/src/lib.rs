//! # wasmproc-supervisor
//!
//! Daemon supervision on top of `wasmproc-host`: declared daemons with
//! restart policies, health probes, PID files and an on-disk registry,
//! guest access to them, and `wasmproc serve`, the host daemon.
//!
//! Who may reach which daemon is said where the daemons are declared
//! ([`DaemonAccess`], the `daemons` key of a `[[plugin]]` entry, checked
//! against the declared names when the configuration loads); this crate
//! enforces it.
//!
//! - [`config`]: the host configuration `wasmproc serve` reads;
//! - [`spec`]: one declared daemon, as written;
//! - [`machine`]: a daemon's life as a pure state machine (events in,
//!   actions out);
//! - `driver`: the task that feeds a daemon's machine and carries out its
//!   actions;
//! - [`backoff`]: restart delays and the start limit (monotonic clock);
//! - [`probe`]: exec, TCP and HTTP health probes (their configured form
//!   and their thresholds in `probe_spec` and `probe_state`);
//! - [`identity`]: PID plus start time plus boot id, so a reused PID is
//!   never mistaken for the process that was recorded;
//! - [`pidfile`]: atomic, locked PID files (`flock_holder` tells whose a
//!   held lock is);
//! - [`private_dir`]: directories only this user can write, and the
//!   checked reads and writes of files in them;
//! - [`registry_dir`]: one JSON entry per running host and daemon;
//! - [`supervisor`]: runs, probes, stops and restarts the daemons;
//! - [`control`]: the host's control socket and the `wasmproc daemon`
//!   commands;
//! - `guest`: the WIT `daemon` interface for guests ([`DaemonCtx`],
//!   [`add_daemon_to_linker`]; with a [`Runtime`](wasmproc_host::Runtime),
//!   use `Runtime<DaemonCtx>` and [`link_daemons`]);
//! - [`serve`]: `wasmproc serve`, the host daemon (HTTP health endpoints,
//!   control socket, plugins); [`http_guard`]: the `Host` and bearer-token
//!   checks of its HTTP requests.

mod access;
pub mod backoff;
mod bindings;
pub mod config;
pub mod control;
mod driver;
mod flock_holder;
mod guest;
pub mod http_guard;
pub mod identity;
mod launch;
pub mod machine;
pub mod pidfile;
pub mod private_dir;
pub mod probe;
mod probe_spec;
mod probe_state;
pub mod registry_dir;
mod resolve;
pub mod serve;
pub mod spec;
mod status;
pub mod supervisor;

pub use access::DaemonAccess;
pub use bindings::DAEMON_INTERFACE_NAME;
pub use config::{ConfigError, ConfigProblem, HostConfig, PluginSpec, ServeSpec};
pub use guest::{DaemonCtx, DaemonView, HasDaemon, add_daemon_to_linker, link_daemons};
pub use launch::LaunchError;
pub use machine::DaemonState;
pub use resolve::ResolveError;
pub use spec::{DaemonSpec, RestartPolicy};
pub use status::{DaemonStatus, ProbeReport, RecentOutput};
pub use supervisor::{DaemonError, Supervisor, SupervisorOptions};
