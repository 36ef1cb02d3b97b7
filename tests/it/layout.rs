//! The workspace's shape, checked: no two files of a crate import each other, its top-level
//! modules form no cycle, and flowload-core depends on no libtorch, clap, plotters or
//! indicatif, so that a Python extension or a fuzz target built on it carries none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::repo_root;

/// Every `.rs` file under `src`, by its module path (`source::encoded::parquet`), with its text.
fn modules(src: &Path) -> BTreeMap<Vec<String>, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    parts.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    parts.pop();
                }
                found.insert(parts, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    found
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let (prefix, inner) = (&tree[..open], &tree[open + 1..tree.len() - 1]);
    let (mut parts, mut depth, mut cur) = (Vec::new(), 0, String::new());
    for ch in inner.chars() {
        match ch {
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => {
                depth += (ch == '{') as i32 - (ch == '}') as i32;
                cur.push(ch);
            }
        }
    }
    parts.push(cur);
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p))
        .map(|p| format!("{prefix}{p}"))
        .collect()
}

/// The paths a file names through `crate::`, `super::` or `self::`, outside its tests: its `use`
/// trees, and paths written inline.
fn paths(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.split("#[cfg(test)]").next().unwrap_or("");
    let mut found = Vec::new();
    // A `use` item starts a line (after `pub` or `pub(crate)`) and runs to its `;`.
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let item = line.trim_start();
        let item = item
            .strip_prefix("pub(crate) ")
            .or_else(|| item.strip_prefix("pub "))
            .unwrap_or(item);
        if let Some(tree) = item.strip_prefix("use ") {
            let start = offset + line.len() - tree.len();
            let end = code[start..].find(';').map_or(code.len(), |e| start + e);
            found.extend(expand(&code[start..end]));
        }
        offset += line.len();
    }
    for word in code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
        if word.starts_with("crate::") || word.starts_with("super::") {
            found.push(word.to_string());
        }
    }
    found
}

/// Which files each file of the crate under `src` imports (by module path).
fn imports(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mods = modules(src);
    let mut graph = BTreeMap::new();
    for (me, text) in &mods {
        let mut to = BTreeSet::new();
        for path in paths(text) {
            let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            let mut base: Vec<String> = match segs.first() {
                Some(&"crate") => Vec::new(),
                Some(&"super" | &"self") => me.clone(),
                _ => continue,
            };
            while let Some(&s) = segs.first() {
                match s {
                    "crate" | "self" => {}
                    "super" => {
                        base.pop();
                    }
                    _ => break,
                }
                segs.remove(0);
            }
            base.extend(segs.iter().map(|s| s.to_string()));
            // The longest prefix that is a file is what the path imports.
            while !base.is_empty() && !mods.contains_key(&base) {
                base.pop();
            }
            if &base != me && !base.is_empty() {
                to.insert(base);
            }
        }
        graph.insert(me.clone(), to);
    }
    graph
}

/// Sibling files (same parent module) that import each other, and cycles among top-level
/// modules, as text; empty when there are none.
fn circles(src: &Path) -> Vec<String> {
    let graph = imports(src);
    let mut found = Vec::new();
    for (a, tos) in &graph {
        for b in tos {
            let siblings = a.len() == b.len() && a[..a.len() - 1] == b[..b.len() - 1];
            if siblings && a < b && graph.get(b).is_some_and(|t| t.contains(a)) {
                found.push(format!("{} <-> {}", a.join("::"), b.join("::")));
            }
        }
    }
    let mut top: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (a, tos) in &graph {
        for b in tos {
            if let (Some(x), Some(y)) = (a.first(), b.first())
                && x != y
            {
                top.entry(x).or_default().insert(y);
            }
        }
    }
    // A cycle among top-level modules is a path from some module back to itself.
    for &start in top.keys() {
        let mut stack = vec![vec![start]];
        while let Some(path) = stack.pop() {
            for &next in top.get(path.last().unwrap()).into_iter().flatten() {
                if next == start {
                    found.push(format!("{} -> {start}", path.join(" -> ")));
                } else if !path.contains(&next) && next > start {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
    found
}

fn crates() -> [PathBuf; 2] {
    let root = repo_root();
    [root.join("src"), root.join("crates/core/src")]
}

#[test]
fn no_file_imports_a_sibling_that_imports_it_and_no_module_cycle() {
    for src in crates() {
        assert_eq!(circles(&src), Vec::<String>::new(), "{}", src.display());
        // The checker sees imports at all: the core's loader reaches its operators.
        let graph = imports(&src);
        assert!(graph.values().map(BTreeSet::len).sum::<usize>() > 20);
    }
}

#[test]
fn the_checker_finds_an_import_circle_it_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("codec")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod codec;\nmod source;\n").unwrap();
    std::fs::write(src.join("codec/mod.rs"), "mod png;\nmod jpeg;\n").unwrap();
    std::fs::write(src.join("codec/png.rs"), "use super::jpeg::Header;\n").unwrap();
    std::fs::write(src.join("codec/jpeg.rs"), "use super::{png::{X, Y}};\n").unwrap();
    std::fs::write(src.join("source.rs"), "fn f() { crate::codec::png::X }\n").unwrap();
    assert_eq!(circles(src), vec!["codec::jpeg <-> codec::png"]);
    std::fs::write(src.join("codec/jpeg.rs"), "use crate::source::S;\n").unwrap();
    assert_eq!(circles(src), vec!["codec -> source -> codec"]);
}

#[test]
fn the_core_and_the_python_package_link_no_libtorch_clap_plotters_or_indicatif() {
    // The Python package links the results format too: without its `clap` feature.
    for (package, must) in [
        ("flowload-core", ["timely", "parquet"]),
        ("flowload-python", ["flowload-results", "pyo3"]),
    ] {
        let o = Command::new(env!("CARGO"))
            .args([
                "tree",
                "--offline",
                "-p",
                package,
                "-e",
                "normal",
                "--prefix",
                "none",
            ])
            .current_dir(repo_root())
            .output()
            .expect("cargo tree runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let tree = String::from_utf8_lossy(&o.stdout);
        let names: BTreeSet<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
        assert!(must.iter().all(|m| names.contains(m)), "{tree}");
        for heavy in ["tch", "torch-sys", "clap", "plotters", "indicatif"] {
            assert!(!names.contains(heavy), "{package} depends on {heavy}");
        }
    }
}
