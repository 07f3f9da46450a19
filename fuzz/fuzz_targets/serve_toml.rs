//! The `wasmproc serve` configuration loader: any text. Never panics; a
//! configuration that loads listens on loopback only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use wasmproc_supervisor::HostConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = HostConfig::parse(text, Path::new("/nonexistent-wasmproc-fuzz")) {
        assert!(config.serve.listen.ip().is_loopback(), "{config:?}");
        assert!(config.registry_dir.is_absolute(), "{config:?}");
    }
});
