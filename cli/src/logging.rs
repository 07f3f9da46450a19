//! How the `wasmproc` binary writes its log lines to stderr: the level
//! filter (`WASMPROC_LOG`), the format (`WASMPROC_LOG_FORMAT`) and colour.

use std::ffi::OsStr;
use std::io::IsTerminal;

/// The variable holding the level filter, e.g. `info` or `wasmproc=debug`.
pub const FILTER_ENV: &str = "WASMPROC_LOG";

/// The variable selecting the format: `text` (the default) or `json`.
pub const FORMAT_ENV: &str = "WASMPROC_LOG_FORMAT";

/// How each log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The value of [`FORMAT_ENV`] names no log format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{FORMAT_ENV}={value} is not a log format: use `text` or `json`")]
pub struct UnknownLogFormat {
    /// The value as given (lossily decoded).
    pub value: String,
}

impl LogFormat {
    /// The format named by the value of [`FORMAT_ENV`]; unset or empty
    /// means [`LogFormat::Text`].
    pub fn parse(value: Option<&OsStr>) -> Result<Self, UnknownLogFormat> {
        match value.map(|v| v.to_str()) {
            None => Ok(LogFormat::Text),
            Some(Some("" | "text")) => Ok(LogFormat::Text),
            Some(Some("json")) => Ok(LogFormat::Json),
            Some(_) => Err(UnknownLogFormat {
                value: value.unwrap_or_default().to_string_lossy().into_owned(),
            }),
        }
    }
}

/// Whether text log lines carry colour: only when stderr is a terminal and
/// `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Installs the log subscriber for the whole process, reading the
/// environment; an unknown format is an error.
pub fn init() -> Result<(), UnknownLogFormat> {
    let format = LogFormat::parse(std::env::var_os(FORMAT_ENV).as_deref())?;
    let filter = tracing_subscriber::EnvFilter::try_from_env(FILTER_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let colour = use_colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder.with_ansi(colour).init();
        }
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_text_is_the_default_good() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some(OsStr::new(""))), Ok(LogFormat::Text));
        assert_eq!(
            LogFormat::parse(Some(OsStr::new("text"))),
            Ok(LogFormat::Text)
        );
        assert_eq!(
            LogFormat::parse(Some(OsStr::new("json"))),
            Ok(LogFormat::Json)
        );
    }

    #[test]
    fn format_unknown_bad() {
        let error = LogFormat::parse(Some(OsStr::new("xml"))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "WASMPROC_LOG_FORMAT=xml is not a log format: use `text` or `json`"
        );
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color_good() {
        assert!(use_colour(true, None));
        // An empty NO_COLOR does not count, as no-color.org says.
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
        assert!(!use_colour(false, Some(OsStr::new("1"))));
    }
}
