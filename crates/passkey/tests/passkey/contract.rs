//! One contract, two implementations. The engine's tests run on `rekey_core::fakes::FakePasskeys`;
//! what the engine relies on — the ceremony round trip, the claim naming the user, a refused
//! challenge of another ceremony, a refused clone (the counter did not grow), a refused answer
//! without user verification, garbage being `Invalid` — must hold for the fake exactly as for
//! `WebauthnPasskeys` with a software authenticator, or the engine's tests prove nothing.

use rekey_core::fakes::{FakeAuthenticator, FakePasskeys};
use rekey_core::passkey::{PasskeyError, Passkeys};
use serde_json::{Value, json};

use crate::support::{Device, HANDLE, NOW, ORIGIN, edit, relying_party};

/// A relying party and the authenticator that answers it.
trait Bench {
    type Device: Clone;
    fn rp(&self) -> &dyn Passkeys;
    fn device(&self) -> Self::Device;
    fn create(&self, device: &mut Self::Device, options: &str) -> String;
    fn get(&self, device: &mut Self::Device, options: &str) -> String;
    /// The same keys, answering without user verification.
    fn without_verification(&self, device: &Self::Device, options: &str) -> String;
}

struct Real(rekey_passkey::WebauthnPasskeys);

impl Bench for Real {
    type Device = Device;
    fn rp(&self) -> &dyn Passkeys {
        &self.0
    }
    fn device(&self) -> Device {
        Device::new()
    }
    fn create(&self, device: &mut Device, options: &str) -> String {
        device.create(ORIGIN, options).unwrap()
    }
    fn get(&self, device: &mut Device, options: &str) -> String {
        device.get(ORIGIN, options).unwrap()
    }
    fn without_verification(&self, device: &Device, options: &str) -> String {
        // The client asks only for presence (a tampered page), the authenticator cannot verify.
        let presence_only = edit(options, |o: &mut Value| {
            o["publicKey"]["userVerification"] = json!("discouraged");
        });
        device
            .without_verification()
            .get(ORIGIN, &presence_only)
            .unwrap()
    }
}

struct Fake(FakePasskeys);

impl Bench for Fake {
    type Device = FakeAuthenticator;
    fn rp(&self) -> &dyn Passkeys {
        &self.0
    }
    fn device(&self) -> FakeAuthenticator {
        let mut device = FakeAuthenticator::new("cred-1");
        device.origin = ORIGIN.into();
        device
    }
    fn create(&self, device: &mut FakeAuthenticator, options: &str) -> String {
        device.create(options)
    }
    fn get(&self, device: &mut FakeAuthenticator, options: &str) -> String {
        device.get(options)
    }
    fn without_verification(&self, device: &FakeAuthenticator, options: &str) -> String {
        let mut weak = device.clone();
        weak.uv = false;
        weak.get(options)
    }
}

fn contract<B: Bench>(b: &B) {
    let rp = b.rp();
    let mut device = b.device();
    let begun = rp
        .begin_register(&HANDLE, "ada", "Ada Lovelace", &[])
        .unwrap();
    let created = b.create(&mut device, &begun.options);
    let stored = rp
        .finish_register(&begun.state, &created, "laptop", NOW)
        .unwrap();
    assert_eq!((stored.label.as_str(), stored.created_at), ("laptop", NOW));
    let clone = device.clone();

    // Discoverable: the answer names its user and credential; it verifies.
    let first = rp.begin_authenticate(&[]).unwrap();
    let answer = b.get(&mut device, &first.options);
    let claim = rp.claim(&answer).unwrap();
    assert_eq!(claim.user_handle.as_deref(), Some(&HANDLE[..]));
    assert_eq!(claim.credential_id, stored.id);
    let stored = rp
        .finish_authenticate(&first.state, &answer, &stored)
        .unwrap();

    // An answer to another ceremony's challenge is refused; to its own, accepted.
    let second = rp
        .begin_authenticate(std::slice::from_ref(&stored))
        .unwrap();
    let answer = b.get(&mut device, &second.options);
    assert_eq!(
        rp.finish_authenticate(&first.state, &answer, &stored),
        Err(PasskeyError::Refused)
    );
    let stored = rp
        .finish_authenticate(&second.state, &answer, &stored)
        .unwrap();

    // A cloned authenticator (its counter did not grow past the stored one) is refused.
    let third = rp
        .begin_authenticate(std::slice::from_ref(&stored))
        .unwrap();
    let cloned = b.get(&mut clone.clone(), &third.options);
    assert_eq!(
        rp.finish_authenticate(&third.state, &cloned, &stored),
        Err(PasskeyError::Refused)
    );
    // Without user verification: refused.
    let weak = b.without_verification(&device, &third.options);
    assert_eq!(
        rp.finish_authenticate(&third.state, &weak, &stored),
        Err(PasskeyError::Refused)
    );
    assert_eq!(rp.claim("not json").err(), Some(PasskeyError::Invalid));
}

#[test]
fn the_real_adapter_keeps_the_contract() {
    contract(&Real(relying_party()));
}

#[test]
fn the_engines_fake_keeps_the_contract() {
    contract(&Fake(FakePasskeys::new(ORIGIN)));
}
