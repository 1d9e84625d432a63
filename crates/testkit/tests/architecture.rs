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
