//! Helpers shared by the integration tests: local emulators and paths.

#![allow(dead_code)]

pub mod lambda_events;
pub mod mock_clevertap;
pub mod moto;
pub mod runtime_api;
pub mod slow_sqs;
pub mod sqs_proxy;

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/conformance`: the reference's expected records (its README says whence).
pub fn conformance_dir() -> PathBuf {
    repo_root()
        .join("tests")
        .join("fixtures")
        .join("conformance")
}

/// The built `rudder-clevertap` binary; `RUDDER_CLEVERTAP_BIN` names another build (the
/// release binary, for a memory figure: BENCHMARKS.md).
pub fn binary() -> PathBuf {
    std::env::var_os("RUDDER_CLEVERTAP_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_rudder-clevertap")),
        PathBuf::from,
    )
}
