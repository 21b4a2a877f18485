//! Client assertions (§A1, E `certificate-credentials.md`): a JWT signed with the app
//! certificate's RSA key, naming the certificate by thumbprint.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::OsRng;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::{RsaPrivateKey, RsaPublicKey};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::json;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::AssertionAlg;
use crate::{EntraError, util};

/// How long an assertion is valid (Microsoft advises 5–10 minutes).
const LIFETIME_SECS: i64 = 600;

/// The parsed certificate credential.
pub(crate) struct AssertionSigner {
    key: RsaPrivateKey,
    alg: AssertionAlg,
    /// base64url thumbprint: SHA-256 for PS256 (`x5t#S256`), SHA-1 for RS256 (`x5t`).
    thumbprint: String,
}

impl AssertionSigner {
    pub(crate) fn new(
        cert_pem: &str,
        key_pem: &str,
        alg: AssertionAlg,
    ) -> Result<Self, EntraError> {
        let bad = |why: String| EntraError::Credential(why);
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| bad(format!("certificate PEM: {e}")))?;
        // Key errors never quote the key.
        let key = RsaPrivateKey::from_pkcs8_pem(key_pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(key_pem))
            .map_err(|_| {
                bad(
                    "private key: not an unencrypted RSA key in PKCS#8 ('PRIVATE KEY') or \
                     PKCS#1 ('RSA PRIVATE KEY') PEM"
                        .into(),
                )
            })?;
        let spki = spki_of(cert.as_ref())
            .ok_or_else(|| bad("certificate DER: no SubjectPublicKeyInfo".into()))?;
        let cert_key = RsaPublicKey::from_public_key_der(spki)
            .map_err(|_| bad("the certificate's key is not an RSA key".into()))?;
        if cert_key != key.to_public_key() {
            return Err(bad(
                "the private key does not belong to the certificate".into()
            ));
        }
        let thumbprint = match alg {
            AssertionAlg::Ps256 => URL_SAFE_NO_PAD.encode(Sha256::digest(cert.as_ref())),
            AssertionAlg::Rs256 => URL_SAFE_NO_PAD.encode(Sha1::digest(cert.as_ref())),
        };
        Ok(Self {
            key,
            alg,
            thumbprint,
        })
    }

    pub(crate) fn alg(&self) -> AssertionAlg {
        self.alg
    }

    /// A fresh assertion for `client_id` at the token endpoint `aud`, issued at `now` (Unix s).
    pub(crate) fn sign(
        &self,
        client_id: &str,
        aud: &str,
        now: i64,
    ) -> Result<Zeroizing<String>, EntraError> {
        let header = match self.alg {
            AssertionAlg::Ps256 => {
                json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint})
            }
            AssertionAlg::Rs256 => json!({"alg": "RS256", "typ": "JWT", "x5t": self.thumbprint}),
        };
        let claims = json!({
            "aud": aud,
            "iss": client_id,
            "sub": client_id,
            "jti": util::random_guid()?,
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let failed = |_| EntraError::Credential("signing the client assertion failed".into());
        let sig = match self.alg {
            AssertionAlg::Ps256 => rsa::pss::BlindedSigningKey::<Sha256>::new(self.key.clone())
                .try_sign_with_rng(&mut OsRng, signed.as_bytes())
                .map_err(failed)?
                .to_vec(),
            AssertionAlg::Rs256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(self.key.clone())
                .try_sign(signed.as_bytes())
                .map_err(failed)?
                .to_vec(),
        };
        Ok(Zeroizing::new(format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(sig)
        )))
    }
}

/// One DER TLV at `pos`: (tag, content start, end).
fn tlv(buf: &[u8], pos: usize) -> Option<(u8, usize, usize)> {
    let tag = *buf.get(pos)?;
    let first = *buf.get(pos + 1)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), pos + 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*buf.get(pos + 2 + i)?);
        }
        (len, pos + 2 + n)
    };
    let end = start.checked_add(len)?;
    (end <= buf.len()).then_some((tag, start, end))
}

/// The SubjectPublicKeyInfo of an X.509 certificate (RFC 5280 §4.1).
fn spki_of(cert: &[u8]) -> Option<&[u8]> {
    let (_, cert_start, _) = tlv(cert, 0)?;
    let (_, tbs_start, tbs_end) = tlv(cert, cert_start)?;
    let mut pos = tbs_start;
    let (tag, _, end) = tlv(cert, pos)?;
    if tag == 0xa0 {
        pos = end; // [0] EXPLICIT version
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        let (_, _, end) = tlv(cert, pos)?;
        pos = end;
    }
    let (tag, _, end) = tlv(cert, pos)?;
    (tag == 0x30 && end <= tbs_end).then(|| &cert[pos..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_echo() {
        let Err(e) = AssertionSigner::new("nope", "TOP-SECRET-KEY", AssertionAlg::Ps256) else {
            panic!("accepted garbage");
        };
        assert!(!e.to_string().contains("TOP-SECRET"), "{e}");
        assert!(e.to_string().starts_with("RK-ENTRA-002"), "{e}");
    }

    #[test]
    fn tlv_lengths() {
        assert_eq!(tlv(&[0x30, 0x02, 1, 2], 0), Some((0x30, 2, 4)));
        assert_eq!(tlv(&[0x30, 0x81, 0x01, 9], 0), Some((0x30, 3, 4)));
        assert_eq!(tlv(&[0x30, 0x05, 1], 0), None);
        assert_eq!(spki_of(&[0x30, 0x00]), None);
    }
}
