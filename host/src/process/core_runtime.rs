//! The process core: one small tokio runtime per [`ProcessManager`] on
//! which every managed process is monitored (pidfd and pipes through the
//! reactor, no thread per process), and the bridges callers use to reach
//! it from any executor, or from none ([`block_on`]).
//!
//! The core also listens for `SIGCHLD` through its reactor: the host is a
//! subreaper, so an orphan of a guest's tree that ends becomes the host's
//! zombie, and a `SIGCHLD` with such a zombie waiting asks for a sweep
//! ([`sweep_orphans_soon`]). Orphans are reaped as they end, not only when
//! a managed process ends.
//!
//! [`ProcessManager`]: crate::ProcessManager

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Duration;

/// Name of the process core's threads.
pub(crate) const THREAD_NAME: &str = "wasmproc-core";

/// The runtime that carries every managed process of one manager.
#[derive(Debug)]
pub(crate) struct ProcessCore {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
}

impl ProcessCore {
    /// A runtime with one worker thread (all monitoring is I/O-bound).
    pub(crate) fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            // Nothing here blocks for long; keep the pool for the rare
            // blocking reap small.
            .max_blocking_threads(2)
            .thread_name(THREAD_NAME)
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        handle.spawn(sweep_on_sigchld(handle.clone()));
        Ok(Self {
            runtime: Some(runtime),
            handle,
        })
    }

    /// A handle for spawning onto the core.
    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `fut` on the core and waits for it from whatever executor the
    /// caller is on. `None` if the core shut down first.
    pub(crate) async fn run<F>(&self, fut: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        on_core(&self.handle, fut).await
    }
}

/// Runs `fut` on the core behind `handle` and waits for it from any
/// executor. `None` if the core shut down first.
pub(crate) async fn on_core<F>(handle: &tokio::runtime::Handle, fut: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    handle.spawn(fut).await.ok()
}

impl Drop for ProcessCore {
    fn drop(&mut self) {
        // Never blocks, so a manager may be dropped inside an async task.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// How long after a reap the orphan sweep runs, with no child live: reaps
/// within this window share one sweep (each reads every child of the host,
/// so a sweep per reap would cost O(n²) when many processes end at once).
const SWEEP_DELAY: Duration = Duration::from_millis(10);

/// How much longer the sweep waits per child the host has live. A sweep's
/// scan of the host's children costs about 0.1 µs each in the kernel, and
/// holds the lock a start needs meanwhile; spacing sweeps 10 µs per child
/// keeps them to about 1% of one core under constant churn, whatever the
/// number of live processes. An orphan then waits at most 110 ms at 10,000
/// live processes to be reaped, and never more than [`SWEEP_DELAY_MAX`].
const SWEEP_DELAY_PER_CHILD: Duration = Duration::from_micros(10);

/// The longest an ended orphan waits for its sweep.
const SWEEP_DELAY_MAX: Duration = Duration::from_secs(1);

/// The delay before a sweep with `children` of the host live.
fn sweep_delay(children: usize) -> Duration {
    let per_child =
        SWEEP_DELAY_PER_CHILD.saturating_mul(u32::try_from(children).unwrap_or(u32::MAX));
    SWEEP_DELAY.saturating_add(per_child).min(SWEEP_DELAY_MAX)
}

/// Asks for a sweep of orphaned zombies (the host is a subreaper) soon, on
/// the core: one sweep serves every reap until it starts.
pub(crate) fn sweep_orphans_soon(handle: &tokio::runtime::Handle) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static PENDING: AtomicBool = AtomicBool::new(false);
    /// Clears the request when the sweep starts, or when a core that
    /// shuts down drops it unrun, so later reaps can ask again.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            PENDING.store(false, Ordering::Release);
        }
    }
    if PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    let clear = Clear;
    handle.spawn(async move {
        let children = crate::os::subreaper::reaper().leader_count();
        tokio::time::sleep(sweep_delay(children)).await;
        // Cleared first: a reap from now on asks for a sweep of its own.
        drop(clear);
        // Off the core's worker: a sweep reads every child of the host, and
        // the monitors keep reaping meanwhile.
        let _ = tokio::task::spawn_blocking(|| crate::os::subreaper::reaper().reap_orphans()).await;
    });
}

/// Asks for an orphan sweep at every `SIGCHLD` (signals that arrive close
/// together are delivered once, and sweeps within [`sweep_delay`] share
/// one), for as long as the core runs.
async fn sweep_on_sigchld(handle: tokio::runtime::Handle) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigchld = match signal(SignalKind::child()) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGCHLD; orphans are reaped after managed exits only");
            return;
        }
    };
    while sigchld.recv().await.is_some() {
        if crate::os::subreaper::reaper().orphan_waiting() {
            sweep_orphans_soon(&handle);
        }
    }
}

/// Runs a future to completion on the calling thread, parking it between
/// wake-ups. For sync callers: the futures of this crate do their work on
/// the process core, so they need no runtime of the caller's. Inside an
/// async task, `.await` them instead: this blocks the thread.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    // Parked here, this thread drives no reactor: a `run` awaited inside
    // must be monitored on the core even within `block_on_here`.
    let _restore = OwnReactor::set(false);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

thread_local! {
    /// Set while this thread drives a reactor of its own for a synchronous
    /// caller ([`block_on_here`]).
    static OWN_REACTOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets [`OWN_REACTOR`] for a scope; restores it however the scope ends
/// (a panic included).
struct OwnReactor(bool);

impl OwnReactor {
    fn set(on: bool) -> Self {
        Self(OWN_REACTOR.with(|flag| flag.replace(on)))
    }
}

impl Drop for OwnReactor {
    fn drop(&mut self) {
        OWN_REACTOR.with(|flag| flag.set(self.0));
    }
}

/// Whether the calling thread is inside [`block_on_here`] or
/// [`on_caller_reactor`]: the current tokio context is a runtime whose
/// reactor this thread's task is polled by, so a future may register fds
/// with it and be woken by it directly.
pub(crate) fn on_own_reactor() -> bool {
    OWN_REACTOR.with(std::cell::Cell::get)
}

/// Polls `fut` so that a `run` inside it is monitored by the reactor of
/// the tokio runtime polling it, when there is one: the child's pidfd and
/// pipes are registered with the caller's runtime and its workers reap and
/// read them, with no hand-off to the process core and back per call. That
/// runtime needs I/O and time enabled (`enable_all`), as wasmtime-wasi's
/// ambient runtime does. Polled outside any tokio runtime, or inside a
/// [`block_on`] within it (a parked thread), `run` uses the core as usual.
pub(crate) async fn on_caller_reactor<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        let _restore = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| OwnReactor::set(true));
        fut.as_mut().poll(cx)
    })
    .await
}

/// Runs a future for a synchronous caller on the calling thread, on a
/// current-thread runtime of its own (I/O and timers), so that a `run`
/// inside it is monitored by this thread's reactor: the child's exit wakes
/// the caller directly, with no hand-off to the process core and back.
///
/// Inside a tokio context (where a second runtime cannot be entered), or
/// when no runtime can be built, it falls back to wasmtime-wasi's
/// `in_tokio`, and processes are monitored on the core as usual.
pub(crate) fn block_on_here<F: Future>(fut: F) -> F::Output {
    if tokio::runtime::Handle::try_current().is_ok() {
        return wasmtime_wasi::runtime::in_tokio(fut);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build a runtime for the calling thread");
            return wasmtime_wasi::runtime::in_tokio(fut);
        }
    };
    /// Tasks the guest's WASI context left (a blocked stdin read) are
    /// dropped, never waited for, however the future ends (a panic too).
    struct Background(Option<tokio::runtime::Runtime>);
    impl Drop for Background {
        fn drop(&mut self) {
            if let Some(runtime) = self.0.take() {
                runtime.shutdown_background();
            }
        }
    }
    let background = Background(Some(runtime));
    let _restore = OwnReactor::set(true);
    let runtime = background.0.as_ref().expect("taken only when dropped");
    runtime.block_on(fut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_block_on_without_runtime_good() {
        let core = ProcessCore::new().unwrap();
        let got = block_on(core.run(async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            7
        }));
        assert_eq!(got, Some(7));
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard, "the soft fd limit is raised to the hard one");
    }

    #[test]
    fn sweep_delay_grows_with_children_and_is_capped_good() {
        assert_eq!(sweep_delay(0), SWEEP_DELAY);
        assert_eq!(sweep_delay(6_000), Duration::from_millis(70));
        assert!(sweep_delay(10_000) <= Duration::from_millis(110));
        assert_eq!(sweep_delay(usize::MAX), SWEEP_DELAY_MAX);
    }
}
