//! Registration and authentication, and every way an answer must be turned away.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rekey_core::passkey::{PasskeyError, Passkeys as _};
use rekey_passkey::{PasskeyConfig, WebauthnPasskeys};
use serde_json::{Value, json};

use crate::support::{
    Device, HANDLE, NOW, ORIGIN, counter, edit, register, relying_party, sign_in,
};

#[test]
fn registration_asks_for_a_discoverable_verified_passkey_for_the_handle() {
    let rp = relying_party();
    let mut device = Device::new();
    let existing = register(&rp, &mut device);

    let ceremony = rp
        .begin_register(
            &HANDLE,
            "ada",
            "Ada Lovelace",
            std::slice::from_ref(&existing),
        )
        .unwrap();
    let options: Value = serde_json::from_str(&ceremony.options).unwrap();
    let key = &options["publicKey"];
    let selection = &key["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{options}");
    assert_eq!(selection["requireResidentKey"], true, "{options}");
    assert_eq!(selection["userVerification"], "required", "{options}");
    assert_eq!(key["user"]["id"], URL_SAFE_NO_PAD.encode(HANDLE));
    assert_eq!(key["user"]["name"], "ada");
    assert_eq!(key["rp"]["id"], "sspr.corp.example");
    assert_eq!(key["excludeCredentials"][0]["id"], existing.id.as_str());
    assert_eq!(key["excludeCredentials"].as_array().unwrap().len(), 1);
    assert!(
        !ceremony.options.contains(&ceremony.state),
        "the state stays on the server"
    );
}

#[test]
fn registration_returns_the_credential_with_its_id_label_and_time() {
    let rp = relying_party();
    let mut device = Device::new();
    let ceremony = rp.begin_register(&HANDLE, "ada", "Ada", &[]).unwrap();
    let answer = device.create(ORIGIN, &ceremony.options).unwrap();
    let credential = rp
        .finish_register(&ceremony.state, &answer, "laptop", NOW)
        .unwrap();

    let posted: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(credential.id, posted["rawId"].as_str().unwrap());
    assert_eq!(credential.label, "laptop");
    assert_eq!(credential.created_at, NOW);
    assert_eq!(counter(&credential), 0);
}

#[test]
fn options_can_be_embedded_in_a_page_as_they_are() {
    let rp = relying_party();
    let name = "Ada </script><script>alert(1)</script> & Co";
    let ceremony = rp.begin_register(&HANDLE, name, name, &[]).unwrap();
    for c in ['<', '>', '&'] {
        assert!(!ceremony.options.contains(c), "{c} in {}", ceremony.options);
    }
    let options: Value = serde_json::from_str(&ceremony.options).unwrap();
    assert_eq!(options["publicKey"]["user"]["displayName"], name);
    // And the authenticator still answers it (the escapes are plain JSON).
    let answer = Device::new().create(ORIGIN, &ceremony.options).unwrap();
    assert!(
        rp.finish_register(&ceremony.state, &answer, "key", NOW)
            .is_ok()
    );
}

#[test]
fn a_user_handle_that_is_not_16_bytes_is_refused_before_anything_starts() {
    let rp = relying_party();
    assert!(matches!(
        rp.begin_register(&[1; 15], "ada", "Ada", &[]),
        Err(PasskeyError::Unavailable(_))
    ));
}

#[test]
fn discoverable_sign_in_names_the_user_and_verifies() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);

    let ceremony = rp.begin_authenticate(&[]).unwrap();
    let options: Value = serde_json::from_str(&ceremony.options).unwrap();
    assert!(
        options.get("mediation").is_none(),
        "a modal get(): {options}"
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let allowed = options["publicKey"]["allowCredentials"].as_array();
    assert!(allowed.is_none_or(Vec::is_empty), "{options}");

    let answer = device.get(ORIGIN, &ceremony.options).unwrap();
    let claim = rp.claim(&answer).unwrap();
    assert_eq!(claim.user_handle.as_deref(), Some(&HANDLE[..]));
    assert_eq!(claim.credential_id, stored.id);

    let updated = rp
        .finish_authenticate(&ceremony.state, &answer, &stored)
        .unwrap();
    assert_eq!(counter(&updated), 1);
    assert_eq!(
        (&updated.id, &updated.label, updated.created_at),
        (&stored.id, &stored.label, stored.created_at)
    );
}

#[test]
fn sign_in_with_an_allow_list() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);

    let (ceremony, answer) = sign_in(&rp, &mut device, std::slice::from_ref(&stored));
    let options: Value = serde_json::from_str(&ceremony.options).unwrap();
    assert_eq!(
        options["publicKey"]["allowCredentials"][0]["id"],
        stored.id.as_str()
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(rp.claim(&answer).unwrap().credential_id, stored.id);

    let updated = rp
        .finish_authenticate(&ceremony.state, &answer, &stored)
        .unwrap();
    assert_eq!(counter(&updated), 1);
}

#[test]
fn the_counter_grows_with_each_sign_in_and_is_returned() {
    let rp = relying_party();
    let mut device = Device::new();
    let mut stored = register(&rp, &mut device);
    for expected in 1..=3 {
        let allow = if expected == 2 {
            vec![stored.clone()]
        } else {
            vec![]
        };
        let (ceremony, answer) = sign_in(&rp, &mut device, &allow);
        stored = rp
            .finish_authenticate(&ceremony.state, &answer, &stored)
            .unwrap();
        assert_eq!(counter(&stored), expected);
    }
}

#[test]
fn replaying_an_answer_after_it_landed_is_refused() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);
    let (ceremony, answer) = sign_in(&rp, &mut device, &[]);
    let updated = rp
        .finish_authenticate(&ceremony.state, &answer, &stored)
        .unwrap();

    assert_eq!(
        rp.finish_authenticate(&ceremony.state, &answer, &updated),
        Err(PasskeyError::Refused)
    );
}

#[test]
fn a_cloned_authenticator_is_refused() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);
    let mut clone = device.clone();

    let (ceremony, answer) = sign_in(&rp, &mut device, &[]);
    let stored = rp
        .finish_authenticate(&ceremony.state, &answer, &stored)
        .unwrap();

    // The clone signs with the same counter (1) the original already used.
    for allow in [vec![], vec![stored.clone()]] {
        let (ceremony, answer) = sign_in(&rp, &mut clone.clone(), &allow);
        assert_eq!(
            rp.finish_authenticate(&ceremony.state, &answer, &stored),
            Err(PasskeyError::Refused)
        );
    }
    // Once it has counted past the original, it is indistinguishable (as WebAuthn intends).
    let _ = sign_in(&rp, &mut clone, &[]);
    let (ceremony, answer) = sign_in(&rp, &mut clone, &[]);
    assert!(
        rp.finish_authenticate(&ceremony.state, &answer, &stored)
            .is_ok()
    );
}

/// webauthn-rs compares the counter with its copy of the credential taken when the ceremony
/// began (for an allow list); the adapter compares with what is stored when it finishes.
#[test]
fn two_ceremonies_begun_together_cannot_both_land_with_one_counter() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);
    let clone = device.clone();

    for allow in [vec![], vec![stored.clone()]] {
        let first = rp.begin_authenticate(&allow).unwrap();
        let second = rp.begin_authenticate(&allow).unwrap();
        let first_answer = device.clone().get(ORIGIN, &first.options).unwrap();
        let second_answer = clone.clone().get(ORIGIN, &second.options).unwrap();

        let updated = rp
            .finish_authenticate(&first.state, &first_answer, &stored)
            .unwrap();
        assert_eq!(counter(&updated), 1);
        assert_eq!(
            rp.finish_authenticate(&second.state, &second_answer, &updated),
            Err(PasskeyError::Refused),
            "allow list: {}",
            !allow.is_empty()
        );
        // Against the credential as it was, the second answer is fine: the check is the adapter's.
        assert!(
            rp.finish_authenticate(&second.state, &second_answer, &stored)
                .is_ok()
        );
    }
}

#[test]
fn an_authenticator_without_user_verification_is_refused() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);
    // A client that asks only for presence (as a tampered page or a lax browser could).
    let presence_only = |options: &mut Value| {
        let key = &mut options["publicKey"];
        if key.get("authenticatorSelection").is_some() {
            key["authenticatorSelection"]["userVerification"] = json!("discouraged");
        } else {
            key["userVerification"] = json!("discouraged");
        }
    };

    let mut weak = device.without_verification();
    for allow in [vec![], vec![stored.clone()]] {
        let ceremony = rp.begin_authenticate(&allow).unwrap();
        let answer = weak
            .get(ORIGIN, &edit(&ceremony.options, presence_only))
            .unwrap();
        assert_eq!(
            rp.finish_authenticate(&ceremony.state, &answer, &stored),
            Err(PasskeyError::Refused)
        );
    }

    let ceremony = rp.begin_register(&HANDLE, "ada", "Ada", &[]).unwrap();
    let answer = Device::new()
        .without_verification()
        .create(ORIGIN, &edit(&ceremony.options, presence_only))
        .unwrap();
    assert_eq!(
        rp.finish_register(&ceremony.state, &answer, "key", NOW),
        Err(PasskeyError::Refused)
    );
}

#[test]
fn an_answer_made_for_another_origin_is_refused() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);
    // A sibling site under the same RP id: the authenticator signs, the origin gives it away.
    let phish = "https://sspr-login.sspr.corp.example";

    let ceremony = rp.begin_authenticate(&[]).unwrap();
    let answer = device.clone().get(phish, &ceremony.options).unwrap();
    assert_eq!(
        rp.finish_authenticate(&ceremony.state, &answer, &stored),
        Err(PasskeyError::Refused)
    );
    // The same answer from the right origin lands: it is the origin that was refused.
    let answer = device.clone().get(ORIGIN, &ceremony.options).unwrap();
    assert!(
        rp.finish_authenticate(&ceremony.state, &answer, &stored)
            .is_ok()
    );

    let ceremony = rp.begin_register(&HANDLE, "ada", "Ada", &[]).unwrap();
    let answer = Device::new().create(phish, &ceremony.options).unwrap();
    assert_eq!(
        rp.finish_register(&ceremony.state, &answer, "key", NOW),
        Err(PasskeyError::Refused)
    );
}

#[test]
fn an_answer_to_another_ceremonys_challenge_is_refused() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);

    for allow in [vec![], vec![stored.clone()]] {
        let asked = rp.begin_authenticate(&allow).unwrap();
        let other = rp.begin_authenticate(&allow).unwrap();
        assert_ne!(asked.options, other.options, "a fresh challenge each time");
        let answer = device.clone().get(ORIGIN, &asked.options).unwrap();
        assert_eq!(
            rp.finish_authenticate(&other.state, &answer, &stored),
            Err(PasskeyError::Refused)
        );
    }

    let asked = rp.begin_register(&HANDLE, "ada", "Ada", &[]).unwrap();
    let other = rp.begin_register(&HANDLE, "ada", "Ada", &[]).unwrap();
    let answer = Device::new().create(ORIGIN, &asked.options).unwrap();
    assert_eq!(
        rp.finish_register(&other.state, &answer, "key", NOW),
        Err(PasskeyError::Refused)
    );
}

#[test]
fn a_bad_signature_is_refused() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);
    let (ceremony, answer) = sign_in(&rp, &mut device, &[]);

    let forged = edit(&answer, |v| {
        let signature = v["response"]["signature"].as_str().unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        v["response"]["signature"] = json!(URL_SAFE_NO_PAD.encode(bytes));
    });
    assert_eq!(
        rp.finish_authenticate(&ceremony.state, &forged, &stored),
        Err(PasskeyError::Refused)
    );
    // And flipping the UV flag in the signed data breaks the signature too.
    let flipped = edit(&answer, |v| {
        let data = v["response"]["authenticatorData"].as_str().unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(data).unwrap();
        bytes[32] ^= 0x04;
        v["response"]["authenticatorData"] = json!(URL_SAFE_NO_PAD.encode(bytes));
    });
    assert_eq!(
        rp.finish_authenticate(&ceremony.state, &flipped, &stored),
        Err(PasskeyError::Refused)
    );
    assert!(
        rp.finish_authenticate(&ceremony.state, &answer, &stored)
            .is_ok()
    );
}

#[test]
fn an_answer_for_another_credential_is_invalid() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);
    let other = register(&rp, &mut Device::new());
    let (ceremony, answer) = sign_in(&rp, &mut device, &[]);

    assert_eq!(
        rp.finish_authenticate(&ceremony.state, &answer, &other),
        Err(PasskeyError::Invalid)
    );
    // With an allow list that does not hold the answering credential.
    let ceremony = rp.begin_authenticate(std::slice::from_ref(&other)).unwrap();
    let answer = device
        .clone()
        .get(
            ORIGIN,
            &edit(&ceremony.options, |v| {
                v["publicKey"]["allowCredentials"] = json!([])
            }),
        )
        .unwrap();
    assert!(
        rp.finish_authenticate(&ceremony.state, &answer, &stored)
            .is_err()
    );
}

#[test]
fn garbage_is_invalid() {
    let rp = relying_party();
    let mut device = Device::new();
    let stored = register(&rp, &mut device);
    let registration = rp.begin_register(&HANDLE, "ada", "Ada", &[]).unwrap();
    let authentication = rp.begin_authenticate(&[]).unwrap();

    for garbage in [
        "",
        "not json",
        "{}",
        r#"{"id":"x","rawId":"!!","type":"public-key"}"#,
    ] {
        assert_eq!(
            rp.finish_register(&registration.state, garbage, "key", NOW),
            Err(PasskeyError::Invalid),
            "{garbage:?}"
        );
        assert_eq!(rp.claim(garbage), Err(PasskeyError::Invalid), "{garbage:?}");
        assert_eq!(
            rp.finish_authenticate(&authentication.state, garbage, &stored),
            Err(PasskeyError::Invalid),
            "{garbage:?}"
        );
    }
    // Well-formed JSON whose binary parts are not what they claim to be.
    let answer = device.clone().get(ORIGIN, &authentication.options).unwrap();
    let broken = edit(&answer, |v| {
        v["response"]["clientDataJSON"] = json!(URL_SAFE_NO_PAD.encode("not json"));
    });
    assert_eq!(
        rp.finish_authenticate(&authentication.state, &broken, &stored),
        Err(PasskeyError::Invalid)
    );
    // The server's own half unusable: not the browser's fault.
    assert!(matches!(
        rp.finish_authenticate("{}", &answer, &stored),
        Err(PasskeyError::Unavailable(_))
    ));
    assert!(matches!(
        rp.finish_authenticate(&registration.state, &answer, &stored),
        Err(PasskeyError::Unavailable(_))
    ));
}

#[test]
fn the_configuration_is_checked() {
    let config = |rp_id: &str, origin: &str| PasskeyConfig {
        rp_id: rp_id.into(),
        origin: origin.into(),
        rp_name: "Rekey".into(),
    };
    for (rp_id, origin) in [
        ("sspr.corp.example", "https://sspr.corp.example"),
        ("sspr.corp.example", "https://sspr.corp.example/reset/"),
        ("corp.example", "https://sspr.corp.example:8443"),
        ("localhost", "http://localhost:8080"),
    ] {
        assert!(
            WebauthnPasskeys::new(&config(rp_id, origin)).is_ok(),
            "{origin}"
        );
    }
    for (rp_id, origin) in [
        ("other.example", "https://sspr.corp.example"),
        ("corp.example.evil", "https://sspr.corp.example"),
        ("sspr.corp.example", "http://sspr.corp.example"),
        ("sspr.corp.example", "sspr.corp.example"),
        ("127.0.0.1", "http://127.0.0.1:8080"),
    ] {
        let err = WebauthnPasskeys::new(&config(rp_id, origin)).unwrap_err();
        assert!(
            matches!(err, PasskeyError::Unavailable(_)),
            "{origin}: {err:?}"
        );
    }
    let mut nameless = config("localhost", "http://localhost:8080");
    nameless.rp_name = " ".into();
    assert!(WebauthnPasskeys::new(&nameless).is_err());
}
