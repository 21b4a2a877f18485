//! SMS end to end over HTTP: the portal's real SMS adapter (`rekey-sms`) talks to the SMS gateway
//! TEST DOUBLE (`rekey-sms-double`: Twilio's documented Messages API, not Twilio); a phone is
//! enrolled with the code it receives, then a reset by SMS code lands in the real Samba DC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rekey_e2e::dev::{Krb, dev};
use rekey_e2e::http::Client;
use rekey_notify::testing::SmtpSink;

const NUMBER: &str = "+491701234567";

/// The newest code the gateway accepted for `NUMBER`, once there are `n` messages.
async fn nth_code(gw: &rekey_sms_double::Handle, n: usize) -> String {
    for _ in 0..200 {
        let all = gw.messages_to(NUMBER);
        if all.len() >= n {
            let body = &all[n - 1].body;
            return body
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .unwrap_or_else(|| panic!("no code in {body:?}"))
                .to_owned();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("message {n} to {NUMBER} never arrived");
}

#[tokio::test]
async fn a_phone_enrolls_and_an_sms_code_resets_through_the_gateway() {
    let d = dev();
    let sink = SmtpSink::start();
    let gw = rekey_sms_double::start(rekey_sms_double::Config::new("ACe2e", "e2e-sms-token"))
        .await
        .unwrap();
    let token = std::env::temp_dir().join(format!("rekey-e2e-sms-{}", std::process::id()));
    std::fs::write(&token, "e2e-sms-token").unwrap();
    let url = gw.url().to_owned();
    let portal = rekey_e2e::portal::start(&d, &sink.mailer_config(), |c| {
        c.sms = Some(rekey::config::methods::SmsSection {
            enabled: true,
            base_url: url,
            account_sid: Some("ACe2e".into()),
            auth_token_file: Some(token.clone()),
            from: Some("+15005550006".into()),
            countries: vec!["49".into()],
            ..rekey::config::methods::SmsSection::default()
        });
    })
    .await
    .unwrap();
    let u = d.staff_user("smsgate").await;
    let c = Client::new(portal.port).await;

    // Enroll the phone: sign in (nothing enrolled yet: no step-up), number, the code it got.
    let a = c
        .post(
            "/enroll",
            None,
            &[("username", &u.sam), ("password", &u.password)],
        )
        .await;
    assert_eq!(
        a.header("location"),
        Some("/enroll/methods"),
        "{}",
        a.gist()
    );
    let flow = a.cookie("__Host-rekey-flow").unwrap();
    let refused = c
        .post(
            "/enroll/phone",
            Some(&flow),
            &[("phone", "+44 20 7946 0000")],
        )
        .await;
    assert!(
        refused.body.contains("RK-METHOD-002") || refused.body.contains("not accepted"),
        "a country outside the allow-list: {}",
        refused.gist()
    );
    let a = c
        .post(
            "/enroll/phone",
            Some(&flow),
            &[("phone", "+49 170 1234567")],
        )
        .await;
    assert_eq!(a.status, 303, "{}", a.gist());
    let code = nth_code(&gw, 1).await;
    let a = c
        .post("/enroll/code", Some(&flow), &[("code", &code)])
        .await;
    assert_eq!(
        a.header("location"),
        Some("/enroll/methods"),
        "{}",
        a.gist()
    );

    // Reset by the SMS code: the one code page, the code from the gateway, a new password.
    let a = c.post("/reset", None, &[("username", &u.sam)]).await;
    let flow = a.cookie("__Host-rekey-flow").unwrap();
    let code = nth_code(&gw, 2).await;
    let a = c.post("/reset/code", Some(&flow), &[("code", &code)]).await;
    assert_eq!(
        a.header("location"),
        Some("/reset/password"),
        "{}",
        a.gist()
    );
    let flow = a.cookie("__Host-rekey-flow").unwrap();
    let new = format!("Quartz-Meadow-{}-7", std::process::id());
    let a = c
        .post(
            "/reset/password",
            Some(&flow),
            &[
                ("new_password", new.as_str()),
                ("confirm_password", new.as_str()),
            ],
        )
        .await;
    assert!(a.body.contains("landed"), "{}", a.gist());
    assert_eq!(d.bind(&u.dn, &new).await.0, 0);
    assert_eq!(d.kinit(&u.sam, &new), Krb::Ok);
    let _ = std::fs::remove_file(&token);
}
