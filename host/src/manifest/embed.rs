//! Writing a manifest into a built component (`wasmproc manifest add`): the
//! component's top-level sections are copied as they are, any earlier
//! top-level manifest is dropped, and the new one is appended.

use super::format::{MAX_SECTION_BYTES, ManifestError, SECTION_NAME};
use super::parse::Manifest;
use std::borrow::Cow;
use wasm_encoder::{CustomSection, RawSection};
use wasmparser::{Encoding, Parser, Payload};

/// Returns `component` with `manifest_text` as its top-level manifest.
///
/// The text is parsed first, so a malformed manifest is never written; the
/// input must be a component (not a core module).
pub fn embed(what: &str, component: &[u8], manifest_text: &str) -> Result<Vec<u8>, ManifestError> {
    Manifest::parse(what, manifest_text)?;
    if manifest_text.len() > MAX_SECTION_BYTES {
        return Err(ManifestError::TooLarge {
            what: what.to_string(),
            size: manifest_text.len(),
        });
    }
    let binary = |reason: String| ManifestError::Binary(what.to_string(), reason);
    let mut out = wasm_encoder::Component::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        let payload = payload.map_err(|e| binary(e.to_string()))?;
        let top = depth == 0;
        match &payload {
            Payload::Version { encoding, .. } if top && *encoding != Encoding::Component => {
                return Err(binary(
                    "it is a core module, not a component; build it for wasm32-wasip2".into(),
                ));
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Payload::CustomSection(reader) if top && reader.name() == SECTION_NAME => continue,
            _ => {}
        }
        if !top {
            continue;
        }
        if let Some((id, range)) = payload.as_section() {
            let data = component
                .get(range.clone())
                .ok_or_else(|| binary(format!("section {id} runs past the end of the file")))?;
            out.section(&RawSection { id, data });
        }
    }
    out.section(&CustomSection {
        name: Cow::Borrowed(SECTION_NAME),
        data: Cow::Borrowed(manifest_text.as_bytes()),
    });
    Ok(out.finish())
}
