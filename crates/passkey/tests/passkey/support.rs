//! A software authenticator behind a WebAuthn client (1Password's `passkey` crates, RustCrypto),
//! answering the adapter's options JSON with the JSON a browser would post.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData, WebauthnError};
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use rekey_core::passkey::{Ceremony, PasskeyCredential, Passkeys as _};
use rekey_passkey::{PasskeyConfig, WebauthnPasskeys};
use serde_json::Value;
use webauthn_rs::prelude::Url;

pub const RP_ID: &str = "sspr.corp.example";
pub const ORIGIN: &str = "https://sspr.corp.example";
/// The user handle the engine would keep for the user (16 random bytes).
pub const HANDLE: [u8; 16] = *b"\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10";
pub const NOW: i64 = 1_750_000_000;

pub fn relying_party() -> WebauthnPasskeys {
    WebauthnPasskeys::new(&PasskeyConfig {
        rp_id: RP_ID.into(),
        origin: ORIGIN.into(),
        rp_name: "Rekey".into(),
    })
    .unwrap()
}

/// The person at the authenticator: always present, verified (PIN, biometrics) only if the
/// authenticator can.
struct Person {
    verifies: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for Person {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification: verification && self.verifies,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(self.verifies)
    }
}

/// One authenticator holding at most one passkey, with a signature counter. `Clone` copies the
/// key and its counter: a cloned authenticator.
#[derive(Clone)]
pub struct Device {
    store: Option<Passkey>,
    verifies: bool,
}

impl Device {
    /// An authenticator that verifies its user.
    pub fn new() -> Self {
        Self {
            store: None,
            verifies: true,
        }
    }

    /// The same keys in an authenticator that cannot verify its user (presence only).
    pub fn without_verification(&self) -> Self {
        Self {
            store: self.store.clone(),
            verifies: false,
        }
    }

    fn authenticator(&self) -> Authenticator<Option<Passkey>, Person, RustCryptoBackend> {
        let mut authenticator = Authenticator::new(
            Aaguid::new_empty(),
            self.store.clone(),
            Person {
                verifies: self.verifies,
            },
            RustCryptoBackend,
        );
        authenticator.set_make_credentials_with_signature_counter(true);
        authenticator
    }

    /// `navigator.credentials.create()` on the page at `origin`: the posted JSON.
    pub fn create(&mut self, origin: &str, options: &str) -> Result<String, WebauthnError> {
        let options: CredentialCreationOptions = serde_json::from_str(options).unwrap();
        let mut client = Client::new(self.authenticator());
        let created = block_on(client.register(url(origin), options, DefaultClientData))?;
        self.store = client.authenticator().store().clone();
        Ok(serde_json::to_string(&created).unwrap())
    }

    /// `navigator.credentials.get()` on the page at `origin`: the posted JSON.
    pub fn get(&mut self, origin: &str, options: &str) -> Result<String, WebauthnError> {
        let options: CredentialRequestOptions = serde_json::from_str(options).unwrap();
        let mut client = Client::new(self.authenticator());
        let asserted = block_on(client.authenticate(url(origin), options, DefaultClientData))?;
        self.store = client.authenticator().store().clone();
        Ok(serde_json::to_string(&asserted).unwrap())
    }
}

fn url(origin: &str) -> Url {
    Url::parse(origin).unwrap()
}

/// The client's futures never wait (no network, no timer): poll them to the end.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..100 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("the software authenticator did not finish");
}

/// Register `device` for the user [`HANDLE`]: the stored credential.
pub fn register(rp: &WebauthnPasskeys, device: &mut Device) -> PasskeyCredential {
    let ceremony = rp
        .begin_register(&HANDLE, "ada", "Ada Lovelace", &[])
        .unwrap();
    let answer = device.create(ORIGIN, &ceremony.options).unwrap();
    rp.finish_register(&ceremony.state, &answer, "laptop", NOW)
        .unwrap()
}

/// Begin an authentication (`allow` empty: discoverable) and let `device` answer it.
pub fn sign_in(
    rp: &WebauthnPasskeys,
    device: &mut Device,
    allow: &[PasskeyCredential],
) -> (Ceremony, String) {
    let ceremony = rp.begin_authenticate(allow).unwrap();
    let answer = device.get(ORIGIN, &ceremony.options).unwrap();
    (ceremony, answer)
}

/// The signature counter stored in a credential.
pub fn counter(credential: &PasskeyCredential) -> u64 {
    let data: Value = serde_json::from_str(&credential.data).unwrap();
    data.pointer("/cred/counter")
        .and_then(Value::as_u64)
        .unwrap()
}

/// Edit a JSON document (options or an answer).
pub fn edit(json: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(json).unwrap();
    change(&mut value);
    value.to_string()
}
