//! The key ring that seals stored secrets (`[secrets]`), and `rekey admin rotate-key`.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use rekey_core::keyring::{Kek, KeyRing, StaticKeys};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::admin::CliError;

/// The key secrets were sealed under before key files existed: derived from the one-time code key.
#[must_use]
pub fn legacy(otp_key: &[u8; 32]) -> Kek {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(otp_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(b"rekey method seal v1");
    let key: [u8; 32] = mac.finalize().into_bytes().into();
    let id: String = Sha256::digest(key)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    Kek {
        id: format!("srv1-{id}"),
        key: zeroize::Zeroizing::new(key),
    }
}

/// The engine's key ring from the config.
///
/// # Errors
/// None yet.
pub fn ring(_config: &Config, otp_key: &[u8; 32]) -> Result<Arc<dyn KeyRing>, CliError> {
    Ok(Arc::new(StaticKeys(vec![legacy(otp_key)])))
}

/// `rekey admin rotate-key`.
///
/// # Errors
/// Not built yet.
pub async fn rotate_command(_config: &Config) -> Result<(), CliError> {
    Err(CliError::Input(std::io::Error::other("not built yet")))
}
