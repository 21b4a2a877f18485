//! Rekey in its own process: `rekey serve --config FILE`, the file written from the same settings
//! as the in-process portal (`rekey_e2e::portal::dev_config` plus the bench's budgets and
//! deadlines), so the bench can read Rekey's CPU from `/proc/<pid>/stat` apart from its own
//! (HTTP client, SMTP sink). The enrollments go into the SQLite file before the server starts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rekey_core::store::Store;
use rekey_e2e::dev::Dev;

use crate::dc::BenchResult;

/// A running `rekey serve`; killed (by its pid) and its directory removed on drop.
pub struct RekeyProcess {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    /// The server's CPU while nobody asks it anything (timers, background jobs), ms per second,
    /// sampled for [`IDLE_SAMPLE`] right after it is ready.
    pub idle_ms_per_s: f64,
}

/// How long the idle CPU is sampled.
const IDLE_SAMPLE: Duration = Duration::from_secs(3);

impl RekeyProcess {
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's stderr so far (for error messages).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rekey.log")).unwrap_or_default()
    }
}

impl Drop for RekeyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `rekey` binary beside this executable (`target/release/rekey` for
/// `target/release/rekey-bench`), or `$REKEY_BENCH_BIN`.
///
/// # Errors
/// When there is none: build it with `cargo build --release -p rekey`.
pub fn rekey_binary() -> BenchResult<PathBuf> {
    if let Some(p) = std::env::var_os("REKEY_BENCH_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().ok_or("no directory of the bench binary")?;
    // Tests run from target/<profile>/deps.
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let p = d.join("rekey");
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(format!(
        "no rekey binary beside {}: run `cargo build --release -p rekey` (or --in-process)",
        exe.display()
    ))
}

/// TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The config file: `rekey_e2e::portal::dev_config` as TOML, with the bench's tuning (every
/// answer deadline at `deadline_ms`, per-IP and per-user mail budgets unlimited, no proof of
/// work), mail to the bench's SMTP sink on `smtp_port`.
#[must_use]
pub fn config_toml(dev: &Dev, dir: &Path, port: u16, smtp_port: u16, deadline_ms: u64) -> String {
    let urls: Vec<String> = dev.urls().iter().map(|u| q(u)).collect();
    let path = |f: &str| q(&dir.join(f).display().to_string());
    format!(
        "version = 1

[directory]
urls = [{urls}]
ca_file = {ca}
bind_dn = {bind_dn}
bind_password_file = {bind_pw}

[server]
listen = \"127.0.0.1:{port}\"
public_base_url = \"http://localhost:{port}\"
organisation = \"Corp\"
secret_key_file = {key}
identify_deadline_ms = {deadline_ms}
answer_deadline_ms = {deadline_ms}
password_deadline_ms = {deadline_ms}

[store]
url = {store}

[smtp]
host = \"127.0.0.1\"
port = {smtp_port}
tls = \"none\"
from = \"Rekey <rekey@corp.example.com>\"
timeout_ms = 5000

[scope]
groups = [{group}]

[engine]
enroll_cooldown_secs = 0
per_ip_attempts_per_hour = {max}
emails_per_user_per_hour = {max}

[abuse]
pow_per_ip_per_minute = 0
pow_per_minute = 0
",
        urls = urls.join(", "),
        ca = q(dev.get("REKEY_DEV_CA_FILE")),
        bind_dn = q(dev.get("REKEY_DEV_SVC_DN")),
        bind_pw = q(dev.get("REKEY_DEV_SVC_PASSWORD_FILE")),
        key = path("rekey.key"),
        store = q(&format!("sqlite://{}", dir.join("rekey.db").display())),
        group = q(dev.get("REKEY_DEV_SSPR_GROUP_DN")),
        max = u32::MAX,
    )
}

/// A free loopback port (bound, then released for the server).
fn free_port() -> BenchResult<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Write the key, the store (with `enroll`ed rows) and the config into a fresh directory, start
/// `rekey serve` and wait until it answers `GET /reset`.
///
/// # Errors
/// No binary, a store or config that cannot be written, or a server that is not ready in 30 s.
pub async fn start(
    dev: &Dev,
    smtp_port: u16,
    deadline_ms: u64,
    enrollments: &[rekey_core::store::Enrollment],
) -> BenchResult<RekeyProcess> {
    let bin = rekey_binary()?;
    let dir = std::env::temp_dir().join(format!("rekey-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    {
        use std::io::Read as _;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(|e| format!("/dev/urandom: {e}"))?;
    }
    let hex: String = key.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    std::fs::write(dir.join("rekey.key"), hex).map_err(|e| e.to_string())?;
    // The store first (migrations, the bench users' recovery addresses), closed before the
    // server opens it.
    {
        let url = format!("sqlite://{}", dir.join("rekey.db").display());
        let store = rekey_store::SqlStore::connect(&url)
            .await
            .map_err(|e| format!("bench store: {e}"))?;
        for e in enrollments {
            store
                .upsert_enrollment(e)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let port = free_port()?;
    let config = dir.join("rekey.toml");
    std::fs::write(
        &config,
        config_toml(dev, &dir, port, smtp_port, deadline_ms),
    )
    .map_err(|e| e.to_string())?;
    let log = std::fs::File::create(dir.join("rekey.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&bin)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        // The bench's own setting is no Rekey setting (rekey refuses unknown REKEY_* names).
        .env_remove("REKEY_BENCH_BIN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let mut p = RekeyProcess {
        child,
        dir,
        port,
        idle_ms_per_s: 0.0,
    };
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = p.child.try_wait() {
            return Err(format!("rekey serve exited ({status}):\n{}", p.log()));
        }
        if let Ok(a) = crate::portal::http(port, "GET", "/reset", "", None).await
            && a.status == 200
        {
            let t0 = crate::dc::pid_ticks(p.pid());
            tokio::time::sleep(IDLE_SAMPLE).await;
            let ticks = crate::dc::pid_ticks(p.pid()).saturating_sub(t0);
            #[allow(clippy::cast_precision_loss)]
            let ms = ticks as f64 / crate::dc::clock_ticks() * 1e3;
            p.idle_ms_per_s = ms / IDLE_SAMPLE.as_secs_f64();
            return Ok(p);
        }
        if Instant::now() > until {
            return Err(format!("rekey serve not ready in 30 s:\n{}", p.log()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(q(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(q("x\ny"), "\"x\\u000Ay\"");
    }

    /// The file `rekey serve` gets is a config Rekey accepts, with the bench's tuning.
    #[test]
    fn the_config_file_loads_as_a_rekey_config() {
        let dev = rekey_e2e::dev::dev();
        let dir = std::env::temp_dir().join(format!("rekey-bench-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rekey.toml");
        std::fs::write(&path, config_toml(&dev, &dir, 8123, 2600, 1)).unwrap();
        let c = rekey::config::Config::load(&path);
        let _ = std::fs::remove_dir_all(&dir);
        let c = c.unwrap();
        let server = c.server.unwrap();
        assert_eq!(server.listen, "127.0.0.1:8123");
        assert_eq!(
            (server.identify_deadline_ms, server.password_deadline_ms),
            (1, 1)
        );
        assert_eq!(c.smtp.unwrap().port, Some(2600));
        assert_eq!(c.engine.per_ip_attempts_per_hour, Some(u32::MAX));
        assert_eq!(c.abuse.pow_per_minute, Some(0));
    }
}
