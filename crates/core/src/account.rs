//! Accounts as the directory describes them: identity (GUID, SID, names), state, groups.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a user typed to name themselves: a sAMAccountName (optionally `DOMAIN\name`), or a
/// UPN/mail address. Control characters and absurd lengths are refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    SamAccountName(String),
    /// `user@domain`: matched against userPrincipalName and mail.
    Principal(String),
}

impl Identifier {
    pub const MAX_LEN: usize = 256;

    /// Parse user input. `None` for empty, over-long or control-character input.
    #[must_use]
    pub fn parse(input: &str) -> Option<Self> {
        let s = input.trim();
        if s.is_empty() || s.len() > Self::MAX_LEN || s.chars().any(char::is_control) {
            return None;
        }
        if s.contains('@') {
            return Some(Self::Principal(s.to_owned()));
        }
        let sam = s.rsplit_once('\\').map_or(s, |(_, name)| name);
        (!sam.is_empty()).then(|| Self::SamAccountName(sam.to_owned()))
    }
}

/// A Windows security identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    authority: u64,
    sub_authorities: Vec<u32>,
}

impl Sid {
    /// Parse the binary form (`objectSid`, `tokenGroups`).
    #[must_use]
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let (&revision, rest) = b.split_first()?;
        let (&count, rest) = rest.split_first()?;
        if revision != 1 || rest.len() != 6 + 4 * usize::from(count) {
            return None;
        }
        let authority = rest[..6]
            .iter()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        let sub_authorities = rest[6..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Some(Self {
            authority,
            sub_authorities,
        })
    }

    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![
            1u8,
            u8::try_from(self.sub_authorities.len()).unwrap_or(u8::MAX),
        ];
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in &self.sub_authorities {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// `S-1-5-32`, the BUILTIN domain.
    #[must_use]
    pub fn builtin() -> Self {
        Self {
            authority: 5,
            sub_authorities: vec![32],
        }
    }

    /// The SID of a domain-relative principal: this (domain) SID plus `rid`.
    #[must_use]
    pub fn with_rid(&self, rid: u32) -> Self {
        let mut s = self.clone();
        s.sub_authorities.push(rid);
        s
    }

    #[must_use]
    pub fn rid(&self) -> Option<u32> {
        self.sub_authorities.last().copied()
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-1-{}", self.authority)?;
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl FromStr for Sid {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.strip_prefix("S-1-").ok_or(())?.split('-');
        let authority = parts.next().ok_or(())?.parse().map_err(|_| ())?;
        let sub_authorities = parts
            .map(|p| p.parse::<u32>().map_err(|_| ()))
            .collect::<Result<Vec<_>, _>>()?;
        if sub_authorities.len() > 15 {
            return Err(());
        }
        Ok(Self {
            authority,
            sub_authorities,
        })
    }
}

/// `objectGUID`: the stable key for a user (names change, GUIDs do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    #[must_use]
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        Some(Self(b.try_into().ok()?))
    }
}

impl fmt::Display for Guid {
    /// The registry form AD tools print: the first three groups little-endian.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02x}"))
    }
}

/// An AD timestamp: 100 ns intervals since 1601-01-01 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileTime(pub i64);

impl FileTime {
    const UNIX_EPOCH_OFFSET: i64 = 116_444_736_000_000_000;

    /// `None` for the "never"/"not set" encodings (0 and `i64::MAX`) and pre-1970 values.
    #[must_use]
    pub fn to_system_time(self) -> Option<SystemTime> {
        if self.0 <= 0 || self.0 == i64::MAX {
            return None;
        }
        let since_unix = u64::try_from(self.0 - Self::UNIX_EPOCH_OFFSET).ok()?;
        Some(UNIX_EPOCH + Duration::from_nanos(since_unix.saturating_mul(100)))
    }

    #[must_use]
    pub fn from_system_time(t: SystemTime) -> Self {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let ticks = i64::try_from(since.as_nanos() / 100).unwrap_or(i64::MAX);
        Self(ticks.saturating_add(Self::UNIX_EPOCH_OFFSET))
    }
}

/// `userAccountControl` bits Rekey reads.
pub mod uac {
    pub const ACCOUNT_DISABLE: u32 = 0x2;
    pub const LOCKOUT: u32 = 0x10;
    pub const DONT_EXPIRE_PASSWORD: u32 = 0x1_0000;
    pub const SMARTCARD_REQUIRED: u32 = 0x4_0000;
    /// Only in the constructed `msDS-User-Account-Control-Computed`.
    pub const PASSWORD_EXPIRED: u32 = 0x80_0000;
}

/// The live state of an account, as read from a DC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountState {
    pub enabled: bool,
    pub locked: bool,
    /// Past its maximum age (domain policy or PSO). Distinct from `must_change`.
    pub password_expired: bool,
    /// `pwdLastSet = 0`: "user must change password at next logon".
    pub must_change: bool,
    pub smartcard_required: bool,
    pub password_never_expires: bool,
    pub pwd_last_set: Option<FileTime>,
    pub lockout_time: Option<FileTime>,
    /// Not replicated between DCs: meaningful only on the DC it was read from.
    pub bad_pwd_count: u32,
}

impl AccountState {
    /// Derive the state from the raw attributes. `computed` is
    /// `msDS-User-Account-Control-Computed`, which already accounts for lockout duration and the
    /// effective (PSO-aware) maximum password age.
    #[must_use]
    pub fn from_attributes(
        uac: u32,
        computed: Option<u32>,
        pwd_last_set: Option<i64>,
        lockout_time: Option<i64>,
        bad_pwd_count: u32,
    ) -> Self {
        let computed = computed.unwrap_or(0);
        let must_change = pwd_last_set == Some(0);
        Self {
            enabled: uac & uac::ACCOUNT_DISABLE == 0,
            locked: computed & uac::LOCKOUT != 0,
            password_expired: !must_change && computed & uac::PASSWORD_EXPIRED != 0,
            must_change,
            smartcard_required: uac & uac::SMARTCARD_REQUIRED != 0,
            password_never_expires: uac & uac::DONT_EXPIRE_PASSWORD != 0,
            pwd_last_set: pwd_last_set.filter(|&t| t != 0).map(FileTime),
            lockout_time: lockout_time.filter(|&t| t != 0).map(FileTime),
            bad_pwd_count,
        }
    }
}

/// A user account as read from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub dn: String,
    pub guid: Guid,
    /// `mS-DS-ConsistencyGuid` when set: Entra Connect's default source anchor (else objectGUID).
    pub consistency_guid: Option<Guid>,
    pub sid: Sid,
    pub sam_account_name: String,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    pub state: AccountState,
    /// Transitive group SIDs (`tokenGroups`), including the primary group.
    pub groups: Vec<Sid>,
    /// The directory's reference to the fine-grained password policy that applies, read with
    /// the account (AD: `msDS-ResultantPSO`); `None`: the domain policy.
    pub policy_ref: Option<String>,
    /// The DC that answered the read (its configured URL), when a directory read the account. A
    /// write granted on this state goes to that DC and no other (invariant 23: the state that
    /// gated a write is the state of the DC that takes it, even across a failover).
    pub read_from: Option<String>,
}

impl Account {
    #[must_use]
    pub fn is_member(&self, group: &Sid) -> bool {
        self.groups.contains(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(
            Identifier::parse(" alice "),
            Some(Identifier::SamAccountName("alice".into()))
        );
        assert_eq!(
            Identifier::parse("CORP\\alice"),
            Some(Identifier::SamAccountName("alice".into()))
        );
        assert_eq!(
            Identifier::parse("alice@corp.example.com"),
            Some(Identifier::Principal("alice@corp.example.com".into()))
        );
        assert_eq!(Identifier::parse(""), None);
        assert_eq!(Identifier::parse("CORP\\"), None);
        assert_eq!(Identifier::parse("a\u{0}b"), None);
        assert_eq!(Identifier::parse(&"a".repeat(300)), None);
    }

    #[test]
    fn sid_roundtrip() {
        let s: Sid = "S-1-5-21-1004336348-1177238915-682003330-512"
            .parse()
            .unwrap();
        assert_eq!(Sid::from_bytes(&s.to_bytes()), Some(s.clone()));
        assert_eq!(
            s.to_string(),
            "S-1-5-21-1004336348-1177238915-682003330-512"
        );
        assert_eq!(s.rid(), Some(512));
        let builtin: Sid = "S-1-5-32".parse().unwrap();
        assert_eq!(builtin.with_rid(544).to_string(), "S-1-5-32-544");
        assert!(Sid::from_bytes(&[1, 2, 0, 0]).is_none());
        assert!("S-1-x".parse::<Sid>().is_err());
    }

    #[test]
    fn guid_display_is_mixed_endian() {
        let g = Guid::from_bytes(&[
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ])
        .unwrap();
        assert_eq!(g.to_string(), "00112233-4455-6677-8899-aabbccddeeff");
    }

    #[test]
    fn filetime_conversions() {
        assert_eq!(FileTime(0).to_system_time(), None);
        assert_eq!(FileTime(i64::MAX).to_system_time(), None);
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(FileTime::from_system_time(t).to_system_time(), Some(t));
    }

    #[test]
    fn state_from_attributes() {
        let s = AccountState::from_attributes(0x200, Some(0), Some(0), None, 0);
        assert!(s.enabled && s.must_change && !s.password_expired && !s.locked);
        let s = AccountState::from_attributes(
            0x202 | uac::SMARTCARD_REQUIRED,
            Some(uac::LOCKOUT | uac::PASSWORD_EXPIRED),
            Some(133_000_000_000_000_000),
            Some(133_000_000_000_000_000),
            5,
        );
        assert!(!s.enabled && s.locked && s.password_expired && s.smartcard_required);
        assert!(!s.must_change && s.lockout_time.is_some());
    }
}
