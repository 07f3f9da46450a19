//! The manifest section parser: any bytes as a whole component, and any
//! bytes as the manifest section of a minimal component. Never panics; a
//! manifest read from a section is the one its text parses to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmproc_host::manifest::{MAX_SECTION_BYTES, Manifest, SECTION_NAME};

fuzz_target!(|data: &[u8]| {
    let _ = Manifest::from_component("fuzz", data);
    let mut component = wasm_encoder::Component::new();
    component.section(&wasm_encoder::CustomSection {
        name: SECTION_NAME.into(),
        data: data.into(),
    });
    let bytes = component.finish();
    match Manifest::from_component("fuzz", &bytes) {
        Ok(Some(manifest)) => {
            assert!(
                data.len() <= MAX_SECTION_BYTES,
                "an oversized section was read"
            );
            let text = std::str::from_utf8(data)
                .expect("a manifest was read from bytes that are not UTF-8");
            assert_eq!(Manifest::parse("fuzz", text).ok(), Some(manifest));
        }
        Ok(None) => panic!("the manifest section was not found"),
        Err(_) => {}
    }
});
