//! ARCHITECTURE.md stays true: its crate table matches `cargo metadata`, and dependencies
//! between our crates only point to lower layers.

use std::collections::BTreeMap;
use std::process::Command;

fn rank(layer: &str) -> Option<u8> {
    match layer {
        "L0" => Some(0),
        "L1" => Some(1),
        "L2" | "L2c" => Some(2),
        "L3" => Some(3),
        _ => None, // bin, test, bench: may use anything
    }
}

#[test]
fn crate_table_matches_cargo_metadata_and_layers_point_down() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let doc = std::fs::read_to_string(format!("{root}/ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut table: BTreeMap<String, (String, String)> = BTreeMap::new(); // package -> (path, layer)
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() >= 5
            && (cells[1].starts_with("crates/")
                || cells[1].starts_with("bins/")
                || cells[1].starts_with("bench/"))
        {
            table.insert(
                cells[2].to_owned(),
                (cells[1].to_owned(), cells[3].to_owned()),
            );
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(format!("{root}/Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let root_dir = meta["workspace_root"]
        .as_str()
        .expect("workspace_root")
        .to_owned();
    let packages = meta["packages"].as_array().expect("packages");
    let mut seen = Vec::new();
    for p in packages {
        let name = p["name"].as_str().expect("name");
        let manifest = p["manifest_path"].as_str().expect("manifest_path");
        let rel = manifest
            .trim_start_matches(&root_dir)
            .trim_start_matches('/')
            .trim_end_matches("/Cargo.toml");
        let (path, layer) = table
            .get(name)
            .unwrap_or_else(|| panic!("{name} ({rel}) is missing from ARCHITECTURE.md"));
        assert_eq!(path, rel, "{name} path");
        seen.push(name.to_owned());
        let Some(own) = rank(layer) else { continue };
        for d in p["dependencies"].as_array().expect("deps") {
            let dep = d["name"].as_str().expect("dep name");
            if !d["kind"].is_null() || !table.contains_key(dep) {
                continue; // dev/build dependencies, or external crates
            }
            let dep_layer = &table[dep].1;
            let dep_rank = rank(dep_layer).unwrap_or(u8::MAX);
            assert!(
                dep_rank < own,
                "{name} ({layer}) must not depend on {dep} ({dep_layer})"
            );
        }
    }
    for name in table.keys() {
        assert!(
            seen.contains(name),
            "ARCHITECTURE.md lists {name}, which is not a workspace package"
        );
    }
}

/// The files of one source tree by module path: `src/a/b.rs` and `src/a/b/mod.rs` → `a::b`,
/// `src/lib.rs` → the crate root (empty path).
fn modules(src: &std::path::Path) -> BTreeMap<Vec<String>, std::path::PathBuf> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    // Bounded: a source tree is a few levels deep; 10 000 directories means something is wrong.
    for _ in 0..10_000 {
        let Some(dir) = dirs.pop() else { break };
        for entry in std::fs::read_dir(&dir).expect("source directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let mut segs: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(
                segs.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                segs.pop();
            }
            out.insert(segs, path);
        }
    }
    out
}

/// The code of a file without line comments and without its trailing `#[cfg(test)] mod`
/// (whose `use super::*` means the file itself, not its parent). A `#[cfg(test)] mod x;`
/// declaration (the tests in a file of their own) is skipped and reading goes on.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            let declaration = lines.peek().is_some_and(|next| {
                let next = next.trim();
                next.contains("mod ") && next.ends_with(';') && !next.contains('{')
            });
            if declaration {
                lines.next();
                continue;
            }
            break;
        }
        code.push_str(line.split("//").next().unwrap_or_default());
        code.push('\n');
    }
    code
}

/// Every `crate::…` and `super::…` path in `code`, resolved against the file's own module
/// `own` (`super` of `a::b` is `a`), and every path through one of the file's `children`
/// (`forward::Plan` in `proxy/mod.rs` is `proxy::forward::Plan`); `use` groups
/// (`crate::{a, b::{c, d}}`) are expanded.
fn used_paths(code: &str, own: &[String], children: &[String]) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut keywords: Vec<(String, Vec<String>)> = vec![
        ("crate::".to_owned(), Vec::new()),
        (
            "super::".to_owned(),
            own[..own.len().saturating_sub(1)].to_vec(),
        ),
    ];
    for c in children {
        let mut base = own.to_vec();
        base.push(c.clone());
        keywords.push((format!("{c}::"), base));
    }
    for (keyword, base) in &keywords {
        for (start, _) in code.match_indices(keyword.as_str()) {
            let before = start.checked_sub(1).map(|i| b[i]);
            if before
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b':')
            {
                continue; // part of another name, `$crate`, or a path that only goes through
            }
            let mut i = start + keyword.len();
            tree(b, &mut i, base.clone(), &mut out, 0);
        }
    }
    out
}

/// Reads one path (or group of paths) of a `use` tree from `b[*i..]`, below `prefix`.
fn tree(b: &[u8], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>, depth: u32) {
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    // Bounded: a path has a handful of segments; groups nest a few levels at most.
    for _ in 0..64 {
        skip_ws(i);
        if depth < 8 && *i < b.len() && b[*i] == b'{' {
            *i += 1;
            for _ in 0..256 {
                skip_ws(i);
                if *i >= b.len() || b[*i] == b'}' {
                    *i += 1;
                    return;
                }
                tree(b, i, prefix.clone(), out, depth + 1);
                skip_ws(i);
                if *i < b.len() && b[*i] == b',' {
                    *i += 1;
                }
            }
            return;
        }
        let from = *i;
        while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b[*i] == b'_') {
            *i += 1;
        }
        let ident = String::from_utf8_lossy(&b[from..*i]).into_owned();
        match ident.as_str() {
            "" => break,
            "self" => {}
            "super" => {
                prefix.pop();
            }
            _ => prefix.push(ident),
        }
        if b.get(*i..*i + 2) == Some(b"::") {
            *i += 2;
        } else {
            // `as Name`, a glob, the end of the path: skip to the item's end.
            while *i < b.len() && !matches!(b[*i], b',' | b'}' | b';' | b'(' | b'\n') {
                *i += 1;
            }
            break;
        }
    }
    out.push(prefix);
}

/// File → files it imports from, among the files of `src` whose module path starts with
/// `scope` (empty: the whole crate).
fn import_graph(src: &std::path::Path, scope: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mods = modules(src);
    let in_scope =
        |m: &[String]| m.len() >= scope.len() && scope.iter().zip(m).all(|(a, b)| a == b);
    let name = |m: &[String]| {
        mods[m]
            .strip_prefix(src)
            .expect("under src")
            .display()
            .to_string()
    };
    let mut graph = BTreeMap::new();
    for (own, path) in mods.iter().filter(|(m, _)| in_scope(m)) {
        let code = code_of(&std::fs::read_to_string(path).expect("source file"));
        let children: Vec<String> = mods
            .keys()
            .filter(|m| m.len() == own.len() + 1 && m.starts_with(own))
            .filter_map(|m| m.last().cloned())
            .collect();
        let mut targets: Vec<String> = used_paths(&code, own, &children)
            .into_iter()
            .filter_map(|p| {
                (0..=p.len())
                    .rev()
                    .map(|n| p[..n].to_vec())
                    .find(|m| mods.contains_key(m))
            })
            .filter(|m| m != own && in_scope(m))
            .map(|m| name(&m))
            .collect();
        targets.sort();
        targets.dedup();
        graph.insert(name(own), targets);
    }
    graph
}

/// A cycle in `graph`, as the files on it, or `None`.
fn find_cycle(graph: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for start in graph.keys() {
        if state.get(start.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        state.insert(start, 1);
        while let Some((node, next)) = path.last_mut() {
            let edges = &graph[*node];
            if *next == edges.len() {
                state.insert(node, 2);
                path.pop();
                continue;
            }
            let to = edges[*next].as_str();
            *next += 1;
            match state.get(to).copied().unwrap_or(0) {
                1 => {
                    let from = path
                        .iter()
                        .position(|(n, _)| *n == to)
                        .expect("on the path");
                    let mut cycle: Vec<String> =
                        path[from..].iter().map(|(n, _)| (*n).to_owned()).collect();
                    cycle.push(to.to_owned());
                    return Some(cycle);
                }
                0 => {
                    state.insert(to, 1);
                    path.push((to, 0));
                }
                _ => {}
            }
        }
    }
    None
}

#[test]
fn the_checker_sees_use_groups_super_and_cycles() {
    let own = vec!["sip".to_owned(), "udp".to_owned()];
    let code = code_of(
        "use super::context::{Ctx, X as Y};\nuse crate::{services::{A, B}, tls::{self}};\n\
         // use crate::ignored::X;\nfn f() { crate::sip::dispatch::go(); }\n\
         #[cfg(test)]\nmod tests { use super::*; }\n",
    );
    let mut got = used_paths(&code, &own, &[]);
    got.sort();
    let want: Vec<Vec<String>> = [
        &["services", "A"][..],
        &["services", "B"],
        &["sip", "context", "Ctx"],
        &["sip", "context", "X"],
        &["sip", "dispatch", "go"],
        &["tls"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    assert_eq!(got, want);
    let g = |edges: &[(&str, &str)]| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (a, b) in edges {
            m.entry((*a).to_owned()).or_default().push((*b).to_owned());
            m.entry((*b).to_owned()).or_default();
        }
        m
    };
    assert_eq!(find_cycle(&g(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(
        find_cycle(&g(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn server_crate_files_import_each_other_in_one_direction() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../server/src");
    let graph = import_graph(std::path::Path::new(src), &[]);
    assert!(
        graph.contains_key("sip/context.rs")
            && graph["sip/udp.rs"].contains(&"sip/dispatch.rs".to_owned()),
        "the checker reads the SIP module: {graph:?}"
    );
    assert_eq!(
        find_cycle(&graph),
        None,
        "circular imports in crates/server: {graph:#?}"
    );
}

#[test]
fn client_sip_files_import_each_other_in_one_direction() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../client/src");
    let graph = import_graph(std::path::Path::new(src), &["sip"]);
    assert!(
        graph.contains_key("sip/ua.rs") && graph["sip/call.rs"].contains(&"sip/ua.rs".to_owned()),
        "the checker reads the client's SIP module: {graph:#?}"
    );
    assert_eq!(
        find_cycle(&graph),
        None,
        "circular imports in crates/client/src/sip: {graph:#?}"
    );
}

#[test]
fn the_checker_sees_child_modules_and_reads_past_test_declarations() {
    let own = vec!["proxy".to_owned()];
    let code = code_of(
        "mod forward;\n#[cfg(test)]\nmod tests;\nuse txn::{A, B};\n\
         fn f() { forward::strip(); other::forward::x(); }\n#[cfg(test)]\nmod t { use x::Y; }\n",
    );
    let mut got = used_paths(&code, &own, &["forward".to_owned(), "txn".to_owned()]);
    got.sort();
    let want: Vec<Vec<String>> = [
        &["proxy", "forward", "strip"][..],
        &["proxy", "txn", "A"],
        &["proxy", "txn", "B"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    assert_eq!(got, want);
}

#[test]
fn sip_crate_files_import_each_other_in_one_direction() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../sip/src");
    let graph = import_graph(std::path::Path::new(src), &[]);
    let edge = |a: &str, b: &str| graph.get(a).is_some_and(|t| t.contains(&b.to_owned()));
    assert!(
        edge("core.rs", "registrar.rs")
            && edge("proxy/mod.rs", "proxy/txn.rs")
            && edge("registrar.rs", "auth/mod.rs"),
        "the checker reads the SIP crate: {graph:#?}"
    );
    assert_eq!(
        find_cycle(&graph),
        None,
        "circular imports in crates/sip: {graph:#?}"
    );
}

#[test]
fn sip_authentication_lives_in_auth_only() {
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../sip/src"));
    let graph = import_graph(src, &[]);
    let above = |f: &str| f == "core.rs" || f == "registrar.rs" || f.starts_with("proxy/");
    let auth_files: Vec<&String> = graph.keys().filter(|f| f.starts_with("auth/")).collect();
    assert!(
        auth_files.len() >= 2 && graph["registrar.rs"].contains(&"auth/mod.rs".to_owned()),
        "the checker reads crates/sip/src/auth: {graph:#?}"
    );
    for f in auth_files {
        let up: Vec<&String> = graph[f].iter().filter(|t| above(t)).collect();
        assert!(up.is_empty(), "{f} imports the components above it: {up:?}");
    }
    // Nothing outside auth/ verifies a digest, issues a challenge, holds nonce state or reads
    // the credentials of a request.
    let tokens = [
        "digest::verify",
        "digest::challenges",
        "NonceKey",
        "NonceCounts",
        "digest_credentials(",
    ];
    let mut checked = 0;
    for (module, path) in modules(src) {
        if module.first().is_some_and(|m| m == "auth") {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&path).expect("source file"));
        for t in tokens {
            assert!(!code.contains(t), "{} uses {t}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} files read");
}
