//! The base of the OS: raw calls ([`process`]: `waitpid`, `pidfd_open`)
//! and what the machine offers ([`containment`]: the cgroup2 mount and its
//! controllers). It imports nothing of the crate, so that the policy can
//! ask the machine at load time and the OS layer above can build on it.

pub(crate) mod containment;
pub(crate) mod process;
