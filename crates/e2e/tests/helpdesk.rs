//! The helpdesk console in a real headless Chromium against the real Samba DCs, a real SMTP
//! server and SQLite: an operator from a group created for the test signs in (password + an
//! emailed second factor), verifies a caller with the code the caller "reads" from their mail,
//! unlocks them (proven by `lockoutTime` and a bind) and requires a change at next logon
//! (proven by `pwdLastSet = 0`); a privileged user is refused; someone outside the group is
//! refused like a wrong password; an act on a sensitive user waits for approval, the requester
//! cannot approve it himself, a second approver can.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/helpdesk.rs"]
mod common;

use common::{WAIT, code_in, enroll, home, sign_in_at, submit};
use rekey_core::store::Store;
use rekey_e2e::Browser;
use rekey_e2e::dev::{User, dev};
use rekey_notify::testing::SmtpSink;

/// Sign in to the console as `u`: the password, then the code mailed to their address.
async fn sign_in(b: &Browser, url: &str, sink: &SmtpSink, u: &User, shot: &str) {
    let page = format!("{url}/helpdesk");
    sign_in_at(b, &page, sink, u, Some(shot), "#operator").await;
}

/// Look `who` up and verify the caller with the code mailed to `to`.
async fn verify_caller(b: &Browser, sink: &SmtpSink, who: &str, to: &str) {
    // The card of THIS user: the page before may show another one's.
    submit(b, &[("#who", who)], &format!("#user[data-sam='{who}']")).await;
    b.click("#send-code").await.unwrap();
    b.wait_for("#verify-form", WAIT).await.unwrap();
    let mail = sink.wait_for(to, WAIT).await;
    assert!(mail.body.contains("helpdesk"), "{:?}", mail.body);
    b.fill("#code", &code_in(&mail.body)).await.unwrap();
    b.click("#check").await.unwrap();
    b.wait_for("#verified", WAIT).await.unwrap();
}

#[tokio::test]
async fn an_operator_verifies_a_caller_unlocks_and_approvals_need_a_second_person() {
    let d = dev();
    let sink = SmtpSink::start();
    let op = d.staff_user("hdop").await;
    let appr = d.staff_user("hdappr").await;
    let outsider = d.staff_user("hdout").await;
    let caller = d.staff_user("hdcall").await;
    let vip = d.staff_user("hdvip").await;
    let ops = d.group_with("ops", &[&op.dn]).await;
    let approvers = d.group_with("appr", &[&op.dn, &appr.dn]).await;
    let sensitive = d.group_with("vip", &[&vip.dn]).await;
    let portal = rekey_e2e::portal::start(&d, &sink.mailer_config(), |c| {
        c.helpdesk.operator_groups = vec![ops.clone()];
        c.helpdesk.approver_groups = vec![approvers.clone()];
        c.helpdesk.sensitive_groups = vec![sensitive.clone()];
    })
    .await
    .unwrap();
    let store: &dyn Store = portal.store.as_ref();
    for u in [&op, &appr, &outsider, &caller, &vip] {
        enroll(&d, store, u).await;
    }
    let b = Browser::start().await;

    // Someone outside the groups: the same refusal as a wrong password.
    b.goto(&format!("{}/helpdesk", portal.url)).await.unwrap();
    b.wait_for("#password", WAIT).await.unwrap();
    b.screenshot("helpdesk-01-sign-in").await.unwrap();
    submit(
        &b,
        &[
            ("#username", &outsider.sam),
            ("#password", &outsider.password),
        ],
        "#alert",
    )
    .await;
    let refused = b.text("#alert").await.unwrap();
    b.screenshot("helpdesk-02-outsider-refused").await.unwrap();
    b.goto(&format!("{}/helpdesk", portal.url)).await.unwrap();
    b.wait_for("#password", WAIT).await.unwrap();
    submit(
        &b,
        &[("#username", &op.sam), ("#password", "not-the-password")],
        "#alert",
    )
    .await;
    let wrong = b.text("#alert").await.unwrap();
    let words = |s: &str| s.split(" (").next().unwrap_or_default().to_owned();
    assert_eq!(words(&refused), words(&wrong), "same answer");
    assert_eq!(
        d.lockout(&outsider.dn).await.bad_pwd_count,
        0,
        "never bound"
    );

    // The operator signs in; the session cookie is __Host-, Secure, HttpOnly.
    sign_in(&b, &portal.url, &sink, &op, "helpdesk-03").await;
    let cookie = b
        .cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "__Host-rekey-console")
        .expect("console cookie");
    assert!(cookie.secure && cookie.http_only && cookie.path == "/");
    b.screenshot("helpdesk-04-console").await.unwrap();

    // A caller who locked himself out: verified by the code from his mail, then unlocked.
    let threshold = d.lockout_threshold(&caller.dn).await;
    d.lock_out(&caller.dn, threshold).await;
    assert!(d.lockout(&caller.dn).await.locked);
    submit(
        &b,
        &[("#who", &caller.sam)],
        &format!("#user[data-sam='{}']", caller.sam),
    )
    .await;
    assert!(b.exists("[data-state=locked]").await.unwrap());
    assert!(
        !b.exists("#act-unlock").await.unwrap(),
        "no act before the caller is verified"
    );
    b.screenshot("helpdesk-05-card").await.unwrap();
    verify_caller(&b, &sink, &caller.sam, &home(&caller)).await;
    b.screenshot("helpdesk-06-verified").await.unwrap();
    b.click("#act-unlock").await.unwrap();
    b.wait_for("#result[data-state=ok]", WAIT).await.unwrap();
    b.screenshot("helpdesk-07-unlocked").await.unwrap();
    let after = d.lockout(&caller.dn).await;
    assert!(!after.locked && after.lockout_time == 0, "{after:?}");
    assert_eq!(
        d.bind(&caller.dn, &caller.password).await.0,
        0,
        "bind works again"
    );
    let notice = sink.wait_for(&home(&caller), WAIT).await;
    assert!(notice.body.contains(&op.sam), "{:?}", notice.body);

    // Change at next logon: pwdLastSet = 0.
    b.click("#back").await.unwrap();
    b.wait_for("#act-must_change", WAIT).await.unwrap();
    b.click("#act-must_change").await.unwrap();
    b.wait_for("#result[data-state=ok]", WAIT).await.unwrap();
    assert_eq!(d.pwd_last_set(&caller.dn).await, 0);

    // A privileged user (IT-Admins → Domain Admins): shown, never acted on.
    b.click("#back").await.unwrap();
    b.wait_for("#who", WAIT).await.unwrap();
    submit(
        &b,
        &[("#who", "ivan.admin")],
        "#user[data-sam='ivan.admin']",
    )
    .await;
    assert!(b.exists("#privileged").await.unwrap());
    assert!(!b.exists("#send-code").await.unwrap());
    b.screenshot("helpdesk-08-privileged").await.unwrap();

    // A sensitive user: the act becomes a request; the requester cannot approve it.
    verify_caller(&b, &sink, &vip.sam, &home(&vip)).await;
    b.click("#act-must_change").await.unwrap();
    b.wait_for("#result", WAIT).await.unwrap();
    b.screenshot("helpdesk-09-pending").await.unwrap();
    assert_ne!(d.pwd_last_set(&vip.dn).await, 0, "nothing done yet");
    b.goto(&format!("{}/helpdesk/approvals", portal.url))
        .await
        .unwrap();
    let row = format!("tr[data-user='{}']", vip.sam);
    b.wait_for(&row, WAIT).await.unwrap();
    b.screenshot("helpdesk-10-approvals").await.unwrap();
    b.click(&format!("{row} button.approve")).await.unwrap();
    b.wait_for("#result[data-state=error]", WAIT).await.unwrap();
    assert!(b.page_source().await.unwrap().contains("RK-HD-005"));
    b.screenshot("helpdesk-11-self-approval-refused")
        .await
        .unwrap();
    assert_ne!(d.pwd_last_set(&vip.dn).await, 0);

    // A second approver decides it: the act runs.
    let b2 = Browser::start().await;
    sign_in(&b2, &portal.url, &sink, &appr, "helpdesk-12").await;
    b2.goto(&format!("{}/helpdesk/approvals", portal.url))
        .await
        .unwrap();
    b2.wait_for(&row, WAIT).await.unwrap();
    b2.click(&format!("{row} button.approve")).await.unwrap();
    b2.wait_for("#result[data-state=ok]", WAIT).await.unwrap();
    b2.screenshot("helpdesk-13-approved").await.unwrap();
    assert_eq!(d.pwd_last_set(&vip.dn).await, 0);
}
