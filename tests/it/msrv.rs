//! `rust-version` in Cargo.toml is what the locked dependencies need: the newest
//! `rust-version` among the packages of Cargo.lock. Too low, a user on an older toolchain gets
//! a confusing build error instead of cargo's "requires rustc X"; too high, it refuses
//! toolchains that would work.

use serde_json::Value;
use std::process::Command;

fn version(text: &str) -> Vec<u64> {
    text.split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

#[test]
fn rust_version_is_the_newest_that_a_locked_dependency_needs() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        // Not --offline: a fresh machine's build has downloaded only its own platform's
        // crates, and metadata reads every locked package (crates.io is reachable wherever
        // the build is).
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let ours = packages
        .iter()
        .find(|p| p["name"] == env!("CARGO_PKG_NAME"))
        .expect("this package");
    let declared = ours["rust_version"]
        .as_str()
        .expect("Cargo.toml sets rust-version");
    let (needed, by) = packages
        .iter()
        .filter(|p| p["name"] != env!("CARGO_PKG_NAME"))
        .filter_map(|p| Some((version(p["rust_version"].as_str()?), p["name"].as_str()?)))
        .max()
        .expect("some dependency states its rust-version");
    assert_eq!(
        version(declared),
        needed,
        "Cargo.toml says rust-version {declared}; the lock needs {needed:?} ({by})"
    );
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(
        readme.contains(&format!("Rust {declared} or newer")),
        "README states the Rust version ({declared})"
    );
}
