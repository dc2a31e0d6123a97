//! The architecture test: the crate dependency rules written in docs/architecture.md hold for
//! the real dependency graph (from `cargo metadata`), and the doc's diagram is that graph.
//!
//! On a mismatch the test prints what the doc should say; update the doc (and think twice
//! about the new edge).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Workspace crates and their normal and build dependencies (dev-dependencies are free:
/// tests may use anything).
struct Graph {
    /// crate → workspace crates it depends on.
    internal: BTreeMap<String, BTreeSet<String>>,
    /// crate → every dependency name (workspace and external).
    all: BTreeMap<String, BTreeSet<String>>,
    /// crate → its directory.
    dirs: BTreeMap<String, PathBuf>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut g = Graph {
        internal: BTreeMap::new(),
        all: BTreeMap::new(),
        dirs: BTreeMap::new(),
    };
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
        g.dirs.insert(
            name.clone(),
            manifest.parent().unwrap_or(Path::new(".")).into(),
        );
        let mut internal = BTreeSet::new();
        let mut all = BTreeSet::new();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            if d["kind"].as_str() == Some("dev") {
                continue;
            }
            let dep = d["name"].as_str().unwrap_or_default().to_owned();
            if names.contains(&dep) && dep != name {
                internal.insert(dep.clone());
            }
            all.insert(dep);
        }
        g.internal.insert(name.clone(), internal);
        g.all.insert(name, all);
    }
    g
}

fn architecture_doc() -> String {
    std::fs::read_to_string(workspace_root().join("docs/architecture.md"))
        .expect("docs/architecture.md")
}

fn between<'a>(text: &'a str, begin: &str, end: &str) -> &'a str {
    let start = text
        .find(begin)
        .unwrap_or_else(|| panic!("docs/architecture.md lacks {begin}"))
        + begin.len();
    let stop = text[start..]
        .find(end)
        .unwrap_or_else(|| panic!("docs/architecture.md lacks {end}"));
    &text[start..start + stop]
}

/// The "may depend on" table: `| `crate` | `a`, `b` |` (— for none).
fn allowed(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let table = between(
        doc,
        "<!-- crate-rules:begin -->",
        "<!-- crate-rules:end -->",
    );
    let mut out = BTreeMap::new();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_owned();
        let deps = cells[2]
            .split(',')
            .map(|d| d.trim().trim_matches('`').to_owned())
            .filter(|d| !d.is_empty() && d != "—")
            .collect();
        out.insert(name, deps);
    }
    out
}

fn transitive(g: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(c) = todo.pop() {
        for d in g.internal.get(&c).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn every_crate_dependency_is_one_the_architecture_allows() {
    let g = graph();
    let rules = allowed(&architecture_doc());
    let mut problems = Vec::new();
    for (name, deps) in &g.internal {
        let Some(ok) = rules.get(name) else {
            problems.push(format!("{name} has no row in the crate-rules table"));
            continue;
        };
        for d in deps.difference(ok) {
            problems.push(format!(
                "{name} depends on {d}, which the table does not allow"
            ));
        }
        for d in ok.difference(deps) {
            problems.push(format!(
                "the table lets {name} depend on {d}, but it does not: remove it from the row"
            ));
        }
    }
    for name in rules.keys().filter(|n| !g.internal.contains_key(*n)) {
        problems.push(format!(
            "the table names {name}, which is not a workspace crate"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_agent_never_depends_on_the_server_side() {
    let g = graph();
    let reach = transitive(&g, "dozor-agent");
    for forbidden in [
        "dozor-server",
        "dozor-store",
        "dozor-bus",
        "dozor-pipeline",
        "dozor-ui",
    ] {
        assert!(
            !reach.contains(forbidden),
            "dozor-agent reaches {forbidden} through {reach:?}"
        );
    }
    assert!(
        !g.all["dozor-agent"].contains("sqlx") && reach.iter().all(|c| !g.all[c].contains("sqlx")),
        "the agent must not build sqlx"
    );
}

/// Database, HTTP, TLS, mail and queue clients: what a crate without I/O must not use.
const IO_CLIENTS: [&str; 9] = [
    "sqlx",
    "axum",
    "hyper",
    "ureq",
    "redis",
    "async-nats",
    "rustls",
    "lettre",
    "reqwest",
];

#[test]
fn the_engine_crates_do_no_io() {
    let g = graph();
    let io: Vec<&str> = std::iter::once("tokio").chain(IO_CLIENTS).collect();
    for name in [
        "dozor-event",
        "dozor-sigma",
        "dozor-correlation",
        "dozor-intel",
        "dozor-anomaly",
        "dozor-wire",
        "dozor-model",
    ] {
        let Some(all) = g.all.get(name) else {
            continue;
        };
        for &dep in &io {
            assert!(!all.contains(dep), "{name} depends on {dep}");
        }
    }
}

#[test]
fn the_playbook_engine_does_no_io_of_its_own() {
    let g = graph();
    let Some(all) = g.all.get("dozor-playbook") else {
        return;
    };
    // tokio is allowed for its timers (retry delays, pause); no client of anything.
    for dep in IO_CLIENTS {
        assert!(!all.contains(dep), "dozor-playbook depends on {dep}");
    }
    let reach = transitive(&g, "dozor-playbook");
    assert!(
        reach.iter().all(|c| c == "dozor-model"),
        "dozor-playbook reaches {reach:?}"
    );
}

#[test]
fn the_dashboard_pages_do_not_build_the_database_layer() {
    let g = graph();
    let reach = transitive(&g, "dozor-ui");
    assert!(
        !reach.contains("dozor-store") && !g.all["dozor-ui"].contains("sqlx"),
        "dozor-ui reaches {reach:?}"
    );
}

#[test]
fn only_agent_windows_may_use_unsafe() {
    let g = graph();
    let mut problems = Vec::new();
    for (name, dir) in &g.dirs {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let inherits = manifest
            .split("[lints]")
            .nth(1)
            .is_some_and(|rest| rest.trim_start().starts_with("workspace = true"));
        if name == "dozor-agent-windows" {
            continue;
        }
        if !inherits {
            problems.push(format!(
                "{name}: Cargo.toml lacks `[lints] workspace = true` (unsafe_code = forbid)"
            ));
        }
        for entry in walk(&dir.join("src")) {
            let text = std::fs::read_to_string(&entry).unwrap_or_default();
            if text.contains("allow(unsafe_code)") {
                problems.push(format!("{} allows unsafe code", entry.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// The diagram in the doc, generated from the graph: one line per crate and its direct
/// workspace dependencies, so a reader sees every real arrow and nothing else.
fn mermaid(g: &Graph) -> String {
    let short = |n: &str| n.trim_start_matches("dozor-").replace('-', "_");
    let mut out = String::from("graph BT\n");
    for (name, deps) in &g.internal {
        if deps.is_empty() {
            out.push_str(&format!("    {}\n", short(name)));
        }
        for d in deps {
            out.push_str(&format!("    {} --> {}\n", short(name), short(d)));
        }
    }
    out
}

#[test]
fn the_diagram_is_the_real_graph() {
    let g = graph();
    let doc = architecture_doc();
    let block = between(
        &doc,
        "<!-- crate-graph:begin -->",
        "<!-- crate-graph:end -->",
    );
    let drawn = between(block, "```mermaid\n", "```");
    let real = mermaid(&g);
    assert!(
        drawn == real,
        "docs/architecture.md's crate diagram differs from the real graph; it should be:\n```mermaid\n{real}```"
    );
}
