//! Security descriptors: parse a self-relative `nTSecurityDescriptor` and evaluate its DACL for
//! one trustee (a SID plus its `tokenGroups`). Pure: no LDAP, no I/O.
//!
//! AD's access check walks the DACL in order and the first ACE that speaks about a right decides
//! it (canonical order puts deny ACEs before allow ACEs, explicit before inherited). Object ACEs
//! narrow a right to one control access right, one attribute or one property set
//! (`ObjectType`), and, when inherited, to one class of child (`InheritedObjectType`).

use std::fmt;

/// A GUID in AD's binary layout (the first three fields little-endian, as in `schemaIDGUID`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AdGuid(pub [u8; 16]);

impl AdGuid {
    /// From the textual fields `d1-d2-d3-d4[0..2]-d4[2..8]`.
    #[must_use]
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Self([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// From 16 bytes as AD stores them (`schemaIDGUID`, `attributeSecurityGUID`).
    #[must_use]
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        Some(Self(b.try_into().ok()?))
    }
}

impl fmt::Display for AdGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
        )
    }
}

impl fmt::Debug for AdGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Control access right User-Force-Change-Password ("Reset Password").
pub const RESET_PASSWORD: AdGuid = AdGuid::from_fields(
    0x0029_9570,
    0x246d,
    0x11d0,
    [0xa7, 0x68, 0x00, 0xaa, 0x00, 0x6e, 0x05, 0x29],
);
/// Control access right User-Change-Password ("Change Password").
pub const CHANGE_PASSWORD: AdGuid = AdGuid::from_fields(
    0xab72_1a53,
    0x1e2f,
    0x11d0,
    [0x98, 0x19, 0x00, 0xaa, 0x00, 0x40, 0x52, 0x9b],
);
/// Control access right Unexpire-Password (`rightsGuid` of `CN=Unexpire-Password,
/// CN=Extended-Rights`, read from the dev domain: ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501).
pub const UNEXPIRE_PASSWORD: AdGuid = AdGuid::from_fields(
    0xccc2_dc7d,
    0xa6ad,
    0x4a7a,
    [0x88, 0x46, 0xc0, 0x4e, 0x3c, 0xc5, 0x35, 0x01],
);
/// `schemaIDGUID` of the class `user`.
pub const USER_CLASS: AdGuid = AdGuid::from_fields(
    0xbf96_7aba,
    0x0de6,
    0x11d0,
    [0xa2, 0x85, 0x00, 0xaa, 0x00, 0x30, 0x49, 0xe2],
);
/// `schemaIDGUID` of `lockoutTime`.
pub const LOCKOUT_TIME: AdGuid = AdGuid::from_fields(
    0x2863_0ebf,
    0x41d5,
    0x11d1,
    [0xa9, 0xc1, 0x00, 0x00, 0xf8, 0x03, 0x67, 0xc1],
);
/// `schemaIDGUID` of `pwdLastSet`.
pub const PWD_LAST_SET: AdGuid = AdGuid::from_fields(
    0xbf96_7a0a,
    0x0de6,
    0x11d0,
    [0xa2, 0x85, 0x00, 0xaa, 0x00, 0x30, 0x49, 0xe2],
);
/// Property set User-Account-Restrictions (holds `pwdLastSet`).
pub const ACCOUNT_RESTRICTIONS: AdGuid = AdGuid::from_fields(
    0x4c16_4200,
    0x20c0,
    0x11d0,
    [0xa7, 0x68, 0x00, 0xaa, 0x00, 0x6e, 0x05, 0x29],
);

/// Everyone and Authenticated Users: in every bound token, never in `tokenGroups`.
pub const WELL_KNOWN_TOKEN_SIDS: [&str; 2] = ["S-1-1-0", "S-1-5-11"];

const SE_DACL_PRESENT: u16 = 0x0004;
const SE_DACL_PROTECTED: u16 = 0x1000;

const CONTAINER_INHERIT: u8 = 0x02;
const INHERIT_ONLY: u8 = 0x08;

const DS_CONTROL_ACCESS: u32 = 0x0000_0100;
const DS_WRITE_PROP: u32 = 0x0000_0020;
const GENERIC_ALL: u32 = 0x1000_0000;
const GENERIC_WRITE: u32 = 0x4000_0000;

/// One access control entry of a DACL (allow or deny; audit and callback ACEs are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub allow: bool,
    pub flags: u8,
    pub mask: u32,
    pub object_type: Option<AdGuid>,
    pub inherited_object_type: Option<AdGuid>,
    pub sid: String,
}

/// A parsed self-relative security descriptor (only what the doctor needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityDescriptor {
    pub control: u16,
    /// `None`: no DACL (a NULL DACL grants everything).
    pub dacl: Option<Vec<Ace>>,
}

/// Why bytes are not a security descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("RK-DIR-040: malformed security descriptor: {0}")]
pub struct SdError(pub &'static str);

fn u16_at(b: &[u8], at: usize) -> Result<u16, SdError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(SdError("truncated"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, SdError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(SdError("truncated"))
}

fn guid_at(b: &[u8], at: usize) -> Result<AdGuid, SdError> {
    b.get(at..at + 16)
        .and_then(AdGuid::from_bytes)
        .ok_or(SdError("truncated GUID"))
}

/// A binary SID as `S-1-5-21-…`.
///
/// # Errors
/// When the bytes are not a SID.
pub fn sid_string(b: &[u8]) -> Result<String, SdError> {
    let (&rev, &count) = (
        b.first().ok_or(SdError("empty SID"))?,
        b.get(1).ok_or(SdError("truncated SID"))?,
    );
    let auth = b.get(2..8).ok_or(SdError("truncated SID"))?;
    let auth = auth.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let mut s = format!("S-{rev}-{auth}");
    for i in 0..usize::from(count) {
        s.push_str(&format!("-{}", u32_at(b, 8 + 4 * i)?));
    }
    Ok(s)
}

impl SecurityDescriptor {
    /// Parse a self-relative SD as AD returns it in `nTSecurityDescriptor`.
    ///
    /// # Errors
    /// When the bytes are not a well-formed SD.
    pub fn parse(b: &[u8]) -> Result<Self, SdError> {
        if b.first() != Some(&1) {
            return Err(SdError("not revision 1"));
        }
        let control = u16_at(b, 2)?;
        let dacl_at = u32_at(b, 16)? as usize;
        let dacl = if control & SE_DACL_PRESENT != 0 && dacl_at != 0 {
            Some(parse_acl(b, dacl_at)?)
        } else {
            None
        };
        Ok(Self { control, dacl })
    }

    /// Inheritance blocked on this object (`SE_DACL_PROTECTED`): OU delegations do not reach it.
    #[must_use]
    pub fn dacl_protected(&self) -> bool {
        self.control & SE_DACL_PROTECTED != 0
    }
}

fn parse_acl(b: &[u8], at: usize) -> Result<Vec<Ace>, SdError> {
    let size = usize::from(u16_at(b, at + 2)?);
    let count = u16_at(b, at + 4)?;
    let end = at + size;
    if end > b.len() {
        return Err(SdError("ACL runs past the end"));
    }
    let mut aces = Vec::with_capacity(usize::from(count));
    let mut p = at + 8;
    for _ in 0..count {
        let kind = *b.get(p).ok_or(SdError("truncated ACE"))?;
        let flags = *b.get(p + 1).ok_or(SdError("truncated ACE"))?;
        let ace_size = usize::from(u16_at(b, p + 2)?);
        if ace_size < 8 || p + ace_size > end {
            return Err(SdError("bad ACE size"));
        }
        let ace = &b[p..p + ace_size];
        let mask = u32_at(ace, 4)?;
        match kind {
            0 | 1 => aces.push(Ace {
                allow: kind == 0,
                flags,
                mask,
                object_type: None,
                inherited_object_type: None,
                sid: sid_string(&ace[8..])?,
            }),
            5 | 6 => {
                let oflags = u32_at(ace, 8)?;
                let mut q = 12;
                let object_type = if oflags & 1 != 0 {
                    q += 16;
                    Some(guid_at(ace, q - 16)?)
                } else {
                    None
                };
                let inherited_object_type = if oflags & 2 != 0 {
                    q += 16;
                    Some(guid_at(ace, q - 16)?)
                } else {
                    None
                };
                aces.push(Ace {
                    allow: kind == 5,
                    flags,
                    mask,
                    object_type,
                    inherited_object_type,
                    sid: sid_string(ace.get(q..).ok_or(SdError("truncated ACE"))?)?,
                });
            }
            _ => {}
        }
        p += ace_size;
    }
    Ok(aces)
}

/// Where the right is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// On the object whose SD this is (e.g. Unexpire Password on the domain head).
    Object,
    /// On child objects of this class created below it, by inheritance (e.g. users in an OU).
    Children(AdGuid),
}

/// A right asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// A control access right (extended right), by `rightsGuid`.
    Control(AdGuid),
    /// Write one attribute, also granted through its property set.
    WriteProperty {
        attribute: AdGuid,
        property_set: Option<AdGuid>,
    },
}

/// What the DACL says about one right for one trustee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// A deny ACE for this SID came first.
    Denied(String),
    /// No ACE grants it.
    NotGranted,
}

impl Ace {
    fn applies_to(&self, target: Target) -> bool {
        match target {
            Target::Object => self.flags & INHERIT_ONLY == 0,
            Target::Children(class) => {
                self.flags & CONTAINER_INHERIT != 0
                    && self.inherited_object_type.is_none_or(|t| t == class)
            }
        }
    }

    fn speaks_of(&self, right: Right) -> bool {
        let scoped = |g: AdGuid| self.object_type.is_none_or(|t| t == g);
        match right {
            Right::Control(g) => self.mask & (DS_CONTROL_ACCESS | GENERIC_ALL) != 0 && scoped(g),
            Right::WriteProperty {
                attribute,
                property_set,
            } => {
                self.mask & (DS_WRITE_PROP | GENERIC_WRITE | GENERIC_ALL) != 0
                    && (scoped(attribute)
                        || property_set.is_some_and(|s| self.object_type == Some(s)))
            }
        }
    }
}

/// Evaluate `right` at `target` for a trustee whose token holds `sids` (its own SID, its
/// `tokenGroups` and [`WELL_KNOWN_TOKEN_SIDS`]): the first ACE in DACL order that speaks of the
/// right for one of the SIDs decides it.
#[must_use]
pub fn evaluate(
    sd: &SecurityDescriptor,
    sids: &[String],
    target: Target,
    right: Right,
) -> Decision {
    let Some(dacl) = &sd.dacl else {
        return Decision::Allowed;
    };
    for ace in dacl {
        if !ace.applies_to(target)
            || !ace.speaks_of(right)
            || !sids.iter().any(|s| s.eq_ignore_ascii_case(&ace.sid))
        {
            continue;
        }
        return if ace.allow {
            Decision::Allowed
        } else {
            Decision::Denied(ace.sid.clone())
        };
    }
    Decision::NotGranted
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// nTSecurityDescriptor (DACL only, SD-flags 4) of OU=Staff (delegated to svc-rekey), captured from the dev domain.
    const STAFF: &str = concat!(
        "01000484000000000000000000000000140000000400640621000000050a480020000000030000000a7a96bfe60dd011",
        "a28500aa003049e2ba7a96bfe60dd011a28500aa003049e2010500000000000515000000b16c5f72de9b481ab9b51cce",
        "4e040000050a48002000000003000000bf0e6328d541d111a9c10000f80367c1ba7a96bfe60dd011a28500aa003049e2",
        "010500000000000515000000b16c5f72de9b481ab9b51cce4e040000050a48000001000003000000531a72ab2f1ed011",
        "981900aa0040529bba7a96bfe60dd011a28500aa003049e2010500000000000515000000b16c5f72de9b481ab9b51cce",
        "4e040000050a48000001000003000000709529006d24d011a76800aa006e0529ba7a96bfe60dd011a28500aa003049e2",
        "010500000000000515000000b16c5f72de9b481ab9b51cce4e04000000001400ff010f00010100000000000512000000",
        "00002400ff010f00010500000000000515000000b16c5f72de9b481ab9b51cce0002000005002c000300000001000000",
        "867a96bfe60dd011a28500aa003049e20102000000000005200000002402000005002c000300000001000000ba7a96bf",
        "e60dd011a28500aa003049e20102000000000005200000002402000005002c0003000000010000009c7a96bfe60dd011",
        "a28500aa003049e20102000000000005200000002402000005002c000300000001000000a87a96bfe60dd011a28500aa",
        "003049e201020000000000052000000026020000000014009400020001010000000000050b0000000000140094000200",
        "01010000000000050900000005002c00030000000100000014cc28483714bc459b07ad6f015e5f280102000000000005",
        "2000000024020000051a3c0010000000030000000042164cc020d011a76800aa006e052914cc28483714bc459b07ad6f",
        "015e5f280102000000000005200000002a020000051a3c0010000000030000000042164cc020d011a76800aa006e0529",
        "ba7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000051a3c0010000000030000001020205f",
        "a579d011902000c04fc2d4cf14cc28483714bc459b07ad6f015e5f280102000000000005200000002a020000051a3c00",
        "10000000030000001020205fa579d011902000c04fc2d4cfba7a96bfe60dd011a28500aa003049e20102000000000005",
        "200000002a020000051a3c00100000000300000040c20abca979d011902000c04fc2d4cf14cc28483714bc459b07ad6f",
        "015e5f280102000000000005200000002a020000051a3c00100000000300000040c20abca979d011902000c04fc2d4cf",
        "ba7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000051a3c001000000003000000422fba59",
        "a279d011902000c04fc2d3cf14cc28483714bc459b07ad6f015e5f280102000000000005200000002a020000051a3c00",
        "1000000003000000422fba59a279d011902000c04fc2d3cfba7a96bfe60dd011a28500aa003049e20102000000000005",
        "200000002a020000051a3c001000000003000000f8887003e10ad211b42200a0c968f93914cc28483714bc459b07ad6f",
        "015e5f280102000000000005200000002a020000051a3c001000000003000000f8887003e10ad211b42200a0c968f939",
        "ba7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000051a380010000000030000006d9ec6b7",
        "c72cd211854e00a0c983f608867a96bfe60dd011a28500aa003049e2010100000000000509000000051a380010000000",
        "030000006d9ec6b7c72cd211854e00a0c983f6089c7a96bfe60dd011a28500aa003049e2010100000000000509000000",
        "051a380010000000030000006d9ec6b7c72cd211854e00a0c983f608ba7a96bfe60dd011a28500aa003049e201010000",
        "0000000509000000051a2c00940002000200000014cc28483714bc459b07ad6f015e5f28010200000000000520000000",
        "2a020000051a2c0094000200020000009c7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000",
        "051a2c009400020002000000ba7a96bfe60dd011a28500aa003049e20102000000000005200000002a02000005122800",
        "3001000001000000de47e6916fd9704b9557d63ff4f3ccd801010000000000050a00000000122400ff010f0001050000",
        "0000000515000000b16c5f72de9b481ab9b51cce0702000000121800040000000102000000000005200000002a020000",
        "00121800bd010f0001020000000000052000000020020000",
    );

    /// nTSecurityDescriptor (DACL only, SD-flags 4) of OU=Admins (no delegation), captured from the dev domain.
    const ADMINS: &str = concat!(
        "0100048400000000000000000000000014000000040044051d00000000001400ff010f00010100000000000512000000",
        "00002400ff010f00010500000000000515000000b16c5f72de9b481ab9b51cce0002000005002c000300000001000000",
        "867a96bfe60dd011a28500aa003049e20102000000000005200000002402000005002c000300000001000000ba7a96bf",
        "e60dd011a28500aa003049e20102000000000005200000002402000005002c0003000000010000009c7a96bfe60dd011",
        "a28500aa003049e20102000000000005200000002402000005002c000300000001000000a87a96bfe60dd011a28500aa",
        "003049e201020000000000052000000026020000000014009400020001010000000000050b0000000000140094000200",
        "01010000000000050900000005002c00030000000100000014cc28483714bc459b07ad6f015e5f280102000000000005",
        "2000000024020000051a3c0010000000030000000042164cc020d011a76800aa006e052914cc28483714bc459b07ad6f",
        "015e5f280102000000000005200000002a020000051a3c0010000000030000000042164cc020d011a76800aa006e0529",
        "ba7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000051a3c0010000000030000001020205f",
        "a579d011902000c04fc2d4cf14cc28483714bc459b07ad6f015e5f280102000000000005200000002a020000051a3c00",
        "10000000030000001020205fa579d011902000c04fc2d4cfba7a96bfe60dd011a28500aa003049e20102000000000005",
        "200000002a020000051a3c00100000000300000040c20abca979d011902000c04fc2d4cf14cc28483714bc459b07ad6f",
        "015e5f280102000000000005200000002a020000051a3c00100000000300000040c20abca979d011902000c04fc2d4cf",
        "ba7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000051a3c001000000003000000422fba59",
        "a279d011902000c04fc2d3cf14cc28483714bc459b07ad6f015e5f280102000000000005200000002a020000051a3c00",
        "1000000003000000422fba59a279d011902000c04fc2d3cfba7a96bfe60dd011a28500aa003049e20102000000000005",
        "200000002a020000051a3c001000000003000000f8887003e10ad211b42200a0c968f93914cc28483714bc459b07ad6f",
        "015e5f280102000000000005200000002a020000051a3c001000000003000000f8887003e10ad211b42200a0c968f939",
        "ba7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000051a380010000000030000006d9ec6b7",
        "c72cd211854e00a0c983f608867a96bfe60dd011a28500aa003049e2010100000000000509000000051a380010000000",
        "030000006d9ec6b7c72cd211854e00a0c983f6089c7a96bfe60dd011a28500aa003049e2010100000000000509000000",
        "051a380010000000030000006d9ec6b7c72cd211854e00a0c983f608ba7a96bfe60dd011a28500aa003049e201010000",
        "0000000509000000051a2c00940002000200000014cc28483714bc459b07ad6f015e5f28010200000000000520000000",
        "2a020000051a2c0094000200020000009c7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000",
        "051a2c009400020002000000ba7a96bfe60dd011a28500aa003049e20102000000000005200000002a02000005122800",
        "3001000001000000de47e6916fd9704b9557d63ff4f3ccd801010000000000050a00000000122400ff010f0001050000",
        "0000000515000000b16c5f72de9b481ab9b51cce0702000000121800040000000102000000000005200000002a020000",
        "00121800bd010f0001020000000000052000000020020000",
    );

    /// nTSecurityDescriptor (DACL only, SD-flags 4) of the domain head, captured from the dev domain.
    const ROOT: &str = concat!(
        "0100048400000000000000000000000014000000040030082f0000000500380000010000010000007ddcc2ccada67a4a",
        "8846c04e3cc53501010500000000000515000000b16c5f72de9b481ab9b51cce4e040000050a3c001000000003000000",
        "0042164cc020d011a76800aa006e052914cc28483714bc459b07ad6f015e5f280102000000000005200000002a020000",
        "050a3c0010000000030000000042164cc020d011a76800aa006e0529ba7a96bfe60dd011a28500aa003049e201020000",
        "00000005200000002a020000050a3c0010000000030000001020205fa579d011902000c04fc2d4cf14cc28483714bc45",
        "9b07ad6f015e5f280102000000000005200000002a020000050a3c0010000000030000001020205fa579d011902000c0",
        "4fc2d4cfba7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000050a3c001000000003000000",
        "40c20abca979d011902000c04fc2d4cf14cc28483714bc459b07ad6f015e5f280102000000000005200000002a020000",
        "050a3c00100000000300000040c20abca979d011902000c04fc2d4cfba7a96bfe60dd011a28500aa003049e201020000",
        "00000005200000002a020000050a3c001000000003000000422fba59a279d011902000c04fc2d3cf14cc28483714bc45",
        "9b07ad6f015e5f280102000000000005200000002a020000050a3c001000000003000000422fba59a279d011902000c0",
        "4fc2d3cfba7a96bfe60dd011a28500aa003049e20102000000000005200000002a020000050a3c001000000003000000",
        "f8887003e10ad211b42200a0c968f93914cc28483714bc459b07ad6f015e5f280102000000000005200000002a020000",
        "050a3c001000000003000000f8887003e10ad211b42200a0c968f939ba7a96bfe60dd011a28500aa003049e201020000",
        "00000005200000002a020000050038000001000001000000aaf63111079cd111f79f00c04fc2dcd20105000000000005",
        "15000000b16c5f72de9b481ab9b51ccef2010000050038000001000001000000adf63111079cd111f79f00c04fc2dcd2",
        "010500000000000515000000b16c5f72de9b481ab9b51cce04020000050a380010000000030000006d9ec6b7c72cd211",
        "854e00a0c983f608867a96bfe60dd011a28500aa003049e2010100000000000509000000050a38001000000003000000",
        "6d9ec6b7c72cd211854e00a0c983f6089c7a96bfe60dd011a28500aa003049e2010100000000000509000000050a3800",
        "10000000030000006d9ec6b7c72cd211854e00a0c983f608ba7a96bfe60dd011a28500aa003049e20101000000000005",
        "0900000005002c000001000001000000765be9894d44624c991a0facbeda640c01020000000000052000000020020000",
        "05002c000001000001000000aaf63111079cd111f79f00c04fc2dcd20102000000000005200000002002000005002c00",
        "0001000001000000abf63111079cd111f79f00c04fc2dcd20102000000000005200000002002000005002c0000010000",
        "01000000acf63111079cd111f79f00c04fc2dcd20102000000000005200000002002000005002c000001000001000000",
        "adf63111079cd111f79f00c04fc2dcd20102000000000005200000002002000005002c000001000001000000aef63111",
        "079cd111f79f00c04fc2dcd20102000000000005200000002002000005002c000001000001000000c96da3e217aec347",
        "b58bbe34c55ba6330102000000000005200000002d02000005002c001000000001000000607340c7bf20d011a76800aa",
        "006e05290102000000000005200000002a02000005002c001000000001000000d09f11b8f6046247ab7a4986c76b3f9a",
        "0102000000000005200000002a020000050a2c00940002000200000014cc28483714bc459b07ad6f015e5f2801020000",
        "00000005200000002a020000050a2c0094000200020000009c7a96bfe60dd011a28500aa003049e20102000000000005",
        "200000002a020000050a2c009400020002000000ba7a96bfe60dd011a28500aa003049e2010200000000000520000000",
        "2a0200000500280000010000010000005e4cc705eb4db443bd9f86664c2a7fd501010000000000050b00000005002800",
        "0001000001000000765be9894d44624c991a0facbeda640c010100000000000509000000050028000001000001000000",
        "7ddcc2ccada67a4a8846c04e3cc5350101010000000000050b0000000500280000010000010000009c360f28c7678e43",
        "ae981d46f3c6f54101010000000000050b000000050028000001000001000000aaf63111079cd111f79f00c04fc2dcd2",
        "010100000000000509000000050028000001000001000000abf63111079cd111f79f00c04fc2dcd20101000000000005",
        "09000000050028000001000001000000acf63111079cd111f79f00c04fc2dcd201010000000000050900000005002800",
        "0001000001000000aef63111079cd111f79f00c04fc2dcd2010100000000000509000000050028001000000001000000",
        "d09f11b8f6046247ab7a4986c76b3f9a01010000000000050b000000050a28003001000001000000de47e6916fd9704b",
        "9557d63ff4f3ccd801010000000000050a00000000002400bd010e00010500000000000515000000b16c5f72de9b481a",
        "b9b51cce0002000000022400ff010f00010500000000000515000000b16c5f72de9b481ab9b51cce0702000000001800",
        "100002000102000000000005200000002a02000000021800040000000102000000000005200000002a02000000021800",
        "bd010f000102000000000005200000002002000000001400100000000101000000000001000000000000140094000200",
        "010100000000000509000000000014009400020001010000000000050b00000000001400ff010f000101000000000005",
        "12000000",
    );

    const SVC: &str = "S-1-5-21-1918856369-440966110-3457988025-1102";

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// svc-rekey's token: itself, Domain Users, BUILTIN\Users, Everyone, Authenticated Users.
    fn token() -> Vec<String> {
        let mut t = vec![
            SVC.to_owned(),
            "S-1-5-21-1918856369-440966110-3457988025-513".to_owned(),
            "S-1-5-32-545".to_owned(),
        ];
        t.extend(WELL_KNOWN_TOKEN_SIDS.iter().map(|s| (*s).to_owned()));
        t
    }

    fn user_rights() -> [Right; 4] {
        [
            Right::Control(RESET_PASSWORD),
            Right::Control(CHANGE_PASSWORD),
            Right::WriteProperty {
                attribute: LOCKOUT_TIME,
                property_set: None,
            },
            Right::WriteProperty {
                attribute: PWD_LAST_SET,
                property_set: Some(ACCOUNT_RESTRICTIONS),
            },
        ]
    }

    #[test]
    fn guids_print_like_ad() {
        assert_eq!(
            UNEXPIRE_PASSWORD.to_string(),
            "ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501"
        );
        assert_eq!(
            RESET_PASSWORD.to_string(),
            "00299570-246d-11d0-a768-00aa006e0529"
        );
        assert_eq!(
            USER_CLASS.to_string(),
            "bf967aba-0de6-11d0-a285-00aa003049e2"
        );
        assert_eq!(
            LOCKOUT_TIME.to_string(),
            "28630ebf-41d5-11d1-a9c1-0000f80367c1"
        );
    }

    #[test]
    fn delegated_ou_grants_every_user_right_by_inheritance_only() {
        let sd = SecurityDescriptor::parse(&bytes(STAFF)).unwrap();
        assert!(!sd.dacl_protected());
        for right in user_rights() {
            assert_eq!(
                evaluate(&sd, &token(), Target::Children(USER_CLASS), right),
                Decision::Allowed,
                "{right:?}"
            );
            // Inherit-only: nothing on the OU itself.
            assert_eq!(
                evaluate(&sd, &token(), Target::Object, right),
                Decision::NotGranted,
                "{right:?}"
            );
        }
        // Only to users: a child group would not get Reset Password.
        let group = AdGuid::from_fields(
            0xbf96_7a9c,
            0x0de6,
            0x11d0,
            [0xa2, 0x85, 0, 0xaa, 0, 0x30, 0x49, 0xe2],
        );
        assert_eq!(
            evaluate(
                &sd,
                &token(),
                Target::Children(group),
                Right::Control(RESET_PASSWORD)
            ),
            Decision::NotGranted
        );
        // Another account gets nothing from the delegation.
        let other = vec!["S-1-5-21-1918856369-440966110-3457988025-9999".to_owned()];
        assert_eq!(
            evaluate(
                &sd,
                &other,
                Target::Children(USER_CLASS),
                Right::Control(RESET_PASSWORD)
            ),
            Decision::NotGranted
        );
    }

    #[test]
    fn ou_without_delegation_grants_none_of_them() {
        let sd = SecurityDescriptor::parse(&bytes(ADMINS)).unwrap();
        for right in user_rights() {
            assert_eq!(
                evaluate(&sd, &token(), Target::Children(USER_CLASS), right),
                Decision::NotGranted,
                "{right:?}"
            );
        }
    }

    #[test]
    fn domain_head_grants_unexpire_password_on_itself() {
        let sd = SecurityDescriptor::parse(&bytes(ROOT)).unwrap();
        assert_eq!(
            evaluate(
                &sd,
                &token(),
                Target::Object,
                Right::Control(UNEXPIRE_PASSWORD)
            ),
            Decision::Allowed
        );
        // Domain Admins have full control: every right, by a generic ACE.
        let da = vec!["S-1-5-21-1918856369-440966110-3457988025-512".to_owned()];
        assert_eq!(
            evaluate(&sd, &da, Target::Object, Right::Control(RESET_PASSWORD)),
            Decision::Allowed
        );
    }

    /// (type, flags, mask, ObjectType, InheritedObjectType)
    type TestAce = (u8, u8, u32, Option<AdGuid>, Option<AdGuid>);

    fn sd_with(aces: &[TestAce], control: u16) -> Vec<u8> {
        let sid = bytes("010500000000000515000000b16c5f72de9b481ab9b51cce4e040000");
        let mut acl = Vec::new();
        for &(kind, flags, mask, ot, iot) in aces {
            let mut body = mask.to_le_bytes().to_vec();
            if kind >= 5 {
                let of = u32::from(ot.is_some()) | (u32::from(iot.is_some()) << 1);
                body.extend(of.to_le_bytes());
                for g in [ot, iot].into_iter().flatten() {
                    body.extend(g.0);
                }
            }
            body.extend(&sid);
            let size = u16::try_from(body.len() + 4).unwrap();
            acl.extend([kind, flags]);
            acl.extend(size.to_le_bytes());
            acl.extend(body);
        }
        let mut sd = vec![1, 0];
        sd.extend((control | SE_DACL_PRESENT).to_le_bytes());
        sd.extend([0u8; 12]);
        sd.extend(20u32.to_le_bytes());
        let acl_size = u16::try_from(acl.len() + 8).unwrap();
        let count = u16::try_from(aces.len()).unwrap();
        sd.extend([2, 0]);
        sd.extend(acl_size.to_le_bytes());
        sd.extend(count.to_le_bytes());
        sd.extend([0, 0]);
        sd.extend(acl);
        sd
    }

    #[test]
    fn deny_before_allow_wins_and_order_decides() {
        let ci = CONTAINER_INHERIT | INHERIT_ONLY;
        let deny_first = sd_with(
            &[
                (
                    6,
                    ci,
                    DS_CONTROL_ACCESS,
                    Some(RESET_PASSWORD),
                    Some(USER_CLASS),
                ),
                (
                    5,
                    ci,
                    DS_CONTROL_ACCESS,
                    Some(RESET_PASSWORD),
                    Some(USER_CLASS),
                ),
            ],
            0,
        );
        let sd = SecurityDescriptor::parse(&deny_first).unwrap();
        assert_eq!(
            evaluate(
                &sd,
                &token(),
                Target::Children(USER_CLASS),
                Right::Control(RESET_PASSWORD)
            ),
            Decision::Denied(SVC.to_owned())
        );
        // A deny of another right does not touch this one.
        assert_eq!(
            evaluate(
                &sd,
                &token(),
                Target::Children(USER_CLASS),
                Right::Control(CHANGE_PASSWORD)
            ),
            Decision::NotGranted
        );
    }

    #[test]
    fn generic_and_all_extended_and_all_property_rights() {
        let ci = CONTAINER_INHERIT;
        for (mask, ot) in [
            (GENERIC_ALL, None),
            (DS_CONTROL_ACCESS | DS_WRITE_PROP, None),
            (0x000f_01ff, None),
        ] {
            let sd = SecurityDescriptor::parse(&sd_with(&[(0, ci, mask, ot, None)], 0)).unwrap();
            for right in user_rights() {
                assert_eq!(
                    evaluate(&sd, &token(), Target::Children(USER_CLASS), right),
                    Decision::Allowed,
                    "{mask:x} {right:?}"
                );
            }
        }
        // Write through the property set.
        let sd = SecurityDescriptor::parse(&sd_with(
            &[(5, ci, DS_WRITE_PROP, Some(ACCOUNT_RESTRICTIONS), None)],
            0,
        ))
        .unwrap();
        let rights = user_rights();
        assert_eq!(
            evaluate(&sd, &token(), Target::Children(USER_CLASS), rights[3]),
            Decision::Allowed
        );
        assert_eq!(
            evaluate(&sd, &token(), Target::Children(USER_CLASS), rights[2]),
            Decision::NotGranted
        );
        // Not inheritable: only the object itself.
        let sd =
            SecurityDescriptor::parse(&sd_with(&[(0, 0, GENERIC_ALL, None, None)], 0)).unwrap();
        assert_eq!(
            evaluate(&sd, &token(), Target::Children(USER_CLASS), rights[0]),
            Decision::NotGranted
        );
        assert_eq!(
            evaluate(&sd, &token(), Target::Object, rights[0]),
            Decision::Allowed
        );
    }

    #[test]
    fn protected_dacl_flag_and_garbage() {
        let sd = SecurityDescriptor::parse(&sd_with(&[], SE_DACL_PROTECTED)).unwrap();
        assert!(sd.dacl_protected());
        assert!(SecurityDescriptor::parse(&[1, 0, 4]).is_err());
        assert!(SecurityDescriptor::parse(&[]).is_err());
        let mut bad = bytes(STAFF);
        bad.truncate(100);
        assert!(SecurityDescriptor::parse(&bad).is_err());
    }
}
