//! A privileged user's method change waits for a second person, in a real headless Chromium
//! against the real Samba DCs, a real SMTP server and SQLite: with `[gates.privileged]` on, a
//! user made privileged by a protected group created for the test signs in to enrollment
//! (password + the emailed step-up code), sets up an authenticator app and sees "waiting for
//! approval" instead of the method; an approver (approver group only, no operator) signs in to
//! the console, finds the request — masked, no secret — and approves it; the app then appears on
//! the user's methods page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/helpdesk.rs"]
mod common;

use common::{WAIT, enroll, home, now, sign_in_at, submit};
use rekey_core::account::Guid;
use rekey_core::store::{MethodKind, Store};
use rekey_e2e::Browser;
use rekey_e2e::dev::dev;
use rekey_notify::testing::SmtpSink;

#[tokio::test]
async fn a_privileged_users_new_app_waits_for_an_approver_in_the_console() {
    let d = dev();
    let sink = SmtpSink::start();
    let admin = d.staff_user("pmadm").await;
    let appr = d.staff_user("pmappr").await;
    let protected = d.group_with("prot", &[&admin.dn]).await;
    let approvers = d.group_with("pmap", &[&appr.dn]).await;
    let portal = rekey_e2e::portal::start(&d, &sink.mailer_config(), |c| {
        c.tier.protected_groups = vec![protected.clone()];
        c.gates.privileged = Some(rekey::config::methods::RuleSection {
            gates: 2,
            methods: vec!["email_otp".into(), "totp".into(), "passkey".into()],
            phishing_resistant: true,
        });
        // Approvers only: no operator group. They sign in to decide, and act on nobody.
        c.helpdesk.approver_groups = vec![approvers.clone()];
    })
    .await
    .unwrap();
    let store: &dyn Store = portal.store.as_ref();
    for u in [&admin, &appr] {
        enroll(&d, store, u).await;
    }
    let admin_guid = Guid(d.object_guid(&admin.dn).await);
    let b = Browser::start().await;

    // The privileged user: password, then the step-up with the enrolled address.
    let enroll_page = format!("{}/enroll", portal.url);
    let methods = "form[action='/enroll/totp'] button";
    sign_in_at(&b, &enroll_page, &sink, &admin, None, methods).await;
    b.screenshot("helpdesk-methods-01-methods").await.unwrap();

    // The authenticator app, proven with its code: it waits for approval, not enrolled.
    b.click("form[action='/enroll/totp'] button").await.unwrap();
    b.wait_for("#secret", WAIT).await.unwrap();
    let key = b.text("#secret").await.unwrap();
    let seed = rekey_core::totp::seed_from_base32(&key).expect("base32 key");
    let code = rekey_core::totp::code_at(&seed, now()).unwrap();
    submit(&b, &[("#code", &code)], "#result[data-state=pending]").await;
    b.screenshot("helpdesk-methods-02-waiting").await.unwrap();
    let page = b.page_source().await.unwrap();
    assert!(
        page.contains("waits for approval by your security team"),
        "{page}"
    );
    let id = page
        .split("data-request=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the request id")
        .to_owned();
    assert!(page.contains(&id));
    assert!(!page.contains(&key), "the key is not shown again");
    let mail = sink.wait_for(&home(&admin), WAIT).await;
    assert!(mail.body.contains("waits for approval"), "{:?}", mail.body);
    assert!(mail.body.contains(&id));
    let enrolled = store.enrollments(&admin_guid).await.unwrap();
    assert!(
        !enrolled.iter().any(|e| e.method == MethodKind::Totp),
        "nothing enrolled before the approval"
    );
    // The methods page says what waits.
    b.click("#back").await.unwrap();
    b.wait_for("#pending-1", WAIT).await.unwrap();
    assert!(!b.exists("#methods tr[data-kind=totp]").await.unwrap());
    b.screenshot("helpdesk-methods-03-methods-pending")
        .await
        .unwrap();

    // The approver signs in to the console (password + emailed code) and approves.
    let b2 = Browser::start().await;
    let console = format!("{}/helpdesk", portal.url);
    sign_in_at(&b2, &console, &sink, &appr, None, "#operator").await;
    b2.goto(&format!("{}/helpdesk/approvals", portal.url))
        .await
        .unwrap();
    let row = format!("tr[data-id='{id}'][data-kind=add_method]");
    b2.wait_for(&row, WAIT).await.unwrap();
    let approvals = b2.page_source().await.unwrap();
    assert!(approvals.contains(&admin.sam));
    assert!(approvals.contains("Authenticator app"), "{approvals}");
    assert!(!approvals.contains(&key), "never a secret");
    b2.screenshot("helpdesk-methods-04-approvals")
        .await
        .unwrap();
    b2.click(&format!("{row} button.approve")).await.unwrap();
    b2.wait_for("#result[data-state=ok]", WAIT).await.unwrap();
    b2.screenshot("helpdesk-methods-05-approved").await.unwrap();

    // Applied: stored, the user told, and the app on the user's methods page.
    let mail = sink.wait_for(&home(&admin), WAIT).await;
    assert!(
        mail.body.contains(&format!(
            "an authenticator app was added (approved by {})",
            appr.sam
        )),
        "{:?}",
        mail.body
    );
    b.goto(&format!("{}/enroll/methods", portal.url))
        .await
        .unwrap();
    b.wait_for("#methods tr[data-kind=totp]", WAIT)
        .await
        .unwrap();
    assert!(!b.exists("#pending-1").await.unwrap());
    b.screenshot("helpdesk-methods-06-enrolled").await.unwrap();

    // The audit: the request (the user), the approval (the approver), one record each.
    let records = store.audit_after(0, 500).await.unwrap();
    let events: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let requested = format!("requested:add:totp; request:{id}");
    let approved = format!("approved; requested_by:{}; request:{id}", admin.sam);
    let one = |detail: &str| {
        events
            .iter()
            .filter(|v| v["detail"].as_str() == Some(detail))
            .collect::<Vec<_>>()
    };
    let r = one(&requested);
    assert_eq!(r.len(), 1, "{events:?}");
    assert_eq!(
        (r[0]["operation"].as_str(), r[0]["actor"].as_str()),
        (Some("approval"), Some("user"))
    );
    let a = one(&approved);
    assert_eq!(a.len(), 1, "{events:?}");
    assert_eq!(a[0]["operation"], "enroll");
    assert_eq!(a[0]["actor"]["helpdesk"], appr.sam.as_str());
    assert!(records.iter().all(|r| !r.body.contains(&key)));
}
