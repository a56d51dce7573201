//! Test-only: where the shared real data (`../shared/data`, from outside the project) lives.

use std::path::PathBuf;

/// `/work/shared/data`, found relative to the crate root (works from /work/main and /work/wt/<m>).
pub(crate) fn shared_data_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let one = root.join("../shared/data");
    if one.is_dir() {
        one
    } else {
        root.join("../../shared/data")
    }
}
