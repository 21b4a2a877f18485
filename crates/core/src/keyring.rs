//! Keys that seal the secrets the store holds (envelope encryption): each record names the
//! key-encryption key (KEK) its data key is wrapped under, so a rotation can re-wrap records while
//! the server runs and a missing key is named, never mistaken for "nothing enrolled".

use zeroize::Zeroizing;

/// A key-encryption key and its id.
#[derive(Clone)]
pub struct Kek {
    pub id: String,
    pub key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Where the engine finds its keys.
pub trait KeyRing: Send + Sync {
    /// The key new secrets are sealed under.
    fn current(&self) -> Kek;
    /// The key with this id, if this server has it.
    fn get(&self, id: &str) -> Option<Kek>;
    /// The key values were sealed under before envelopes (derived from the one-time-code key),
    /// if this server still has it.
    fn legacy(&self) -> Option<Kek> {
        None
    }
}

/// Ids of keys derived from the one-time-code key (values sealed before envelopes).
pub const LEGACY_PREFIX: &str = "srv1-";

/// One fixed key (tests, and servers without a key directory).
pub struct StaticKeys(pub Vec<Kek>);

impl KeyRing for StaticKeys {
    fn current(&self) -> Kek {
        self.0
            .first()
            .cloned()
            .unwrap_or_else(|| unreachable!("StaticKeys holds at least one key"))
    }

    fn get(&self, id: &str) -> Option<Kek> {
        self.0.iter().find(|k| k.id == id).cloned()
    }

    fn legacy(&self) -> Option<Kek> {
        self.0
            .iter()
            .find(|k| k.id.starts_with(LEGACY_PREFIX))
            .cloned()
    }
}

/// What a method's sealed secret is bound to: its user and method (associated data), so a value
/// cannot be moved to another record.
#[must_use]
pub fn method_binding(user: &crate::account::Guid, kind: crate::store::MethodKind) -> Vec<u8> {
    [user.0.as_slice(), kind.as_str().as_bytes()].concat()
}

/// The first byte of an envelope (format 2).
const ENVELOPE_V2: u8 = 2;
const NONCE: usize = 12;
/// A wrapped 32-byte data key: the key and its 16-byte tag.
const WRAPPED: usize = 48;

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key it is sealed under is not loaded: restore its file.
    #[error("sealed under key {0:?}, which this server does not have")]
    MissingKey(String),
    /// Not a sealed value, or it was altered, or sealed for another record.
    #[error("the sealed value is damaged or belongs to another record")]
    Damaged,
}

/// The parts of an envelope: the KEK's id, the wrapped data key (with its nonce) and the data
/// (with its nonce).
struct Envelope<'a> {
    kek_id: &'a str,
    wrap_nonce: &'a [u8],
    wrapped: &'a [u8],
    data_nonce: &'a [u8],
    sealed: &'a [u8],
}

impl<'a> Envelope<'a> {
    fn parse(blob: &'a [u8]) -> Option<Self> {
        let (&version, rest) = blob.split_first()?;
        let (&id_len, rest) = rest.split_first()?;
        if version != ENVELOPE_V2 || id_len == 0 {
            return None;
        }
        let (id, rest) = rest.split_at_checked(usize::from(id_len))?;
        let kek_id = std::str::from_utf8(id).ok()?;
        let (wrap_nonce, rest) = rest.split_at_checked(NONCE)?;
        let (wrapped, rest) = rest.split_at_checked(WRAPPED)?;
        let (data_nonce, sealed) = rest.split_at_checked(NONCE)?;
        Some(Self {
            kek_id,
            wrap_nonce,
            wrapped,
            data_nonce,
            sealed,
        })
    }

    fn write(
        kek_id: &str,
        wrap_nonce: &[u8],
        wrapped: &[u8],
        data_nonce: &[u8],
        sealed: &[u8],
    ) -> Vec<u8> {
        let id = kek_id.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE * 2 + wrapped.len() + sealed.len());
        out.push(ENVELOPE_V2);
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&id[..id.len().min(255)]);
        out.extend_from_slice(wrap_nonce);
        out.extend_from_slice(wrapped);
        out.extend_from_slice(data_nonce);
        out.extend_from_slice(sealed);
        out
    }
}

fn wrap_aad(kek_id: &str) -> Vec<u8> {
    [b"rekey dek v2 ".as_slice(), kek_id.as_bytes()].concat()
}

fn gcm(key: &[u8; 32]) -> aes_gcm::Aes256Gcm {
    use aes_gcm::KeyInit;
    aes_gcm::Aes256Gcm::new(key.into())
}

fn encrypt(key: &[u8; 32], nonce: &[u8], msg: &[u8], aad: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, Payload};
    gcm(key)
        .encrypt(aes_gcm::Nonce::from_slice(nonce), Payload { msg, aad })
        .unwrap_or_default()
}

fn decrypt(key: &[u8; 32], nonce: &[u8], msg: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    use aes_gcm::aead::{Aead, Payload};
    if nonce.len() != NONCE {
        return None;
    }
    gcm(key)
        .decrypt(aes_gcm::Nonce::from_slice(nonce), Payload { msg, aad })
        .ok()
        .map(Zeroizing::new)
}

/// The id of the key an envelope is sealed under (`None`: not an envelope, e.g. a value sealed
/// before envelopes, directly under the legacy key).
#[must_use]
pub fn envelope_key_id(blob: &[u8]) -> Option<&str> {
    Envelope::parse(blob).map(|e| e.kek_id)
}

/// Seal `plain` under a fresh data key, wrapped by `kek`; `aad` binds it to its record (user and
/// method, outbox item id) so it cannot be moved to another.
#[must_use]
pub fn seal(kek: &Kek, random: &dyn crate::clock::Random, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut dek = Zeroizing::new([0u8; 32]);
    random.fill(dek.as_mut_slice());
    let mut wrap_nonce = [0u8; NONCE];
    random.fill(&mut wrap_nonce);
    let mut data_nonce = [0u8; NONCE];
    random.fill(&mut data_nonce);
    let wrapped = encrypt(&kek.key, &wrap_nonce, dek.as_slice(), &wrap_aad(&kek.id));
    let sealed = encrypt(&dek, &data_nonce, plain, aad);
    Envelope::write(&kek.id, &wrap_nonce, &wrapped, &data_nonce, &sealed)
}

fn unwrap_dek(ring: &dyn KeyRing, e: &Envelope<'_>) -> Result<Zeroizing<[u8; 32]>, SealError> {
    let kek = ring
        .get(e.kek_id)
        .ok_or_else(|| SealError::MissingKey(e.kek_id.to_owned()))?;
    let dek = decrypt(&kek.key, e.wrap_nonce, e.wrapped, &wrap_aad(e.kek_id))
        .ok_or(SealError::Damaged)?;
    let mut key = Zeroizing::new([0u8; 32]);
    if dek.len() != key.len() {
        return Err(SealError::Damaged);
    }
    key.copy_from_slice(&dek);
    Ok(key)
}

/// Open what [`seal`] sealed; a value sealed before envelopes (nonce and ciphertext under the
/// legacy key `legacy_id`) opens too.
///
/// # Errors
/// `MissingKey` when its key is not in `ring`, `Damaged` when it does not open.
pub fn open(
    ring: &dyn KeyRing,
    legacy_id: &str,
    aad: &[u8],
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let envelope = Envelope::parse(blob);
    if let Some(e) = &envelope {
        let dek = unwrap_dek(ring, e)?;
        if let Some(plain) = decrypt(&dek, e.data_nonce, e.sealed, aad) {
            return Ok(plain);
        }
    }
    // Format 1: nonce and ciphertext directly under the legacy key.
    let kek = ring
        .get(legacy_id)
        .or_else(|| ring.legacy())
        .ok_or_else(|| {
            if envelope.is_some() {
                SealError::Damaged
            } else {
                SealError::MissingKey(legacy_id.to_owned())
            }
        })?;
    let (nonce, sealed) = blob.split_at_checked(NONCE).ok_or(SealError::Damaged)?;
    decrypt(&kek.key, nonce, sealed, aad).ok_or(SealError::Damaged)
}

/// Re-wrap an envelope's data key under `to` (the data itself is not touched, so no record
/// binding is needed); a format-1 value is re-sealed as an envelope, which needs its `aad`.
///
/// # Errors
/// As [`open`].
pub fn rewrap(
    ring: &dyn KeyRing,
    to: &Kek,
    random: &dyn crate::clock::Random,
    legacy_id: &str,
    aad: &[u8],
    blob: &[u8],
) -> Result<Vec<u8>, SealError> {
    if let Some(e) = Envelope::parse(blob) {
        let dek = unwrap_dek(ring, &e)?;
        if decrypt(&dek, e.data_nonce, e.sealed, aad).is_some() {
            let mut wrap_nonce = [0u8; NONCE];
            random.fill(&mut wrap_nonce);
            let wrapped = encrypt(&to.key, &wrap_nonce, dek.as_slice(), &wrap_aad(&to.id));
            return Ok(Envelope::write(
                &to.id,
                &wrap_nonce,
                &wrapped,
                e.data_nonce,
                e.sealed,
            ));
        }
    }
    let plain = open(ring, legacy_id, aad, blob)?;
    Ok(seal(to, random, aad, &plain))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    struct Bytes(AtomicU8);
    impl crate::clock::Random for Bytes {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn kek(id: &str, byte: u8) -> Kek {
        Kek {
            id: id.into(),
            key: Zeroizing::new([byte; 32]),
        }
    }

    #[test]
    fn seal_open_and_rewrap_keep_the_value_and_name_the_key() {
        let random = Bytes(AtomicU8::new(1));
        let k1 = kek("k1", 1);
        let k2 = kek("k2", 2);
        let blob = seal(&k1, &random, b"user totp", b"seed bytes");
        assert_eq!(envelope_key_id(&blob), Some("k1"));
        let both = StaticKeys(vec![k1.clone(), k2.clone()]);
        assert_eq!(
            open(&both, "", b"user totp", &blob).unwrap().as_slice(),
            b"seed bytes"
        );
        // Bound to its record: another user's binding does not open it.
        assert_eq!(
            open(&both, "", b"other totp", &blob),
            Err(SealError::Damaged)
        );

        let moved = rewrap(&both, &k2, &random, "", b"user totp", &blob).unwrap();
        assert_eq!(envelope_key_id(&moved), Some("k2"));
        let only_new = StaticKeys(vec![k2]);
        assert_eq!(
            open(&only_new, "", b"user totp", &moved)
                .unwrap()
                .as_slice(),
            b"seed bytes"
        );
        // The old value needs the old key, and says which.
        assert_eq!(
            open(&only_new, "", b"user totp", &blob),
            Err(SealError::MissingKey("k1".into()))
        );
        // A re-wrap for the wrong record is refused, not carried over.
        assert!(rewrap(&both, &k1, &random, "", b"other totp", &moved).is_err());
    }

    #[test]
    fn a_value_sealed_before_envelopes_opens_and_moves_into_one() {
        use aes_gcm::aead::{Aead, Payload};
        let random = Bytes(AtomicU8::new(7));
        let legacy = kek("srv1-0badf00d", 9);
        let nonce = [3u8; 12];
        let old = gcm(&legacy.key)
            .encrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                Payload {
                    msg: b"answers",
                    aad: b"u q",
                },
            )
            .unwrap();
        let old = [nonce.as_slice(), &old].concat();
        let new = kek("20261202T1600Z", 4);
        let ring = StaticKeys(vec![new.clone(), legacy.clone()]);
        assert_eq!(
            open(&ring, &legacy.id, b"u q", &old).unwrap().as_slice(),
            b"answers"
        );
        let moved = rewrap(&ring, &new, &random, &legacy.id, b"u q", &old).unwrap();
        assert_eq!(envelope_key_id(&moved), Some("20261202T1600Z"));
        let ring = StaticKeys(vec![new]);
        assert_eq!(
            open(&ring, &legacy.id, b"u q", &moved).unwrap().as_slice(),
            b"answers"
        );
        assert_eq!(
            open(&ring, &legacy.id, b"u q", &old),
            Err(SealError::MissingKey(legacy.id.clone()))
        );
    }

    #[test]
    fn truncated_or_foreign_bytes_are_damaged_not_a_panic() {
        let ring = StaticKeys(vec![kek("k1", 1)]);
        for blob in [
            &b""[..],
            &[2],
            &[2, 2, b'k', b'1'],
            &[2, 2, b'k', b'1', 0, 0, 0],
        ] {
            assert!(open(&ring, "k1", b"x", blob).is_err());
        }
    }
}
