//! Measures shared by the scale test and benchmark: many live processes
//! started through one guest session, and what the host holds for them
//! (threads, and the fds attributed to each process).

use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmproc_host::Policy;
use wasmproc_host::ProcessCtx;
use wasmproc_host::policy::Limits;
use wasmproc_host::session::CommandSpec;
use wasmproc_host::session::StartSpec;

/// A policy granting `sleep` and `true` with room for `live` processes
/// (rate, registry and buffer limits out of the way).
pub fn policy_for(live: u32) -> Arc<Policy> {
    let limits = Limits {
        max_live_processes: live + 16,
        max_registry_entries: live + 16,
        starts_per_second: 1_000_000,
        start_burst: 1_000_000,
        max_buffered_bytes: 1 << 40,
        ..Limits::default()
    };
    crate::harness::policy_with(&["sleep", "true"], limits)
}

/// Starts one background `sleep secs` with piped stdout and stderr (4 KiB
/// buffers); returns its id and how long the call took.
pub fn start_sleep(ctx: &mut ProcessCtx, secs: u32) -> (String, Duration) {
    let spec = CommandSpec::new("sleep").args([secs.to_string()]);
    let started = Instant::now();
    let id = ctx
        .start(
            spec,
            StartSpec {
                buffer_bytes: Some(4096),
                ..StartSpec::default()
            },
        )
        .expect("start");
    (id, started.elapsed())
}

/// Waits until every process in `pids` has finished starting and sleeps
/// in `nanosleep` (its `/proc/<pid>/wchan`), or until `limit` has passed.
/// Returns how many were still not asleep: a busy process's start-up (the
/// dynamic loader, page faults) competes for the CPU with whatever is
/// measured next.
pub fn wait_until_asleep(pids: &[u32], limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let asleep = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|wchan| wchan.contains("nanosleep"))
    };
    let mut waiting: Vec<u32> = pids.to_vec();
    while !waiting.is_empty() && Instant::now() < deadline {
        waiting.retain(|pid| !asleep(pid));
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    waiting.len()
}

/// Threads of this process now.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// The fewest threads seen over a few samples (other tests' short-lived
/// threads do not count).
pub fn steady_threads() -> usize {
    (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            threads()
        })
        .min()
        .unwrap_or(0)
}

/// The pipe inodes (`pipe:[N]`) a child's stdout and stderr point at.
pub fn child_pipes(pid: u32) -> Vec<String> {
    [1, 2]
        .iter()
        .filter_map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .filter(|t| t.starts_with("pipe:"))
        .collect()
}

/// How many of this process's fds belong to the given children: their
/// pipes and their pidfds.
pub fn fds_held_for(pipes: &std::collections::HashSet<String>, pids: &[u32]) -> usize {
    let pid_lines: std::collections::HashSet<String> =
        pids.iter().map(|p| format!("Pid:\t{p}")).collect();
    let mut held = 0;
    for fd in std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if pipes.contains(target.as_ref()) {
            held += 1;
        } else if target == "anon_inode:[pidfd]" {
            let info = std::fs::read_to_string(
                std::path::Path::new("/proc/self/fdinfo").join(fd.file_name()),
            )
            .unwrap_or_default();
            if info.lines().any(|l| pid_lines.contains(l)) {
                held += 1;
            }
        }
    }
    held
}

/// The bound on the host's threads: 2 × cores + 8.
pub fn thread_bound() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    2 * cores + 8
}
