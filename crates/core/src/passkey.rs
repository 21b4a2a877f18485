//! The passkey (WebAuthn) port: the ceremonies' cryptography, kept out of the pure core.
//!
//! API boundary: `rekey-passkey` implements `Passkeys` with webauthn-rs (origin, RP id,
//! challenge, signature counter and user verification checked, invariant 5). The engine keeps
//! a ceremony's `state` in its server-side flow (single use: the flow step moves on) and stores
//! credentials in the user's `Passkey` enrollment. Everything here is synchronous computation.

/// One ceremony's two halves: what the browser gets and what the server keeps.
#[derive(Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// JSON for `navigator.credentials.create()`/`get()` (the `publicKey` options wrapped as
    /// webauthn-rs serialises them: `{"publicKey": {...}}`, binary fields base64url).
    pub options: String,
    /// Opaque (JSON); kept server-side in the flow, never sent to the browser.
    pub state: String,
}

impl std::fmt::Debug for Ceremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ceremony(..)")
    }
}

/// A registered credential as the adapter serialises it; opaque to the engine except its id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PasskeyCredential {
    /// The credential id (base64url), to tell credentials apart and to remove one.
    pub id: String,
    /// The adapter's serialised credential (public key, signature counter, …).
    pub data: String,
    /// When it was registered (Unix seconds) and a label for the list.
    pub created_at: i64,
    pub label: String,
}

/// What a browser's authentication answer claims before it is verified: whom to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The user handle (16 bytes for webauthn-rs, the user's random UUID), present for a
    /// discoverable credential.
    pub user_handle: Option<Vec<u8>>,
    /// The credential id (base64url).
    pub credential_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyError {
    /// The browser's answer does not parse or does not match the ceremony.
    #[error("RK-PASSKEY-001: the passkey answer is not valid")]
    Invalid,
    /// The signature, origin, challenge, user verification or counter check failed.
    #[error("RK-PASSKEY-002: the passkey could not be verified")]
    Refused,
    /// The server's own state or configuration is unusable.
    #[error("RK-PASSKEY-003: passkeys are not available: {0}")]
    Unavailable(String),
}

pub trait Passkeys: Send + Sync {
    /// Begin registering a passkey for the user with this handle (16 random bytes, not the
    /// objectGUID). `exclude`: credentials the user already has (the authenticator refuses to
    /// register twice). Resident key and user verification are required.
    fn begin_register(
        &self,
        user_handle: &[u8],
        name: &str,
        display_name: &str,
        exclude: &[PasskeyCredential],
    ) -> Result<Ceremony, PasskeyError>;
    /// Verify the browser's `create()` answer (JSON) against the kept state.
    fn finish_register(
        &self,
        state: &str,
        response: &str,
        label: &str,
        now: i64,
    ) -> Result<PasskeyCredential, PasskeyError>;
    /// Begin an authentication. `allow` empty: any discoverable passkey of this site (no user
    /// name needed); otherwise only these credentials.
    fn begin_authenticate(&self, allow: &[PasskeyCredential]) -> Result<Ceremony, PasskeyError>;
    /// Who the browser's `get()` answer claims to be, unverified: only to find the credential.
    fn claim(&self, response: &str) -> Result<Claim, PasskeyError>;
    /// Verify the answer against the kept state and the stored credential. Returns the
    /// credential with its new signature counter (to store back); a counter that did not grow
    /// (a cloned authenticator) is `Refused`.
    fn finish_authenticate(
        &self,
        state: &str,
        response: &str,
        credential: &PasskeyCredential,
    ) -> Result<PasskeyCredential, PasskeyError>;
}
