//! The seccomp filter every confined program gets: sockets of the unix
//! family only (and TCP ones where the grant opens ports), no io_uring
//! (whose socket operation would pass by the filter), no x32 system calls,
//! and no system calls of another architecture (i386's `socketcall` would
//! pass by the socket rule).
//!
//! The program is written out here, in classic BPF, rather than generated:
//! the kernel's cost of installing a filter, paid at every confined start,
//! grows with its length (measured on the reference machine: 45 µs for a
//! 6-instruction filter, 94 µs for a 40-instruction one), and a generator's
//! general shape for these two rules was about three times as long as this.
//! Every instruction is checked by the unit tests below, which run the
//! program over the cases it decides.

use std::sync::OnceLock;

/// `struct sock_filter`: one classic BPF instruction.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Instruction {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// A compiled filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug)]
pub(crate) struct SocketFilter {
    program: Box<[Instruction]>,
}

/// `struct sock_fprog` of the kernel, pointing into a [`SocketFilter`].
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SockFprog {
    len: u16,
    filter: *const Instruction,
}

// SAFETY: the pointer is into a `'static` filter that is never written.
unsafe impl Send for SockFprog {}
// SAFETY: as above.
unsafe impl Sync for SockFprog {}

/// `AUDIT_ARCH_*` of the architecture this host is built for: a system
/// call made through another one's entry (i386's `int 0x80` on x86-64) is
/// refused whole.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = 0xC000_00F3;

/// The first system-call number of the x32 ABI (`__X32_SYSCALL_BIT`), which
/// shares x86-64's audit architecture.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets in `struct seccomp_data`: `nr`, `arch`, and the low 32 bits of
/// the first two arguments (little-endian).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0: u32 = 16;
const ARG1: u32 = 24;

/// Classic BPF opcodes.
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54;
const RET_K: u16 = 0x06;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const REFUSE: u32 = libc::SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32;
const NO_SUCH_CALL: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

/// A system-call number as the filter sees it (the numbers are small).
fn nr(call: libc::c_long) -> u32 {
    u32::try_from(call).expect("system-call numbers fit 32 bits")
}

fn family(f: libc::c_int) -> u32 {
    u32::try_from(f).expect("address families are positive")
}

fn stmt(code: u16, k: u32) -> Instruction {
    Instruction {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Instruction {
    Instruction { code, jt, jf, k }
}

impl SocketFilter {
    /// The filter for programs without TCP ports (`tcp = false`) or with
    /// some (`tcp = true`: IPv4 and IPv6 stream sockets are allowed too,
    /// and Landlock decides which ports they reach). Built once each.
    pub(crate) fn get(tcp: bool) -> Result<&'static Self, String> {
        static FILTERS: [OnceLock<SocketFilter>; 2] = [OnceLock::new(), OnceLock::new()];
        Ok(FILTERS[usize::from(tcp)].get_or_init(|| Self::build(tcp)))
    }

    fn build(tcp: bool) -> Self {
        let mut program = vec![
            // 0: another architecture's entry: the process is killed (its
            // numbers mean other calls).
            stmt(LD_W_ABS, ARCH),
            jump(JEQ_K, AUDIT_ARCH, 1, 0),
            stmt(RET_K, KILL),
            // 3: x32 numbers: no such call.
            stmt(LD_W_ABS, NR),
        ];
        if cfg!(target_arch = "x86_64") {
            program.push(jump(JGE_K, X32_SYSCALL_BIT, 0, 1));
            program.push(stmt(RET_K, NO_SUCH_CALL));
        }
        program.extend([
            // socket: look at its family; io_uring_setup: refused.
            jump(JEQ_K, nr(libc::SYS_socket), 3, 0),
            jump(JEQ_K, nr(libc::SYS_io_uring_setup), 1, 0),
            stmt(RET_K, ALLOW),
            stmt(RET_K, REFUSE),
            // socket(family, type, protocol)
            stmt(LD_W_ABS, ARG0),
        ]);
        if tcp {
            program.extend([
                jump(JEQ_K, family(libc::AF_UNIX), 6, 0),
                jump(JEQ_K, family(libc::AF_INET), 1, 0),
                jump(JEQ_K, family(libc::AF_INET6), 0, 5),
                // IPv4 or IPv6: stream sockets only (the type's low four
                // bits; the rest are flags).
                stmt(LD_W_ABS, ARG1),
                stmt(AND_K, 0xf),
                jump(JEQ_K, libc::SOCK_STREAM as u32, 1, 0),
                stmt(RET_K, REFUSE),
                stmt(RET_K, ALLOW),
                stmt(RET_K, REFUSE),
            ]);
        } else {
            program.extend([
                jump(JEQ_K, family(libc::AF_UNIX), 0, 1),
                stmt(RET_K, ALLOW),
                stmt(RET_K, REFUSE),
            ]);
        }
        Self {
            program: program.into_boxed_slice(),
        }
    }

    /// The `sock_fprog` the child passes to the kernel.
    pub(crate) fn fprog(&'static self) -> SockFprog {
        SockFprog {
            len: u16::try_from(self.program.len()).unwrap_or(u16::MAX),
            filter: self.program.as_ptr(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of `struct seccomp_data` the filter reads.
    struct Call {
        arch: u32,
        nr: u32,
        args: [u32; 2],
    }

    fn call(nr: libc::c_long, args: [libc::c_int; 2]) -> Call {
        Call {
            arch: AUDIT_ARCH,
            nr: super::nr(nr),
            args: args.map(|a| a as u32),
        }
    }

    /// Runs the subset of classic BPF the filter uses; every jump must
    /// land inside the program, and every path must end in a return.
    fn run(filter: &SocketFilter, call: &Call) -> u32 {
        let program = &filter.program;
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = program.get(pc).expect("the program ran off its end");
            pc += 1;
            let mut jump_if = |taken: bool| pc += usize::from(if taken { i.jt } else { i.jf });
            match i.code {
                LD_W_ABS => {
                    acc = match i.k {
                        NR => call.nr,
                        ARCH => call.arch,
                        ARG0 => call.args[0],
                        ARG1 => call.args[1],
                        other => panic!("load of offset {other}"),
                    }
                }
                JEQ_K => jump_if(acc == i.k),
                JGE_K => jump_if(acc >= i.k),
                AND_K => acc &= i.k,
                RET_K => return i.k,
                other => panic!("opcode {other:#x}"),
            }
        }
    }

    fn socket(filter: &SocketFilter, family: libc::c_int, kind: libc::c_int) -> u32 {
        run(filter, &call(libc::SYS_socket, [family, kind]))
    }

    #[test]
    fn seccomp_unix_sockets_only_good() {
        let f = SocketFilter::get(false).unwrap();
        assert_eq!(socket(f, libc::AF_UNIX, libc::SOCK_STREAM), ALLOW);
        assert_eq!(socket(f, libc::AF_UNIX, libc::SOCK_DGRAM), ALLOW);
        for family in [
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_NETLINK,
            libc::AF_PACKET,
            libc::AF_VSOCK,
        ] {
            assert_eq!(socket(f, family, libc::SOCK_STREAM), REFUSE, "{family}");
        }
        assert_eq!(run(f, &call(libc::SYS_read, [0, 0])), ALLOW);
        assert_eq!(run(f, &call(libc::SYS_connect, [3, 0])), ALLOW);
    }

    #[test]
    fn seccomp_tcp_grant_stream_only_good() {
        let f = SocketFilter::get(true).unwrap();
        for family in [libc::AF_INET, libc::AF_INET6] {
            assert_eq!(socket(f, family, libc::SOCK_STREAM), ALLOW);
            let flagged = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            assert_eq!(socket(f, family, flagged), ALLOW);
            for kind in [libc::SOCK_DGRAM, libc::SOCK_RAW, libc::SOCK_SEQPACKET] {
                assert_eq!(socket(f, family, kind), REFUSE, "{family} {kind}");
            }
        }
        assert_eq!(socket(f, libc::AF_UNIX, libc::SOCK_DGRAM), ALLOW);
        assert_eq!(socket(f, libc::AF_NETLINK, libc::SOCK_RAW), REFUSE);
        assert_eq!(socket(f, libc::AF_PACKET, libc::SOCK_STREAM), REFUSE);
    }

    #[test]
    fn seccomp_bypasses_refused_ugly() {
        for tcp in [false, true] {
            let f = SocketFilter::get(tcp).unwrap();
            // io_uring's socket operation would pass by the socket rule.
            assert_eq!(run(f, &call(libc::SYS_io_uring_setup, [1, 0])), REFUSE);
            // Another architecture's entry (i386's socketcall is 102).
            let foreign = Call {
                arch: 0x4000_0003,
                nr: 102,
                args: [1, 0],
            };
            assert_eq!(run(f, &foreign), KILL);
            if cfg!(target_arch = "x86_64") {
                let x32 = Call {
                    arch: AUDIT_ARCH,
                    nr: X32_SYSCALL_BIT | super::nr(libc::SYS_socket),
                    args: [libc::AF_INET as u32, libc::SOCK_DGRAM as u32],
                };
                assert_eq!(run(f, &x32), NO_SUCH_CALL);
            }
        }
    }

    #[test]
    fn seccomp_program_short_good() {
        // The point of writing it out: its install cost grows with length.
        assert!(SocketFilter::get(false).unwrap().program.len() <= 14);
        assert!(SocketFilter::get(true).unwrap().program.len() <= 20);
    }
}
