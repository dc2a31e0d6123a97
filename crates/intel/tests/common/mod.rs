//! Helpers shared by the tests that read `../shared`.

use std::path::PathBuf;

/// The shared data directory: `DOZOR_SHARED_DIR`, else `../shared` next to the repository.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("DOZOR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}
