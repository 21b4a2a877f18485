//! The Debian package, installed on this machine (`dpkg -i`, as root) and its `/usr/bin/rekey`
//! run against the dev domain: what an operator gets from `apt install ./rekey_….deb`.
//!
//! The package is `$REKEY_TEST_DEB` when set (e.g. a release package from `dev/deb`); unset (dev/test), the
//! test packages the `rekey` binary this `cargo test` just built (`cargo deb --profile dev
//! --no-build`; cargo-deb must be installed: `dev/deb` does that). A missing or broken package
//! fails the test. It removes the package again at the end (`dpkg --purge`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// `dpkg` with the frontend lock retried for a while (an apt run elsewhere holds it briefly).
fn dpkg(args: &[&str]) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let o = run("dpkg", args);
        let locked = text(&o).contains("lock");
        if o.status.success() || !locked || Instant::now() > deadline {
            return o;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The workspace's target dir, from the binary cargo built for this test.
fn target_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_rekey"));
    exe.ancestors()
        .find(|d| d.join("CACHEDIR.TAG").is_file())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
            Path::to_owned,
        )
}

/// `$REKEY_TEST_DEB`, else a package of the dev build made now.
fn package() -> PathBuf {
    if let Some(deb) = std::env::var_os("REKEY_TEST_DEB").filter(|d| !d.is_empty()) {
        let deb = PathBuf::from(deb);
        assert!(
            deb.is_file(),
            "REKEY_TEST_DEB={} does not exist: run dev/deb --dev",
            deb.display()
        );
        return deb;
    }
    let out = target_dir().join("debian/test");
    std::fs::create_dir_all(&out).unwrap();
    let o = Command::new("cargo")
        .args([
            "deb",
            "-p",
            "rekey",
            "--profile",
            "dev",
            "--no-build",
            "--fast",
        ])
        .arg("--output")
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cargo deb failed (is cargo-deb installed? dev/deb installs it):\n{}",
        text(&o)
    );
    let deb = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let deb = PathBuf::from(deb);
    assert!(
        deb.is_file(),
        "cargo deb reported no package:\n{}",
        text(&o)
    );
    deb
}

/// A config for the dev domain (like tests/cli.rs), readable by root.
fn dev_config(dir: &Path) -> PathBuf {
    rekey_e2e::dev::dev().write_config(dir, "")
}

fn owner_and_mode(path: &str) -> (String, String, u32) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = |db: &str, id: u32| {
        let o = run("getent", &[db, &id.to_string()]);
        String::from_utf8_lossy(&o.stdout)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    (
        name("passwd", m.uid()),
        name("group", m.gid()),
        m.permissions().mode() & 0o7777,
    )
}

#[test]
fn the_deb_installs_a_working_rekey_without_starting_it() {
    assert_eq!(
        euid(),
        0,
        "installing a package needs root (dev/test and CI run as root)"
    );
    let deb = package();
    let deb_arg = deb.to_str().unwrap();

    // What is in it, and what is not: no /etc/rekey/rekey.toml (the operator writes it).
    let info = text(&run("dpkg-deb", &["-I", deb_arg]));
    assert!(info.contains("Package: rekey"), "{info}");
    assert!(info.contains("Depends: adduser"), "{info}");
    let files = text(&run("dpkg-deb", &["-c", deb_arg]));
    for want in [
        "./usr/bin/rekey",
        "./usr/lib/systemd/system/rekey.service",
        "./usr/share/doc/rekey/rekey.example.toml",
        "./usr/share/doc/rekey/reverse-proxy.md",
    ] {
        assert!(files.contains(want), "{want} missing:\n{files}");
    }
    assert!(!files.contains("./etc/"), "{files}");

    // Installed twice: the second run is an upgrade (user and directories exist already).
    for _ in 0..2 {
        let o = dpkg(&["-i", deb_arg]);
        assert!(o.status.success(), "dpkg -i {deb_arg}:\n{}", text(&o));
    }

    let o = run("/usr/bin/rekey", &["--version"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("rekey {}", env!("CARGO_PKG_VERSION"))
    );

    // The system user and the directories of the unit.
    let user = text(&run("getent", &["passwd", "rekey"]));
    let fields: Vec<&str> = user.trim().split(':').collect();
    assert_eq!(fields.len(), 7, "no rekey user: {user}");
    assert!(
        fields[2].parse::<u32>().unwrap() < 1000,
        "not a system user: {user}"
    );
    assert_eq!(fields[5], "/var/lib/rekey", "{user}");
    assert!(fields[6].ends_with("nologin"), "{user}");
    assert_eq!(
        owner_and_mode("/etc/rekey"),
        ("root".into(), "rekey".into(), 0o750)
    );
    assert_eq!(
        owner_and_mode("/var/lib/rekey"),
        ("rekey".into(), "rekey".into(), 0o750)
    );
    // Installed, neither enabled nor started before it is configured.
    assert!(!Path::new("/etc/systemd/system/multi-user.target.wants/rekey.service").exists());
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/rekey.service").unwrap();
    assert!(unit.contains("User=rekey"), "{unit}");
    assert!(
        unit.contains("ConditionPathExists=/etc/rekey/rekey.toml"),
        "{unit}"
    );

    // The installed binary against the dev domain.
    let dir = std::env::temp_dir().join(format!("rekey-deb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dev_config(&dir);
    let c = config.to_str().unwrap();
    let o = run("/usr/bin/rekey", &["--config", c, "config", "check"]);
    assert!(o.status.success(), "rekey config check:\n{}", text(&o));
    assert!(text(&o).contains("ldaps://localhost:636"), "{}", text(&o));
    // `rekey doctor` (exit 0 all pass, 1 warnings, 2 failures), where this build has it.
    if run("/usr/bin/rekey", &["doctor", "--help"])
        .status
        .success()
    {
        let o = run("/usr/bin/rekey", &["--config", c, "doctor", "--json"]);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "rekey doctor --json exited {:?}:\n{}",
            o.status.code(),
            text(&o)
        );
        let report: Result<serde_json::Value, _> = serde_json::from_slice(&o.stdout);
        assert!(report.is_ok(), "not JSON:\n{}", text(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);

    // Purge removes the program and the unit, keeps the state (the audit chain is evidence).
    let o = dpkg(&["--purge", "rekey"]);
    assert!(o.status.success(), "dpkg --purge rekey:\n{}", text(&o));
    assert!(!Path::new("/usr/bin/rekey").exists());
    assert!(!Path::new("/usr/lib/systemd/system/rekey.service").exists());
    assert!(Path::new("/var/lib/rekey").is_dir());
}

/// The effective user id, from /proc (the workspace forbids unsafe code).
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap()
}
