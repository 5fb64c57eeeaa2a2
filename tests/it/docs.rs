//! The docs name real files: every path under `src/`, `tests/`, `scripts/`, `benches/`,
//! `events/` or `docs/` that docs/architecture.md names in backticks exists, so the map cannot
//! drift from the code it describes.

use std::path::Path;

/// The backticked paths of `text` that start with one of the project's folders.
fn named_paths(text: &str) -> Vec<String> {
    const ROOTS: [&str; 6] = ["src/", "tests/", "scripts/", "benches/", "events/", "docs/"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| ROOTS.iter().any(|root| span.starts_with(root)))
        .filter(|span| !span.contains(' '))
        .map(|span| span.trim_end_matches('/').to_owned())
        .collect()
}

#[test]
fn every_file_the_architecture_map_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let named = named_paths(&text);
    assert!(named.len() > 40, "the map names its files: {named:?}");
    let missing: Vec<&String> = named.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md names missing files: {missing:?}"
    );
}

#[test]
fn a_path_that_does_not_exist_is_caught() {
    let named = named_paths("see `src/nowhere.rs` and `src/lib.rs`, not `cargo test`");
    assert_eq!(named, ["src/nowhere.rs", "src/lib.rs"]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(!root.join(&named[0]).exists());
}
