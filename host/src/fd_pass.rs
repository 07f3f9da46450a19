//! Moving fds between fd tables of the host with `SCM_RIGHTS` over a Unix
//! socket pair: the spawn thread keeps an fd table of its own (see
//! `spawner.rs`) and hands each child's pipes to the host's table this way.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// Most fds one message carries (a child's stdin, stdout and stderr).
pub(crate) const MAX_FDS: usize = 3;

/// An iovec over one byte.
fn one_byte(byte: &mut [u8; 1]) -> libc::iovec {
    libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    }
}

/// A message header carrying `iov`, without control data yet.
fn message(iov: &mut libc::iovec) -> libc::msghdr {
    // SAFETY: a zeroed msghdr is valid; the caller sets the control data.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg
}

/// Sends `fds` (at most [`MAX_FDS`]) with one byte of data.
pub(crate) fn send_fds(socket: &UnixStream, fds: &[RawFd]) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS, "at most {MAX_FDS} fds per message");
    let mut byte = [fds.len() as u8];
    let mut iov = one_byte(&mut byte);
    let mut control = [0u64; 8];
    let mut msg = message(&mut iov);
    if !fds.is_empty() {
        let payload = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE is a pure size computation.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as usize;
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: `control` is aligned and large enough for one cmsg of
        // MAX_FDS fds; the header and data are written inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast(), fds.len());
        }
    }
    loop {
        // SAFETY: `msg` points at live buffers for the call.
        let rc = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if rc >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Receives one message of [`send_fds`]; the fds arrive close-on-exec.
pub(crate) fn recv_fds(socket: &UnixStream) -> io::Result<Vec<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = one_byte(&mut byte);
    let mut control = [0u64; 8];
    let mut msg = message(&mut iov);
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    let rc = loop {
        // SAFETY: `msg` points at live buffers for the call.
        let rc = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if rc >= 0 {
            break rc;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    if rc == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the spawn thread closed its socket",
        ));
    }
    let mut fds = Vec::new();
    // SAFETY: walks the control messages the kernel wrote into `control`;
    // each SCM_RIGHTS payload is an array of fresh fds we now own.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let len = (*cmsg).cmsg_len - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if fds.len() != byte[0] as usize {
        return Err(io::Error::other(format!(
            "expected {} fds from the spawn thread, got {}",
            byte[0],
            fds.len()
        )));
    }
    Ok(fds)
}
