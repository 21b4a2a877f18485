//! The double's state: app registrations, users, tokens, throttling, sync settings, request log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Directory roles a "User Administrator" may reset (Graph `resources/users.md`, "who can reset
/// passwords"). Any other role needs Privileged Authentication Administrator (or Global Admin).
pub(crate) const USER_ADMIN_MAY_RESET: &[&str] = &[
    "Directory Readers",
    "Guest Inviter",
    "Groups Administrator",
    "Helpdesk Administrator",
    "Password Administrator",
    "User Administrator",
    "Global Reader",
    "Message Center Reader",
    "Reports Reader",
    "Usage Summary Reports Reader",
];

/// An app registration with its service principal's permissions and directory roles.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AppSpec {
    /// The application (client) id.
    pub client_id: String,
    /// A client secret, if the app may authenticate with one.
    pub client_secret: Option<String>,
    /// PEM certificates (one or more) whose keys may sign client assertions.
    pub certificate_pem: Option<String>,
    /// Application permissions granted (e.g. `User-PasswordProfile.ReadWrite.All`).
    pub permissions: Vec<String>,
    /// Directory roles assigned to the service principal (e.g. `User Administrator`).
    pub roles: Vec<String>,
}

impl AppSpec {
    /// An app with a client id and nothing else.
    pub fn new(client_id: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            ..Self::default()
        }
    }
    /// Adds a client secret.
    #[must_use]
    pub fn secret(mut self, secret: &str) -> Self {
        self.client_secret = Some(secret.to_owned());
        self
    }
    /// Adds a certificate (PEM).
    #[must_use]
    pub fn certificate(mut self, pem: &str) -> Self {
        self.certificate_pem = Some(pem.to_owned());
        self
    }
    /// Grants application permissions.
    #[must_use]
    pub fn permissions(mut self, perms: &[&str]) -> Self {
        self.permissions
            .extend(perms.iter().map(|p| (*p).to_owned()));
        self
    }
    /// Assigns directory roles to the service principal.
    #[must_use]
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.roles.extend(roles.iter().map(|r| (*r).to_owned()));
        self
    }
}

/// A user as a test registers it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct UserSpec {
    /// Object id (a GUID string).
    pub id: String,
    /// userPrincipalName.
    pub user_principal_name: String,
    /// displayName.
    pub display_name: String,
    /// accountEnabled (default true when built with [`UserSpec::cloud`]/[`UserSpec::synced`]).
    pub account_enabled: bool,
    /// onPremisesSyncEnabled.
    pub on_premises_sync_enabled: bool,
    /// onPremisesImmutableId (base64 of the source anchor).
    pub on_premises_immutable_id: Option<String>,
    /// onPremisesSamAccountName.
    pub on_premises_sam_account_name: Option<String>,
    /// onPremisesDistinguishedName (what the `ad` change source reads `pwdLastSet` from).
    pub on_premises_distinguished_name: Option<String>,
    /// Directory roles the user holds (e.g. `Global Administrator`).
    pub directory_roles: Vec<String>,
    /// The cloud password of a cloud-only user (synced users: the oracle decides).
    pub password: Option<String>,
    /// Initial lastPasswordChangeDateTime, seconds since the Unix epoch (default: creation).
    pub last_password_change_unix: Option<u64>,
}

impl UserSpec {
    /// A cloud-only user with a password.
    pub fn cloud(id: &str, upn: &str, password: &str) -> Self {
        Self {
            id: id.to_owned(),
            user_principal_name: upn.to_owned(),
            display_name: upn.split('@').next().unwrap_or(upn).to_owned(),
            account_enabled: true,
            password: Some(password.to_owned()),
            ..Self::default()
        }
    }
    /// A synced user (its password is checked by the [`crate::PasswordOracle`]).
    pub fn synced(id: &str, upn: &str, immutable_id: &str, sam: &str) -> Self {
        Self {
            id: id.to_owned(),
            user_principal_name: upn.to_owned(),
            display_name: sam.to_owned(),
            account_enabled: true,
            on_premises_sync_enabled: true,
            on_premises_immutable_id: Some(immutable_id.to_owned()),
            on_premises_sam_account_name: Some(sam.to_owned()),
            ..Self::default()
        }
    }
    /// Adds directory roles.
    #[must_use]
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.directory_roles
            .extend(roles.iter().map(|r| (*r).to_owned()));
        self
    }
}

/// The user as the double keeps it.
#[derive(Clone, Debug)]
pub(crate) struct User {
    pub spec: UserSpec,
    pub last_password_change: SystemTime,
    pub sessions_valid_from: SystemTime,
    pub force_change: bool,
    /// Synced users: the on-prem change time the cloud has caught up with.
    pub synced_change: Option<SystemTime>,
    /// Synced users: a newer on-prem change seen at (change time, seen at).
    pub pending: Option<(SystemTime, SystemTime)>,
}

/// A request as the double logged it (never bodies, passwords or tokens).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Status answered.
    pub status: u16,
    /// When it arrived, milliseconds since the Unix epoch.
    pub at_unix_ms: u128,
}

/// Sync settings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncSettings {
    /// While paused nothing is observed or applied.
    pub paused: bool,
    /// How long after a change was observed it lands in the cloud, milliseconds.
    pub delay_ms: u64,
}

pub(crate) struct Issued {
    pub client_id: String,
    pub expires: SystemTime,
}

#[derive(Default)]
pub(crate) struct Throttle {
    pub remaining: u32,
    pub retry_after: String,
}

pub(crate) struct State {
    pub apps: HashMap<String, AppSpec>,
    pub users: BTreeMap<String, User>,
    pub tokens: HashMap<String, Issued>,
    pub seen_jti: HashSet<String>,
    pub throttle: Throttle,
    pub log: Vec<LoggedRequest>,
    pub sync: SyncSettings,
    pub expires_in: u64,
}

impl State {
    pub(crate) fn new() -> Self {
        Self {
            apps: HashMap::new(),
            users: BTreeMap::new(),
            tokens: HashMap::new(),
            seen_jti: HashSet::new(),
            throttle: Throttle::default(),
            log: Vec::new(),
            sync: SyncSettings {
                paused: false,
                delay_ms: 2000,
            },
            expires_in: 3599,
        }
    }

    pub(crate) fn add_user(&mut self, spec: UserSpec, now: SystemTime) {
        let last = spec
            .last_password_change_unix
            .map_or(now, |s| UNIX_EPOCH + Duration::from_secs(s));
        let synced_change = spec.on_premises_sync_enabled.then_some(last);
        self.users.insert(
            spec.id.to_ascii_lowercase(),
            User {
                spec,
                last_password_change: last,
                sessions_valid_from: now,
                force_change: false,
                synced_change,
                pending: None,
            },
        );
    }

    /// Finds a user by object id or UPN (case-insensitive), as `/users/{id|upn}` does.
    pub(crate) fn user_key(&self, id_or_upn: &str) -> Option<String> {
        let lower = id_or_upn.to_ascii_lowercase();
        if self.users.contains_key(&lower) {
            return Some(lower);
        }
        self.users
            .iter()
            .find(|(_, u)| u.spec.user_principal_name.eq_ignore_ascii_case(id_or_upn))
            .map(|(k, _)| k.clone())
    }
}

/// `SystemTime` → ISO 8601 UTC with seconds precision (`2024-01-31T12:00:00Z`).
pub fn iso8601(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = rekey_core::clock::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// A random opaque value (hex) from the OS CSPRNG.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS RNG failing is not something a test double can recover from; fall back to time.
    if getrandom::getrandom(&mut buf).is_err() {
        let ns = unix_ms(SystemTime::now()).to_le_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = ns[i % ns.len()] ^ u8::try_from(i % 256).unwrap_or(0);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random GUID-shaped string.
pub(crate) fn random_guid() -> String {
    guid_shape(&random_hex(16))
}

/// 32 hex digits as `8-4-4-4-12`.
pub(crate) fn guid_shape(h: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
