//! Strong methods end to end in a real headless Chromium against the real Samba DCs, a real
//! SMTP server (aiosmtpd) and SQLite: a passkey registered through Chromium's virtual
//! authenticator (CTAP2, resident key, user verification) and an authenticator app enrolled
//! from the page's key; then a reset that starts with "use a passkey" — no user name typed —
//! lands in AD, proven by an LDAP bind and a Kerberos ticket with the new password.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rekey_e2e::Browser;
use rekey_e2e::dev::{Krb, dev};
use rekey_notify::testing::SmtpSink;

const WAIT: Duration = Duration::from_secs(15);

async fn step(b: &Browser, fields: &[(&str, &str)], next: &str) {
    for (css, value) in fields {
        b.fill(css, value).await.unwrap();
    }
    b.submit("button[type=submit]").await.unwrap();
    b.wait_for(next, WAIT).await.unwrap();
}

#[tokio::test]
async fn passkey_and_app_enroll_then_a_passkey_reset_lands_in_ad() {
    let d = dev();
    let sink = SmtpSink::start();
    let portal = rekey_e2e::portal::start(&d, &sink.mailer_config(), |c| {
        c.passkeys = Some(rekey::config::methods::PasskeysSection {
            enabled: true,
            rp_id: None,
        });
    })
    .await
    .unwrap();
    let u = d.staff_user("passkey").await;
    let b = Browser::start().await;
    let authenticator = b.add_virtual_authenticator().await.unwrap();

    // Enroll: sign in (no method yet, so no step-up), register a passkey.
    b.goto(&format!("{}/enroll", portal.url)).await.unwrap();
    b.wait_for("#password", WAIT).await.unwrap();
    step(
        &b,
        &[("#username", &u.sam), ("#password", &u.password)],
        "form[action='/enroll/passkey'] button",
    )
    .await;
    b.click("form[action='/enroll/passkey'] button")
        .await
        .unwrap();
    b.wait_for("#passkey-start", WAIT).await.unwrap();
    b.fill("#label", "Test laptop").await.unwrap();
    b.screenshot("methods-01-passkey-register").await.unwrap();
    b.click("#passkey-start").await.unwrap();
    b.wait_for("#methods tr[data-kind=passkey]", WAIT)
        .await
        .unwrap();
    let creds = b.authenticator_credentials(&authenticator).await.unwrap();
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["isResidentCredential"], true, "discoverable");

    // The authenticator app: the page's key, the code an app would show.
    b.click("form[action='/enroll/totp'] button").await.unwrap();
    b.wait_for("#secret", WAIT).await.unwrap();
    assert!(b.exists("#qr svg").await.unwrap(), "QR code rendered here");
    let key = b.text("#secret").await.unwrap();
    let seed = rekey_core::totp::seed_from_base32(&key).expect("base32 key");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = rekey_core::totp::code_at(&seed, i64::try_from(now).unwrap()).unwrap();
    b.screenshot("methods-02-totp").await.unwrap();
    step(&b, &[("#code", &code)], "#methods tr[data-kind=totp]").await;
    b.screenshot("methods-03-enrolled").await.unwrap();
    let page = b.page_source().await.unwrap();
    assert!(!page.contains(&key), "the key is not shown again");

    // Reset with the passkey alone: no user name anywhere.
    b.goto(&format!("{}/reset", portal.url)).await.unwrap();
    b.wait_for("#username", WAIT).await.unwrap();
    step(&b, &[("#username", "nobody.here")], "#code").await;
    b.click("form[action='/reset/passkey/start'] button")
        .await
        .unwrap();
    b.wait_for("#passkey-start", WAIT).await.unwrap();
    b.screenshot("methods-04-passkey-reset").await.unwrap();
    b.click("#passkey-start").await.unwrap();
    b.wait_for("#new_password", WAIT).await.unwrap();
    let new = format!("Harbor-Lantern-{}-9", std::process::id());
    step(
        &b,
        &[("#new_password", &new), ("#confirm_password", &new)],
        "#result",
    )
    .await;
    assert!(b.page_source().await.unwrap().contains("landed"));
    assert_eq!(
        d.bind(&u.dn, &new).await.0,
        0,
        "LDAP bind with the new password"
    );
    assert_eq!(
        d.kinit(&u.sam, &new),
        Krb::Ok,
        "Kerberos with the new password"
    );
    assert_eq!(d.kinit(&u.sam, &u.password), Krb::WrongPassword);
}

/// Over the identify rate the page carries a puzzle; Chromium runs `/static/pow.js` under the
/// page's CSP, solves it and continues by itself to the code page.
#[tokio::test]
async fn over_the_identify_rate_the_browser_solves_the_puzzle() {
    let d = dev();
    let sink = SmtpSink::start();
    let portal = rekey_e2e::portal::start(&d, &sink.mailer_config(), |c| {
        c.abuse.pow_per_ip_per_minute = Some(1);
        c.abuse.pow_bits = Some(12);
    })
    .await
    .unwrap();
    let b = Browser::start().await;
    b.goto(&format!("{}/reset", portal.url)).await.unwrap();
    b.wait_for("#username", WAIT).await.unwrap();
    step(&b, &[("#username", "first.try")], "#code").await;
    b.goto(&format!("{}/reset", portal.url)).await.unwrap();
    b.wait_for("#username", WAIT).await.unwrap();
    b.fill("#username", "second.try").await.unwrap();
    b.submit("button[type=submit]").await.unwrap();
    // The puzzle page, then the code page once the script has solved it and submitted.
    b.wait_for("#code", WAIT).await.unwrap();
    let url = b.current_url().await.unwrap();
    assert_eq!(url.path(), "/reset/code");
    // The audit says how identify got through: the first within the rate, the second by work
    // the browser did (not by waiting).
    use rekey_core::store::Store;
    let records = portal.store.audit_after(0, 100).await.unwrap();
    let notes: Vec<String> = records
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            v["detail"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(
        notes.iter().any(|n| n == "proof_of_work_required"),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n == "proof_of_work"), "{notes:?}");
}
