//! The layers hold: each top-level module of `src/` has a rank, and a module
//! may only use modules of a lower rank (`crate::x` in any form, tests left
//! out). No cycle can then form between folders, `store/` and `domain/` see
//! nothing above them, and the adapters (REST, SCIM, dashboard, drop
//! directory, outbound senders) never use each other: each reaches the
//! services, or the shared HTTP layer, below it. Every source file stays
//! under `MAX_LINES` lines before its tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lower ranks sit below higher ones.
const RANKS: &[(&str, u8)] = &[
    ("error", 0),
    ("clock", 0),
    ("domain", 1),
    ("config", 2),
    ("metrics", 2),
    ("store", 2),
    ("telemetry", 3),
    ("systemd", 3),
    ("dropfile", 3),
    ("service", 4),
    ("listener", 5),
    ("http", 6),
    ("api", 7),
    ("scim", 7),
    ("web", 7),
    ("dropdir", 7),
    ("outbound", 7),
    ("server", 8),
    ("healthcheck", 8),
    ("cli", 9),
];

const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
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

/// `src/api/auth.rs` → `api`; `src/config.rs` → `config`.
fn top_module(relative: &Path) -> String {
    let first = relative.components().next().unwrap();
    let first = first.as_os_str().to_str().unwrap();
    first.strip_suffix(".rs").unwrap_or(first).to_string()
}

/// The file's code before its `#[cfg(test)]` module, line comments removed.
fn code_before_tests(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file names through `crate::`, grouped `use`s too.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            used.extend(group_heads(&group[..end]));
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    used.retain(|name| name.starts_with(|c: char| c.is_ascii_lowercase()));
    used
}

/// `api, service::{a, b}, store::x as y` → api, service, store.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item = String::new();
    for c in group.chars().chain(std::iter::once(',')) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let head: String = item
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !head.is_empty() {
                    heads.push(head);
                }
                item.clear();
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            item.push(c);
        }
    }
    heads
}

struct Tree {
    /// (from, to) → the files that make the use.
    uses: BTreeMap<(String, String), BTreeSet<String>>,
    lines_before_tests: BTreeMap<String, usize>,
    axum_users: BTreeMap<String, String>,
}

fn read_tree() -> Tree {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut tree = Tree {
        uses: BTreeMap::new(),
        lines_before_tests: BTreeMap::new(),
        axum_users: BTreeMap::new(),
    };
    for path in files {
        let relative = path.strip_prefix(&root).unwrap().to_path_buf();
        let name = relative.to_str().unwrap().replace('\\', "/");
        let module = top_module(&relative);
        let text = std::fs::read_to_string(&path).unwrap();
        let code = code_before_tests(&text);
        tree.lines_before_tests
            .insert(name.clone(), code.lines().count());
        if code.contains("axum") {
            tree.axum_users.insert(name.clone(), module.clone());
        }
        if module == "lib" || module == "main" {
            continue;
        }
        for used in used_modules(&code) {
            if used != module {
                tree.uses
                    .entry((module.clone(), used))
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    // A wrong root would find nothing and pass every check.
    assert!(
        tree.lines_before_tests.len() > 100 && tree.uses.len() > 30,
        "read {} files, {} uses: is src/ where the test looks?",
        tree.lines_before_tests.len(),
        tree.uses.len()
    );
    tree
}

fn rank(module: &str) -> u8 {
    RANKS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, rank)| *rank)
        .unwrap_or_else(|| panic!("src/{module} has no rank in tests/it/architecture.rs"))
}

#[test]
fn every_use_goes_down_the_layers() {
    let tree = read_tree();
    let mut crossings = BTreeSet::new();
    for ((from, to), files) in &tree.uses {
        if rank(to) >= rank(from) {
            crossings.insert((from.as_str(), to.as_str(), files));
        }
    }
    assert!(
        crossings.is_empty(),
        "uses against the layers: {crossings:?}"
    );
}

#[test]
fn the_layers_below_the_adapters_know_no_http_framework() {
    let tree = read_tree();
    let below: Vec<_> = tree
        .axum_users
        .iter()
        .filter(|(_, module)| rank(module) <= rank("service"))
        .map(|(file, _)| file)
        .collect();
    assert!(below.is_empty(), "axum below the HTTP layer: {below:?}");
}

#[test]
fn source_files_stay_readable() {
    let tree = read_tree();
    let long: BTreeSet<&str> = tree
        .lines_before_tests
        .iter()
        .filter(|(_, lines)| **lines > MAX_LINES)
        .map(|(file, _)| file.as_str())
        .collect();
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines before tests: {:?}",
        long.iter()
            .map(|file| (file, tree.lines_before_tests[*file]))
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_reader_finds_what_it_is_told() {
    let code =
        "use crate::{api, service::{a, b}, store::x as y};\nlet z = crate::domain::Role::Seller;";
    let used = used_modules(code);
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        ["api", "domain", "service", "store"]
    );
    assert_eq!(
        code_before_tests("use crate::a; // crate::b\n#[cfg(test)]\nmod tests { use crate::c; }"),
        "use crate::a; "
    );
}
