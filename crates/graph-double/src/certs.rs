//! Certificates for tests of client assertions: a fresh self-signed RSA certificate and its
//! PKCS#8 key, made by the `openssl` CLI (the double's tests and `rekey-entra`'s share this).

use std::time::{SystemTime, UNIX_EPOCH};

/// A self-signed RSA-2048 certificate (PEM) and its unencrypted PKCS#8 key (PEM), valid one day.
///
/// # Errors
/// When the `openssl` CLI is missing or fails (its stderr is the error).
pub fn self_signed_cert(common_name: &str) -> Result<(String, String), String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("rekey-test-cert-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (k, c) = (dir.join("k.pem"), dir.join("c.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .arg("-subj")
        .arg(format!("/CN={common_name}"))
        .arg("-keyout")
        .arg(&k)
        .arg("-out")
        .arg(&c)
        .output()
        .map_err(|e| format!("openssl CLI: {e}"))
        .and_then(|out| {
            if out.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).into_owned())
            }
        })
        .and_then(|()| {
            let read = |p| std::fs::read_to_string(p).map_err(|e| e.to_string());
            Ok((read(&c)?, read(&k)?))
        });
    let _ = std::fs::remove_dir_all(&dir);
    made
}
