//! Rekey's passkey adapter: [`rekey_core::passkey::Passkeys`] with webauthn-rs.
//!
//! - Registration asks for a discoverable credential (`residentKey: "required"`) with user
//!   verification; the user handle is the 16 random bytes the engine keeps for the user (a UUID to
//!   webauthn-rs), never the objectGUID.
//! - Authentication without an allow list is webauthn-rs's discoverable ceremony, offered as a
//!   normal modal `get()` (the conditional-UI `mediation` is removed); with an allow list it is the
//!   passkey ceremony over those credentials. User verification is required in both.
//! - A ceremony's server half (`Ceremony::state`) is webauthn-rs's state as JSON; a credential
//!   (`PasskeyCredential::data`) is webauthn-rs's `Passkey` as JSON, its `id` the credential id in
//!   base64url without padding (the encoding browsers use for `PublicKeyCredential.id`).
//! - `Ceremony::options` has `<`, `>` and `&` escaped as `\u003c`, `\u003e`, `\u0026` (still
//!   the same JSON), so the page can put it unescaped into a `<script type="application/json">`
//!   element for `crates/web/static/passkey.js`.
//!
//! Architecture invariant: a signature counter that is not zero must grow. webauthn-rs checks it
//! against the copy of the credential taken when the ceremony began; this adapter checks it again
//! against the stored credential handed to `finish_authenticate`, so two ceremonies begun with
//! the same counter cannot both land.
//!
//! Architecture invariant: no OpenSSL: webauthn-rs 0.6 verifies with RustCrypto (`crypto-glue`).
//! Attestation is not requested (`attestation: "none"`), so no CA list is kept.
//!
//! API boundary: [`PasskeyConfig`], [`WebauthnPasskeys::new`]; everything else is the core port.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rekey_core::passkey::{Ceremony, Claim, PasskeyCredential, PasskeyError, Passkeys};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};
use webauthn_rs_proto::{ResidentKeyRequirement, UserVerificationPolicy};

/// The relying party: who asks for passkeys and where the browser must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyConfig {
    /// The RP id: the portal's host name or a parent domain of it (`sspr.corp.example`). Passkeys
    /// are bound to it; changing it orphans every registered passkey.
    pub rp_id: String,
    /// The portal's origin as the browser sees it (`https://sspr.corp.example`); `http://` only
    /// for `localhost` (tests).
    pub origin: String,
    /// The name authenticators may show next to the passkey ("Rekey").
    pub rp_name: String,
}

/// The WebAuthn relying party. Cheap to share (`Send + Sync`, no interior state).
#[derive(Debug, Clone)]
pub struct WebauthnPasskeys {
    webauthn: Webauthn,
}

/// What `begin_authenticate` keeps: which of webauthn-rs's two ceremonies it began.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AuthenticationState {
    /// No allow list: the browser offers any passkey of this RP.
    Discoverable(DiscoverableAuthentication),
    /// Only the listed credentials.
    Allowed(PasskeyAuthentication),
}

impl WebauthnPasskeys {
    /// Check the configuration and build the relying party.
    ///
    /// # Errors
    /// `Unavailable` naming the key when the origin is not a URL, is not `https://` (or
    /// `http://localhost`), or the RP id is not its host or a parent domain of it.
    pub fn new(cfg: &PasskeyConfig) -> Result<Self, PasskeyError> {
        let origin = Url::parse(&cfg.origin)
            .map_err(|e| PasskeyError::Unavailable(format!("passkey.origin: {e}")))?;
        let secure = match origin.scheme() {
            "https" => true,
            "http" => origin.host_str() == Some("localhost"),
            _ => false,
        };
        if !secure {
            return Err(PasskeyError::Unavailable(
                "passkey.origin: must be https:// (http:// only for localhost)".into(),
            ));
        }
        if cfg.rp_name.trim().is_empty() {
            return Err(PasskeyError::Unavailable(
                "passkey.rp_name: must not be empty".into(),
            ));
        }
        let webauthn = WebauthnBuilder::new(&cfg.rp_id, &origin)
            .map_err(|_| {
                PasskeyError::Unavailable(format!(
                    "passkey.rp_id: {:?} is not the host of passkey.origin or a parent domain of it",
                    cfg.rp_id
                ))
            })?
            .rp_name(&cfg.rp_name)
            .build()
            .map_err(|e| PasskeyError::Unavailable(format!("passkey: {e}")))?;
        Ok(Self { webauthn })
    }
}

impl Passkeys for WebauthnPasskeys {
    fn begin_register(
        &self,
        user_handle: &[u8],
        name: &str,
        display_name: &str,
        exclude: &[PasskeyCredential],
    ) -> Result<Ceremony, PasskeyError> {
        let user = Uuid::from_slice(user_handle).map_err(|_| {
            PasskeyError::Unavailable("the passkey user handle must be 16 bytes".into())
        })?;
        let exclude = exclude
            .iter()
            .map(|c| decode_id(&c.id))
            .collect::<Result<Vec<_>, _>>()?;
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(user, name, display_name, exclude)
            .map_err(unavailable)?;
        // webauthn-rs's passkeys are "discouraged" from being discoverable; ours must be, so that
        // a user can start a reset without typing a name. Registration does not check it (no
        // browser reports it reliably), so the state needs no change.
        let selection = options
            .public_key
            .authenticator_selection
            .get_or_insert_with(Default::default);
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
        selection.user_verification = UserVerificationPolicy::Required;
        Ok(Ceremony {
            options: for_html(&to_json(&options)?),
            state: to_json(&state)?,
        })
    }

    fn finish_register(
        &self,
        state: &str,
        response: &str,
        label: &str,
        now: i64,
    ) -> Result<PasskeyCredential, PasskeyError> {
        let state: PasskeyRegistration = from_state(state)?;
        let response: RegisterPublicKeyCredential =
            serde_json::from_str(response).map_err(|_| PasskeyError::Invalid)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&response, &state)
            .map_err(refused)?;
        Ok(PasskeyCredential {
            id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            data: to_json(&passkey)?,
            created_at: now,
            label: label.to_owned(),
        })
    }

    fn begin_authenticate(&self, allow: &[PasskeyCredential]) -> Result<Ceremony, PasskeyError> {
        let (options, state) = if allow.is_empty() {
            let (mut options, state) = self
                .webauthn
                .start_discoverable_authentication()
                .map_err(unavailable)?;
            // webauthn-rs asks for conditional mediation (autofill); the page runs a modal
            // `get()` from a button instead.
            options.mediation = None;
            (options, AuthenticationState::Discoverable(state))
        } else {
            let passkeys = allow
                .iter()
                .map(|c| stored(&c.data))
                .collect::<Result<Vec<_>, _>>()?;
            let (options, state) = self
                .webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(unavailable)?;
            (options, AuthenticationState::Allowed(state))
        };
        Ok(Ceremony {
            options: for_html(&to_json(&options)?),
            state: to_json(&state)?,
        })
    }

    fn claim(&self, response: &str) -> Result<Claim, PasskeyError> {
        let response: PublicKeyCredential =
            serde_json::from_str(response).map_err(|_| PasskeyError::Invalid)?;
        Ok(Claim {
            user_handle: response.get_user_unique_id().map(<[u8]>::to_vec),
            credential_id: URL_SAFE_NO_PAD.encode(response.get_credential_id()),
        })
    }

    fn finish_authenticate(
        &self,
        state: &str,
        response: &str,
        credential: &PasskeyCredential,
    ) -> Result<PasskeyCredential, PasskeyError> {
        let state: AuthenticationState = from_state(state)?;
        let response: PublicKeyCredential =
            serde_json::from_str(response).map_err(|_| PasskeyError::Invalid)?;
        let mut passkey = stored(&credential.data)?;
        if response.get_credential_id() != passkey.cred_id().as_slice() {
            return Err(PasskeyError::Invalid);
        }
        let stored_counter = counter(&credential.data)?;
        let result = match state {
            AuthenticationState::Discoverable(state) => self
                .webauthn
                .finish_discoverable_authentication_v2(&response, state, &passkey),
            AuthenticationState::Allowed(state) => self
                .webauthn
                .finish_passkey_authentication(&response, &state),
        }
        .map_err(refused)?;
        // The counter rule of WebAuthn §7.2 step 22, against what is stored now.
        if (result.counter() > 0 || stored_counter > 0) && result.counter() <= stored_counter {
            tracing::debug!(
                stored = stored_counter,
                presented = result.counter(),
                "passkey signature counter did not grow"
            );
            return Err(PasskeyError::Refused);
        }
        if passkey.update_credential(&result).is_none() {
            return Err(PasskeyError::Invalid);
        }
        Ok(PasskeyCredential {
            data: to_json(&passkey)?,
            ..credential.clone()
        })
    }
}

/// A credential id as `PasskeyCredential::id` spells it.
fn decode_id(id: &str) -> Result<Vec<u8>, PasskeyError> {
    URL_SAFE_NO_PAD
        .decode(id)
        .map_err(|_| PasskeyError::Unavailable("a stored passkey id is not base64url".into()))
}

/// A stored credential (`PasskeyCredential::data`).
fn stored(data: &str) -> Result<Passkey, PasskeyError> {
    serde_json::from_str(data)
        .map_err(|e| PasskeyError::Unavailable(format!("a stored passkey does not parse: {e}")))
}

/// The signature counter of a stored credential. webauthn-rs keeps it private; its serialised
/// form (the one we store) has it at `cred.counter`.
fn counter(data: &str) -> Result<u32, PasskeyError> {
    let value: serde_json::Value = serde_json::from_str(data)
        .map_err(|e| PasskeyError::Unavailable(format!("a stored passkey does not parse: {e}")))?;
    value
        .pointer("/cred/counter")
        .and_then(serde_json::Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| PasskeyError::Unavailable("a stored passkey has no counter".into()))
}

/// A ceremony's kept state. Ours, so a bad one is the server's fault.
fn from_state<T: serde::de::DeserializeOwned>(state: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(state)
        .map_err(|_| PasskeyError::Unavailable("the passkey ceremony state does not parse".into()))
}

/// Options JSON that can sit in an HTML `<script type="application/json">` element as it is:
/// `<`, `>` and `&` (only ever inside JSON strings, e.g. a display name) become `\u003c`, … so
/// no `</script>` can end the element early. The page must not HTML-escape it (a script
/// element's text is not entity-decoded).
fn for_html(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn to_json<T: Serialize>(value: &T) -> Result<String, PasskeyError> {
    serde_json::to_string(value).map_err(|e| PasskeyError::Unavailable(format!("passkey: {e}")))
}

/// Starting a ceremony fails only on our side (configuration, random source).
fn unavailable(e: WebauthnError) -> PasskeyError {
    PasskeyError::Unavailable(format!("passkey: {e}"))
}

/// A browser's answer that webauthn-rs did not accept: malformed (`Invalid`) or not proven
/// (`Refused`: origin, RP id, challenge, signature, user presence or verification, counter).
fn refused(e: WebauthnError) -> PasskeyError {
    tracing::debug!(error = %e, "passkey response not accepted");
    match e {
        WebauthnError::ParseBase64Failure(_)
        | WebauthnError::ParseCBORFailure(_)
        | WebauthnError::ParseJSONFailure(_)
        | WebauthnError::ParseNOMFailure
        | WebauthnError::ParseInsufficientBytesAvailable
        | WebauthnError::CredentialNotFound => PasskeyError::Invalid,
        WebauthnError::Configuration => PasskeyError::Unavailable(format!("passkey: {e}")),
        _ => PasskeyError::Refused,
    }
}
