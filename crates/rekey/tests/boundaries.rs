//! The crate boundaries of DESIGN.md §2, checked on the real dependency graph (`cargo tree`):
//! adapters depend on core and never on each other, core does no I/O, and the shipped binary
//! never links a test double or the `fakes` feature that lets a zone test write without the
//! engine's grant (one write path, invariant 34).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// `cargo tree` lines (no prefix) of `package`'s normal (non-dev) dependency graph.
fn tree(package: &str, edges: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            package,
            "-e",
            edges,
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Workspace crates `package` depends on (normal edges, itself excluded).
fn ours(package: &str) -> Vec<String> {
    let mut names: Vec<String> = tree(package, "normal")
        .iter()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("rekey") && *n != package)
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn the_binary_ships_no_test_double() {
    let features = tree("rekey", "normal,features");
    assert!(
        !features
            .iter()
            .any(|l| l.starts_with("rekey-core feature \"fakes\"")),
        "rekey must not enable rekey-core's `fakes` (it can mint write grants)"
    );
    let deps = ours("rekey");
    for banned in [
        "rekey-e2e",
        "rekey-bench",
        "rekey-graph-double",
        "rekey-sms-double",
    ] {
        assert!(!deps.iter().any(|d| d == banned), "{deps:?}");
    }
}

#[test]
fn adapters_depend_on_core_only() {
    for adapter in [
        "rekey-directory",
        "rekey-store",
        "rekey-notify",
        "rekey-web",
        "rekey-passkey",
    ] {
        assert_eq!(ours(adapter), ["rekey-core"], "{adapter}");
    }
    // The HTTP adapters share one HTTPS client set-up (roots, URL rules), which is no adapter
    // and depends on nothing of ours.
    for adapter in ["rekey-entra", "rekey-breach", "rekey-sms"] {
        assert_eq!(ours(adapter), ["rekey-core", "rekey-https"], "{adapter}");
    }
    assert!(ours("rekey-https").is_empty());
    assert!(
        ours("rekey-core").is_empty(),
        "core depends on no other crate of ours"
    );
}

#[test]
fn core_has_no_io_or_runtime() {
    let deps: Vec<String> = tree("rekey-core", "normal")
        .iter()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    for io in [
        "tokio", "ldap3", "sqlx", "axum", "lettre", "hyper", "reqwest",
    ] {
        assert!(
            !deps.iter().any(|d| d == io),
            "rekey-core must not depend on {io}"
        );
    }
}
