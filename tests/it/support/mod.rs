//! Helpers shared by the integration tests: local emulators and paths.

#![allow(dead_code)]

pub mod lambda_events;
pub mod mock_clevertap;
pub mod moto;
pub mod runtime_api;

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared`, beside the repository, where the conformance cases live.
pub fn shared_dir() -> PathBuf {
    repo_root().join("..").join("shared")
}

/// The built `rudder-clevertap` binary.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rudder-clevertap"))
}
