//! Why a step failed.

use std::io;

use serde_json::{Value, json};
use wasmproc_guest::Error;
use wasmproc_test_guests::{error_detail, error_kind};

/// A failed step: the host refused it, or the probe could not understand it.
pub enum Failure {
    /// The host returned an error.
    Host(Error),
    /// The step is malformed; reported with kind `probe`.
    Probe(String),
}

impl Failure {
    /// `{"kind", "detail"}`.
    pub fn to_json(&self) -> Value {
        match self {
            Failure::Host(error) => json!({
                "kind": error_kind(error),
                "detail": error_detail(error),
            }),
            Failure::Probe(why) => json!({ "kind": "probe", "detail": why }),
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Host(error)
    }
}

impl From<io::Error> for Failure {
    /// Recovers the host error the SDK's readers and writers wrap.
    fn from(error: io::Error) -> Self {
        match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Error>())
        {
            Some(host_error) => Failure::Host(host_error.clone()),
            None => Failure::Host(Error::Io(error.to_string())),
        }
    }
}
