//! The audit chain's evidence: signed checkpoints (`rekey audit keygen`, `checkpoint_now`, the
//! periodic writer in `rekey serve`) and `rekey audit verify`, which names the first thing wrong.
//!
//! The checkpoint key is an Ed25519 seed in a file (64 hex digits, mode 0600) that never enters
//! the database; the format and the signed string are in `rekey_core::audit_checkpoint`. Every
//! checkpoint written is also logged (seq, hash, key id, signature: all public), so a copy
//! outside the database survives an attacker who deletes checkpoints along with the tail.
//!
//! Verify walks the chain in pages of [`PAGE`] records and reports, in record order: a deleted
//! record (sequence gap), an edited one (hash mismatch), a moved one (reordered or renumbered:
//! its hash names another position), an inserted or re-linked one (previous-hash link broken), a
//! record that differs from a signed checkpoint (a rewritten chain), a tail truncated before the
//! newest signed checkpoint, and checkpoints with a bad signature or an untrusted key. Exit 0
//! only when nothing is wrong.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rekey_core::audit_checkpoint::{
    Checkpoint, CheckpointKey, KeyError, Problem, PublicKey, Walker, check_signatures, to_hex, utc,
};
use rekey_core::clock::{Clock, Random, unix_ms};
use rekey_core::store::{Store, StoreError};
use rekey_core::system::{OsRandom, SystemClock};
use rekey_store::SqlStore;

use crate::config::Config;

/// Records read per query.
pub const PAGE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum AuditChainError {
    #[error("RK-AUDIT-002: checkpoint key file {path}: {why}")]
    KeyFile { path: PathBuf, why: String },
    #[error("RK-AUDIT-003: public key file {path}: {why}")]
    PublicKeyFile { path: PathBuf, why: String },
    #[error("RK-AUDIT-004: {0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    #[error("RK-AUDIT-005: no checkpoint key: set [audit] checkpoint_key_file")]
    NoKey,
    #[error("RK-AUDIT-001: the audit chain is broken, not signing a checkpoint: {0}")]
    Broken(Problem),
    #[error("RK-STORE-001: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Cli(#[from] crate::admin::CliError),
}

impl AuditChainError {
    /// 1 refused (broken chain, existing file), 2 config (key files), 3 unavailable (store).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::KeyFile { .. } | Self::PublicKeyFile { .. } | Self::NoKey => 2,
            Self::Broken(_) | Self::Exists(_) => 1,
            Self::Store(_) => 3,
            Self::Cli(e) => e.exit_code(),
        }
    }
}

/// Read a private checkpoint key file (64 hex digits). The content is zeroed after parsing.
///
/// # Errors
/// `KeyFile` when it cannot be read or parsed (the message never contains the key).
pub fn load_key(path: &Path) -> Result<CheckpointKey, AuditChainError> {
    let failed = |why: String| AuditChainError::KeyFile {
        path: path.to_owned(),
        why,
    };
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the audit checkpoint key file is readable by others than its owner (want mode 0600)"
            );
        }
    }
    // Zeroed on drop.
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?);
    CheckpointKey::from_hex(&text).map_err(|e| failed(e.to_string()))
}

/// Read a public key file: 64 hex digits (what `rekey audit keygen` prints).
///
/// # Errors
/// `PublicKeyFile` when it cannot be read or is not a key.
pub fn load_public_key(path: &Path) -> Result<PublicKey, AuditChainError> {
    let failed = |why: String| AuditChainError::PublicKeyFile {
        path: path.to_owned(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    PublicKey::from_hex(&text).map_err(|e: KeyError| failed(e.to_string()))
}

/// `rekey audit keygen PATH`: a new key from the OS generator, written as 64 hex digits and a
/// newline to a file created with mode 0600 (an existing file is never overwritten). Returns the
/// public key.
///
/// # Errors
/// `Exists`, or `KeyFile` for another I/O failure.
pub fn keygen(path: &Path) -> Result<PublicKey, AuditChainError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    OsRandom.fill(&mut seed[..]);
    let key = CheckpointKey::from_seed(&seed);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                AuditChainError::Exists(path.to_owned())
            } else {
                AuditChainError::KeyFile {
                    path: path.to_owned(),
                    why: e.to_string(),
                }
            }
        })?;
    let text = zeroize::Zeroizing::new(format!("{}\n", to_hex(&seed[..])));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| AuditChainError::KeyFile {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
    Ok(key.public())
}

/// `rekey audit keygen PATH` for `main`: prints the public key and its id; returns the exit code.
#[must_use]
pub fn keygen_command(path: &Path) -> u8 {
    match keygen(path) {
        Ok(public) => {
            println!("wrote the private checkpoint key to {}", path.display());
            println!("public key: {}", public.to_hex());
            println!("key id: {}", public.key_id());
            println!(
                "keep a copy of the public key away from this server: `rekey audit verify \
                 --public-key FILE` checks checkpoints with it"
            );
            0
        }
        Err(e) => {
            eprintln!("rekey: {e}");
            e.exit_code()
        }
    }
}

/// What `rekey audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Records verified (all of them when there is no break in the chain).
    pub records: i64,
    /// The last record that verified, when the walk reached the end without a break.
    pub head: Option<(i64, [u8; 32])>,
    /// Checkpoints stored.
    pub checkpoints: usize,
    /// Of which signed by a trusted key with a valid signature.
    pub valid_checkpoints: usize,
    /// The newest valid checkpoint (highest record), with its id.
    pub newest_valid: Option<(i64, Checkpoint)>,
    /// Whether any public key was given (without one, checkpoints are not checked).
    pub keys_given: bool,
    /// Everything wrong, in record order; the first is the first problem.
    pub problems: Vec<Problem>,
}

impl Report {
    #[must_use]
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// The text `rekey audit verify` prints.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        match self.head {
            Some((seq, hash)) if seq > 0 => {
                let _ = writeln!(
                    out,
                    "audit chain: {} records, head record {seq} (hash {})",
                    self.records,
                    to_hex(&hash)
                );
            }
            Some(_) => {
                let _ = writeln!(out, "audit chain: empty");
            }
            None => {
                let _ = writeln!(
                    out,
                    "audit chain: {} records verified, then the walk stopped at the first break",
                    self.records
                );
            }
        }
        if !self.keys_given {
            let _ = writeln!(
                out,
                "checkpoints: {} stored, NOT checked (no public key: --public-key FILE or \
                 [audit] checkpoint_key_file); a truncated tail cannot be detected",
                self.checkpoints
            );
        } else {
            let _ = write!(
                out,
                "checkpoints: {} stored, {} with a valid signature",
                self.checkpoints, self.valid_checkpoints
            );
            match &self.newest_valid {
                Some((id, cp)) => {
                    let _ = writeln!(
                        out,
                        "; newest #{id}: record {} at {} (key id {})",
                        cp.seq,
                        utc(cp.at_ms),
                        cp.key_id
                    );
                }
                None => {
                    let _ = writeln!(out, "; a truncated tail cannot be detected");
                }
            }
        }
        for p in &self.problems {
            let _ = writeln!(out, "PROBLEM: {p}");
        }
        match self.problems.first() {
            None => {
                let _ = writeln!(out, "audit chain intact");
            }
            Some(first) => {
                let _ = writeln!(
                    out,
                    "RK-AUDIT-001: the audit chain is broken ({} problem(s)); the first: {first}",
                    self.problems.len()
                );
            }
        }
        out
    }
}

/// Walk the whole chain against the checkpoints signed by `keys` (none: checkpoints unchecked).
///
/// # Errors
/// The store's (unreachable database, undecodable row).
pub async fn verify(store: &SqlStore, keys: &[PublicKey]) -> Result<Report, StoreError> {
    let stored = store.checkpoints().await?;
    let (valid, mut problems) = if keys.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        check_signatures(&stored, keys)
    };
    let newest_valid = valid.iter().max_by_key(|(id, cp)| (cp.seq, *id)).cloned();
    let mut walker = Walker::new(&valid);
    let mut records = 0i64;
    let mut after = 0;
    let mut broken = false;
    loop {
        let page = store.audit_after(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        if let Err(p) = walker.page(&page) {
            let verified = page.iter().filter(|r| r.seq <= walker.head().0).count();
            records += i64::try_from(verified).unwrap_or(i64::MAX);
            problems.push(p);
            broken = true;
            break;
        }
        records += i64::try_from(page.len()).unwrap_or(i64::MAX);
    }
    let head = if broken {
        None
    } else {
        match walker.finish() {
            Ok(head) => Some(head),
            Err(p) => {
                problems.push(p);
                Some(walker.head())
            }
        }
    };
    problems.sort_by_key(Problem::seq);
    Ok(Report {
        records,
        head,
        checkpoints: stored.len(),
        valid_checkpoints: valid.len(),
        newest_valid,
        keys_given: !keys.is_empty(),
        problems,
    })
}

/// `rekey audit verify [--public-key FILE]...` for `main`: the public keys from the files, else
/// the one of `key_file` (`[audit] checkpoint_key_file`); prints the report; returns the exit
/// code (0 intact, 1 a problem, 2 a bad key file, 3 the store unavailable).
pub async fn verify_command(
    config: &Config,
    key_file: Option<&Path>,
    public_key_files: &[PathBuf],
) -> u8 {
    match verify_with(config, key_file, public_key_files).await {
        Ok(report) => {
            print!("{}", report.render());
            u8::from(!report.intact())
        }
        Err(e) => {
            eprintln!("rekey: {e}");
            e.exit_code()
        }
    }
}

async fn verify_with(
    config: &Config,
    key_file: Option<&Path>,
    public_key_files: &[PathBuf],
) -> Result<Report, AuditChainError> {
    let keys = if public_key_files.is_empty() {
        match key_file {
            Some(path) => vec![load_key(path)?.public()],
            None => Vec::new(),
        }
    } else {
        public_key_files
            .iter()
            .map(|p| load_public_key(p))
            .collect::<Result<_, _>>()?
    };
    let store = crate::portal::store(config).await?;
    Ok(verify(&store, &keys).await?)
}

/// What [`checkpoint_now`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpointed {
    /// A new checkpoint of the head was stored.
    Written { id: i64, checkpoint: Checkpoint },
    /// This key's newest checkpoint already covers the head.
    Unchanged { seq: i64 },
    /// No records yet.
    Empty,
}

/// Sign and store a checkpoint of the chain's current head, at `at_ms`.
///
/// The records since this key's newest valid checkpoint (all of them the first time) are verified
/// first: a broken chain is not signed (`Broken` names the problem). Nothing is written when that
/// checkpoint already covers the head.
///
/// # Errors
/// `Broken`, or the store's.
pub async fn checkpoint_now(
    store: &SqlStore,
    key: &CheckpointKey,
    at_ms: i64,
) -> Result<Checkpointed, AuditChainError> {
    let own = key.public();
    let (valid, _) = check_signatures(&store.checkpoints().await?, &[own]);
    let newest = valid.iter().map(|(_, cp)| cp).max_by_key(|cp| cp.seq);
    let mut walker = match newest {
        None => Walker::new(&[]),
        Some(cp) => {
            let at = store.audit_after(cp.seq - 1, 1).await?;
            match at.first() {
                Some(r) if r.seq == cp.seq && r.hash == cp.hash => {
                    Walker::resume((cp.seq, cp.hash), &[])
                }
                // Something before or at the checkpoint changed: the full walk names it.
                _ => return Err(first_problem(store, own).await),
            }
        }
    };
    loop {
        let page = store.audit_after(walker.head().0, PAGE).await?;
        if page.is_empty() {
            break;
        }
        walker.page(&page).map_err(AuditChainError::Broken)?;
    }
    let (seq, hash) = walker.head();
    if seq == 0 {
        return Ok(Checkpointed::Empty);
    }
    if newest.is_some_and(|cp| cp.seq == seq) {
        return Ok(Checkpointed::Unchanged { seq });
    }
    let checkpoint = key.sign(seq, hash, at_ms);
    let id = store.append_checkpoint(&checkpoint).await?;
    tracing::info!(
        id,
        seq,
        hash = %to_hex(&hash),
        at_ms,
        key_id = %checkpoint.key_id,
        signature = %to_hex(&checkpoint.signature),
        "audit checkpoint signed"
    );
    Ok(Checkpointed::Written { id, checkpoint })
}

async fn first_problem(store: &SqlStore, own: PublicKey) -> AuditChainError {
    match verify(store, &[own]).await {
        Ok(report) => match report.problems.into_iter().next() {
            Some(p) => AuditChainError::Broken(p),
            None => AuditChainError::Store(StoreError::Corrupt(
                "the chain changed while it was checked".into(),
            )),
        },
        Err(e) => e.into(),
    }
}

/// `rekey audit checkpoint` for `main`: one checkpoint now with the key at `key_file`; prints
/// what was done; returns the exit code.
pub async fn checkpoint_command(config: &Config, key_file: Option<&Path>) -> u8 {
    let run = async {
        let key = load_key(key_file.ok_or(AuditChainError::NoKey)?)?;
        let store = crate::portal::store(config).await?;
        checkpoint_now(&store, &key, unix_ms(SystemClock.now())).await
    };
    match run.await {
        Ok(Checkpointed::Written { id, checkpoint }) => {
            println!(
                "checkpoint #{id}: record {} (hash {}) signed at {} with key id {}",
                checkpoint.seq,
                to_hex(&checkpoint.hash),
                utc(checkpoint.at_ms),
                checkpoint.key_id
            );
            0
        }
        Ok(Checkpointed::Unchanged { seq }) => {
            println!("record {seq} is already the newest checkpoint; nothing to sign");
            0
        }
        Ok(Checkpointed::Empty) => {
            println!("the audit chain is empty; nothing to sign");
            0
        }
        Err(e) => {
            eprintln!("rekey: {e}");
            e.exit_code()
        }
    }
}

/// What [`prune`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Records deleted.
    pub deleted: u64,
    /// The first record kept (`None`: the chain is empty).
    pub kept_from: Option<i64>,
    /// The anchor: a checkpoint of the record before `kept_from` (`None` when nothing went).
    pub anchor: Option<(i64, Checkpoint)>,
}

/// `rekey audit prune --before DATE`: delete the records written before `before_ms`, keeping at
/// least the newest. First a checkpoint of the head (so the chain is verified up to it, and a
/// truncation later is still caught), then an anchor checkpoint of the last record to go (so
/// verify accepts a chain that starts after it), then the deletion (owner rights needed, see
/// `SqlStore::prune_audit_before`).
///
/// # Errors
/// `Broken` (nothing is deleted from a broken chain), or the store's.
pub async fn prune(
    store: &SqlStore,
    key: &CheckpointKey,
    before_ms: i64,
    at_ms: i64,
) -> Result<Pruned, AuditChainError> {
    if checkpoint_now(store, key, at_ms).await? == Checkpointed::Empty {
        return Ok(Pruned {
            deleted: 0,
            kept_from: None,
            anchor: None,
        });
    }
    let Some((head, _)) = store.audit_chain_head().await? else {
        return Err(StoreError::Corrupt("the audit chain emptied during prune".into()).into());
    };
    let first = store
        .audit_after(0, 1)
        .await?
        .first()
        .map_or(head, |r| r.seq);
    let keep = store
        .first_audit_seq_from(before_ms)
        .await?
        .unwrap_or(head)
        .min(head);
    if keep <= first {
        return Ok(Pruned {
            deleted: 0,
            kept_from: Some(first),
            anchor: None,
        });
    }
    let last_gone = store.audit_after(keep - 2, 1).await?;
    let Some(r) = last_gone.first().filter(|r| r.seq == keep - 1) else {
        return Err(first_problem(store, key.public()).await);
    };
    let anchor = key.sign(r.seq, r.hash, at_ms);
    let id = store.append_checkpoint(&anchor).await?;
    let deleted = store.prune_audit_before(keep).await?;
    tracing::info!(
        deleted,
        kept_from = keep,
        anchor_id = id,
        anchor_seq = anchor.seq,
        hash = %to_hex(&anchor.hash),
        key_id = %anchor.key_id,
        signature = %to_hex(&anchor.signature),
        "audit records pruned"
    );
    Ok(Pruned {
        deleted,
        kept_from: Some(keep),
        anchor: Some((id, anchor)),
    })
}

/// `rekey audit prune --before YYYY-MM-DD` for `main` (records before 00:00 UTC that day).
pub async fn prune_command(config: &Config, key_file: Option<&Path>, before: &str) -> u8 {
    let Some(before_ms) = rekey_core::audit_checkpoint::date_ms(before) else {
        eprintln!("rekey: RK-CLI-001: --before {before:?}: expected a date YYYY-MM-DD");
        return 1;
    };
    let run = async {
        let key = load_key(key_file.ok_or(AuditChainError::NoKey)?)?;
        let store = crate::portal::store(config).await?;
        prune(&store, &key, before_ms, unix_ms(SystemClock.now())).await
    };
    match run.await {
        Ok(Pruned {
            deleted,
            kept_from,
            anchor,
        }) => {
            match (kept_from, anchor) {
                (Some(from), Some((id, _))) => println!(
                    "deleted {deleted} audit records before {before}; the chain now starts at \
                     record {from}, anchored by checkpoint #{id}"
                ),
                (Some(from), None) => {
                    println!("nothing to delete: the chain starts at record {from}");
                }
                (None, _) => println!("the audit chain is empty; nothing to delete"),
            }
            0
        }
        Err(e) => {
            eprintln!("rekey: {e}");
            e.exit_code()
        }
    }
}

/// For `rekey serve`: a checkpoint every `every` (the first one at once) until the task is
/// aborted. A failure is logged (a broken chain as an error) and retried at the next tick.
#[must_use]
pub fn spawn_checkpoints(
    store: Arc<SqlStore>,
    key: CheckpointKey,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match checkpoint_now(&store, &key, unix_ms(SystemClock.now())).await {
                Ok(_) => {}
                Err(e @ AuditChainError::Broken(_)) => {
                    tracing::error!(error = %e, "audit checkpoint")
                }
                Err(e) => tracing::warn!(error = %e, "audit checkpoint"),
            }
        }
    })
}
