//! Passkeys without cryptography, faithful to the `Passkeys` contract: every ceremony carries a
//! fresh random challenge in its (server-side) state, and an answer is refused for a wrong
//! challenge, a wrong origin, no user verification, an unknown credential, a user handle that is
//! not the credential's, or a signature counter that did not grow (a cloned authenticator).
//!
//! An "answer" is the JSON a `FakeAuthenticator` builds in the test:
//! `{"cred":"..","handle":"<hex>","challenge":"..","counter":N,"uv":true,"origin":".."}`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::passkey::{Ceremony, Claim, PasskeyCredential, PasskeyError, Passkeys};

/// The relying party: checks answers as webauthn-rs would, minus the signatures.
pub struct FakePasskeys {
    /// The origin answers must come from (the portal's public base URL).
    pub origin: String,
    pub rp_id: String,
    next: AtomicU64,
    /// The kind of every ceremony begun (`register` / `authenticate`), in order.
    pub begun: Mutex<Vec<String>>,
}

impl Default for FakePasskeys {
    fn default() -> Self {
        Self::new("https://localhost")
    }
}

/// What the server keeps of a ceremony.
#[derive(Serialize, Deserialize)]
struct State {
    kind: String,
    challenge: String,
    #[serde(default)]
    handle: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
}

/// What the browser sends back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    pub cred: String,
    #[serde(default)]
    pub handle: Option<String>,
    pub challenge: String,
    pub counter: u32,
    pub uv: bool,
    pub origin: String,
}

/// What a registered credential holds (the "public key" part): its user handle and counter.
#[derive(Serialize, Deserialize)]
struct Stored {
    handle: String,
    counter: u32,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn state(s: &str) -> Result<State, PasskeyError> {
    serde_json::from_str(s).map_err(|_| PasskeyError::Unavailable("bad ceremony state".into()))
}

fn answer(s: &str) -> Result<Answer, PasskeyError> {
    serde_json::from_str(s).map_err(|_| PasskeyError::Invalid)
}

impl FakePasskeys {
    #[must_use]
    pub fn new(origin: &str) -> Self {
        let rp_id = origin
            .trim_start_matches("https://")
            .split([':', '/'])
            .next()
            .unwrap_or_default()
            .to_owned();
        Self {
            origin: origin.to_owned(),
            rp_id,
            next: AtomicU64::new(0x5eed),
            begun: Mutex::new(Vec::new()),
        }
    }

    /// 128 bits that differ per ceremony (a Weyl sequence through a mixer: no two alike).
    fn challenge(&self) -> String {
        let n = self
            .next
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
        let mix = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        format!("{:016x}{:016x}", mix(n), mix(n ^ 0xa5a5))
    }

    /// The checks both ceremonies make on an answer.
    fn checked(&self, st: &State, kind: &str, a: &Answer) -> Result<(), PasskeyError> {
        if st.kind != kind {
            return Err(PasskeyError::Invalid);
        }
        if a.challenge != st.challenge || a.origin != self.origin || !a.uv || a.cred.is_empty() {
            return Err(PasskeyError::Refused);
        }
        Ok(())
    }
}

impl Passkeys for FakePasskeys {
    fn begin_register(
        &self,
        user_handle: &[u8],
        name: &str,
        display_name: &str,
        exclude: &[PasskeyCredential],
    ) -> Result<Ceremony, PasskeyError> {
        self.begun.lock().unwrap().push("register".into());
        let challenge = self.challenge();
        let handle = hex(user_handle);
        let excluded: Vec<String> = exclude.iter().map(|c| c.id.clone()).collect();
        let options = json!({"publicKey": {
            "challenge": challenge,
            "rp": {"id": self.rp_id, "name": "Rekey"},
            "user": {"id": handle, "name": name, "displayName": display_name},
            "excludeCredentials": excluded.iter().map(|id| json!({"type": "public-key", "id": id})).collect::<Vec<_>>(),
            "authenticatorSelection": {"residentKey": "required", "userVerification": "required"},
        }});
        let st = State {
            kind: "register".into(),
            challenge,
            handle: Some(handle),
            allow: Vec::new(),
            exclude: excluded,
        };
        Ok(Ceremony {
            options: options.to_string(),
            state: serde_json::to_string(&st).unwrap(),
        })
    }

    fn finish_register(
        &self,
        state_json: &str,
        response: &str,
        label: &str,
        now: i64,
    ) -> Result<PasskeyCredential, PasskeyError> {
        let st = state(state_json)?;
        let a = answer(response)?;
        self.checked(&st, "register", &a)?;
        let handle = st.handle.clone().unwrap_or_default();
        if a.handle.as_deref() != Some(handle.as_str()) || st.exclude.contains(&a.cred) {
            return Err(PasskeyError::Refused);
        }
        let stored = Stored {
            handle,
            counter: a.counter,
        };
        Ok(PasskeyCredential {
            id: a.cred,
            data: serde_json::to_string(&stored).unwrap(),
            created_at: now,
            label: label.to_owned(),
        })
    }

    fn begin_authenticate(&self, allow: &[PasskeyCredential]) -> Result<Ceremony, PasskeyError> {
        self.begun.lock().unwrap().push("authenticate".into());
        let challenge = self.challenge();
        let allowed: Vec<String> = allow.iter().map(|c| c.id.clone()).collect();
        let options = json!({"publicKey": {
            "challenge": challenge,
            "rpId": self.rp_id,
            "allowCredentials": allowed.iter().map(|id| json!({"type": "public-key", "id": id})).collect::<Vec<_>>(),
            "userVerification": "required",
        }});
        let st = State {
            kind: "authenticate".into(),
            challenge,
            handle: None,
            allow: allowed,
            exclude: Vec::new(),
        };
        Ok(Ceremony {
            options: options.to_string(),
            state: serde_json::to_string(&st).unwrap(),
        })
    }

    fn claim(&self, response: &str) -> Result<Claim, PasskeyError> {
        let a = answer(response)?;
        let user_handle = match a.handle {
            Some(h) => Some(unhex(&h).ok_or(PasskeyError::Invalid)?),
            None => None,
        };
        Ok(Claim {
            user_handle,
            credential_id: a.cred,
        })
    }

    fn finish_authenticate(
        &self,
        state_json: &str,
        response: &str,
        credential: &PasskeyCredential,
    ) -> Result<PasskeyCredential, PasskeyError> {
        let st = state(state_json)?;
        let a = answer(response)?;
        self.checked(&st, "authenticate", &a)?;
        let stored: Stored = serde_json::from_str(&credential.data)
            .map_err(|_| PasskeyError::Unavailable("bad stored credential".into()))?;
        let known = a.cred == credential.id && (st.allow.is_empty() || st.allow.contains(&a.cred));
        // A discoverable answer (nothing allowed up front) must name its user.
        let handle_ok = match &a.handle {
            Some(h) => *h == stored.handle,
            None => !st.allow.is_empty(),
        };
        if !known || !handle_ok || a.counter <= stored.counter {
            return Err(PasskeyError::Refused);
        }
        let mut updated = credential.clone();
        updated.data = serde_json::to_string(&Stored {
            handle: stored.handle,
            counter: a.counter,
        })
        .unwrap();
        Ok(updated)
    }
}

/// The browser and authenticator of a test: answers `create()` and `get()` options.
#[derive(Debug, Clone)]
pub struct FakeAuthenticator {
    pub cred: String,
    /// The user handle it was registered with (hex), learnt from the `create()` options.
    pub handle: Option<String>,
    /// The signature counter; `get` increments it before answering.
    pub counter: u32,
    pub uv: bool,
    pub origin: String,
}

impl FakeAuthenticator {
    #[must_use]
    pub fn new(cred: &str) -> Self {
        Self {
            cred: cred.to_owned(),
            handle: None,
            counter: 0,
            uv: true,
            origin: "https://localhost".into(),
        }
    }

    /// The challenge in a ceremony's options.
    #[must_use]
    pub fn challenge_of(options: &str) -> String {
        let v: Value = serde_json::from_str(options).expect("options are JSON");
        v["publicKey"]["challenge"]
            .as_str()
            .expect("a challenge")
            .to_owned()
    }

    /// Answer `navigator.credentials.create(options)`: remembers the user handle.
    pub fn create(&mut self, options: &str) -> String {
        let v: Value = serde_json::from_str(options).expect("options are JSON");
        self.handle = v["publicKey"]["user"]["id"].as_str().map(str::to_owned);
        self.answer(&Self::challenge_of(options))
    }

    /// Answer `navigator.credentials.get(options)` (the counter grows by one).
    pub fn get(&mut self, options: &str) -> String {
        self.counter += 1;
        self.answer(&Self::challenge_of(options))
    }

    /// An answer to `challenge` with the authenticator's current state, as is.
    #[must_use]
    pub fn answer(&self, challenge: &str) -> String {
        serde_json::to_string(&Answer {
            cred: self.cred.clone(),
            handle: self.handle.clone(),
            challenge: challenge.to_owned(),
            counter: self.counter,
            uv: self.uv,
            origin: self.origin.clone(),
        })
        .unwrap()
    }
}
