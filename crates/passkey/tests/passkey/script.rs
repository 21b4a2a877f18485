//! `crates/web/static/passkey.js`, the product's only script: what it may contain, and that the
//! JSON it posts is what this adapter reads. The last tests run the script itself in Node.js
//! (on every Rust machine image) behind a fake page and a fake `navigator.credentials` that
//! replays the software authenticator's answer.

use std::path::{Path, PathBuf};
use std::process::Command;

use rekey_core::passkey::Passkeys as _;
use serde_json::{Map, Value, json};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::support::{Device, HANDLE, NOW, ORIGIN, counter, register, relying_party};

fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/static/passkey.js")
}

fn script() -> String {
    std::fs::read_to_string(script_path()).expect("crates/web/static/passkey.js")
}

/// Byte offsets of `on<letters>=` (an inline handler or an `onclick =` property), not `==`.
fn handler_assignments(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for (i, _) in text.match_indices("on") {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue;
        }
        let mut j = i + 2;
        let letters = j;
        while j < bytes.len() && bytes[j].is_ascii_alphabetic() {
            j += 1;
        }
        if j == letters {
            continue;
        }
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if bytes.get(j) == Some(&b'=') && bytes.get(j + 1) != Some(&b'=') {
            found.push(i);
        }
    }
    found
}

#[test]
fn the_script_is_small_static_and_csp_safe() {
    let text = script();
    let lines = text.lines().count();
    assert!(lines <= 130, "{lines} lines");
    for banned in [
        "eval",
        "new Function",
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "setAttribute",
        "setTimeout",
        "setInterval",
        "import(",
        "fetch(",
        "XMLHttpRequest",
        "http:",
        "https:",
        "console.",
        "localStorage",
        "document.cookie",
    ] {
        assert!(!text.contains(banned), "passkey.js contains {banned:?}");
    }
    // ES2017 at most: no optional chaining, nullish coalescing, spread or logical assignment.
    for newer in ["?.", "??", "...", "||=", "&&="] {
        assert!(!text.contains(newer), "passkey.js uses {newer:?}");
    }
    assert_eq!(handler_assignments(&text), Vec::<usize>::new());
    // The check itself can see one.
    assert_eq!(
        handler_assignments("a.onclick = f; <b onload=\"x\"> on == 1"),
        [2, 18]
    );
}

/// The posted JSON rebuilt from a software authenticator's answer, with the script's keys and
/// encodings (`encode()` in passkey.js).
fn as_the_script_writes(answer: &str, creating: bool) -> Value {
    let answer: Value = serde_json::from_str(answer).unwrap();
    let r = &answer["response"];
    let response = if creating {
        json!({
            "attestationObject": r["attestationObject"],
            "clientDataJSON": r["clientDataJSON"],
            "transports": r.get("transports").cloned().unwrap_or(json!([])),
        })
    } else {
        json!({
            "authenticatorData": r["authenticatorData"],
            "clientDataJSON": r["clientDataJSON"],
            "signature": r["signature"],
            "userHandle": r.get("userHandle").cloned().unwrap_or(Value::Null),
        })
    };
    json!({
        "id": answer["id"],
        "rawId": answer["rawId"],
        "type": answer["type"],
        "response": response,
        "extensions": {},
    })
}

fn keys(value: &Value, into: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (key, inner) in map {
            into.push(key.clone());
            keys(inner, into);
        }
    }
}

#[test]
fn the_json_the_script_writes_is_what_webauthn_rs_reads() {
    let text = script();
    let rp = relying_party();
    let mut device = Device::new();

    let ceremony = rp.begin_register(&HANDLE, "ada", "Ada", &[]).unwrap();
    let created = as_the_script_writes(&device.create(ORIGIN, &ceremony.options).unwrap(), true);
    serde_json::from_value::<RegisterPublicKeyCredential>(created.clone()).unwrap();
    let stored = rp
        .finish_register(&ceremony.state, &created.to_string(), "key", NOW)
        .unwrap();

    let ceremony = rp.begin_authenticate(&[]).unwrap();
    let asserted = as_the_script_writes(&device.get(ORIGIN, &ceremony.options).unwrap(), false);
    serde_json::from_value::<PublicKeyCredential>(asserted.clone()).unwrap();
    let claim = rp.claim(&asserted.to_string()).unwrap();
    assert_eq!(claim.user_handle.as_deref(), Some(&HANDLE[..]));
    rp.finish_authenticate(&ceremony.state, &asserted.to_string(), &stored)
        .unwrap();

    // What the script writes when the authenticator returns no user handle.
    let mut anonymous = asserted.clone();
    anonymous["response"]["userHandle"] = Value::Null;
    assert_eq!(rp.claim(&anonymous.to_string()).unwrap().user_handle, None);

    // Every key of that JSON is a key the script writes.
    let mut names = Vec::new();
    keys(&created, &mut names);
    keys(&asserted, &mut names);
    for name in names {
        assert!(
            text.contains(&format!("{name}:")) || text.contains(&format!("{name}: ")),
            "passkey.js does not write {name:?}"
        );
    }
}

/// The fake page and browser (Node.js). Reads the page description from the file named by its
/// argument, runs passkey.js, clicks `#passkey-start` `clicks` times and prints what happened.
const HARNESS: &str = r#"
'use strict';
const fs = require('fs');
const vm = require('vm');
const page = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
const buffer = (text) => {
  const b = Buffer.from(text, 'base64url');
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
};
const text = (value) => (value instanceof ArrayBuffer ? Buffer.from(value).toString('base64url') : 'not an ArrayBuffer');
function element(props) {
  return Object.assign({
    hidden: false, disabled: false, textContent: '', value: '', dataset: {}, listeners: [],
    addEventListener(type, listener) { if (type === 'click') this.listeners.push(listener); },
  }, props);
}
const input = element({ value: '' });
let submitted = null;
const form = element({
  dataset: { mode: page.mode },
  querySelector: (selector) => (selector === 'input[name="credential"]' ? input : null),
  submit: () => { submitted = input.value; },
});
const start = element({});
const error = element({ hidden: true, dataset: page.texts || {} });
const unsupported = element({ hidden: true });
const elements = {
  'passkey-form': form, 'passkey-start': start, 'passkey-error': error,
  'passkey-unsupported': unsupported, 'passkey-options': element({ textContent: page.options }),
};
globalThis.document = { getElementById: (id) => elements[id] || null };
globalThis.window = globalThis;
if (page.supported) globalThis.PublicKeyCredential = function PublicKeyCredential() {};
const seen = [];
function browser(call) {
  return async (options) => {
    const key = options.publicKey;
    seen.push({
      call,
      challenge: text(key.challenge),
      userId: key.user ? text(key.user.id) : null,
      exclude: (key.excludeCredentials || []).map((c) => text(c.id)),
      allow: (key.allowCredentials || []).map((c) => text(c.id)),
    });
    if (page.reject) {
      const e = new Error('secret details of ' + page.reject);
      e.name = page.reject;
      throw e;
    }
    const a = page.answer;
    const r = a.response;
    const response = call === 'create'
      ? { attestationObject: buffer(r.attestationObject), clientDataJSON: buffer(r.clientDataJSON),
          getTransports: () => r.transports || [] }
      : { authenticatorData: buffer(r.authenticatorData), clientDataJSON: buffer(r.clientDataJSON),
          signature: buffer(r.signature), userHandle: r.userHandle ? buffer(r.userHandle) : null };
    return { id: a.id, rawId: buffer(a.rawId), type: a.type, response,
             getClientExtensionResults: () => ({ credProps: { rk: true } }) };
  };
}
const credentials = { create: browser('create'), get: browser('get') };
Object.defineProperty(globalThis, 'navigator', { value: { credentials }, configurable: true });
vm.runInThisContext(fs.readFileSync(page.script, 'utf8'), { filename: 'passkey.js' });
(async () => {
  for (let click = 0; click < (page.clicks || 1); click++) {
    for (const listener of start.listeners) listener({ type: 'click' });
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  }
  process.stdout.write(JSON.stringify({
    submitted, seen, error: { hidden: error.hidden, text: error.textContent },
    unsupported: !unsupported.hidden, startDisabled: start.disabled, listeners: start.listeners.length,
  }));
})();
"#;

/// Run passkey.js in Node.js on a fake page. `answer`: the software authenticator's JSON that
/// the fake `navigator.credentials` hands back as ArrayBuffers; `reject`: an error name to throw
/// instead.
fn run_in_node(page: &Value) -> Value {
    let input = std::env::temp_dir().join(format!(
        "rekey-passkey-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut page = page.clone();
    page["script"] = json!(script_path());
    std::fs::write(&input, page.to_string()).unwrap();
    let output = Command::new("node")
        .arg("-e")
        .arg(HARNESS)
        .arg(&input)
        .output()
        .expect("Node.js (`node`) runs passkey.js in these tests: apt-get install nodejs");
    let _ = std::fs::remove_file(&input);
    assert!(
        output.status.success(),
        "node: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn page(mode: &str, options: &str) -> Map<String, Value> {
    let mut page = Map::new();
    page.insert("mode".into(), json!(mode));
    page.insert("options".into(), json!(options));
    page.insert("supported".into(), json!(true));
    page
}

#[test]
fn the_script_registers_and_signs_in_on_a_page() {
    let rp = relying_party();
    let mut device = Device::new();
    let existing = register(&rp, &mut Device::new());

    // create(): the buffers it hands the browser are the options' base64url fields.
    let ceremony = rp
        .begin_register(&HANDLE, "ada", "Ada", std::slice::from_ref(&existing))
        .unwrap();
    let mut create = page("create", &ceremony.options);
    create.insert(
        "answer".into(),
        serde_json::from_str(&device.create(ORIGIN, &ceremony.options).unwrap()).unwrap(),
    );
    let out = run_in_node(&Value::Object(create));
    let options: Value = serde_json::from_str(&ceremony.options).unwrap();
    let seen = &out["seen"][0];
    assert_eq!(seen["call"], "create");
    assert_eq!(seen["challenge"], options["publicKey"]["challenge"]);
    assert_eq!(seen["userId"], options["publicKey"]["user"]["id"]);
    assert_eq!(seen["exclude"], json!([existing.id]));
    assert_eq!(out["error"]["hidden"], true);
    let posted = out["submitted"].as_str().expect("the form was submitted");
    let stored = rp
        .finish_register(&ceremony.state, posted, "key", NOW)
        .unwrap();

    // get(), discoverable and with an allow list.
    let mut current = stored;
    for allow in [vec![], vec![current.clone()]] {
        let ceremony = rp.begin_authenticate(&allow).unwrap();
        let mut get = page("get", &ceremony.options);
        get.insert(
            "answer".into(),
            serde_json::from_str(&device.get(ORIGIN, &ceremony.options).unwrap()).unwrap(),
        );
        let out = run_in_node(&Value::Object(get));
        let seen = &out["seen"][0];
        assert_eq!(seen["call"], "get");
        let options: Value = serde_json::from_str(&ceremony.options).unwrap();
        assert_eq!(seen["challenge"], options["publicKey"]["challenge"]);
        let allowed: Vec<_> = allow.iter().map(|c| c.id.clone()).collect();
        assert_eq!(seen["allow"], json!(allowed));
        let posted = out["submitted"].as_str().expect("the form was submitted");
        assert_eq!(
            rp.claim(posted).unwrap().user_handle.as_deref(),
            Some(&HANDLE[..])
        );
        current = rp
            .finish_authenticate(&ceremony.state, posted, &current)
            .unwrap();
    }
    assert_eq!(counter(&current), 2);
}

#[test]
fn the_script_shows_a_short_message_and_lets_the_user_retry() {
    let rp = relying_party();
    let ceremony = rp.begin_authenticate(&[]).unwrap();

    let mut get = page("get", &ceremony.options);
    get.insert("reject".into(), json!("NotAllowedError"));
    get.insert("clicks".into(), json!(2));
    let out = run_in_node(&Value::Object(get.clone()));
    assert_eq!(out["submitted"], Value::Null);
    assert_eq!(out["error"]["hidden"], false);
    let text = out["error"]["text"].as_str().unwrap();
    assert!(text.contains("cancelled"), "{text}");
    assert!(!text.contains("secret"), "no exception details: {text}");
    assert_eq!(out["startDisabled"], false, "the button works again");
    // The retry decoded the options afresh.
    assert_eq!(out["seen"].as_array().unwrap().len(), 2);
    assert_eq!(out["seen"][1]["challenge"], out["seen"][0]["challenge"]);

    // The page's own words (its language), and only the error's name otherwise.
    get.insert(
        "texts".into(),
        json!({"cancelled": "Abgebrochen.", "failed": "Fehlgeschlagen."}),
    );
    assert_eq!(
        run_in_node(&Value::Object(get.clone()))["error"]["text"],
        "Abgebrochen."
    );
    get.insert("reject".into(), json!("SecurityError"));
    assert_eq!(
        run_in_node(&Value::Object(get))["error"]["text"],
        "Fehlgeschlagen. (SecurityError)"
    );
}

#[test]
fn the_script_says_when_the_browser_has_no_passkeys() {
    let rp = relying_party();
    let ceremony = rp.begin_authenticate(&[]).unwrap();
    let mut get = page("get", &ceremony.options);
    get.insert("supported".into(), json!(false));
    let out = run_in_node(&Value::Object(get));
    assert_eq!(out["unsupported"], true);
    assert_eq!(out["startDisabled"], true);
    assert_eq!(out["listeners"], 0);
    assert_eq!(out["submitted"], Value::Null);
}
