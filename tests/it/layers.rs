//! The layering holds: no import cycle among the files under `src/` is longer than two files
//! (docs/architecture.md, "Layers"). Reads every `crate::` and `super::` path of every file
//! (test modules left out), resolves it to the file that defines that module, and looks for
//! strongly connected groups of files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, as its module path (`["engine", "settle"]`; `mod.rs` is its
/// folder's module, `lib.rs` the root).
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files
        .into_iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| {
            let rel = f.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            (parts, f)
        })
        .collect()
}

/// The code of a file before its first `#[cfg(test)]` (test modules may import anything),
/// without comments (a doc comment may name any module).
fn production_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let code = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Files that only tests compile.
fn is_test_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name == "tests.rs" || name.ends_with("_tests.rs") || name == "fakes.rs"
}

/// The module paths a file names: `crate::a::b::c` and `super::x` paths, and the members of
/// `use crate::a::{b, c::d}` groups one level deep.
fn named_paths(module: &[String], is_mod_file: bool, text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(start) {
            let begin = from + at;
            from = begin + start.len();
            if begin > 0 && (bytes[begin - 1].is_ascii_alphanumeric() || bytes[begin - 1] == b'_') {
                continue;
            }
            let mut base: Vec<String> = if start == "crate::" {
                Vec::new()
            } else {
                // `super` of a `mod.rs` is its folder's parent; of a file, its folder.
                let mut m = module.to_vec();
                if !is_mod_file || !m.is_empty() {
                    m.pop();
                }
                m
            };
            let rest = &text[from..];
            let path_end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let path = &rest[..path_end];
            for seg in path.split("::").filter(|s| !s.is_empty() && *s != "super") {
                base.push(seg.to_owned());
            }
            out.push(base.clone());
            if (path.is_empty() || path.ends_with("::")) && rest[path_end..].starts_with('{') {
                let group = &rest[path_end + 1..];
                let close = group.find('}').unwrap_or(0);
                for member in group[..close].split(',') {
                    let first = member.trim().split("::").next().unwrap_or("").trim();
                    if !first.is_empty() && first != "self" {
                        let mut p = base.clone();
                        p.push(first.to_owned());
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

/// The file of the longest prefix of `path` that is a module.
fn resolve<'m>(
    path: &[String],
    modules: &'m BTreeMap<Vec<String>, PathBuf>,
) -> Option<&'m Vec<String>> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get_key_value(&path[..n]).map(|(k, _)| k))
}

/// Strongly connected groups of more than one file (Tarjan's algorithm, iterative enough for a
/// tree of this size).
fn cycles(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        next: usize,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.clone());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                s.out.push(group);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn import_graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let modules = modules(src);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in modules.iter().filter(|(_, f)| !is_test_file(f)) {
        let is_mod_file = file.ends_with("mod.rs") || file.ends_with("lib.rs");
        let targets = edges.entry(module.clone()).or_default();
        for path in named_paths(module, is_mod_file, &production_text(file)) {
            if let Some(target) = resolve(&path, &modules)
                && target != module
                // A module's own parent only declares it; naming the parent's items is an import.
                && !target.is_empty()
            {
                targets.insert(target.clone());
            }
        }
    }
    edges
}

#[test]
fn no_import_cycle_among_the_files_under_src_is_longer_than_two_files() {
    // LAYERS_SRC checks another tree (e.g. an older checkout's `src`).
    let src = std::env::var_os("LAYERS_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let edges = import_graph(&src);
    assert!(edges.len() > 60, "every file is read: {}", edges.len());
    let long: Vec<_> = cycles(&edges)
        .into_iter()
        .filter(|group| group.len() > 2)
        .map(|group| group.iter().map(|m| m.join("::")).collect::<Vec<_>>())
        .collect();
    assert!(
        long.is_empty(),
        "import cycles longer than two files: {long:?}"
    );
}

#[test]
fn a_three_file_cycle_is_found() {
    let m = |s: &str| vec![s.to_owned()];
    let mut edges = BTreeMap::new();
    edges.insert(m("a"), BTreeSet::from([m("b")]));
    edges.insert(m("b"), BTreeSet::from([m("c")]));
    edges.insert(m("c"), BTreeSet::from([m("a")]));
    edges.insert(m("d"), BTreeSet::from([m("a")]));
    let found = cycles(&edges);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 3);
}

#[test]
fn paths_in_use_groups_and_super_are_resolved() {
    let module = vec!["engine".to_owned(), "settle".to_owned()];
    let paths = named_paths(
        &module,
        false,
        "use super::{Engine, carry};\nuse crate::dead_letters::{self, Group};\nx(crate::ports::Ports);",
    );
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert!(joined.contains(&"engine::carry".to_owned()), "{joined:?}");
    assert!(
        joined.contains(&"dead_letters::Group".to_owned()),
        "{joined:?}"
    );
    assert!(joined.contains(&"ports::Ports".to_owned()), "{joined:?}");
}
