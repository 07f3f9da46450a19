//! What `wasmproc run` and `wasmproc compile` show while a component
//! compiles (seconds for a Python or JavaScript guest): a spinner when
//! stderr is a terminal, one line when it is not, and nothing when
//! `WASMPROC_LOG` asks for warnings or less.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmproc_host::embed::CompileProgress;
use wasmproc_host::embed::Tier;

/// How progress reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A spinner on the terminal, cleared when compilation ends.
    Spinner,
    /// One line on stderr when compilation starts.
    Line,
    /// Nothing.
    Quiet,
}

/// Compile progress on the host's stderr.
#[derive(Debug)]
pub struct StderrProgress {
    mode: Mode,
    spinner: Mutex<Option<ProgressBar>>,
}

/// Progress for this process: quiet when `WASMPROC_LOG` is set to `warn`
/// (or `error`, `off`), a spinner when stderr is a terminal, else one line.
pub fn for_stderr() -> Arc<StderrProgress> {
    let quiet = std::env::var("WASMPROC_LOG").ok().is_some_and(|filter| {
        tracing_subscriber::EnvFilter::try_new(filter)
            .ok()
            .and_then(|f| f.max_level_hint())
            .is_some_and(|level| level < tracing::level_filters::LevelFilter::INFO)
    });
    let mode = if quiet {
        Mode::Quiet
    } else if std::io::stderr().is_terminal() {
        Mode::Spinner
    } else {
        Mode::Line
    };
    Arc::new(StderrProgress {
        mode,
        spinner: Mutex::new(None),
    })
}

fn file_name(component: &Path) -> String {
    component
        .file_name()
        .unwrap_or(component.as_os_str())
        .to_string_lossy()
        .into_owned()
}

impl CompileProgress for StderrProgress {
    fn started(&self, component: &Path, bytes: u64, cached: bool, tier: Tier) {
        let message = format!(
            "compiling {} ({:.0} MB) for this machine, {}{}",
            file_name(component),
            bytes as f64 / 1e6,
            tier.describe(),
            if cached { "; cached for next time" } else { "" }
        );
        match self.mode {
            Mode::Quiet => {}
            Mode::Line => eprintln!("wasmproc: {message}"),
            Mode::Spinner => {
                let spinner = ProgressBar::new_spinner().with_message(message);
                if let Ok(style) =
                    ProgressStyle::with_template("{spinner} wasmproc: {msg} {elapsed}")
                {
                    spinner.set_style(style);
                }
                spinner.enable_steady_tick(Duration::from_millis(100));
                *self.spinner.lock().unwrap_or_else(|e| e.into_inner()) = Some(spinner);
            }
        }
    }

    fn optimized_ready(&self, component: &Path, elapsed: Duration) {
        if self.mode != Mode::Quiet {
            eprintln!(
                "wasmproc: optimized (Cranelift) code for {} cached after {:.1} s; later runs use it",
                file_name(component),
                elapsed.as_secs_f64()
            );
        }
    }

    fn optimized_abandoned(&self, component: &Path) {
        if self.mode != Mode::Quiet {
            eprintln!(
                "wasmproc: the optimized (Cranelift) compile of {name} did not finish before the run ended; \
                 the next run starts it again (`wasmproc compile {name}` makes it ahead of time)",
                name = file_name(component),
            );
        }
    }

    fn finished(&self, component: &Path, elapsed: Duration, succeeded: bool) {
        let spinner = self
            .spinner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
            if succeeded {
                eprintln!(
                    "wasmproc: compiled {} in {:.1} s",
                    file_name(component),
                    elapsed.as_secs_f64()
                );
            }
        }
    }
}
