//! The crate's layering (docs/ARCHITECTURE.md#layering), enforced: every
//! source file under `src/` is read, and a module that names a module of a
//! higher layer (`crate::sweep`, `crate::{check, ..}`, `super::super::plan`,
//! `$crate::..`) fails the test with the file and line. Comments are not
//! read: a doc link upward is documentation, not a dependency.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first, and the top-level modules of each (a file
/// `src/x.rs` or a directory `src/x/`). Code may name modules of its own
/// layer and of the layers below it, never one above.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "error",
            "units",
            "rng",
            "ranges",
            "machine",
            "input",
            "output",
            "interrupt",
            "invariants",
        ],
    ),
    (
        "simulator",
        &[
            "model",
            "catalog",
            "traffic",
            "cache",
            "scheduler",
            "hardware",
            "engine",
            "metrics",
            "calibrate",
            "scenario",
        ],
    ),
    (
        "commands",
        &["sweep", "check", "plan", "report", "validate"],
    ),
    ("command line", &["cli", "lib", "main"]),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/engine/fast.rs` is
/// `[engine, fast]`, `src/engine/mod.rs` is `[engine]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The top-level modules a line of code names through `crate::` (or
/// `$crate::`) and through `super::` chains that climb out of its own
/// top-level module.
fn named_modules(line: &str, module: &[String]) -> Vec<String> {
    let mut named = Vec::new();
    // `crate::x` and `crate::{x, y::z}`.
    for (i, _) in line.match_indices("crate::") {
        if i > 0 && is_ident(line[..i].chars().last().unwrap()) {
            continue; // e.g. `kvsim_crate::`
        }
        let rest = &line[i + "crate::".len()..];
        if let Some(inner) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        named.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            named.push(item);
        } else {
            named.push(rest.to_string());
        }
    }
    // `super::super::x`: climbing `n` levels from a module `n` deep reaches
    // the crate root, and `x` is a top-level module.
    for (i, _) in line.match_indices("super::") {
        if i > 0 && (is_ident(line[..i].chars().last().unwrap()) || line[..i].ends_with("::")) {
            continue; // the middle of a chain, counted from its start
        }
        let mut rest = &line[i..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            up += 1;
            rest = r;
        }
        if up >= module.len() {
            named.push(rest.to_string());
        }
    }
    named
        .into_iter()
        .map(|n| n.trim().chars().take_while(|&c| is_ident(c)).collect())
        .filter(|n: &String| !n.is_empty() && n != "self")
        .collect()
}

#[test]
fn no_module_names_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    let mut breaches = Vec::new();
    let mut unknown = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let module = module_path(rel);
        let top = &module[0];
        let Some(own) = layer_of(top) else {
            unknown.insert(top.clone());
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for named in named_modules(line, &module) {
                match layer_of(&named) {
                    Some(l) if l > own => breaches.push(format!(
                        "src/{}:{}: `{top}` ({}) names `{named}` ({}): {}",
                        rel.display(),
                        n + 1,
                        LAYERS[own].0,
                        LAYERS[l].0,
                        line.trim()
                    )),
                    Some(_) => {}
                    // Items of the crate root (`crate::Error`) are re-exports
                    // from the foundation.
                    None if named.starts_with(char::is_uppercase) => {}
                    None => {
                        unknown.insert(format!("{named} (named in src/{})", rel.display()));
                    }
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from the layer table in tests/kvsim/layering.rs \
         (and docs/ARCHITECTURE.md#layering): {unknown:?}"
    );
    assert!(
        breaches.is_empty(),
        "a lower layer names a higher one:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn the_scanner_sees_every_form() {
    let deep = ["engine".to_string(), "fast".to_string()];
    assert_eq!(
        named_modules("use crate::sweep::replicate_seed;", &deep),
        ["sweep"]
    );
    assert_eq!(
        named_modules("use crate::{check::CheckSpec, plan};", &deep),
        ["check", "plan"]
    );
    assert_eq!(
        named_modules("use super::super::report::x;", &deep),
        ["report"]
    );
    assert_eq!(
        named_modules("use super::queue::EventQueue;", &deep),
        Vec::<String>::new()
    );
    assert_eq!(
        named_modules("if $crate::invariants::ENABLED {", &deep),
        ["invariants"]
    );
    let top = ["engine".to_string()];
    assert_eq!(named_modules("use super::cli::Cli;", &top), ["cli"]);
}

/// Every `docs/ARCHITECTURE.md#section` a source file cites is a heading of
/// that file (GitHub's anchors: lower case, spaces to dashes, punctuation
/// dropped), so renaming a section cannot strand its citations.
#[test]
fn every_architecture_citation_names_a_heading() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md")).unwrap();
    let anchors: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|&c| is_ident(c) || c == ' ' || c == '-')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut cited = 0;
    for file in &files {
        if file.ends_with("tests/kvsim/layering.rs") {
            continue; // this test names the patterns it looks for
        }
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            !text.contains("DESIGN.md"),
            "{} cites DESIGN.md",
            file.display()
        );
        for (i, _) in text.match_indices("ARCHITECTURE.md#") {
            let anchor: String = text[i + "ARCHITECTURE.md#".len()..]
                .chars()
                .take_while(|&c| is_ident(c) || c == '-')
                .collect();
            assert!(
                anchors.contains(&anchor),
                "{} cites docs/ARCHITECTURE.md#{anchor}, which is not a heading",
                file.display()
            );
            cited += 1;
        }
    }
    assert!(cited >= 10, "only {cited} citations found");
}
