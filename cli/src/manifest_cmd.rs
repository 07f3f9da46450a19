//! `wasmproc inspect`, `wasmproc grant` and `wasmproc manifest add`.

use crate::cli::{GrantArgs, InspectArgs, ManifestCommand};
use crate::fail;
use std::path::Path;
use wasmproc_host::Policy;
use wasmproc_host::manifest::{self, ComponentDigest, Manifest};

/// Reads a component's manifest; a component without one is an error here.
fn read(component: &Path) -> Result<Manifest, String> {
    Manifest::from_file(component)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "{} carries no plugin manifest (`{}` section); without one it runs on the host's policy alone",
                component.display(),
                manifest::SECTION_NAME
            )
        })
}

/// `wasmproc inspect COMPONENT [--policy FILE]`.
pub(crate) fn inspect(args: &InspectArgs) -> i32 {
    let manifest = match read(&args.component) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let policy = match args.policy.as_deref().map(Policy::from_file).transpose() {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    print!("{}", manifest::inspect_table(&manifest, policy.as_ref()));
    if let Some(pinned) = policy.as_ref().and_then(Policy::component_digest) {
        match ComponentDigest::of_file(&args.component) {
            Ok(actual) if actual == *pinned => {
                println!("\nThe policy is pinned to this component ({actual}).")
            }
            Ok(actual) => println!(
                "\nThe policy is pinned to component {pinned}, not this one ({actual}): it would refuse it."
            ),
            Err(e) => return fail(format!("cannot read {}: {e}", args.component.display())),
        }
    }
    0
}

/// `wasmproc grant COMPONENT`: a policy pinned to the component's digest.
pub(crate) fn grant(args: &GrantArgs) -> i32 {
    let digest = match ComponentDigest::of_file(&args.component) {
        Ok(d) => d,
        Err(e) => return fail(format!("cannot read {}: {e}", args.component.display())),
    };
    match read(&args.component) {
        Ok(m) => {
            let name = args
                .component
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            print!("{}", manifest::grant_policy(&name, &m, &digest));
            0
        }
        Err(e) => fail(e),
    }
}

/// `wasmproc manifest add COMPONENT --manifest FILE [--output FILE]`.
pub(crate) fn manifest(command: ManifestCommand) -> i32 {
    let ManifestCommand::Add {
        component,
        manifest: manifest_file,
        output,
    } = command;
    let added = std::fs::read_to_string(&manifest_file)
        .map_err(|e| format!("cannot read {}: {e}", manifest_file.display()))
        .and_then(|text| {
            let bytes = std::fs::read(&component)
                .map_err(|e| format!("cannot read {}: {e}", component.display()))?;
            manifest::embed(&component.display().to_string(), &bytes, &text)
                .map_err(|e| e.to_string())
        });
    let bytes = match added {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let target = output.unwrap_or(component);
    // Write beside the target and rename, so a reader never sees half a file.
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A temp file of a random name: a leftover of a crash is never in the
    // way, and a link planted beside the target is never written through.
    let written = tempfile::Builder::new()
        .prefix(&format!(".{file}."))
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .and_then(|mut tmp| {
            std::io::Write::write_all(&mut tmp, &bytes)?;
            tmp.persist(&target).map_err(|e| e.error)?;
            Ok(())
        })
        .map_err(|e| format!("cannot write {}: {e}", target.display()));
    match written {
        Ok(()) => {
            println!(
                "{}: manifest from {} written",
                target.display(),
                manifest_file.display()
            );
            0
        }
        Err(e) => fail(e),
    }
}
