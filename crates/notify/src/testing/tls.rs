//! A throw-away CA and a sink certificate for `localhost` / `127.0.0.1`, made with the `openssl`
//! command (P-256 keys: fast to generate, supported by rustls/ring and Python's ssl).

use std::path::{Path, PathBuf};
use std::process::Command;

pub(super) struct Material {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub(super) fn generate(dir: &Path) -> Material {
    let ca = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let cert = dir.join("sink.pem");
    let key = dir.join("sink.key");
    let csr = dir.join("sink.csr");
    let ext = dir.join("sink.ext");
    std::fs::write(
        &ext,
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost, IP:127.0.0.1\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        Command::new("openssl")
            .args(["req", "-x509", "-sha256", "-days", "2"])
            .args(ec)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca)
            .args(["-subj", "/CN=Rekey test sink CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
    );
    openssl(
        Command::new("openssl")
            .args(["req", "-new", "-sha256"])
            .args(ec)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", "/CN=localhost"]),
    );
    openssl(
        Command::new("openssl")
            .args(["x509", "-req", "-sha256", "-days", "2", "-set_serial", "2"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert),
    );
    Material { ca, cert, key }
}

fn openssl(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("the TLS test sink needs the openssl command: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
