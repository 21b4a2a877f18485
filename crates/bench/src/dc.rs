//! The dev domain side: raw LDAPS connections (the baseline), the bench users (created / reset
//! as Administrator, deleted at the end), independent verification binds, and CPU readings of the
//! DC's `samba` processes and of this process.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use rekey_e2e::dev::{Dev, unicode_pwd};

pub type BenchResult<T> = Result<T, String>;

/// A bench user and what the bench knows about it.
#[derive(Debug, Clone)]
pub struct BenchUser {
    pub dn: String,
    pub sam: String,
    /// The enrolled (out-of-band) address the reset codes go to.
    pub address: String,
    /// The password the DC holds now (updated after every landed write).
    pub password: String,
}

/// rustls trusting only the dev CA (the same settings Rekey's pool uses).
pub fn tls(dev: &Dev) -> BenchResult<LdapConnSettings> {
    let pem = std::fs::read(dev.get("REKEY_DEV_CA_FILE")).map_err(|e| format!("CA file: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(&pem)
    {
        roots
            .add(cert.map_err(|e| format!("CA PEM: {e}"))?)
            .map_err(|e| format!("CA cert: {e}"))?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(LdapConnSettings::new().set_config(Arc::new(cfg)))
}

fn secret(dev: &Dev, key: &str) -> BenchResult<String> {
    std::fs::read_to_string(dev.get(key))
        .map(|s| s.trim_end().to_owned())
        .map_err(|e| format!("{key}: {e}"))
}

/// A persistent LDAPS connection to DC1 bound as `bind_dn`.
pub async fn connect(dev: &Dev, bind_dn: &str, password: &str) -> BenchResult<Ldap> {
    let url = dev.dc1_url();
    let (conn, mut ldap) = LdapConnAsync::with_settings(tls(dev)?, &url)
        .await
        .map_err(|e| format!("connect {url}: {e}. Is the dev domain up (`dev/domain up`)?"))?;
    ldap3::drive!(conn);
    ldap.simple_bind(bind_dn, password)
        .await
        .map_err(|e| format!("bind {bind_dn}: {e}"))?
        .success()
        .map_err(|e| format!("bind {bind_dn}: {e}"))?;
    Ok(ldap)
}

/// The baseline's connection: bound as the service account, like Rekey's pool.
pub async fn connect_service(dev: &Dev) -> BenchResult<Ldap> {
    let pw = secret(dev, "REKEY_DEV_SVC_PASSWORD_FILE")?;
    connect(dev, dev.get("REKEY_DEV_SVC_DN"), &pw).await
}

async fn connect_admin(dev: &Dev) -> BenchResult<Ldap> {
    let pw = secret(dev, "REKEY_DEV_ADMIN_PASSWORD_FILE")?;
    connect(dev, dev.get("REKEY_DEV_ADMIN_DN"), &pw).await
}

/// The raw reset: one `unicodePwd` replace.
pub async fn raw_reset(ldap: &mut Ldap, dn: &str, new: &str) -> BenchResult<()> {
    let m = vec![Mod::Replace(
        b"unicodePwd".to_vec(),
        HashSet::from([unicode_pwd(new)]),
    )];
    let r = ldap.modify(dn, m).await.map_err(|e| e.to_string())?;
    r.success()
        .map(|_| ())
        .map_err(|e| format!("raw reset: {e}"))
}

/// The raw change: one modify, delete old + add new (what Rekey's change sends).
pub async fn raw_change(ldap: &mut Ldap, dn: &str, old: &str, new: &str) -> BenchResult<()> {
    let m = vec![
        Mod::Delete(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(old)])),
        Mod::Add(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(new)])),
    ];
    let r = ldap.modify(dn, m).await.map_err(|e| e.to_string())?;
    r.success()
        .map(|_| ())
        .map_err(|e| format!("raw change: {e}"))
}

/// `rkbench-01 … rkbench-NN` in OU=Staff, members of Staff-All (SSPR scope), enabled, unlocked,
/// with a fresh known password. Idempotent: existing users are reset, not re-created.
pub async fn prepare_users(dev: &Dev, n: usize, tag: &str) -> BenchResult<Vec<BenchUser>> {
    let mut admin = connect_admin(dev).await?;
    let ou = dev.staff_ou();
    let (found, _) = admin
        .search(
            ou,
            Scope::Subtree,
            "(sAMAccountName=rkbench-*)",
            vec!["sAMAccountName"],
        )
        .await
        .map_err(|e| e.to_string())?
        .success()
        .map_err(|e| format!("search bench users: {e}"))?;
    let existing: HashMap<String, String> = found
        .into_iter()
        .map(SearchEntry::construct)
        .filter_map(|e| {
            let sam = e.attrs.get("sAMAccountName")?.first()?.to_lowercase();
            Some((sam, e.dn))
        })
        .collect();
    let realm = dev.get("REKEY_DEV_REALM").to_lowercase();
    let staff_all = dev.get("REKEY_DEV_STAFF_ALL_GROUP_DN");
    let mut users = Vec::with_capacity(n);
    for i in 1..=n {
        let sam = format!("rkbench-{i:02}");
        let password = format!("Init-{tag}-{i}-Pw!");
        let dn = if let Some(dn) = existing.get(&sam) {
            let mods = vec![
                Mod::Replace(
                    b"unicodePwd".to_vec(),
                    HashSet::from([unicode_pwd(&password)]),
                ),
                Mod::Replace(b"lockoutTime".to_vec(), HashSet::from([b"0".to_vec()])),
                Mod::Replace(
                    b"userAccountControl".to_vec(),
                    HashSet::from([b"512".to_vec()]),
                ),
            ];
            admin
                .modify(dn, mods)
                .await
                .map_err(|e| e.to_string())?
                .success()
                .map_err(|e| format!("reset {sam}: {e}"))?;
            dn.clone()
        } else {
            let dn = format!("CN={sam},{ou}");
            let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
                (b"objectClass".to_vec(), HashSet::from([b"user".to_vec()])),
                (
                    b"sAMAccountName".to_vec(),
                    HashSet::from([sam.clone().into_bytes()]),
                ),
                (
                    b"userPrincipalName".to_vec(),
                    HashSet::from([format!("{sam}@{realm}").into_bytes()]),
                ),
                (
                    b"mail".to_vec(),
                    HashSet::from([format!("{sam}@corp.example.com").into_bytes()]),
                ),
                (
                    b"displayName".to_vec(),
                    HashSet::from([format!("Bench User {i:02}").into_bytes()]),
                ),
                (
                    b"unicodePwd".to_vec(),
                    HashSet::from([unicode_pwd(&password)]),
                ),
                (
                    b"userAccountControl".to_vec(),
                    HashSet::from([b"512".to_vec()]),
                ),
            ];
            admin
                .add(&dn, attrs)
                .await
                .map_err(|e| e.to_string())?
                .success()
                .map_err(|e| format!("create {sam}: {e}"))?;
            dn
        };
        let r = admin
            .modify(
                staff_all,
                vec![Mod::Add(
                    b"member".to_vec(),
                    HashSet::from([dn.clone().into_bytes()]),
                )],
            )
            .await
            .map_err(|e| e.to_string())?;
        // Already a member: 20 attributeOrValueExists (Windows), 68 entryAlreadyExists (Samba).
        if !matches!(r.rc, 0 | 20 | 68) {
            return Err(format!("add {sam} to Staff-All: rc {} {}", r.rc, r.text));
        }
        users.push(BenchUser {
            dn,
            sam: sam.clone(),
            address: format!("{sam}@bench.example"),
            password,
        });
    }
    let _ = admin.unbind().await;
    Ok(users)
}

/// Delete the bench users (they are re-created by the next run).
pub async fn delete_users(dev: &Dev, users: &[BenchUser]) -> BenchResult<()> {
    let mut admin = connect_admin(dev).await?;
    for u in users {
        admin
            .delete(&u.dn)
            .await
            .map_err(|e| e.to_string())?
            .success()
            .map_err(|e| format!("delete {}: {e}", u.sam))?;
    }
    let _ = admin.unbind().await;
    Ok(())
}

/// Every user's final password binds (fresh connection, independent of the code under test).
pub async fn verify_binds(dev: &Dev, users: &[BenchUser]) -> Vec<String> {
    let mut failures = Vec::new();
    for u in users {
        let (rc, text) = dev.bind(&u.dn, &u.password).await;
        if rc != 0 {
            failures.push(format!("{}: bind rc {rc} {text}", u.sam));
        }
    }
    failures
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux in practice).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in ticks.
fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of this process (all threads).
pub fn self_ticks() -> u64 {
    proc_ticks("self").unwrap_or(0)
}

/// CPU ticks of process `pid` (all threads, live and exited), 0 if it is gone.
#[must_use]
pub fn pid_ticks(pid: u32) -> u64 {
    proc_ticks(&pid.to_string()).unwrap_or(0)
}

/// Ticks per `samba` process (both DCs of the dev domain: DC2 replicates every write).
pub fn samba_ticks() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        // Samba renames its workers ("ldap[master]", "prefork-worker-…"); the executable tells.
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if (comm.trim() == "samba" || exe.ends_with("/samba"))
            && let Some(t) = proc_ticks(&pid)
        {
            out.insert(pid, t);
        }
    }
    out
}

/// Ticks the `samba` processes used between two readings (new processes count fully).
pub fn samba_delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> u64 {
    after
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum()
}
