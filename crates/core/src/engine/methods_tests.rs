//! Verification methods and the gates of each tier, with the in-memory fakes and a fixed clock:
//! authenticator apps (invariant 4), passkeys (5), security questions (6), SMS and its budgets
//! (27), helpdesk codes, the cool-down of a new method, the privileged tier's two gates (1), and
//! the notice and single audit record of every method change (31, 34).

use serde_json::Value;

use super::tests::ctx;
use super::*;
use crate::account::Guid;
use crate::audit::Actor;
use crate::fakes::*;
use crate::method::{GateRule, Gates, Method};
use crate::secret::Password;
use crate::store::{Enrollment, FlowKind, MethodKind};

const DAY: i64 = 86_400;
const NORMAL: Guid = Guid([1; 16]);
const ADMIN: Guid = Guid([4; 16]);
const UNENROLLED: Guid = Guid([5; 16]);
const PASSWORD: &str = "Old-Password-1";

/// SMS to Germany and the UK, questions on, and a mail budget no test here reaches.
fn config() -> EngineConfig {
    EngineConfig {
        sms_countries: vec!["49".into(), "44".into()],
        questions_enabled: true,
        emails_per_user_per_hour: 1000,
        ..EngineConfig::default()
    }
}

/// The privileged tier served; its method changes wait for an approver (`approve_all`).
fn privileged_config() -> EngineConfig {
    EngineConfig {
        gates: Gates {
            standard: GateRule::standard(),
            privileged: Some(GateRule::privileged()),
        },
        helpdesk: super::helpdesk::HelpdeskRules {
            approver_groups: vec![super::helpdesk_tests::sid(super::helpdesk_tests::APPROVERS)],
            ..super::helpdesk::HelpdeskRules::default()
        },
        ..config()
    }
}

/// SMS and passkeys configured.
fn full(config: EngineConfig) -> World {
    world_with(config).sms().passkeys().build()
}

fn now(w: &World) -> i64 {
    w.clock.0.load(std::sync::atomic::Ordering::Relaxed)
}

/// Run `f` and return the ONE audit record it wrote.
fn one_record<T>(w: &World, f: impl FnOnce() -> T) -> (T, Value) {
    let before = w.store.with(|m| m.audit.len());
    let out = f();
    let after = w.store.with(|m| m.audit.clone());
    assert_eq!(after.len(), before + 1, "exactly one audit record");
    (out, serde_json::from_str(&after[before].body).unwrap())
}

#[track_caller]
fn says(v: &Value, op: &str, result: &str, detail: Option<&str>) {
    assert_eq!(v["operation"], op, "{v}");
    assert_eq!(v["result"], result, "{v}");
    if let Some(d) = detail {
        assert_eq!(v["detail"], d, "{v}");
    }
}

fn enrollment(w: &World, user: Guid, kind: MethodKind) -> Option<Enrollment> {
    w.store.with(|m| {
        m.enrollments
            .iter()
            .find(|e| e.user == user && e.method == kind)
            .cloned()
    })
}

fn seed_method(w: &World, user: Guid, kind: MethodKind, value: &str) {
    w.store.with(|m| {
        m.enrollments
            .push(Enrollment::contact(user, kind, value, T0 - 2 * DAY));
    });
}

fn give_password(w: &World, sam: &str) {
    w.dir
        .passwords
        .lock()
        .unwrap()
        .insert(sam.into(), PASSWORD.into());
}

/// Sign in for enrollment and, where a method exists, pass the step-up with the enrolled email:
/// the id of the methods page.
fn manage(w: &World, sam: &str) -> FlowId {
    let flow = run(w
        .engine
        .enroll_sign_in(&ctx(), sam, &Password::from(PASSWORD)))
    .unwrap();
    match run(w.engine.enroll_step(&flow)).unwrap() {
        EnrollStep::StepUp(choices) => {
            assert!(choices.iter().any(|c| c.method == Method::EmailOtp));
            run(w.engine.choose_gate(&ctx(), &flow, Method::EmailOtp)).unwrap();
            match run(w.engine.enroll_verify_code(&ctx(), &flow, &w.last_code())).unwrap() {
                Progress::Verified(id) => id,
                other => panic!("step-up: {other:?}"),
            }
        }
        EnrollStep::Manage { .. } => flow,
        other => panic!("{other:?}"),
    }
}

/// The RFC 6238 code (SHA-1, 6 digits, 30 s) of `seed` at `t`.
fn totp_at(seed: &[u8], t: i64) -> String {
    totp_rs::Builder::new()
        .with_secret(seed.to_vec())
        .build()
        .unwrap()
        .generate(u64::try_from(t).unwrap())
        .to_string()
}

/// Set up an authenticator app as the user would: read the seed off the page, type its code.
fn enroll_totp(w: &World, flow: &str) -> Vec<u8> {
    run(w.engine.enroll_totp_begin(&ctx(), flow)).unwrap();
    let EnrollStep::Totp { uri, secret } = run(w.engine.enroll_step(flow)).unwrap() else {
        panic!("the app's setup page");
    };
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let seed = totp_rs::Secret::try_from_base32(&secret)
        .unwrap()
        .as_bytes()
        .to_vec();
    assert_eq!(seed.len(), crate::totp::SEED_BYTES);
    run(w
        .engine
        .enroll_totp_confirm(&ctx(), flow, &totp_at(&seed, now(w))))
    .unwrap();
    seed
}

/// Register a passkey on the methods page.
fn enroll_passkey(w: &World, flow: &str, cred: &str) -> FakeAuthenticator {
    run(w.engine.enroll_passkey_begin(&ctx(), flow)).unwrap();
    let EnrollStep::Passkey { options } = run(w.engine.enroll_step(flow)).unwrap() else {
        panic!("the passkey page");
    };
    let mut auth = FakeAuthenticator::new(cred);
    let answer = auth.create(&options);
    run(w
        .engine
        .enroll_passkey_finish(&ctx(), flow, &answer, "laptop"))
    .unwrap();
    auth
}

fn questions() -> Vec<(String, String)> {
    [
        ("First pet?", "Rex the Dog"),
        ("City of birth?", "Zürich"),
        ("First school?", "St. Mary's"),
    ]
    .iter()
    .map(|(q, a)| ((*q).to_owned(), (*a).to_owned()))
    .collect()
}

fn answers(a: [&str; 3]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

fn start(w: &World, who: &str) -> FlowId {
    run(w.engine.start_reset(&ctx(), FlowKind::Reset, who)).unwrap()
}

/// Identify `who` and type `code` on the first gate's page.
fn first_gate(w: &World, who: &str, code: &str) -> EngineResult<Progress> {
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, who)).unwrap();
    run(w.engine.verify_reset_code(&ctx(), &flow, code))
}

/// Identify `who` and pass the first gate with the mailed code.
fn past_email(w: &World, who: &str) -> Progress {
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, who)).unwrap();
    run(w.engine.verify_reset_code(&ctx(), &flow, &w.last_code())).unwrap()
}

/// A passkey as the first gate: start without a user name, answer with `answer(options)`.
fn passkey_first(w: &World, answer: impl FnOnce(&str) -> String) -> EngineResult<Progress> {
    let flow = run(w.engine.start_passkey(&ctx(), FlowKind::Reset)).unwrap();
    let Chosen::Passkey { options } = run(w.engine.pending_gate(&flow)).unwrap() else {
        panic!("the passkey page");
    };
    run(w.engine.verify_passkey(&ctx(), &flow, &answer(&options)))
}

#[test]
fn totp_is_sealed_cools_down_then_passes_the_first_gate_once_within_one_step() {
    let w = full(config());
    let flow = manage(&w, "normal");
    let seed = enroll_totp(&w, &flow);
    // Stored sealed under a key id, bound to the user (invariant 29).
    let e = enrollment(&w, NORMAL, MethodKind::Totp).expect("enrolled");
    assert!(!e.key_id.is_empty());
    assert!(e.data.len() > seed.len());
    assert!(!e.data.windows(seed.len()).any(|x| x == seed.as_slice()));
    let opened = w
        .engine
        .open_method(&NORMAL, MethodKind::Totp, &e.key_id, &e.data)
        .unwrap();
    assert_eq!(opened.as_slice(), seed.as_slice());
    assert!(
        w.engine
            .open_method(&ADMIN, MethodKind::Totp, &e.key_id, &e.data)
            .is_err()
    );
    let b32 = totp_rs::Secret::from(seed.clone()).to_base32();
    assert!(
        w.store
            .with(|m| m.audit.iter().all(|r| !r.body.contains(&b32)))
    );

    // Cooling down: the app's code is no first gate yet.
    w.advance(60);
    let r = first_gate(&w, "normal", &totp_at(&seed, now(&w)));
    assert!(matches!(r, Err(EngineError::WrongCode)), "{r:?}");

    w.advance(DAY);
    let code = totp_at(&seed, now(&w));
    let flow = start(&w, "normal");
    let (r, v) = one_record(&w, || run(w.engine.verify_reset_code(&ctx(), &flow, &code)));
    assert!(matches!(r, Ok(Progress::Verified(_))), "{r:?}");
    says(&v, "verify", "ok", None);
    assert_eq!(v["methods"], serde_json::json!(["totp"]), "{v}");
    // The same code again, in another flow: a replay.
    let r = first_gate(&w, "normal", &code);
    assert!(matches!(r, Err(EngineError::WrongCode)), "replay: {r:?}");

    // One step either side is accepted, two are not.
    w.advance(300);
    for (dt, ok) in [(30, true), (-30, true), (60, false), (-60, false)] {
        let r = first_gate(&w, "normal", &totp_at(&seed, now(&w) + dt));
        assert_eq!(
            matches!(r, Ok(Progress::Verified(_))),
            ok,
            "{dt:+} s: {r:?}"
        );
    }
    w.audit_ok();
}

#[test]
fn a_totp_step_serves_once_among_30_parallel_flows() {
    let w = full(config());
    let flow = manage(&w, "normal");
    let seed = enroll_totp(&w, &flow);
    w.advance(DAY + 60);
    let flows: Vec<FlowId> = (0..30)
        .map(|_| run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap())
        .collect();
    let code = totp_at(&seed, now(&w));
    let c = ctx();
    w.faults
        .yielding
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let results = run_all(
        flows
            .iter()
            .map(|f| w.engine.verify_reset_code(&c, f, &code))
            .collect(),
    );
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1, "{results:?}");
}

#[test]
fn a_new_method_serves_a_reset_only_after_the_cooldown() {
    let w = full(EngineConfig {
        enroll_cooldown: 3600,
        ..config()
    });
    give_password(&w, "unenrolled");
    // Nothing enrolled: the sign-in alone opens the methods page.
    let flow = manage(&w, "unenrolled");
    run(w.engine.enroll_email(&ctx(), &flow, "me@mail.example.org")).unwrap();
    run(w.engine.enroll_confirm(&ctx(), &flow, &w.last_code())).unwrap();
    let e = enrollment(&w, UNENROLLED, MethodKind::Email).unwrap();
    assert_eq!(e.verified_at, T0);

    let mails = w.mails();
    w.advance(3599);
    let (r, v) = one_record(&w, || {
        run(w.engine.start_reset(&ctx(), FlowKind::Reset, "unenrolled"))
    });
    let flow = r.unwrap();
    says(&v, "identify", "decoy", Some("enrollment_cooling_down"));
    assert_eq!(w.mails(), mails, "nothing is sent while it cools down");
    let r = run(w.engine.verify_reset_code(&ctx(), &flow, "123456"));
    assert!(matches!(r, Err(EngineError::WrongCode)), "{r:?}");

    w.advance(1);
    let r = past_email(&w, "unenrolled");
    assert_eq!(w.last_mail().to, "me@mail.example.org");
    assert!(matches!(r, Progress::Verified(_)), "{r:?}");
}

#[test]
fn an_authenticator_app_alone_is_a_first_gate() {
    let w = full(config());
    give_password(&w, "unenrolled");
    let flow = manage(&w, "unenrolled");
    let seed = enroll_totp(&w, &flow);
    w.advance(DAY + 60);
    let mails = w.mails();
    let flow = start(&w, "unenrolled");
    assert_eq!((w.mails(), w.sms.count()), (mails, 0), "nothing to send");
    let r = run(w
        .engine
        .verify_reset_code(&ctx(), &flow, &totp_at(&seed, now(&w))));
    assert!(matches!(r, Ok(Progress::Verified(_))), "{r:?}");
}

#[test]
fn privileged_tier_needs_email_then_passkey() {
    let loose = |m: Method| {
        let mut r = GateRule::privileged();
        r.methods.push(m);
        r
    };
    assert!(GateRule::privileged().validate(true).is_ok());
    assert!(loose(Method::Questions).validate(true).is_err());
    assert!(loose(Method::SmsOtp).validate(true).is_err());
    assert!(loose(Method::HelpdeskCode).validate(true).is_err());

    let w = world_with(privileged_config())
        .sms()
        .passkeys()
        .privileged_in_scope()
        .build();
    // SMS and questions enrolled (somehow): still never offered to this tier.
    seed_method(&w, ADMIN, MethodKind::Sms, "+491701234567");
    seed_method(&w, ADMIN, MethodKind::Questions, "3 questions");

    // Email alone: another gate is needed, and nothing can serve it.
    let old = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "admin")).unwrap();
    assert_eq!(w.last_mail().to, "u4@home.example");
    let r = run(w.engine.verify_reset_code(&ctx(), &old, &w.last_code())).unwrap();
    let Progress::More(flow) = r else {
        panic!("a second gate is needed: {r:?}");
    };
    assert_ne!(flow, old);
    assert!(!run(w.engine.reset_verified(&flow)).unwrap());
    assert!(run(w.engine.gate_choices(&flow)).unwrap().is_empty());
    for m in [
        Method::Passkey,
        Method::EmailOtp,
        Method::Totp,
        Method::SmsOtp,
        Method::Questions,
    ] {
        let r = run(w.engine.choose_gate(&ctx(), &flow, m));
        assert!(
            matches!(r, Err(EngineError::MethodUnavailable)),
            "{m:?}: {r:?}"
        );
    }
    let r = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Brand-New-Pass-1")));
    assert!(matches!(r, Err(EngineError::WrongStep)), "{r:?}");

    // With a passkey (past its cool-down): email, then the passkey, then the reset.
    give_password(&w, "admin");
    let manage_flow = manage(&w, "admin");
    let mut auth = enroll_passkey(&w, &manage_flow, "cred-admin");
    // A privileged user's new passkey waits for a second person.
    super::method_approval_tests::approve_all(&w);
    // Cooling down, the new passkey cannot serve the second gate either.
    let Progress::More(flow) = past_email(&w, "admin") else {
        panic!("email is one gate of two");
    };
    assert!(run(w.engine.gate_choices(&flow)).unwrap().is_empty());
    w.advance(DAY + 1);
    let Progress::More(flow) = past_email(&w, "admin") else {
        panic!("email is one gate of two");
    };
    let choices = run(w.engine.gate_choices(&flow)).unwrap();
    let offered: Vec<Method> = choices.iter().map(|c| c.method).collect();
    assert_eq!(offered, vec![Method::Passkey]);
    for m in [Method::Questions, Method::SmsOtp, Method::Totp] {
        let r = run(w.engine.choose_gate(&ctx(), &flow, m));
        assert!(
            matches!(r, Err(EngineError::MethodUnavailable)),
            "{m:?}: {r:?}"
        );
    }
    let Chosen::Passkey { options } =
        run(w.engine.choose_gate(&ctx(), &flow, Method::Passkey)).unwrap()
    else {
        panic!("the passkey page");
    };
    let r = run(w.engine.verify_passkey(&ctx(), &flow, &auth.get(&options))).unwrap();
    let Progress::Verified(flow) = r else {
        panic!("both gates passed: {r:?}");
    };
    let out = run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Brand-New-Pass-1")))
    .unwrap();
    assert!(out.landed_everywhere());
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["reset admin Brand-New-Pass-1 unlock=true"]
    );

    // A passkey first is one gate of two as well.
    let r = passkey_first(&w, |o| auth.get(o)).unwrap();
    let Progress::More(flow) = r else {
        panic!("a passkey alone is not enough: {r:?}");
    };
    let offered: Vec<Method> = run(w.engine.gate_choices(&flow))
        .unwrap()
        .iter()
        .map(|c| c.method)
        .collect();
    assert_eq!(offered, vec![Method::EmailOtp]);
    w.audit_ok();
}

#[test]
fn privileged_enrollment_never_takes_sms() {
    let w = world_with(privileged_config())
        .sms()
        .passkeys()
        .privileged_in_scope()
        .build();
    seed_method(&w, ADMIN, MethodKind::Sms, "+491701234567");
    give_password(&w, "admin");
    let flow = run(w
        .engine
        .enroll_sign_in(&ctx(), "admin", &Password::from(PASSWORD)))
    .unwrap();
    let EnrollStep::StepUp(choices) = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("step-up expected");
    };
    let offered: Vec<Method> = choices.iter().map(|c| c.method).collect();
    assert!(!offered.contains(&Method::SmsOtp), "{offered:?}");
    let r = run(w.engine.choose_gate(&ctx(), &flow, Method::SmsOtp));
    assert!(matches!(r, Err(EngineError::MethodUnavailable)), "{r:?}");
    let flow = manage(&w, "admin");
    let EnrollStep::Manage { addable, .. } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("the methods page");
    };
    assert!(!addable.contains(&MethodKind::Sms), "{addable:?}");
    let r = run(w.engine.enroll_phone(&ctx(), &flow, "+49 170 7654321"));
    assert!(matches!(r, Err(EngineError::MethodUnavailable)), "{r:?}");
}

#[test]
fn questions_are_refused_to_the_privileged_tier() {
    let w = world_with(privileged_config())
        .passkeys()
        .privileged_in_scope()
        .build();
    give_password(&w, "admin");
    let flow = manage(&w, "admin");
    let EnrollStep::Manage { addable, .. } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("the methods page");
    };
    assert!(!addable.contains(&MethodKind::Questions), "{addable:?}");
    let (r, v) = one_record(&w, || {
        run(w.engine.enroll_questions(&ctx(), &flow, &questions()))
    });
    assert!(matches!(r, Err(EngineError::MethodUnavailable)), "{r:?}");
    says(&v, "enroll", "failed", None);
    assert!(enrollment(&w, ADMIN, MethodKind::Questions).is_none());
    // A standard user may add them.
    let flow = manage(&w, "normal");
    let EnrollStep::Manage { addable, .. } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("the methods page");
    };
    assert!(addable.contains(&MethodKind::Questions), "{addable:?}");
}

#[test]
fn questions_are_off_by_default_and_never_a_gate_on_their_own() {
    let w = world(5);
    let flow = manage(&w, "normal");
    let r = run(w.engine.enroll_questions(&ctx(), &flow, &questions()));
    assert!(matches!(r, Err(EngineError::MethodUnavailable)), "{r:?}");

    let w = full(config());
    let flow = manage(&w, "normal");
    run(w.engine.enroll_questions(&ctx(), &flow, &questions())).unwrap();
    let e = enrollment(&w, NORMAL, MethodKind::Questions).unwrap();
    assert!(!e.key_id.is_empty(), "sealed");
    assert_eq!(e.value, "3 questions");
    let hay = String::from_utf8_lossy(&e.data).to_lowercase();
    assert!(!hay.contains("rex") && !hay.contains("argon2"), "{hay}");
    // Questions left as the only method: nothing can pass the first gate.
    run(w.engine.enroll_remove(&ctx(), &flow, MethodKind::Email)).unwrap();
    w.advance(DAY + 1);
    let mails = w.mails();
    let flow = run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap();
    assert_eq!(w.mails(), mails);
    assert!(run(w.engine.gate_choices(&flow)).is_err());
    assert!(run(w.engine.choose_gate(&ctx(), &flow, Method::Questions)).is_err());
    let r = run(w.engine.verify_questions(
        &ctx(),
        &flow,
        &answers(["Rex the Dog", "Zürich", "St. Mary's"]),
    ));
    assert!(r.is_err(), "{r:?}");
    assert!(!run(w.engine.reset_verified(&flow)).unwrap());
}

#[test]
fn questions_as_a_second_gate_normalise_answers_and_count_failures() {
    let w = full(EngineConfig {
        gates: Gates {
            standard: GateRule {
                gates: 2,
                ..GateRule::standard()
            },
            privileged: None,
        },
        ..config()
    });
    let flow = manage(&w, "normal");
    run(w.engine.enroll_questions(&ctx(), &flow, &questions())).unwrap();
    w.advance(DAY + 1);
    let ask = |w: &World| {
        let Progress::More(flow) = past_email(w, "normal") else {
            panic!("two gates");
        };
        let offered: Vec<Method> = run(w.engine.gate_choices(&flow))
            .unwrap()
            .iter()
            .map(|c| c.method)
            .collect();
        assert_eq!(offered, vec![Method::Questions]);
        let chosen = run(w.engine.choose_gate(&ctx(), &flow, Method::Questions)).unwrap();
        let texts: Vec<String> = questions().into_iter().map(|(q, _)| q).collect();
        assert_eq!(chosen, Chosen::Questions { questions: texts });
        flow
    };
    let flow = ask(&w);
    let right = answers(["  rex THE   dog", "ZÜRICH", "st. mary's"]);
    let r = run(w.engine.verify_questions(&ctx(), &flow, &right)).unwrap();
    assert!(matches!(r, Progress::Verified(_)), "{r:?}");

    // Wrong answers count per user across flows: 2 + 3 failures lock self-service.
    let wrong = answers(["rex the cat", "Zürich", "St. Mary's"]);
    for n in [2, 3] {
        let flow = ask(&w);
        for _ in 0..n {
            let r = run(w.engine.verify_questions(&ctx(), &flow, &wrong));
            assert!(
                matches!(
                    r,
                    Err(EngineError::WrongAnswers | EngineError::TooManyAttempts)
                ),
                "{r:?}"
            );
        }
    }
    let mails = w.mails();
    let (r, v) = one_record(&w, || {
        run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal"))
    });
    assert!(r.is_ok());
    says(&v, "identify", "decoy", Some("sspr_locked"));
    assert_eq!(w.mails(), mails, "locked: no code");
}

#[test]
fn passkey_first_gate_names_its_user_and_refuses_every_bad_answer() {
    let w = full(config());
    let flow = manage(&w, "normal");
    let mut auth = enroll_passkey(&w, &flow, "cred-1");
    let e = enrollment(&w, NORMAL, MethodKind::Passkey).unwrap();
    assert_eq!(e.lookup, auth.handle);
    assert_eq!(e.value, "1 passkey");
    // Cooling down.
    let r = passkey_first(&w, |o| auth.get(o));
    assert!(matches!(r, Err(EngineError::PasskeyRefused)), "{r:?}");

    w.advance(DAY + 1);
    type Forge = Box<dyn Fn(&FakeAuthenticator, &str) -> String>;
    let refused: [(&str, Forge); 7] = [
        (
            "unknown handle",
            Box::new(|a, o| {
                let mut x = a.clone();
                x.handle = Some("ab".repeat(16));
                x.counter += 1;
                x.answer(&FakeAuthenticator::challenge_of(o))
            }),
        ),
        (
            "unknown credential",
            Box::new(|a, o| {
                let mut x = a.clone();
                x.cred = "cred-2".into();
                x.counter += 1;
                x.answer(&FakeAuthenticator::challenge_of(o))
            }),
        ),
        (
            "wrong challenge",
            Box::new(|a, _| {
                let mut x = a.clone();
                x.counter += 1;
                x.answer("00112233445566778899aabbccddeeff")
            }),
        ),
        (
            "counter not grown since registration",
            Box::new(|a, o| {
                let mut x = a.clone();
                x.counter = 0;
                x.answer(&FakeAuthenticator::challenge_of(o))
            }),
        ),
        (
            "no user verification",
            Box::new(|a, o| {
                let mut x = a.clone();
                x.uv = false;
                x.counter += 1;
                x.answer(&FakeAuthenticator::challenge_of(o))
            }),
        ),
        (
            "another origin",
            Box::new(|a, o| {
                let mut x = a.clone();
                x.origin = "https://evil.example".into();
                x.counter += 1;
                x.answer(&FakeAuthenticator::challenge_of(o))
            }),
        ),
        ("not JSON", Box::new(|_, _| "{".into())),
    ];
    for (why, answer) in &refused {
        let r = passkey_first(&w, |o| answer(&auth, o));
        assert!(
            matches!(r, Err(EngineError::PasskeyRefused)),
            "{why}: {r:?}"
        );
    }
    let flow = run(w.engine.start_passkey(&ctx(), FlowKind::Reset)).unwrap();
    let Chosen::Passkey { options } = run(w.engine.pending_gate(&flow)).unwrap() else {
        panic!("the passkey page");
    };
    let answer = auth.get(&options);
    let (r, v) = one_record(&w, || run(w.engine.verify_passkey(&ctx(), &flow, &answer)));
    let Ok(Progress::Verified(flow)) = r else {
        panic!("{r:?}");
    };
    says(&v, "verify", "ok", None);
    assert_eq!(v["target_sam"], "normal", "{v}");
    run(w
        .engine
        .complete_reset(&ctx(), &flow, &Password::from("Brand-New-Pass-1")))
    .unwrap();
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["reset normal Brand-New-Pass-1 unlock=true"]
    );
    // The counter it used is spent (a clone of the authenticator is refused).
    let clone = auth.clone();
    let r = passkey_first(&w, |o| clone.answer(&FakeAuthenticator::challenge_of(o)));
    assert!(matches!(r, Err(EngineError::PasskeyRefused)), "{r:?}");
}

#[test]
fn passkey_first_gate_stops_after_five_wrong_answers() {
    let w = full(config());
    let flow = manage(&w, "normal");
    let mut auth = enroll_passkey(&w, &flow, "cred-1");
    w.advance(DAY + 1);
    let flow = run(w.engine.start_passkey(&ctx(), FlowKind::Reset)).unwrap();
    let Chosen::Passkey { options } = run(w.engine.pending_gate(&flow)).unwrap() else {
        panic!("the passkey page");
    };
    let mut last = None;
    for _ in 0..5 {
        last = Some(run(w.engine.verify_passkey(&ctx(), &flow, "{}")));
    }
    assert!(
        matches!(last, Some(Err(EngineError::TooManyAttempts))),
        "5th wrong answer: {last:?}"
    );
    let r = run(w.engine.verify_passkey(&ctx(), &flow, &auth.get(&options)));
    assert!(
        r.is_err(),
        "the challenge is spent after 5 wrong answers: {r:?}"
    );
}

#[test]
fn sms_enrollment_checks_the_country_and_goes_through_the_outbox() {
    let w = full(config());
    let flow = manage(&w, "normal");
    for bad in [
        "+1 555 010 0123",
        "0170 1234567",
        "+900 123 4567",
        "+49 12",
        "+49 170 ABC 4567",
    ] {
        let r = run(w.engine.enroll_phone(&ctx(), &flow, bad));
        assert!(matches!(r, Err(EngineError::BadPhone)), "{bad}: {r:?}");
    }
    assert_eq!(w.sms.attempts.load(std::sync::atomic::Ordering::Relaxed), 0);
    // The gateway is down: the same answer, the code waits in the outbox.
    w.sms.failing(Some(SmsFailure::Unavailable));
    run(w.engine.enroll_phone(&ctx(), &flow, "+49 (170) 123-4567")).unwrap();
    assert_eq!(
        run(w.engine.enroll_step(&flow)).unwrap(),
        EnrollStep::AwaitCode {
            masked: "+** *** ** 67".into(),
            kind: MethodKind::Sms,
        }
    );
    assert_eq!(w.sms.count(), 0);
    assert_eq!(w.store.with(|m| m.outbox.len()), 1, "queued, not lost");
    w.sms.failing(None);
    w.advance(10);
    assert_eq!(run(w.engine.deliver_outbox()).unwrap(), 1);
    let sms = w.sms.last();
    assert_eq!(sms.to, "+491701234567");
    assert!(w.store.with(|m| m.outbox.is_empty()));
    let code = w.sms.last_code();
    let audit = w.store.with(|m| m.audit.clone());
    assert!(
        audit
            .iter()
            .all(|r| !r.body.contains(&code) && !r.body.contains("1234567")),
        "neither the code nor the number reaches the audit"
    );
    run(w.engine.enroll_confirm(&ctx(), &flow, &w.sms.last_code())).unwrap();
    assert_eq!(
        enrollment(&w, NORMAL, MethodKind::Sms).unwrap().value,
        "+491701234567"
    );
}

/// "unenrolled" with only a phone: its first gate is an SMS.
fn sms_world(config: EngineConfig) -> World {
    let w = full(config);
    seed_method(&w, UNENROLLED, MethodKind::Sms, "+491701234567");
    w
}

#[test]
fn sms_code_is_a_first_gate_within_a_daily_budget_per_user() {
    let w = sms_world(EngineConfig {
        sms_per_user_per_day: 3,
        ..config()
    });
    let mails = w.mails();
    let flow = start(&w, "unenrolled");
    let r = run(w
        .engine
        .verify_reset_code(&ctx(), &flow, &w.sms.last_code()))
    .unwrap();
    assert!(
        matches!(r, Progress::Verified(_)),
        "the SMS code served: {r:?}"
    );
    assert_eq!(w.mails(), mails, "no mail: the code went by SMS");
    assert_eq!(w.sms.count(), 1);
    let r = first_gate(&w, "unenrolled", &w.sms.last_code());
    assert!(r.is_err(), "a code serves its own flow only: {r:?}");
    assert_eq!(w.sms.count(), 2);
    // The 3rd code goes out; the 4th and 5th do not, behind the same page.
    for (sent, over) in [(3, false), (3, true), (3, true)] {
        let (r, v) = one_record(&w, || {
            run(w.engine.start_reset(&ctx(), FlowKind::Reset, "unenrolled"))
        });
        let flow = r.unwrap();
        assert_eq!(flow.len(), 64, "the same page");
        assert_eq!(
            run(w.engine.pending_gate(&flow)).unwrap(),
            Chosen::Code(Method::EmailOtp)
        );
        assert_eq!(w.sms.count(), sent);
        says(&v, "identify", "ok", None);
        assert_eq!(v["detail"] == "sms_budget_spent", over, "{v}");
    }
    // A day later the budget is back.
    w.advance(DAY);
    run(w.engine.start_reset(&ctx(), FlowKind::Reset, "unenrolled")).unwrap();
    assert_eq!(w.sms.count(), 4);
}

#[test]
fn sms_budget_holds_for_30_identify_requests_at_once() {
    let w = sms_world(EngineConfig {
        sms_per_user_per_day: 3,
        ..config()
    });
    let c = ctx();
    let before = w.store.with(|m| m.audit.len());
    w.faults
        .yielding
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let results = run_all(
        (0..30)
            .map(|_| w.engine.start_reset(&c, FlowKind::Reset, "unenrolled"))
            .collect(),
    );
    assert!(results.iter().all(Result::is_ok), "the same answer for all");
    assert_eq!(w.sms.count(), 3, "exactly the budget");
    assert_eq!(
        w.sms.attempts.load(std::sync::atomic::Ordering::Relaxed),
        3,
        "none twice"
    );
    let records = w.store.with(|m| m.audit[before..].to_vec());
    assert_eq!(records.len(), 30);
    let spent = records
        .iter()
        .filter(|r| r.body.contains(r#""detail":"sms_budget_spent""#))
        .count();
    assert_eq!(spent, 27);
}

#[test]
fn sms_budgets_are_all_or_nothing() {
    let w = sms_world(EngineConfig {
        sms_per_user_per_day: 3,
        sms_per_ip_per_day: 1,
        ..config()
    });
    let from = |ip: &str| RequestContext {
        client_ip: Some(ip.into()),
        ..ctx()
    };
    for ip in [
        "192.0.2.1",
        "192.0.2.1",
        "192.0.2.1",
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
    ] {
        run(w
            .engine
            .start_reset(&from(ip), FlowKind::Reset, "unenrolled"))
        .unwrap();
    }
    // The IP budget stopped three; the user's units they took were given back.
    assert_eq!(w.sms.count(), 3);
    run(w
        .engine
        .start_reset(&from("192.0.2.4"), FlowKind::Reset, "unenrolled"))
    .unwrap();
    assert_eq!(w.sms.count(), 3, "the user's budget is spent now");
}

fn operator() -> RequestContext {
    RequestContext {
        actor: Actor::Admin("alice".into()),
        support_id: "RK-OPER-0001".into(),
        ..ctx()
    }
}

#[test]
fn helpdesk_code_is_issued_by_an_operator_and_serves_once_before_it_expires() {
    let w = full(EngineConfig {
        helpdesk_code_ttl: 600,
        ..config()
    });
    let (r, v) = one_record(&w, || run(w.engine.helpdesk_code(&operator(), "normal")));
    let code = r.unwrap();
    assert_eq!(code.len(), 8);
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    says(&v, "helpdesk_code", "ok", None);
    assert_eq!(v["actor"], serde_json::json!({"admin": "alice"}), "{v}");
    assert_eq!(v["target_sam"], "normal", "{v}");
    assert!(
        w.store
            .with(|m| m.audit.iter().all(|r| !r.body.contains(&code)))
    );

    // Typed on the first gate's page (as read out: in two halves), it passes once.
    let (a, b) = code.split_at(4);
    let flow = start(&w, "normal");
    let typed = format!("{a} {b}");
    let (r, v) = one_record(&w, || {
        run(w.engine.verify_reset_code(&ctx(), &flow, &typed))
    });
    assert!(matches!(r, Ok(Progress::Verified(_))), "{r:?}");
    assert_eq!(v["methods"], serde_json::json!(["helpdesk_code"]), "{v}");
    let r = first_gate(&w, "normal", &code);
    assert!(
        matches!(r, Err(EngineError::WrongCode)),
        "second use: {r:?}"
    );

    // A new code replaces the one before.
    let old = run(w.engine.helpdesk_code(&operator(), "normal")).unwrap();
    let new = run(w.engine.helpdesk_code(&operator(), "normal")).unwrap();
    if old != new {
        assert!(first_gate(&w, "normal", &old).is_err(), "replaced");
    }
    // Good until its time-to-live is over, not a second longer.
    w.advance(599);
    assert!(matches!(
        first_gate(&w, "normal", &new),
        Ok(Progress::Verified(_))
    ));
    let late = run(w.engine.helpdesk_code(&operator(), "normal")).unwrap();
    w.advance(600);
    let r = first_gate(&w, "normal", &late);
    assert!(matches!(r, Err(EngineError::WrongCode)), "expired: {r:?}");
}

#[test]
fn helpdesk_code_serves_once_among_30_parallel_flows() {
    let w = full(config());
    let code = run(w.engine.helpdesk_code(&operator(), "normal")).unwrap();
    let flows: Vec<FlowId> = (0..30)
        .map(|_| run(w.engine.start_reset(&ctx(), FlowKind::Reset, "normal")).unwrap())
        .collect();
    let c = ctx();
    w.faults
        .yielding
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let results = run_all(
        flows
            .iter()
            .map(|f| w.engine.verify_reset_code(&c, f, &code))
            .collect(),
    );
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
}

#[test]
fn helpdesk_code_is_refused_where_the_tier_rule_excludes_it() {
    let w = world_with(privileged_config())
        .privileged_in_scope()
        .build();
    let (r, v) = one_record(&w, || run(w.engine.helpdesk_code(&operator(), "admin")));
    assert!(matches!(r, Err(EngineError::MethodUnavailable)), "{r:?}");
    says(
        &v,
        "helpdesk_code",
        "failed",
        Some("tier_forbids_helpdesk_code"),
    );
    assert_eq!(v["actor"], serde_json::json!({"admin": "alice"}), "{v}");
    // Privileged accounts out of scope (the default): refused before any rule is read.
    let w = world(5);
    let r = run(w.engine.helpdesk_code(&operator(), "admin"));
    assert!(matches!(r, Err(EngineError::Ineligible(_))), "{r:?}");
    // A standard rule without helpdesk codes: none issued, none accepted.
    let mut standard = GateRule::standard();
    standard.methods.retain(|m| *m != Method::HelpdeskCode);
    let w = world_config(
        5,
        EngineConfig {
            gates: Gates {
                standard,
                privileged: None,
            },
            ..config()
        },
    );
    let r = run(w.engine.helpdesk_code(&operator(), "normal"));
    assert!(matches!(r, Err(EngineError::MethodUnavailable)), "{r:?}");
}

#[test]
fn helpdesk_code_serves_a_user_without_usable_methods() {
    let w = full(config());
    let code = run(w.engine.helpdesk_code(&operator(), "unenrolled")).unwrap();
    let r = first_gate(&w, "unenrolled", &code);
    assert!(matches!(r, Ok(Progress::Verified(_))), "{r:?}");
}

/// The notices (subject "...methods changed") mailed since `since`, by recipient, sorted.
fn notices_since(w: &World, since: usize) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = w.mail.0.lock().unwrap()[since..]
        .iter()
        .filter(|m| m.subject.contains("methods changed"))
        .map(|m| (m.to.clone(), m.body.clone()))
        .collect();
    out.sort();
    out
}

/// Run one method change: exactly one audit record, and a notice to each of `to` saying `what`.
#[track_caller]
fn change<T: std::fmt::Debug>(
    w: &World,
    f: impl FnOnce() -> EngineResult<T>,
    op: &str,
    method: &str,
    what: &str,
    to: &[&str],
) {
    let since = w.mails();
    let (r, v) = one_record(w, f);
    r.unwrap();
    says(&v, op, "ok", None);
    assert_eq!(v["methods"], serde_json::json!([method]), "{v}");
    assert_eq!(v["target_sam"], "normal", "{v}");
    let notices = notices_since(w, since);
    let rcpt: Vec<&str> = notices.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(rcpt, to, "{what}");
    assert!(
        notices.iter().all(|(_, body)| body.contains(what)),
        "{what}: {notices:?}"
    );
}

#[test]
fn every_method_change_is_audited_once_and_mailed_to_the_users_addresses() {
    let w = full(config());
    let flow = manage(&w, "normal");
    let corp = "normal@corp.example.com";
    let new = "new.me@mail.example.org";

    run(w.engine.enroll_email(&ctx(), &flow, new)).unwrap();
    let code = w.last_code();
    let f = || run(w.engine.enroll_confirm(&ctx(), &flow, &code));
    change(
        &w,
        f,
        "enroll",
        "email",
        "an email address was added",
        &[new, corp, "u1@home.example"],
    );
    // One address per user: the new one replaced the old.
    assert_eq!(
        enrollment(&w, NORMAL, MethodKind::Email).unwrap().value,
        new
    );

    run(w.engine.enroll_phone(&ctx(), &flow, "+44 7700 900123")).unwrap();
    let code = w.sms.last_code();
    let f = || run(w.engine.enroll_confirm(&ctx(), &flow, &code));
    change(
        &w,
        f,
        "enroll",
        "sms",
        "a phone number for text messages was added",
        &[new, corp],
    );

    run(w.engine.enroll_totp_begin(&ctx(), &flow)).unwrap();
    let EnrollStep::Totp { secret, .. } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("the app's setup page");
    };
    let seed = totp_rs::Secret::try_from_base32(&secret)
        .unwrap()
        .as_bytes()
        .to_vec();
    let code = totp_at(&seed, now(&w));
    let f = || run(w.engine.enroll_totp_confirm(&ctx(), &flow, &code));
    change(
        &w,
        f,
        "enroll",
        "totp",
        "an authenticator app was added",
        &[new, corp],
    );

    run(w.engine.enroll_passkey_begin(&ctx(), &flow)).unwrap();
    let EnrollStep::Passkey { options } = run(w.engine.enroll_step(&flow)).unwrap() else {
        panic!("the passkey page");
    };
    let answer = FakeAuthenticator::new("cred-1").create(&options);
    let f = || {
        run(w
            .engine
            .enroll_passkey_finish(&ctx(), &flow, &answer, "phone"))
    };
    change(
        &w,
        f,
        "enroll",
        "passkey",
        "a passkey was added",
        &[new, corp],
    );

    let f = || run(w.engine.enroll_questions(&ctx(), &flow, &questions()));
    change(
        &w,
        f,
        "enroll",
        "questions",
        "security questions was added",
        &[new, corp],
    );

    let f = || run(w.engine.enroll_remove(&ctx(), &flow, MethodKind::Sms));
    change(
        &w,
        f,
        "method_removed",
        "sms",
        "a phone number for text messages was removed",
        &[new, corp],
    );
    assert!(enrollment(&w, NORMAL, MethodKind::Sms).is_none());
    // The address removed is told too.
    let f = || run(w.engine.enroll_remove(&ctx(), &flow, MethodKind::Email));
    change(
        &w,
        f,
        "method_removed",
        "email",
        "an email address was removed",
        &[new, corp],
    );
    assert!(enrollment(&w, NORMAL, MethodKind::Email).is_none());

    // Nothing left to remove: refused, recorded once, nobody mailed.
    let since = w.mails();
    let (r, v) = one_record(&w, || {
        run(w.engine.enroll_remove(&ctx(), &flow, MethodKind::Email))
    });
    assert!(matches!(r, Err(EngineError::MethodUnavailable)), "{r:?}");
    says(&v, "method_removed", "failed", None);
    assert!(notices_since(&w, since).is_empty());
    let kinds: Vec<MethodKind> = w.store.with(|m| {
        m.enrollments
            .iter()
            .filter(|e| e.user == NORMAL)
            .map(|e| e.method)
            .collect()
    });
    assert_eq!(
        kinds,
        vec![MethodKind::Totp, MethodKind::Passkey, MethodKind::Questions]
    );
    w.audit_ok();
}

#[test]
fn method_change_notices_are_not_silenced_by_anonymous_identify_requests() {
    let w = full(EngineConfig::default());
    let flow = manage(&w, "normal");
    // Anyone can make Rekey mail the user's code ten times in an hour.
    for _ in 0..10 {
        start(&w, "normal");
    }
    let since = w.mails();
    enroll_totp(&w, &flow);
    let to: Vec<String> = notices_since(&w, since)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(to, vec!["normal@corp.example.com", "u1@home.example"]);
}

/// `rekey admin enrollment-report`: enrolled users and the named ones whose methods fall short
/// of their tier's gates; out-of-scope accounts never appear.
#[test]
fn the_enrollment_report_lists_who_falls_short() {
    let w = world(5);
    let names = [
        "unenrolled".to_owned(),
        "normal".to_owned(),
        "nobody".to_owned(),
    ];
    let rows = run(w.engine.enrollment_report(&names)).unwrap();
    let listed: Vec<&str> = rows.iter().map(|r| r.sam_account_name.as_str()).collect();
    assert!(listed.contains(&"unenrolled"), "{listed:?}");
    assert!(
        !listed.contains(&"normal"),
        "one email meets one gate: {listed:?}"
    );
    let unenrolled = rows
        .iter()
        .find(|r| r.sam_account_name == "unenrolled")
        .unwrap();
    assert!(unenrolled.methods.is_empty() && unenrolled.needed == 1 && !unenrolled.privileged);

    let two = EngineConfig {
        gates: Gates {
            standard: GateRule {
                gates: 2,
                ..GateRule::standard()
            },
            privileged: None,
        },
        ..EngineConfig::default()
    };
    let w = world_config(5, two);
    let rows = run(w.engine.enrollment_report(&[])).unwrap();
    let normal = rows
        .iter()
        .find(|r| r.sam_account_name == "normal")
        .unwrap();
    assert_eq!(normal.methods, vec![MethodKind::Email]);
    assert_eq!(normal.needed, 2);
    assert!(
        rows.iter()
            .all(|r| r.sam_account_name != "outside" && r.sam_account_name != "admin"),
        "only accounts in scope, privileged ones excluded by default: {rows:?}"
    );
}
