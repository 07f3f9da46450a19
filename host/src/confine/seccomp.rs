//! The seccomp filter every confined program gets: sockets of the unix
//! family only (and TCP ones where the grant opens ports), no io_uring
//! (whose socket operation would pass by the filter), no x32 system calls.

use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, sock_filter,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A compiled filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug)]
pub(crate) struct SocketFilter {
    program: Box<[sock_filter]>,
}

/// `struct sock_fprog` of the kernel, pointing into a [`SocketFilter`].
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SockFprog {
    len: u16,
    filter: *const sock_filter,
}

// SAFETY: the pointer is into a `'static` filter that is never written.
unsafe impl Send for SockFprog {}
// SAFETY: as above.
unsafe impl Sync for SockFprog {}

/// The first system-call number of the x32 ABI (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offset of `nr` in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
/// Classic BPF opcodes.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;

impl SocketFilter {
    /// The filter for programs without TCP ports (`tcp = false`) or with
    /// some (`tcp = true`: IPv4 and IPv6 stream sockets are allowed too,
    /// and Landlock decides which ports they reach). Built once each.
    pub(crate) fn get(tcp: bool) -> Result<&'static Self, String> {
        static FILTERS: [OnceLock<Result<SocketFilter, String>>; 2] =
            [OnceLock::new(), OnceLock::new()];
        FILTERS[usize::from(tcp)]
            .get_or_init(|| {
                Self::build(tcp).map_err(|e| format!("cannot build the seccomp filter: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build(tcp: bool) -> Result<Self, BackendError> {
        let arg = |index: u8, op: SeccompCmpOp, value: u64| {
            SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value)
        };
        let family = |f: i32| u64::try_from(f).unwrap_or(0);
        // Refused: a family other than unix (and, with ports, IPv4 and IPv6).
        let mut others = vec![arg(0, SeccompCmpOp::Ne, family(libc::AF_UNIX))?];
        if tcp {
            others.push(arg(0, SeccompCmpOp::Ne, family(libc::AF_INET))?);
            others.push(arg(0, SeccompCmpOp::Ne, family(libc::AF_INET6))?);
        }
        let mut socket_rules = vec![SeccompRule::new(others)?];
        if tcp {
            // Refused too: an IPv4 or IPv6 socket of any type but stream
            // (the type's low four bits; the rest are flags).
            for inet in [libc::AF_INET, libc::AF_INET6] {
                for kind in (0..16u64).filter(|k| *k != libc::SOCK_STREAM as u64) {
                    socket_rules.push(SeccompRule::new(vec![
                        arg(0, SeccompCmpOp::Eq, family(inet))?,
                        arg(1, SeccompCmpOp::MaskedEq(0xf), kind)?,
                    ])?);
                }
            }
        }
        let rules = BTreeMap::from([
            (libc::SYS_socket, socket_rules),
            (libc::SYS_io_uring_setup, Vec::new()),
        ]);
        let arch = std::env::consts::ARCH.try_into()?;
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EAFNOSUPPORT as u32),
            arch,
        )?;
        let compiled: BpfProgram = filter.try_into()?;
        // x32 system calls (numbers from X32_SYSCALL_BIT on, same audit
        // architecture) are refused before anything else is looked at.
        let mut program = Vec::with_capacity(compiled.len() + 3);
        if cfg!(target_arch = "x86_64") {
            program.push(stmt(BPF_LD_W_ABS, NR_OFFSET));
            program.push(sock_filter {
                code: BPF_JGE_K,
                jt: 0,
                jf: 1,
                k: X32_SYSCALL_BIT,
            });
            program.push(stmt(
                BPF_RET_K,
                libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            ));
        }
        program.extend(compiled);
        Ok(Self {
            program: program.into_boxed_slice(),
        })
    }

    /// The `sock_fprog` the child passes to the kernel.
    pub(crate) fn fprog(&'static self) -> SockFprog {
        SockFprog {
            len: u16::try_from(self.program.len()).unwrap_or(u16::MAX),
            filter: self.program.as_ptr(),
        }
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}
