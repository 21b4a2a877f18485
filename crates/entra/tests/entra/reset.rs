//! Writes: PATCH passwordProfile, refusals, throttling, verified replay, session revocation,
//! and the arrival of a synced password.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rekey_core::landing::Plan;
use rekey_core::{
    LandingError, LandingZone, Password, Rejection, ResetOptions, WriteGrant, ZoneId,
};
use rekey_entra::{Anchor, immutable_id};
use rekey_graph_double::{AppSpec, SyncSettings, UserSpec};

use crate::support::*;

const ANN: &str = "a0000000-0000-4000-8000-000000000001";
const BOB: &str = "b0000000-0000-4000-8000-000000000002";
const UPN: &str = "ann@contoso.example";

async fn with_ann() -> (rekey_graph_double::Double, rekey_core::Account) {
    let (d, _) = with_app().await;
    let mut ann = UserSpec::cloud(ANN, UPN, "Old-Passw0rd");
    ann.last_password_change_unix = Some(1_700_000_000);
    d.add_user(ann);
    (d, account(1, "ann", Some(UPN)))
}

fn pw(s: &str) -> Password {
    Password::from(s)
}

#[tokio::test]
async fn reset_lands_and_the_new_password_signs_in() {
    let (d, a) = with_ann().await;
    let z = zone(config(&d));
    let grant = WriteGrant::for_zone_tests(&a);
    assert_eq!(ropc(&d, UPN, "Old-Passw0rd").await, 200);
    let options = ResetOptions {
        must_change: true,
        ..ResetOptions::default()
    };
    let landed = z
        .reset(&grant, &pw("N3w-Passw0rd!"), options)
        .await
        .unwrap();
    assert_eq!(landed.zone, ZoneId::EntraId);
    assert_eq!(landed.server, d.addr().to_string());
    assert_eq!(landed.sessions_revoked, None);
    assert_eq!(count(&d, "PATCH", ANN), 1);
    assert_eq!(ropc(&d, UPN, "N3w-Passw0rd!").await, 200);
    assert_eq!(ropc(&d, UPN, "Old-Passw0rd").await, 400);
    let user = d.user(ANN).unwrap();
    assert_eq!(user["forceChangePasswordNextSignIn"], true);
    assert_ne!(user["lastPasswordChangeDateTime"], "2023-11-14T22:13:20Z");
}

#[tokio::test]
async fn refusals_map_to_rejections() {
    let (d, a) = with_ann().await;
    let z = zone(config(&d));
    let grant = WriteGrant::for_zone_tests(&a);
    // Cloud rules: three of four classes.
    let err = z
        .reset(&grant, &pw("alllowercase"), ResetOptions::default())
        .await
        .unwrap_err();
    let diagnostic = refused(&err, Rejection::Complexity);
    assert!(
        diagnostic.detail.contains("HTTP 400 Request_BadRequest"),
        "{diagnostic}"
    );
    assert!(
        diagnostic.detail.contains("client-request-id "),
        "{diagnostic}"
    );
    assert!(!format!("{err:?}").contains("alllowercase"));
    assert_eq!(ropc(&d, UPN, "Old-Passw0rd").await, 200, "nothing changed");

    // Synced twin: never PATCHed.
    let s = account(2, "sam", None);
    d.add_user(UserSpec::synced(
        BOB,
        "sam@contoso.example",
        &b64(s.guid),
        "sam",
    ));
    let grant = WriteGrant::for_zone_tests(&s);
    let err = z
        .reset(&grant, &pw("N3w-Passw0rd!"), ResetOptions::default())
        .await
        .unwrap_err();
    refused(&err, Rejection::Refused);
    assert!(
        err.diagnostic().detail.contains("password hash sync"),
        "{err}"
    );
    assert_eq!(count(&d, "PATCH", BOB), 0);

    let nobody = account(3, "nobody", Some("nobody@contoso.example"));
    let grant = WriteGrant::for_zone_tests(&nobody);
    let err = z
        .reset(&grant, &pw("N3w-Passw0rd!"), ResetOptions::default())
        .await
        .unwrap_err();
    refused(&err, Rejection::NoSuchUser);

    // change and unlock are not Graph's to do.
    let grant = WriteGrant::for_zone_tests(&a);
    let err = z
        .change(&grant, &pw("Old-Passw0rd"), &pw("N3w-Passw0rd!"))
        .await
        .unwrap_err();
    refused(&err, Rejection::Refused);
    let err = z.unlock(&grant).await.unwrap_err();
    refused(&err, Rejection::Refused);
    assert_eq!(count(&d, "PATCH", ANN), 1, "only the complexity attempt");
}

#[tokio::test]
async fn an_app_without_the_role_lacks_rights() {
    let (d, _) = double().await;
    d.add_app(AppSpec::new(APP).secret(SECRET).permissions(PERMS))
        .unwrap();
    d.add_user(UserSpec::cloud(ANN, UPN, "Old-Passw0rd"));
    let a = account(1, "ann", Some(UPN));
    let grant = WriteGrant::for_zone_tests(&a);
    let err = zone(config(&d))
        .reset(&grant, &pw("N3w-Passw0rd!"), ResetOptions::default())
        .await
        .unwrap_err();
    refused(&err, Rejection::InsufficientRights);
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out() {
    let (d, a) = with_ann().await;
    let z = zone(config(&d));
    d.throttle(1, "1.5");
    assert!(matches!(z.plan(&a).await.unwrap(), Plan::Write { .. }));
    let log = d.requests();
    let i = log.iter().position(|r| r.status == 429).expect("a 429");
    let (throttled, retry) = (&log[i], &log[i + 1]);
    assert_eq!(retry.path, throttled.path);
    assert_eq!(retry.status, 200);
    let gap = retry.at_unix_ms - throttled.at_unix_ms;
    assert!(gap >= 1500, "retried after {gap} ms");
}

#[tokio::test]
async fn a_long_retry_after_is_throttled_at_once() {
    let (d, a) = with_ann().await;
    let z = zone(config(&d));
    z.check().await.unwrap(); // token first: the clock below times Graph only
    d.throttle(5, "30");
    let started = Instant::now();
    let err = z.plan(&a).await.unwrap_err();
    let LandingError::Throttled {
        retry_after_ms,
        diagnostic,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*retry_after_ms, Some(30_000));
    assert!(diagnostic.detail.contains("429"), "{diagnostic}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // Same for a write: nothing was sent past the throttle.
    let grant = WriteGrant::for_zone_tests(&a);
    let err = z
        .reset(&grant, &pw("N3w-Passw0rd!"), ResetOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LandingError::Throttled { .. }), "{err:?}");
    assert_eq!(ropc(&d, UPN, "Old-Passw0rd").await, 200);
}

#[tokio::test]
async fn a_verified_replay_sends_no_patch() {
    let (d, a) = with_ann().await;
    let z = zone(config(&d));
    let grant = WriteGrant::for_zone_tests(&a);
    // The password last changed at 1_700_000_000 (2023): a replay of an attempt made a second
    // before that has landed.
    let replay = ResetOptions {
        replay_of: Some(1_699_999_999),
        ..ResetOptions::default()
    };
    let landed = z.reset(&grant, &pw("N3w-Passw0rd!"), replay).await.unwrap();
    assert_eq!(landed.zone, ZoneId::EntraId);
    assert_eq!(count(&d, "PATCH", ANN), 0);
    assert_eq!(ropc(&d, UPN, "Old-Passw0rd").await, 200, "nothing written");

    // A change in the same second as the attempt may be someone else's, earlier in that second:
    // not proof (writing the same password again is harmless; skipping a lost write is not).
    let same_second = ResetOptions {
        replay_of: Some(1_700_000_000),
        ..ResetOptions::default()
    };
    z.reset(&grant, &pw("N3w-Passw0rd!"), same_second)
        .await
        .unwrap();
    assert_eq!(count(&d, "PATCH", ANN), 1);
    // A replay of an attempt made after the last change writes.
    let replay = ResetOptions {
        replay_of: Some(now()),
        ..ResetOptions::default()
    };
    z.reset(&grant, &pw("N3w-Passw0rd!"), replay).await.unwrap();
    assert_eq!(count(&d, "PATCH", ANN), 2);
    assert_eq!(ropc(&d, UPN, "N3w-Passw0rd!").await, 200);
}

#[tokio::test]
async fn sessions_are_revoked_when_configured() {
    let (d, a) = with_ann().await;
    let mut cfg = config(&d);
    cfg.revoke_sessions = true;
    let z = zone(cfg);
    let grant = WriteGrant::for_zone_tests(&a);
    let landed = z
        .reset(&grant, &pw("N3w-Passw0rd!"), ResetOptions::default())
        .await
        .unwrap();
    assert_eq!(landed.sessions_revoked, Some(true));
    let revokes: Vec<_> = d
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/{ANN}/revokeSignInSessions")))
        .collect();
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0].status, 200);

    // Revocation not permitted: the write still landed, and says the revocation failed.
    let (d, a) = with_ann().await;
    d.add_app(
        AppSpec::new(APP)
            .secret(SECRET)
            .permissions(&["User.Read.All", "User-PasswordProfile.ReadWrite.All"])
            .roles(&["User Administrator"]),
    )
    .unwrap();
    let mut cfg = config(&d);
    cfg.revoke_sessions = true;
    let grant = WriteGrant::for_zone_tests(&a);
    let landed = zone(cfg)
        .reset(&grant, &pw("N3w-Passw0rd!"), ResetOptions::default())
        .await
        .unwrap();
    assert_eq!(landed.sessions_revoked, Some(false));
    assert_eq!(ropc(&d, UPN, "N3w-Passw0rd!").await, 200);
}

#[tokio::test]
async fn a_synced_password_arrives_after_sync() {
    let (d, on_prem) = with_app().await;
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    on_prem.set_password("bob", "Old-Passw0rd", hour_ago);
    let a = account(2, "bob", Some("bob@contoso.example"));
    let mut bob = UserSpec::synced(
        BOB,
        "bob@contoso.example",
        &immutable_id(&a, Anchor::ConsistencyGuid),
        "bob",
    );
    bob.last_password_change_unix = Some(hour_ago.duration_since(UNIX_EPOCH).unwrap().as_secs());
    d.add_user(bob);
    let z = zone(config(&d));
    let Plan::Sync { handle } = z.plan(&a).await.unwrap() else {
        panic!("not a synced twin");
    };
    let baseline = hour_ago.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(handle, format!("{BOB}|{baseline}"));

    let since = now();
    on_prem.set_password("bob", "N3w-Passw0rd!", SystemTime::now());
    assert_eq!(
        z.arrived(&handle, since).await.unwrap(),
        None,
        "sync paused"
    );

    d.set_sync(SyncSettings {
        paused: false,
        delay_ms: 0,
    });
    d.sync_now().await;
    let t = z.arrived(&handle, since).await.unwrap().expect("arrived");
    assert!(t >= since && t <= now(), "{t} vs {since}");
    assert_eq!(ropc(&d, "bob@contoso.example", "N3w-Passw0rd!").await, 200);

    let err = z
        .arrived("00000000-0000-4000-8000-00000000dead", since)
        .await
        .unwrap_err();
    refused(&err, Rejection::NoSuchUser);
}
