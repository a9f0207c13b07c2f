//! Writes Dapr's CRDs, rendered from the `crds` crate's types, into `charts/dapr/crds/`.
//!
//! Usage: `cargo run -p crds --bin crdgen [OUT_DIR]`; `OUT_DIR` defaults to the chart folder of
//! this workspace, so the committed files are regenerated in place.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let out = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/dapr/crds"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&out)?;
    for (file, crd) in crds::files() {
        let path = out.join(file);
        std::fs::write(&path, crds::to_yaml(&crd))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
