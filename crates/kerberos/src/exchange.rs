//! The AS exchange as a state machine without I/O: it turns the KDC's answers into the next
//! request or a [`Verdict`]. The nonce and the clock come in as parameters, so a captured
//! exchange replays deterministically (`tests.rs`).

use picky_asn1::bit_string::BitString;
use picky_asn1::date::{Date, GeneralizedTime};
use picky_asn1::restricted_string::Ia5String;
use picky_asn1::wrapper::{
    Asn1SequenceOf, BitStringAsn1, ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2,
    ExplicitContextTag3, ExplicitContextTag4, ExplicitContextTag5, ExplicitContextTag7,
    ExplicitContextTag8, GeneralStringAsn1, IntegerAsn1, OctetStringAsn1, Optional,
};
use picky_krb::constants::key_usages::{AS_REP_ENC, AS_REQ_TIMESTAMP};
use picky_krb::crypto::CipherSuite;
use picky_krb::data_types::{
    EncryptedData, EtypeInfo2, KerbPaPacRequest, KerberosTime, PaData, PaEncTsEnc, PrincipalName,
};
use picky_krb::messages::{
    AsRep, AsReq, EncAsRepPart, EncKdcRepPart, EncTgsRepPart, KdcReq, KdcReqBody, KrbError,
};
use serde::de::DeserializeOwned;
use zeroize::{Zeroize, Zeroizing};

use crate::{KerberosError, Verdict, code};

/// The encryption types offered, in preference order: AES256 and AES128 (RFC 3962). RC4 is not
/// supported by picky-krb; a fresh reset on a 2008+ domain always creates AES keys.
pub(crate) const ETYPES: [i32; 2] = [18, 17];

/// FORWARDABLE | RENEWABLE | CANONICALIZE | RENEWABLE-OK: what Windows clients send.
const KDC_OPTIONS: [u8; 4] = [0x40, 0x81, 0x00, 0x10];

const PA_PW_SALT: i64 = 3; // also KERB-ERR-TYPE-EXTENDED on Windows: carries KERB-EXT-ERROR
const PA_ENC_TIMESTAMP: i64 = 2;
const PA_ETYPE_INFO2: i64 = 19;
const PA_PAC_REQUEST: i64 = 128;

/// The ticket lifetime asked for. The check never uses the ticket; the KDC caps it anyway.
const LIFETIME_SECS: u64 = 10 * 3600;

/// DER tags of the outer message: `[APPLICATION 11]` AS-REP, `[APPLICATION 30]` KRB-ERROR.
const TAG_AS_REP: u8 = 0x6b;
const TAG_KRB_ERROR: u8 = 0x7e;

/// The client's time for one exchange: whole seconds since the Unix epoch and microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    pub unix_secs: u64,
    pub micros: u32,
}

/// What to do after a reply.
#[derive(Debug)]
pub(crate) enum Step {
    Send(Vec<u8>),
    Done(Verdict),
}

/// One AS exchange for one user. Holds the password only as a borrowed `&str` and the derived
/// key in a [`Zeroizing`] buffer.
pub(crate) struct Exchange<'a> {
    realm: &'a str,
    user: &'a str,
    password: &'a str,
    nonce: u32,
    now: Now,
    /// The request carrying PA-ENC-TIMESTAMP (proof of the password) has been built; from here
    /// on an attempt may count in `badPwdCount`.
    preauth_sent: bool,
    key: Option<Key>,
}

pub(crate) struct Key {
    pub etype: i32,
    pub suite: CipherSuite,
    pub bytes: Zeroizing<Vec<u8>>,
}

impl<'a> Exchange<'a> {
    /// Validates the inputs (nothing is sent for a blank password or a name Kerberos cannot
    /// carry as IA5).
    pub(crate) fn new(
        realm: &'a str,
        user: &'a str,
        password: &'a str,
        nonce: u32,
        now: Now,
    ) -> Result<Self, KerberosError> {
        if password.is_empty() {
            return Err(KerberosError::Input("the password is empty".into()));
        }
        for (what, value) in [("realm", realm), ("user name", user)] {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(KerberosError::Input(format!(
                    "the {what} must be non-empty printable ASCII without spaces"
                )));
            }
        }
        Ok(Self {
            realm,
            user,
            password,
            nonce,
            now,
            preauth_sent: false,
            key: None,
        })
    }

    /// Whether the request proving the password may have reached the KDC (so the attempt may
    /// have counted as a bad password if the key was wrong).
    pub(crate) fn preauth_sent(&self) -> bool {
        self.preauth_sent
    }

    #[cfg(test)]
    pub(crate) fn key_for_tests(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    /// The first AS-REQ: no pre-authentication, only PA-PAC-REQUEST (no PAC: a smaller answer).
    pub(crate) fn first_request(&self) -> Result<Vec<u8>, KerberosError> {
        self.request(None)
    }

    /// The next step after the KDC's `reply` (the message without its length prefix).
    pub(crate) fn on_reply(&mut self, reply: &[u8]) -> Result<Step, KerberosError> {
        match reply.first() {
            Some(&TAG_KRB_ERROR) => self.on_error(reply),
            Some(&TAG_AS_REP) => self.on_as_rep(reply).map(Step::Done),
            Some(tag) => Err(self.protocol(format!(
                "expected AS-REP or KRB-ERROR, got a message with tag 0x{tag:02x}"
            ))),
            None => Err(self.protocol("empty reply".into())),
        }
    }

    fn on_error(&mut self, reply: &[u8]) -> Result<Step, KerberosError> {
        let err: KrbError = self.decode(reply, "KRB-ERROR")?;
        let e = &err.0;
        let code = i32::try_from(e.error_code.0).unwrap_or(i32::MAX);
        let e_data = e.e_data.0.as_ref().map(|d| d.0.0.as_slice());
        let ntstatus = e_data.and_then(ntstatus);
        let verdict = match code {
            code::PREAUTH_REQUIRED if !self.preauth_sent => {
                let padata = e_data.map(method_data).unwrap_or_default();
                let key = self.derive_key(&padata, None)?;
                let request = self.request(Some(&key))?;
                self.key = Some(key);
                self.preauth_sent = true;
                return Ok(Step::Send(request));
            }
            code::C_PRINCIPAL_UNKNOWN => Verdict::UnknownPrincipal,
            // Only an answer to the request that proved the password says anything about it.
            code::PREAUTH_FAILED if self.preauth_sent => Verdict::WrongPassword,
            code::KEY_EXPIRED if self.preauth_sent && ntstatus == Some(code::NT_MUST_CHANGE) => {
                Verdict::AcceptedMustChange
            }
            // A locked-out account is refused whatever the password: Samba 4.17 answers 18
            // without NTSTATUS to a right and a wrong one alike (verified), and a Windows DC
            // may send C0000234 without checking it. Only other statuses prove the password.
            code::CLIENT_REVOKED if self.preauth_sent => match ntstatus {
                Some(nt) if nt != code::NT_ACCOUNT_LOCKED_OUT => {
                    Verdict::AcceptedAccountRefused { ntstatus: nt }
                }
                _ => Verdict::Other { code, ntstatus },
            },
            _ => Verdict::Other { code, ntstatus },
        };
        Ok(Step::Done(verdict))
    }

    fn on_as_rep(&mut self, reply: &[u8]) -> Result<Verdict, KerberosError> {
        let rep: AsRep = self.decode(reply, "AS-REP")?;
        let enc = &rep.0.enc_part.0;
        let etype = int(&enc.etype.0).ok_or_else(|| self.protocol("bad enc-part etype".into()))?;
        if self.key.is_none() {
            // The account does not require pre-authentication: the KDC answered at once. The
            // salt comes from the AS-REP's own padata (or is the default one).
            let padata = rep.0.padata.0.as_ref().map(|p| p.0.0.clone());
            let key = self.derive_key(&padata.unwrap_or_default(), Some(etype))?;
            self.key = Some(key);
        }
        let Some(key) = self.key.as_ref() else {
            return Err(self.protocol("no key".into()));
        };
        if i64::from(key.etype) != etype {
            return Err(self.crypto(format!(
                "the AS-REP is encrypted with etype {etype}, the pre-authentication used {}",
                key.etype
            )));
        }
        let plain = Zeroizing::new(
            key.suite
                .cipher()
                .decrypt(&key.bytes, AS_REP_ENC, &enc.cipher.0.0)
                .map_err(|e| {
                    self.crypto(format!(
                        "the AS-REP does not decrypt with the password's key: {e}"
                    ))
                })?,
        );
        // Windows KDCs tag the AS-REP's encrypted part as EncTGSRepPart (26).
        let mut part: EncKdcRepPart = match picky_asn1_der::from_bytes::<EncAsRepPart>(&plain) {
            Ok(p) => p.0,
            Err(_) => {
                picky_asn1_der::from_bytes::<EncTgsRepPart>(&plain)
                    .map_err(|e| self.protocol(format!("cannot parse EncASRepPart: {e}")))?
                    .0
            }
        };
        let nonce = int(&part.nonce.0);
        part.key.0.key_value.0.0.zeroize();
        if nonce != Some(i64::from(self.nonce)) {
            return Err(self.crypto("the AS-REP's nonce is not the request's".into()));
        }
        Ok(Verdict::Accepted)
    }

    /// The key for the password from ETYPE-INFO2 (the first entry we support, in the KDC's
    /// order), or from `etype` with the default salt (realm + name) when there is none.
    fn derive_key(&self, padata: &[PaData], etype: Option<i64>) -> Result<Key, KerberosError> {
        let info: Option<EtypeInfo2> = padata
            .iter()
            .find(|p| int(&p.padata_type.0) == Some(PA_ETYPE_INFO2))
            .map(|p| self.decode(&p.padata_data.0.0, "ETYPE-INFO2"))
            .transpose()?;
        let entry = info.as_ref().and_then(|info| {
            info.0.iter().find(|e| {
                let t = int(&e.etype.0);
                t.is_some_and(|t| ETYPES.iter().any(|&ours| i64::from(ours) == t))
                    && etype.is_none_or(|want| t == Some(want))
            })
        });
        let (etype, salt) = match (entry, etype) {
            (Some(e), _) => {
                if let Some(params) = e.s2kparams.0.as_ref()
                    && params.0.0 != [0, 0, 0x10, 0]
                {
                    return Err(KerberosError::Unsupported(
                        "the KDC asks for a string-to-key iteration count other than 4096".into(),
                    ));
                }
                let salt = match e.salt.0.as_ref() {
                    Some(s) => s.0.as_bytes().to_vec(),
                    None => self.default_salt(),
                };
                (int(&e.etype.0).unwrap_or_default(), salt)
            }
            (None, Some(etype)) if info.is_none() => (etype, self.default_salt()),
            // Guessing a salt could cost a bad-password count: never try without ETYPE-INFO2.
            (None, None) if info.is_none() => {
                return Err(self
                    .protocol("the KDC asked for pre-authentication without ETYPE-INFO2".into()));
            }
            _ => {
                return Err(KerberosError::Unsupported(
                    "the KDC offers no AES key for this account (RC4 or DES only?)".into(),
                ));
            }
        };
        let etype = i32::try_from(etype).unwrap_or_default();
        let suite = usize::try_from(etype)
            .ok()
            .and_then(|t| CipherSuite::try_from(t).ok())
            .filter(|_| ETYPES.contains(&etype))
            .ok_or_else(|| KerberosError::Unsupported(format!("encryption type {etype}")))?;
        let bytes = suite
            .cipher()
            .generate_key_from_password(self.password.as_bytes(), &salt)
            .map_err(|e| self.crypto(format!("string-to-key failed: {e}")))?;
        Ok(Key {
            etype,
            suite,
            bytes: Zeroizing::new(bytes),
        })
    }

    fn default_salt(&self) -> Vec<u8> {
        format!("{}{}", self.realm, self.user).into_bytes()
    }

    /// An AS-REQ for `user@realm` → `krbtgt/realm`, with PA-ENC-TIMESTAMP under `key` if given.
    fn request(&self, key: Option<&Key>) -> Result<Vec<u8>, KerberosError> {
        let mut padata = Vec::with_capacity(2);
        if let Some(key) = key {
            let ts = PaEncTsEnc {
                patimestamp: ExplicitContextTag0::from(self.time(0)?),
                pausec: Optional::from(Some(ExplicitContextTag1::from(uint(u64::from(
                    self.now.micros,
                ))))),
            };
            let ts = self.encode(&ts)?;
            let cipher = key
                .suite
                .cipher()
                .encrypt(&key.bytes, AS_REQ_TIMESTAMP, &ts)
                .map_err(|e| self.crypto(format!("cannot encrypt the timestamp: {e}")))?;
            let enc = EncryptedData {
                etype: ExplicitContextTag0::from(sint(key.etype)),
                kvno: Optional::from(None),
                cipher: ExplicitContextTag2::from(OctetStringAsn1::from(cipher)),
            };
            padata.push(pa(PA_ENC_TIMESTAMP, self.encode(&enc)?));
        }
        let pac = KerbPaPacRequest {
            include_pac: ExplicitContextTag0::from(false),
        };
        padata.push(pa(PA_PAC_REQUEST, self.encode(&pac)?));
        let body = KdcReqBody {
            kdc_options: ExplicitContextTag0::from(BitStringAsn1::from(BitString::with_bytes(
                KDC_OPTIONS.to_vec(),
            ))),
            cname: Optional::from(Some(ExplicitContextTag1::from(principal(1, &[self.user])?))),
            realm: ExplicitContextTag2::from(ia5(self.realm)?),
            sname: Optional::from(Some(ExplicitContextTag3::from(principal(
                2,
                &["krbtgt", self.realm],
            )?))),
            from: Optional::from(None),
            till: ExplicitContextTag5::from(self.time(LIFETIME_SECS)?),
            rtime: Optional::from(None),
            nonce: ExplicitContextTag7::from(uint(u64::from(self.nonce))),
            etype: ExplicitContextTag8::from(Asn1SequenceOf::from(
                ETYPES.iter().map(|&e| sint(e)).collect::<Vec<_>>(),
            )),
            addresses: Optional::from(None),
            enc_authorization_data: Optional::from(None),
            additional_tickets: Optional::from(None),
        };
        let req = AsReq::from(KdcReq {
            pvno: ExplicitContextTag1::from(sint(5)),
            msg_type: ExplicitContextTag2::from(sint(10)),
            padata: Optional::from(Some(ExplicitContextTag3::from(Asn1SequenceOf::from(
                padata,
            )))),
            req_body: ExplicitContextTag4::from(body),
        });
        self.encode(&req)
    }

    fn time(&self, plus_secs: u64) -> Result<KerberosTime, KerberosError> {
        generalized_time(self.now.unix_secs.saturating_add(plus_secs))
            .map(KerberosTime::from)
            .ok_or_else(|| KerberosError::Input("the clock is outside 1970–9999".into()))
    }

    fn decode<T: DeserializeOwned>(&self, der: &[u8], what: &str) -> Result<T, KerberosError> {
        picky_asn1_der::from_bytes(der)
            .map_err(|e| self.protocol(format!("cannot parse {what}: {e}")))
    }

    fn encode<T: serde::Serialize>(&self, value: &T) -> Result<Vec<u8>, KerberosError> {
        picky_asn1_der::to_vec(value).map_err(|e| self.protocol(format!("cannot encode: {e}")))
    }

    fn protocol(&self, detail: String) -> KerberosError {
        KerberosError::Protocol {
            detail,
            password_tried: self.preauth_sent,
        }
    }

    fn crypto(&self, detail: String) -> KerberosError {
        KerberosError::Crypto {
            detail,
            password_tried: self.preauth_sent,
        }
    }
}

/// The NTSTATUS a KDC puts in a KRB-ERROR's e-data: KERB-EXT-ERROR (status, reserved, flags;
/// little-endian) in a PA-DATA of type 3. Samba sends METHOD-DATA (a SEQUENCE OF PA-DATA);
/// Windows sends one KERB-ERROR-DATA, which has the same shape as one PA-DATA.
pub(crate) fn ntstatus(e_data: &[u8]) -> Option<u32> {
    let mut entries = method_data(e_data);
    if entries.is_empty()
        && let Ok(one) = picky_asn1_der::from_bytes::<PaData>(e_data)
    {
        entries.push(one);
    }
    entries
        .iter()
        .find(|p| int(&p.padata_type.0) == Some(PA_PW_SALT))
        .and_then(|p| p.padata_data.0.0.get(..4))
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
}

/// e-data as METHOD-DATA; empty when it is something else.
fn method_data(e_data: &[u8]) -> Vec<PaData> {
    picky_asn1_der::from_bytes::<Asn1SequenceOf<PaData>>(e_data)
        .map(|s| s.0)
        .unwrap_or_default()
}

fn pa(kind: i64, value: Vec<u8>) -> PaData {
    PaData {
        padata_type: ExplicitContextTag1::from(IntegerAsn1::from_bytes_be_signed(
            kind.to_be_bytes().to_vec(),
        )),
        padata_data: ExplicitContextTag2::from(OctetStringAsn1::from(value)),
    }
}

fn principal(kind: i32, parts: &[&str]) -> Result<PrincipalName, KerberosError> {
    Ok(PrincipalName {
        name_type: ExplicitContextTag0::from(sint(kind)),
        name_string: ExplicitContextTag1::from(Asn1SequenceOf::from(
            parts
                .iter()
                .map(|p| ia5(p))
                .collect::<Result<Vec<_>, _>>()?,
        )),
    })
}

fn ia5(s: &str) -> Result<GeneralStringAsn1, KerberosError> {
    Ia5String::from_string(s.to_owned())
        .map(GeneralStringAsn1::from)
        .map_err(|_| KerberosError::Input("names must be ASCII".into()))
}

fn sint(v: i32) -> IntegerAsn1 {
    IntegerAsn1::from_bytes_be_signed(v.to_be_bytes().to_vec())
}

fn uint(v: u64) -> IntegerAsn1 {
    IntegerAsn1::from_bytes_be_unsigned(v.to_be_bytes().to_vec())
}

/// A DER INTEGER that fits in an `i64`.
pub(crate) fn int(v: &IntegerAsn1) -> Option<i64> {
    let bytes = v.as_signed_bytes_be();
    if bytes.len() > 8 {
        return None;
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut buf = [fill; 8];
    buf[8 - bytes.len()..].copy_from_slice(bytes);
    Some(i64::from_be_bytes(buf))
}

/// Seconds since the Unix epoch as a `GeneralizedTime` (UTC, whole seconds), without a date crate:
/// the proleptic Gregorian conversion from days (Howard Hinnant's `civil_from_days`).
pub(crate) fn generalized_time(unix_secs: u64) -> Option<GeneralizedTime> {
    let days = i64::try_from(unix_secs / 86_400).ok()?;
    let rem = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date::new(
        u16::try_from(year).ok()?,
        u8::try_from(month).ok()?,
        u8::try_from(day).ok()?,
        u8::try_from(rem / 3600).ok()?,
        u8::try_from(rem / 60 % 60).ok()?,
        u8::try_from(rem % 60).ok()?,
    )
}
