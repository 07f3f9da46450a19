//! What to start: an approved command and how it is carried. The one
//! input of [`ProcessManager::spawn`](crate::ProcessManager::spawn) and
//! [`ProcessManager::output`](crate::ProcessManager::output).

use crate::audit::Audit;
use crate::deadline::Deadline;
use crate::os::cgroup::Scope;
use crate::os::child::LiveToken;
use crate::os::spawner::StdioPlan;
use crate::policy::Approved;
use crate::process::buffer::{Buffering, ByteBuffer};
use crate::process::managed::Buffers;
use crate::types::StdioMode;
use std::sync::Arc;

/// An approved command (only an [`Admission`](crate::Admission) makes
/// one) and how to carry it: the cgroup scope it goes in, who owns it,
/// its streams and their buffers, its deadline and where its exit is
/// audited. Made with [`Spec::new`] and the setters.
#[derive(Debug)]
pub struct Spec<'a> {
    pub(crate) approved: &'a Approved,
    pub(crate) scope: &'a Scope,
    pub(crate) id: String,
    pub(crate) owner: String,
    pub(crate) guest: String,
    pub(crate) stdio: StdioPlan,
    pub(crate) buffers: Buffers,
    pub(crate) deadline: Deadline,
    pub(crate) audit: Option<Audit>,
    pub(crate) live: Option<LiveToken>,
}

impl<'a> Spec<'a> {
    /// `approved` in `scope`, owned by the host: a fresh id, every stream
    /// `/dev/null`, no deadline, its exit not audited.
    pub fn new(approved: &'a Approved, scope: &'a Scope) -> Self {
        Self {
            approved,
            scope,
            id: uuid::Uuid::new_v4().to_string(),
            owner: "host".to_string(),
            guest: "host".to_string(),
            stdio: StdioPlan {
                stdin: StdioMode::Null,
                stdout: StdioMode::Null,
                stderr: StdioMode::Null,
            },
            buffers: Buffers::default(),
            deadline: Deadline::NEVER,
            audit: None,
            live: None,
        }
    }

    /// Its id (default: a fresh uuid).
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// The session (or daemon) that owns it, and the guest name its
    /// records carry.
    #[must_use]
    pub fn owner(mut self, owner: impl Into<String>, guest: impl Into<String>) -> Self {
        self.owner = owner.into();
        self.guest = guest.into();
        self
    }

    /// Where its three standard streams go.
    #[must_use]
    pub fn stdio(mut self, stdin: StdioMode, stdout: StdioMode, stderr: StdioMode) -> Self {
        self.stdio = StdioPlan {
            stdin,
            stdout,
            stderr,
        };
        self
    }

    /// The buffers of its piped streams.
    #[must_use]
    pub fn buffers(mut self, buffers: Buffers) -> Self {
        self.buffers = buffers;
        self
    }

    /// Its stdout and stderr piped into buffers that keep the first `cap`
    /// bytes of each (the rest is read and counted), and `stdin` fed to it
    /// (`None` or empty: `/dev/null`): what
    /// [`ProcessManager::output`](crate::ProcessManager::output) collects.
    #[must_use]
    pub fn capture(mut self, cap: usize, stdin: Option<Vec<u8>>) -> Self {
        let stdin = stdin.filter(|b| !b.is_empty()).map(|bytes| {
            let b = Arc::new(ByteBuffer::new(bytes.len(), Buffering::Lossless));
            b.push(&bytes);
            b
        });
        self.stdio = StdioPlan {
            stdin: if stdin.is_some() {
                StdioMode::Piped
            } else {
                StdioMode::Null
            },
            stdout: StdioMode::Piped,
            stderr: StdioMode::Piped,
        };
        self.buffers = Buffers {
            stdout: Some(Arc::new(ByteBuffer::capture(cap))),
            stderr: Some(Arc::new(ByteBuffer::capture(cap))),
            stdin,
            close_stdin_when_drained: true,
        };
        self
    }

    /// When the monitor kills its group (default: never).
    #[must_use]
    pub fn deadline(mut self, deadline: Deadline) -> Self {
        self.deadline = deadline;
        self
    }

    /// Where its exit is audited (default: nowhere; the caller audits).
    #[must_use]
    pub fn audit(mut self, audit: Audit) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Counts it as running for its owner until it is reaped.
    #[must_use]
    pub(crate) fn live(mut self, token: LiveToken) -> Self {
        self.live = Some(token);
        self
    }
}
