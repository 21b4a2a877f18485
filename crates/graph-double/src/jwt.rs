//! Client assertions (E `docs/identity-platform/certificate-credentials.md`): parse the JWT,
//! find the registered certificate by `x5t#S256` (PS256) or `x5t` (RS256), verify the signature,
//! `aud`, `iss` = `sub` = client id, `nbf`/`exp` with a small skew. `jti` replay is checked by the
//! caller, which owns the seen-set.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Allowed clock skew for `nbf`/`exp`, seconds.
pub(crate) const SKEW_SECS: i64 = 300;

/// A registered certificate: its thumbprints and RSA public key.
#[derive(Clone)]
pub(crate) struct RegisteredCert {
    pub sha256: Vec<u8>,
    pub sha1: Vec<u8>,
    pub key: RsaPublicKey,
}

/// Parses every certificate in a PEM text.
pub(crate) fn parse_certs(pem: &str) -> Result<Vec<RegisteredCert>, String> {
    let mut out = Vec::new();
    for der in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let der = der.map_err(|e| format!("certificate PEM: {e}"))?;
        let spki = spki_of(der.as_ref()).ok_or("certificate DER: no SubjectPublicKeyInfo")?;
        let key = RsaPublicKey::from_public_key_der(spki)
            .map_err(|e| format!("certificate key is not RSA: {e}"))?;
        out.push(RegisteredCert {
            sha256: Sha256::digest(der.as_ref()).to_vec(),
            sha1: Sha1::digest(der.as_ref()).to_vec(),
            key,
        });
    }
    if out.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(out)
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

/// The SubjectPublicKeyInfo TLV of an X.509 certificate (RFC 5280 §4.1).
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

/// Decodes base64 in any of the spellings clients use (url-safe or standard, padded or not).
pub(crate) fn b64_lenient(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .or_else(|_| STANDARD.decode(s))
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .ok()
}

/// Why an assertion was refused (mapped to AADSTS codes by the token endpoint).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AssertionError {
    Malformed(String),
    UnknownCertificate,
    BadSignature,
    Audience,
    IssuerSubject,
    TimeRange,
}

/// The verified claims a caller still needs.
pub(crate) struct Verified {
    pub jti: String,
}

/// Verifies a client assertion for `client_id` against `certs` and the expected `aud`.
pub(crate) fn verify_assertion(
    jwt: &str,
    client_id: &str,
    certs: &[RegisteredCert],
    expected_aud: &str,
    now_unix: i64,
) -> Result<Verified, AssertionError> {
    let bad = |why: &str| AssertionError::Malformed(why.to_owned());
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("a JWT has three parts"));
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("header is not base64url JSON"))?;
    let claims: Value = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad("payload is not base64url JSON"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad("signature is not base64url"))?;
    let signed = &jwt.as_bytes()[..h.len() + 1 + p.len()];
    let alg = header["alg"].as_str().unwrap_or_default();
    let pick = |name: &str, want: fn(&RegisteredCert) -> &[u8]| {
        let tp = header[name].as_str().and_then(b64_lenient)?;
        certs.iter().find(|c| want(c) == tp.as_slice())
    };
    let cert = match alg {
        "PS256" => pick("x5t#S256", |c| &c.sha256).or_else(|| pick("x5t", |c| &c.sha1)),
        "RS256" => pick("x5t", |c| &c.sha1).or_else(|| pick("x5t#S256", |c| &c.sha256)),
        other => return Err(bad(&format!("unsupported alg '{other}'"))),
    }
    .ok_or(AssertionError::UnknownCertificate)?;
    let ok = if alg == "PS256" {
        let key = rsa::pss::VerifyingKey::<Sha256>::new(cert.key.clone());
        rsa::pss::Signature::try_from(sig.as_slice())
            .is_ok_and(|sig| key.verify(signed, &sig).is_ok())
    } else {
        let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(cert.key.clone());
        rsa::pkcs1v15::Signature::try_from(sig.as_slice())
            .is_ok_and(|sig| key.verify(signed, &sig).is_ok())
    };
    if !ok {
        return Err(AssertionError::BadSignature);
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == expected_aud,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(expected_aud)),
        _ => false,
    };
    if !aud_ok {
        return Err(AssertionError::Audience);
    }
    if claims["iss"].as_str() != Some(client_id) || claims["sub"].as_str() != Some(client_id) {
        return Err(AssertionError::IssuerSubject);
    }
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| bad("exp is required"))?;
    let nbf = claims["nbf"].as_i64().unwrap_or(i64::MIN);
    if now_unix > exp + SKEW_SECS || now_unix + SKEW_SECS < nbf {
        return Err(AssertionError::TimeRange);
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or_else(|| bad("jti is required"))?;
    Ok(Verified {
        jti: jti.to_owned(),
    })
}
