//! One contract, two implementations: the engine's tests run on `rekey_core::fakes::FakeSms`;
//! it must answer like `TwilioSms` does against the gateway double — an accepted message is
//! delivered as sent, and each kind of gateway failure is the same `SmsError` kind (the outbox
//! retries `Unavailable` and `Throttled`, and gives up on `Refused`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rekey_core::fakes::{FakeSms, SmsFailure};
use rekey_core::notify::{Sms, SmsError, SmsSender};
use rekey_sms::{SmsConfig, TwilioSms};
use rekey_sms_double::{Config, Failure, Handle};
use zeroize::Zeroizing;

/// The kinds of failure the contract covers, as each side is told to fail.
const FAILURES: [(SmsFailure, u16, u32); 3] = [
    (SmsFailure::Unavailable, 503, 30008),
    (SmsFailure::Throttled, 429, 20429),
    (SmsFailure::Refused, 400, 21211),
];

fn kind(r: &Result<(), SmsError>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(SmsError::Unavailable(_)) => "unavailable",
        Err(SmsError::Throttled(_)) => "throttled",
        Err(SmsError::Refused(_)) => "refused",
    }
}

fn message() -> Sms {
    Sms {
        to: "+4917012345678".into(),
        body: "Rekey code: 482913. Valid 10 min.".into(),
    }
}

/// What each side answered: the outcome of a plain send, then of one send per failure kind,
/// and what arrived.
async fn run(sender: &dyn SmsSender, fail: impl Fn(SmsFailure, u16, u32)) -> Vec<&'static str> {
    let mut out = vec![kind(&sender.send(&message()).await)];
    for (how, status, code) in FAILURES {
        fail(how, status, code);
        out.push(kind(&sender.send(&message()).await));
    }
    out
}

#[tokio::test]
async fn the_engines_fake_answers_like_the_real_adapter() {
    let double: Handle = rekey_sms_double::start(Config::new("ACcontract", "tok-contract"))
        .await
        .unwrap();
    let config = SmsConfig::new(
        double.url(),
        "ACcontract",
        Zeroizing::new("tok-contract".to_owned()),
        Some("+15005550006".into()),
        None,
    )
    .unwrap();
    let real = TwilioSms::new(&config).unwrap();
    let real_answers = run(&real, |_, status, code| {
        double
            .fail(Failure::new(status).code(code).times(1))
            .unwrap();
    })
    .await;
    let fake = FakeSms::default();
    let fake_answers = run(&fake, |how, _, _| fake.failing(Some(how))).await;

    assert_eq!(
        real_answers,
        ["ok", "unavailable", "throttled", "refused"],
        "the real adapter"
    );
    assert_eq!(fake_answers, real_answers, "the fake answers alike");
    // What was accepted arrived as sent, on both sides.
    let delivered = double.messages();
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        (delivered[0].to.as_str(), delivered[0].body.as_str()),
        (message().to.as_str(), message().body.as_str())
    );
    assert_eq!(fake.sent.lock().unwrap().first(), Some(&message()));
}
