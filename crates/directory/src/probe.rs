//! Read-only probes for `rekey doctor`: one DC at a time, on its own connection (not the pool),
//! so every configured DC is judged alone. Nothing here writes to the directory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchOptions};

use crate::AdConfig;
use crate::acl::{SecurityDescriptor, WELL_KNOWN_TOKEN_SIDS, sid_string};
use crate::escape::ldap_escape;

/// Why a probe could not answer. Never carries a password.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProbeError {
    /// A setting is unusable (missing password, CA file, URL).
    #[error("{0}")]
    Config(String),
    /// No TCP/TLS connection (refused, timed out, name unknown).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The TLS handshake failed on the certificate (unknown issuer, expired, wrong name).
    #[error("certificate not trusted: {0}")]
    Untrusted(String),
    /// The DC refused the service account's bind.
    #[error("bind refused: {0}")]
    Bind(String),
    /// An operation failed after the bind.
    #[error("{0}")]
    Ldap(String),
}

/// The DC's certificate as seen in a TLS handshake that verified it.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// `notAfter`, seconds since the Unix epoch.
    pub not_after: i64,
}

fn host_port(url: &str) -> Result<(String, u16), ProbeError> {
    let bad = || ProbeError::Config(format!("directory.urls: {url} is not ldaps://host[:port]"));
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let rest = rest.split('/').next().unwrap_or_default();
    let default = if scheme.eq_ignore_ascii_case("ldaps") {
        636
    } else {
        389
    };
    if let Some(v6) = rest.strip_prefix('[') {
        let (host, tail) = v6.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => default,
        };
        return Ok((host.to_owned(), port));
    }
    match rest.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_owned(), p.parse().map_err(|_| bad())?)),
        None if !rest.is_empty() => Ok((rest.to_owned(), default)),
        None => Err(bad()),
    }
}

/// A TLS handshake with the DC at `url`, trusting only `directory.ca_file` (as the pool does),
/// and the peer certificate's validity. An untrusted or expired certificate fails the handshake.
///
/// # Errors
/// `Untrusted` for certificate problems, `Unreachable` for network ones.
pub async fn peer_certificate(config: &AdConfig, url: &str) -> Result<CertInfo, ProbeError> {
    let tls = crate::tls::client_config(config.ca_file.as_deref())
        .map_err(|e| ProbeError::Config(e.to_string()))?;
    let (host, port) = host_port(url)?;
    let timeout = config.connect_timeout();
    tokio::task::spawn_blocking(move || handshake(&tls, &host, port, timeout))
        .await
        .map_err(|e| ProbeError::Unreachable(e.to_string()))?
}

fn handshake(
    tls: &Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<CertInfo, ProbeError> {
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| ProbeError::Config(format!("{host}: {e}")))?;
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| ProbeError::Unreachable(format!("{host}: {e}")))?;
    let mut last = format!("{host}:{port}: no address");
    let mut sock = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                sock = Some(s);
                break;
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    let mut sock = sock.ok_or(ProbeError::Unreachable(last))?;
    let io = |e: std::io::Error| ProbeError::Unreachable(e.to_string());
    sock.set_read_timeout(Some(timeout)).map_err(io)?;
    sock.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut conn = rustls::ClientConnection::new(Arc::clone(tls), name)
        .map_err(|e| ProbeError::Config(e.to_string()))?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            let tls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>());
            return Err(match tls_error {
                Some(rustls::Error::InvalidCertificate(why)) => {
                    ProbeError::Untrusted(format!("{why:?}"))
                }
                Some(other) => ProbeError::Untrusted(other.to_string()),
                None if e.kind() == ErrorKind::InvalidData => ProbeError::Untrusted(e.to_string()),
                None => ProbeError::Unreachable(e.to_string()),
            });
        }
    }
    let der = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| ProbeError::Untrusted("the DC sent no certificate".into()))?;
    cert_info(der.as_ref())
}

/// Subject, issuer and `notAfter` of a DER certificate (also the portal's own, for the doctor).
///
/// # Errors
/// `Untrusted` when it does not parse.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, ProbeError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| ProbeError::Untrusted(format!("unreadable certificate: {e}")))?;
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Check `[directory]` without contacting a DC: URLs, pool size, the bind password readable
/// and not blank (the password itself is dropped at once).
///
/// # Errors
/// `SetupError::Config` naming the key.
pub fn check_settings(config: &AdConfig) -> Result<(), crate::SetupError> {
    config.validate().map(drop)
}

/// `YYYYMMDDHHMMSS[.f]Z` (LDAP generalized time, as rootDSE `currentTime`) → Unix seconds.
#[must_use]
pub fn parse_generalized_time(s: &str) -> Option<i64> {
    let d = s.get(..14)?;
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| d[r].parse::<i64>().ok();
    let (y, m, day) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(8..10)?, n(10..12)?, n(12..14)?);
    let days =
        rekey_core::clock::days_from_civil(y, u32::try_from(m).ok()?, u32::try_from(day).ok()?);
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// One entry of a probe search, with attribute names folded to lower case.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub dn: String,
    text: HashMap<String, Vec<String>>,
    bin: HashMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    fn from(e: SearchEntry) -> Self {
        let mut out = Self {
            dn: e.dn,
            ..Self::default()
        };
        for (k, v) in e.attrs {
            out.bin
                .entry(k.to_ascii_lowercase())
                .or_default()
                .extend(v.iter().map(|s| s.as_bytes().to_vec()));
            out.text
                .entry(k.to_ascii_lowercase())
                .or_default()
                .extend(v);
        }
        for (k, v) in e.bin_attrs {
            out.bin.entry(k.to_ascii_lowercase()).or_default().extend(v);
        }
        out
    }

    #[must_use]
    pub fn all(&self, attr: &str) -> &[String] {
        self.text
            .get(&attr.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    #[must_use]
    pub fn first(&self, attr: &str) -> Option<&str> {
        self.all(attr).first().map(String::as_str)
    }

    #[must_use]
    pub fn bin(&self, attr: &str) -> &[Vec<u8>] {
        self.bin
            .get(&attr.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// The parsed `nTSecurityDescriptor`, when it was asked for.
    #[must_use]
    pub fn security_descriptor(&self) -> Option<SecurityDescriptor> {
        SecurityDescriptor::parse(self.bin("nTSecurityDescriptor").first()?).ok()
    }
}

/// The rootDSE facts the doctor uses.
#[derive(Debug, Clone, Default)]
pub struct RootDse {
    /// Unix seconds of the DC's clock (`currentTime`).
    pub current_time: Option<i64>,
    pub ds_service_name: Option<String>,
    pub default_naming_context: Option<String>,
    pub schema_naming_context: Option<String>,
    pub dns_host_name: Option<String>,
}

/// The LDAP RDN value of a DN's first component (`CN=IT-Admins,OU=…` → `IT-Admins`).
#[must_use]
pub fn rdn_value(dn: &str) -> &str {
    dn.split(',')
        .next()
        .and_then(|r| r.split_once('=').map(|(_, v)| v))
        .unwrap_or(dn)
}

/// The DN of the container holding `dn` (`CN=x,OU=Staff,DC=…` → `OU=Staff,DC=…`).
#[must_use]
pub fn parent_dn(dn: &str) -> &str {
    let bytes = dn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => return &dn[i + 1..],
            _ => i += 1,
        }
    }
    ""
}

/// One connection to one DC, bound as the service account.
pub struct Session {
    ldap: Ldap,
    timeout: Duration,
    pub url: String,
    /// The last search stopped at a size limit (ours or the DC's `MaxPageSize`, 1000 by default).
    truncated: bool,
}

impl Session {
    /// Connect to `url` (with the pool's TLS settings) and bind as `directory.bind_dn`.
    ///
    /// # Errors
    /// `Config` for unusable settings, `Unreachable`, `Untrusted`, or `Bind` (wrong password,
    /// disabled or locked service account).
    pub async fn open(config: &AdConfig, url: &str) -> Result<Self, ProbeError> {
        let password = config
            .validate()
            .map_err(|e| ProbeError::Config(e.to_string()))?;
        let mut settings = LdapConnSettings::new().set_conn_timeout(config.connect_timeout());
        if url.to_ascii_lowercase().starts_with("ldaps:") {
            let tls = crate::tls::client_config(config.ca_file.as_deref())
                .map_err(|e| ProbeError::Config(e.to_string()))?;
            settings = settings.set_config(tls);
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, url)
            .await
            .map_err(|e| {
                let text = e.to_string();
                if text.contains("certificate") || text.contains("Certificate") {
                    ProbeError::Untrusted(text)
                } else {
                    ProbeError::Unreachable(text)
                }
            })?;
        tokio::spawn(async move {
            let _ = conn.drive().await;
        });
        let timeout = config.op_timeout();
        let res = ldap
            .with_timeout(timeout)
            .simple_bind(&config.bind_dn, password.expose())
            .await
            .map_err(|e| ProbeError::Unreachable(e.to_string()))?;
        if res.rc != 0 {
            let _ = ldap.unbind().await;
            return Err(ProbeError::Bind(format!("LDAP {} {}", res.rc, res.text)));
        }
        Ok(Self {
            ldap,
            timeout,
            url: url.to_owned(),
            truncated: false,
        })
    }

    /// Whether the last search returned only part of the answer (size limit: no paging here).
    #[must_use]
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Close the connection.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }

    /// A search; `with_sd` adds the SD-flags control (DACL only), `limit` caps the answer (the
    /// DC's "size limit exceeded" then counts as success).
    ///
    /// # Errors
    /// `Ldap` with the DC's result, `Unreachable` when the connection failed.
    pub async fn search(
        &mut self,
        base: &str,
        subtree: bool,
        filter: &str,
        attrs: &[&str],
        with_sd: bool,
        limit: i32,
    ) -> Result<Vec<Entry>, ProbeError> {
        let scope = if subtree { Scope::Subtree } else { Scope::Base };
        let ldap = self.ldap.with_timeout(self.timeout);
        if limit > 0 {
            ldap.with_search_options(SearchOptions::new().sizelimit(limit));
        }
        if with_sd {
            // LDAP_SERVER_SD_FLAGS_OID, SEQUENCE { INTEGER 4 }: the DACL only (no SACL right).
            ldap.with_controls(RawControl {
                ctype: "1.2.840.113556.1.4.801".into(),
                crit: true,
                val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x04]),
            });
        }
        let ldap3::SearchResult(found, res) = ldap
            .search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| ProbeError::Unreachable(e.to_string()))?;
        self.truncated = res.rc == 4;
        match res.rc {
            0 | 4 => {}
            32 => return Ok(Vec::new()),
            _ => return Err(ProbeError::Ldap(format!("{base}: {res}"))),
        }
        Ok(found
            .into_iter()
            .filter(|e| !e.is_ref())
            .map(|e| Entry::from(SearchEntry::construct(e)))
            .collect())
    }

    /// Read one object (base scope).
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn read(&mut self, dn: &str, attrs: &[&str]) -> Result<Option<Entry>, ProbeError> {
        Ok(self
            .search(dn, false, "(objectClass=*)", attrs, false, 0)
            .await?
            .into_iter()
            .next())
    }

    /// The rootDSE: clock, identity, naming contexts.
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn root_dse(&mut self) -> Result<RootDse, ProbeError> {
        let e = self
            .read(
                "",
                &[
                    "currentTime",
                    "dsServiceName",
                    "defaultNamingContext",
                    "schemaNamingContext",
                    "dnsHostName",
                ],
            )
            .await?
            .unwrap_or_default();
        let s = |a: &str| e.first(a).map(str::to_owned);
        Ok(RootDse {
            current_time: e.first("currentTime").and_then(parse_generalized_time),
            ds_service_name: s("dsServiceName"),
            default_naming_context: s("defaultNamingContext"),
            schema_naming_context: s("schemaNamingContext"),
            dns_host_name: s("dnsHostName"),
        })
    }

    /// The service account's token as a DC builds it: its SID, its `tokenGroups`, Everyone and
    /// Authenticated Users.
    ///
    /// # Errors
    /// As [`Session::search`]; `Ldap` if the account cannot be read.
    pub async fn token(&mut self, account_dn: &str) -> Result<Vec<String>, ProbeError> {
        let e = self
            .read(account_dn, &["objectSid", "tokenGroups"])
            .await?
            .ok_or_else(|| ProbeError::Ldap(format!("{account_dn} not found")))?;
        let mut sids: Vec<String> = e
            .bin("objectSid")
            .iter()
            .chain(e.bin("tokenGroups"))
            .filter_map(|b| sid_string(b).ok())
            .collect();
        sids.extend(WELL_KNOWN_TOKEN_SIDS.iter().map(|s| (*s).to_owned()));
        Ok(sids)
    }

    /// An object's security descriptor (DACL only), read with the SD-flags control.
    ///
    /// # Errors
    /// `Ldap` when the object or its descriptor cannot be read.
    pub async fn security_descriptor(
        &mut self,
        dn: &str,
    ) -> Result<SecurityDescriptor, ProbeError> {
        let found = self
            .search(
                dn,
                false,
                "(objectClass=*)",
                &["nTSecurityDescriptor"],
                true,
                0,
            )
            .await?;
        let e = found
            .first()
            .ok_or_else(|| ProbeError::Ldap(format!("{dn} not found")))?;
        let raw = e
            .bin("nTSecurityDescriptor")
            .first()
            .ok_or_else(|| ProbeError::Ldap(format!("{dn}: nTSecurityDescriptor not readable")))?;
        SecurityDescriptor::parse(raw).map_err(|e| ProbeError::Ldap(format!("{dn}: {e}")))
    }

    /// `attributeSecurityGUID` (its property set) of an attribute, from the schema.
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn property_set(
        &mut self,
        schema_nc: &str,
        attribute: &str,
    ) -> Result<Option<crate::acl::AdGuid>, ProbeError> {
        let filter = format!("(lDAPDisplayName={})", ldap_escape(attribute));
        let found = self
            .search(
                schema_nc,
                true,
                &filter,
                &["attributeSecurityGUID"],
                false,
                1,
            )
            .await?;
        Ok(found
            .first()
            .and_then(|e| e.bin("attributeSecurityGUID").first().cloned())
            .and_then(|b| crate::acl::AdGuid::from_bytes(&b)))
    }

    /// Users at any depth below `base` (which may be a user's own DN), restricted to
    /// transitive members of any of `groups` when it is not empty.
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn users(
        &mut self,
        base: &str,
        groups: &[String],
        attrs: &[&str],
        with_sd: bool,
        limit: i32,
    ) -> Result<Vec<Entry>, ProbeError> {
        let member: String = groups
            .iter()
            .map(|g| format!("(memberOf:1.2.840.113556.1.4.1941:={})", ldap_escape(g)))
            .collect();
        let filter = if groups.is_empty() {
            "(&(objectCategory=person)(objectClass=user))".to_owned()
        } else {
            format!("(&(objectCategory=person)(objectClass=user)(|{member}))")
        };
        self.search(base, true, &filter, attrs, with_sd, limit)
            .await
    }

    /// Users below `base` that are transitive members of `group_dn` and (when `scope_groups`
    /// is not empty) of any of `scope_groups`.
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn members_in_scope(
        &mut self,
        base: &str,
        scope_groups: &[String],
        group_dn: &str,
        limit: i32,
    ) -> Result<Vec<Entry>, ProbeError> {
        let chain = |g: &str| format!("(memberOf:1.2.840.113556.1.4.1941:={})", ldap_escape(g));
        let scope: String = scope_groups.iter().map(|g| chain(g)).collect();
        let scope = if scope_groups.is_empty() {
            String::new()
        } else {
            format!("(|{scope})")
        };
        let filter = format!(
            "(&(objectCategory=person)(objectClass=user){}{scope})",
            chain(group_dn)
        );
        self.search(base, true, &filter, &["sAMAccountName"], false, limit)
            .await
    }

    /// Find a user by sAMAccountName below `base`.
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn user_by_sam(
        &mut self,
        base: &str,
        sam: &str,
    ) -> Result<Option<Entry>, ProbeError> {
        let filter = format!(
            "(&(objectCategory=person)(objectClass=user)(sAMAccountName={}))",
            ldap_escape(sam)
        );
        Ok(self
            .search(
                base,
                true,
                &filter,
                &["sAMAccountName", "adminCount"],
                false,
                2,
            )
            .await?
            .into_iter()
            .next())
    }

    /// The DN of the group with this SID (`S-1-5-…`) below `base` (the builtin container
    /// included), if it exists.
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn group_by_sid(
        &mut self,
        base: &str,
        sid: &str,
    ) -> Result<Option<String>, ProbeError> {
        let filter = format!("(&(objectClass=group)(objectSid={}))", ldap_escape(sid));
        Ok(self
            .search(base, true, &filter, &["1.1"], false, 1)
            .await?
            .into_iter()
            .next()
            .map(|e| e.dn))
    }

    /// The domain head's password and lockout policy attributes and its SID.
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn domain_head(&mut self, base: &str) -> Result<Option<Entry>, ProbeError> {
        self.read(
            base,
            &[
                "objectSid",
                "fSMORoleOwner",
                "minPwdLength",
                "pwdHistoryLength",
                "minPwdAge",
                "maxPwdAge",
                "pwdProperties",
                "lockoutThreshold",
                "lockoutDuration",
            ],
        )
        .await
    }

    /// Every Password Settings Object (fine-grained policy) of the domain.
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn password_settings(&mut self, base: &str) -> Result<Vec<Entry>, ProbeError> {
        let container = format!("CN=Password Settings Container,CN=System,{base}");
        self.search(
            &container,
            true,
            "(objectClass=msDS-PasswordSettings)",
            &[
                "cn",
                "msDS-PasswordSettingsPrecedence",
                "msDS-MinimumPasswordLength",
                "msDS-PasswordHistoryLength",
                "msDS-PasswordComplexityEnabled",
                "msDS-MinimumPasswordAge",
                "msDS-MaximumPasswordAge",
                "msDS-LockoutThreshold",
                "msDS-PSOAppliesTo",
            ],
            false,
            100,
        )
        .await
    }

    /// The chain of groups from `member_dn` up to `group_dn` (the group names, nearest first,
    /// `group_dn` last), by `memberOf`, breadth first; `None` if there is none.
    ///
    /// # Errors
    /// As [`Session::search`].
    pub async fn group_path(
        &mut self,
        member_dn: &str,
        group_dn: &str,
    ) -> Result<Option<Vec<String>>, ProbeError> {
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([(member_dn.to_owned(), Vec::<String>::new())]);
        while let Some((dn, path)) = queue.pop_front() {
            if path.len() > 16 {
                continue;
            }
            let Some(e) = self.read(&dn, &["memberOf"]).await? else {
                continue;
            };
            for parent in e.all("memberOf") {
                if !seen.insert(parent.to_ascii_lowercase()) {
                    continue;
                }
                let mut next = path.clone();
                next.push(rdn_value(parent).to_owned());
                if parent.eq_ignore_ascii_case(group_dn) {
                    return Ok(Some(next));
                }
                queue.push_back((parent.clone(), next));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time() {
        assert_eq!(parse_generalized_time("19700101000000.0Z"), Some(0));
        assert_eq!(
            parse_generalized_time("20261202084512.0Z"),
            Some(1_796_201_112)
        );
        assert_eq!(parse_generalized_time("2026"), None);
    }

    #[test]
    fn urls_and_dns() {
        assert_eq!(
            host_port("ldaps://localhost:636").ok(),
            Some(("localhost".into(), 636))
        );
        assert_eq!(
            host_port("ldaps://dc1.corp").ok(),
            Some(("dc1.corp".into(), 636))
        );
        assert_eq!(
            host_port("ldaps://[::1]:1636").ok(),
            Some(("::1".into(), 1636))
        );
        assert!(host_port("dc1").is_err());
        assert_eq!(parent_dn("CN=a\\,b,OU=Staff,DC=x"), "OU=Staff,DC=x");
        assert_eq!(rdn_value("CN=IT-Admins,OU=Groups,DC=x"), "IT-Admins");
    }
}
