//! The key ring that seals what the store holds (`[secrets] key_dir`, invariant 29), the check
//! at start that every stored secret can be opened, and `rekey admin rotate-key`.
//!
//! Envelope encryption (`rekey_core::keyring`): each value has its own data key, wrapped by a
//! key-encryption key (KEK) from a file; the value names the KEK's id. Rotation re-wraps data
//! keys under the newest KEK with a compare-and-swap per record, so it runs beside the server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rekey_core::clock::Random;
use rekey_core::keyring::{Kek, KeyRing, SealError, StaticKeys};
use rekey_core::store::MethodKind;
use rekey_core::system::OsRandom;
use rekey_store::SqlStore;
use sha2::{Digest, Sha256};

use crate::admin::CliError;
use crate::config::{Config, ConfigError};

/// How often a running server looks for a new key file.
pub const RESCAN_EVERY: Duration = Duration::from_secs(5);
/// A key id a server does not know makes it look again, at most this often.
const MISS_RESCAN: Duration = Duration::from_secs(1);
/// The id of the key queued items were sealed under before envelopes.
const LEGACY_OUTBOX_ID: &str = "srv1-outbox";

fn derived(otp_key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(otp_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// The key method secrets were sealed under before key files existed: derived from the
/// one-time-code key. Without `[secrets] key_dir` it is also the key new secrets are sealed under.
#[must_use]
pub fn legacy(otp_key: &[u8; 32]) -> Kek {
    let key = derived(otp_key, b"rekey method seal v1");
    let id: String = Sha256::digest(key)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    Kek {
        id: format!("{}{id}", rekey_core::keyring::LEGACY_PREFIX),
        key: zeroize::Zeroizing::new(key),
    }
}

fn legacy_outbox(otp_key: &[u8; 32]) -> Kek {
    Kek {
        id: LEGACY_OUTBOX_ID.into(),
        key: zeroize::Zeroizing::new(derived(otp_key, b"rekey outbox seal v1")),
    }
}

fn keys_error(why: impl Into<String>) -> CliError {
    CliError::Config(ConfigError::Keys(why.into()))
}

fn key_error(why: String) -> CliError {
    CliError::Config(ConfigError::Key {
        key: "secrets.key_dir",
        why,
    })
}

/// A key id is a file name without its `.key`: letters, digits, `-`, `_`, `.`; at most 64.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && !id.starts_with(rekey_core::keyring::LEGACY_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Every `<id>.key` file in `dir`.
///
/// # Errors
/// `RK-CFG` naming `secrets.key_dir`: the directory cannot be read, a key file is not 64 hex
/// digits, a name is not a valid id, or there is no key at all.
pub fn load_dir(dir: &Path) -> Result<BTreeMap<String, Kek>, CliError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| key_error(format!("{}: {e}", dir.display())))?;
    let mut keys = BTreeMap::new();
    for entry in entries {
        let path = entry
            .map_err(|e| key_error(format!("{}: {e}", dir.display())))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("key") {
            continue;
        }
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if !valid_id(&id) {
            return Err(key_error(format!(
                "{}: a key file is named <id>.key, the id of letters, digits, '-', '_' and '.' \
                 (at most 64, not starting with '.' or '{}')",
                path.display(),
                rekey_core::keyring::LEGACY_PREFIX
            )));
        }
        let key = crate::config::read_secret_key(&path).map_err(|e| match e {
            ConfigError::Key { why, .. } => key_error(why),
            other => CliError::Config(other),
        })?;
        keys.insert(
            id.clone(),
            Kek {
                id,
                key: zeroize::Zeroizing::new(key),
            },
        );
    }
    if keys.is_empty() {
        return Err(key_error(format!(
            "{}: no key file (<id>.key, 64 hex digits); `rekey admin rotate-key` makes the first",
            dir.display()
        )));
    }
    Ok(keys)
}

struct Loaded {
    keys: BTreeMap<String, Kek>,
    at: Instant,
}

/// The keys of `[secrets] key_dir`, looked at again every [`RESCAN_EVERY`] and when a value
/// names a key this server does not know yet (another replica or `rotate-key` added it).
pub struct DirKeys {
    dir: PathBuf,
    legacy: Option<Kek>,
    loaded: Mutex<Loaded>,
}

impl DirKeys {
    /// Load `dir`; `legacy` opens values sealed before envelopes.
    ///
    /// # Errors
    /// As [`load_dir`].
    pub fn open(dir: &Path, legacy: Option<Kek>) -> Result<Self, CliError> {
        Ok(Self {
            dir: dir.to_owned(),
            legacy,
            loaded: Mutex::new(Loaded {
                keys: load_dir(dir)?,
                at: Instant::now(),
            }),
        })
    }

    /// Look at the directory again if the last look is older than `age`. A directory that
    /// cannot be read now keeps the keys already loaded (they are still good).
    fn refresh(&self, age: Duration) -> std::sync::MutexGuard<'_, Loaded> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if loaded.at.elapsed() >= age {
            loaded.at = Instant::now();
            match load_dir(&self.dir) {
                Ok(mut keys) => {
                    // A key whose file was removed stays usable until restart: removing a file
                    // must not turn readable secrets unreadable mid-flight.
                    for (id, k) in std::mem::take(&mut loaded.keys) {
                        keys.entry(id).or_insert(k);
                    }
                    loaded.keys = keys;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "key directory not readable; keeping the loaded keys")
                }
            }
        }
        loaded
    }
}

impl KeyRing for DirKeys {
    fn current(&self) -> Kek {
        let loaded = self.refresh(RESCAN_EVERY);
        loaded
            .keys
            .values()
            .next_back()
            .cloned()
            .unwrap_or_else(|| unreachable!("load_dir refuses an empty directory"))
    }

    fn get(&self, id: &str) -> Option<Kek> {
        if let Some(k) = self.legacy.as_ref().filter(|k| k.id == id) {
            return Some(k.clone());
        }
        if let Some(k) = self.refresh(RESCAN_EVERY).keys.get(id) {
            return Some(k.clone());
        }
        self.refresh(MISS_RESCAN).keys.get(id).cloned()
    }

    fn legacy(&self) -> Option<Kek> {
        self.legacy.clone()
    }
}

/// The engine's key ring from the config: `[secrets] key_dir`, or the derived key alone.
///
/// # Errors
/// As [`load_dir`].
pub fn ring(config: &Config, otp_key: &[u8; 32]) -> Result<Arc<dyn KeyRing>, CliError> {
    Ok(match &config.secrets.key_dir {
        Some(dir) => Arc::new(DirKeys::open(dir, Some(legacy(otp_key)))?),
        None => Arc::new(StaticKeys(vec![legacy(otp_key)])),
    })
}

/// Refuse to start when a stored secret is sealed under a key this server does not have: a
/// missing key file is named at start, never discovered as "not enrolled" by a user.
///
/// # Errors
/// `RK-KEY-001` naming the missing key ids.
pub async fn check_store(ring: &dyn KeyRing, store: &SqlStore) -> Result<(), CliError> {
    let mut missing: Vec<String> = store
        .sealed_key_ids()
        .await?
        .into_iter()
        .filter(|id| ring.get(id).is_none())
        .collect();
    for item in store.sealed_outbox().await? {
        if let Some(id) = rekey_core::keyring::envelope_key_id(&item.payload)
            && ring.get(id).is_none()
            && !missing.iter().any(|m| m == id)
        {
            missing.push(id.to_owned());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(keys_error(format!(
        "stored secrets are sealed under key(s) {} that this server does not have; put the \
         key file(s) <id>.key back into [secrets] key_dir (or set key_dir if they were made \
         there). Nothing was changed.",
        missing.join(", ")
    )))
}

/// A new key id that sorts after every id in `existing`: the UTC time, `YYYYMMDDTHHMMSSZ`.
fn new_id(now: i64, existing: &BTreeMap<String, Kek>) -> Result<String, CliError> {
    let days = now.div_euclid(86_400);
    let secs = now.rem_euclid(86_400);
    let (y, m, d) = rekey_core::clock::civil_from_days(days);
    let id = format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    );
    match existing.keys().next_back() {
        Some(last) if last.as_str() >= id.as_str() => Err(keys_error(format!(
            "the key {last:?} sorts after {id:?}, so a new key would not become current; \
             rename the key files so the newest sorts last"
        ))),
        _ => Ok(id),
    }
}

/// Write a new random key file `<id>.key` (mode 0600, never over an existing file).
fn write_key(dir: &Path, id: &str) -> Result<PathBuf, CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    OsRandom.fill(key.as_mut_slice());
    let hex = zeroize::Zeroizing::new(hex::encode(key.as_slice()));
    let path = dir.join(format!("{id}.key"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| key_error(format!("{}: {e}", path.display())))?;
    file.write_all(hex.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| key_error(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// What one re-sealing pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Values now under the new key.
    pub resealed: usize,
    /// Already under it.
    pub current: usize,
    /// Changed by the server meanwhile (left for the next pass).
    pub raced: usize,
    /// Under a key this command does not have: `(key id, count)`.
    pub missing: BTreeMap<String, usize>,
    /// Values that do not open with their key (damaged or moved between records).
    pub damaged: usize,
}

impl Pass {
    fn failed(&mut self, e: SealError, key: &str) {
        match e {
            SealError::MissingKey(id) => *self.missing.entry(id).or_default() += 1,
            SealError::Damaged => {
                tracing::warn!(key = %key, "a sealed value does not open; left as it is");
                self.damaged += 1;
            }
        }
    }
}

/// Re-seal every sealed enrollment and queued item under `to`, opening with `ring`.
///
/// # Errors
/// A store error.
pub async fn reseal(store: &SqlStore, ring: &dyn KeyRing, to: &Kek) -> Result<Pass, CliError> {
    let mut pass = Pass::default();
    for e in store.sealed_enrollments().await? {
        if rekey_core::keyring::envelope_key_id(&e.data) == Some(to.id.as_str()) {
            // A value sealed under `to` while its column still names the key of the set-up
            // it began in: the column is corrected, the value left as it is.
            if e.key_id != to.id && !store.reseal_enrollment(&e, &to.id, &e.data).await? {
                pass.raced += 1;
                continue;
            }
            pass.current += 1;
            continue;
        }
        let (Ok(guid), Some(kind)) = (
            <[u8; 16]>::try_from(e.user_guid.as_slice()),
            MethodKind::parse(&e.method),
        ) else {
            pass.damaged += 1;
            continue;
        };
        let aad = rekey_core::keyring::method_binding(&rekey_core::account::Guid(guid), kind);
        match rekey_core::keyring::rewrap(ring, to, &OsRandom, &e.key_id, &aad, &e.data) {
            Ok(data) if store.reseal_enrollment(&e, &to.id, &data).await? => pass.resealed += 1,
            Ok(_) => pass.raced += 1,
            Err(err) => pass.failed(err, &e.key_id),
        }
    }
    for item in store.sealed_outbox().await? {
        if rekey_core::keyring::envelope_key_id(&item.payload) == Some(to.id.as_str()) {
            pass.current += 1;
            continue;
        }
        let rewrapped = rekey_core::keyring::rewrap(
            ring,
            to,
            &OsRandom,
            LEGACY_OUTBOX_ID,
            item.id.as_bytes(),
            &item.payload,
        );
        match rewrapped {
            Ok(payload) if store.reseal_outbox(&item, &payload).await? => pass.resealed += 1,
            // Delivered or claimed meanwhile: nothing left to re-seal.
            Ok(_) => pass.raced += 1,
            Err(err) => pass.failed(err, LEGACY_OUTBOX_ID),
        }
    }
    Ok(pass)
}

/// `rekey admin rotate-key`: add a key to `[secrets] key_dir`, then re-seal every stored
/// secret under it (twice: once at once, once after running servers have picked the key up).
///
/// # Errors
/// No `key_dir`, a key file that cannot be written, a store error, or values left under a key
/// this command does not have.
pub async fn rotate_command(config: &Config) -> Result<(), CliError> {
    let dir = config.secrets.key_dir.as_deref().ok_or_else(|| {
        keys_error(
            "set [secrets] key_dir to a directory for key files (mode 0700, the service's own) \
             first; rotation adds a key file there",
        )
    })?;
    // The first rotation starts from an empty directory.
    let no_keys = std::fs::read_dir(dir).is_ok_and(|entries| {
        !entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "key"))
    });
    let existing = if no_keys {
        BTreeMap::new()
    } else {
        load_dir(dir)?
    };
    let otp_key = match &config.server {
        Some(server) => Some(crate::config::read_secret_key(&server.secret_key_file)?),
        None => None,
    };
    let id = new_id(
        rekey_core::clock::unix(std::time::SystemTime::now()),
        &existing,
    )?;
    let path = write_key(dir, &id)?;
    println!("new key {id} in {}", path.display());
    let mut keys: Vec<Kek> = load_dir(dir)?.into_values().rev().collect();
    if let Some(otp_key) = &otp_key {
        keys.push(legacy(otp_key));
        keys.push(legacy_outbox(otp_key));
    }
    let ring = StaticKeys(keys);
    let to = ring.current();
    let store = crate::portal::store(config).await?;
    let first = reseal(&store, &ring, &to).await?;
    // A server seals under the key it had until it looks at the directory again.
    tokio::time::sleep(RESCAN_EVERY + Duration::from_secs(1)).await;
    let second = reseal(&store, &ring, &to).await?;
    println!(
        "re-sealed under {id}: {} value(s) (and {} more sealed meanwhile by a running server)",
        first.resealed, second.resealed
    );
    let left: usize = second.missing.values().sum::<usize>() + second.damaged + second.raced;
    if left > 0 {
        for (key, n) in &second.missing {
            println!(
                "  {n} value(s) under key {key}, which is not in {}",
                dir.display()
            );
        }
        if second.damaged > 0 {
            println!(
                "  {} value(s) that do not open (left as they are)",
                second.damaged
            );
        }
        if second.raced > 0 {
            println!(
                "  {} value(s) changed while re-sealing: run the command again",
                second.raced
            );
        }
        return Err(keys_error(format!(
            "{left} stored value(s) are not under the new key; keep the older key files"
        )));
    }
    let older: Vec<&String> = existing.keys().collect();
    if !older.is_empty() {
        println!(
            "no enrollment or queued message is under the older key(s) {} any more; TOTP \
             set-ups in progress and method changes waiting for approval may still need them \
             for {} minutes, after which their files can be removed",
            older
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            config
                .engine
                .flow_ttl_secs
                .unwrap_or(900)
                .max(config.helpdesk.approval_secs)
                / 60
        );
    }
    Ok(())
}
