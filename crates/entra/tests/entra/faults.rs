//! Answers the double never gives, from a scripted stub: a 401 that a fresh token cures, a
//! dropped or hung PATCH (Indeterminate), 5xx, a 429 without `Retry-After`, no server at all.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rekey_core::landing::Plan;
use rekey_core::{LandingError, LandingZone, Password, Rejection, ResetOptions, WriteGrant};

use crate::support::*;

const ID: &str = "c1000000-0000-4000-8000-0000000000aa";
const UPN: &str = "ann@contoso.example";

/// A cloud-only user found by UPN; no roles. PATCH answered by `patch`.
fn graph(patch: impl Fn(u32) -> Answer + Send + Sync + 'static) -> impl Fn(&Seen) -> Answer {
    let patches = AtomicU32::new(0);
    move |req: &Seen| {
        let t = &req.target;
        if req.method == "GET" && t.starts_with("/v1.0/users?") {
            let value = if t.contains("$filter=onPremisesImmutableId") {
                String::new()
            } else {
                format!(
                    r#"{{"id":"{ID}","userPrincipalName":"{UPN}","onPremisesSyncEnabled":null}}"#
                )
            };
            Answer::Reply(200, &[], format!(r#"{{"value":[{value}]}}"#))
        } else if t.contains("/transitiveMemberOf") {
            Answer::Reply(200, &[], r#"{"value":[]}"#.into())
        } else if req.method == "PATCH" {
            patch(patches.fetch_add(1, Ordering::SeqCst))
        } else if req.method == "POST" && t.ends_with("/revokeSignInSessions") {
            Answer::Reply(204, &[], String::new())
        } else {
            Answer::Reply(404, &[], String::new())
        }
    }
}

fn graph_error(code: &str) -> String {
    format!(
        r#"{{"error":{{"code":"{code}","message":"m","innerError":{{"request-id":"rid-1"}}}}}}"#
    )
}

async fn reset_against(stub: &Stub, timeout: Duration) -> Result<rekey_core::Landed, LandingError> {
    let mut cfg = config_at(&stub.base, secret());
    cfg.timeout = timeout;
    let a = account(1, "ann", Some(UPN));
    let grant = WriteGrant::for_zone_tests(&a);
    zone(cfg)
        .reset(
            &grant,
            &Password::from("N3w-Passw0rd!"),
            ResetOptions::default(),
        )
        .await
}

#[tokio::test]
async fn a_401_is_retried_once_with_a_fresh_token() {
    let stub = Stub::start(|req: &Seen| {
        if req.authorization.as_deref() == Some("Bearer tok-1") {
            Answer::Reply(401, &[], graph_error("InvalidAuthenticationToken"))
        } else {
            Answer::Reply(200, &[], r#"{"value":[]}"#.into())
        }
    })
    .await;
    let z = zone(config_at(&stub.base, secret()));
    assert_eq!(
        z.plan(&account(1, "ann", None)).await.unwrap(),
        Plan::Absent
    );
    let seen = stub.seen();
    let tokens = seen.iter().filter(|s| s.target.ends_with("/token")).count();
    assert_eq!(tokens, 2, "{seen:?}");
    // Every Graph call carried its own client-request-id.
    let ids: Vec<_> = seen
        .iter()
        .filter(|s| s.target.starts_with("/v1.0/"))
        .map(|s| s.client_request_id.clone().expect("client-request-id"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);

    // Still 401 with the fresh token: refused, not a loop.
    let stub =
        Stub::start(|_: &Seen| Answer::Reply(401, &[], graph_error("InvalidAuthenticationToken")))
            .await;
    let err = zone(config_at(&stub.base, secret()))
        .plan(&account(1, "ann", None))
        .await
        .unwrap_err();
    refused(&err, Rejection::InsufficientRights);
    assert_eq!(stub.seen().len(), 4, "token, call, token, call");
}

#[tokio::test]
async fn a_patch_without_an_answer_is_indeterminate() {
    let stub = Stub::start(graph(|_| Answer::Drop)).await;
    let err = reset_against(&stub, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, LandingError::Indeterminate { .. }), "{err:?}");
    let seen = stub.seen();
    let body = &seen.iter().find(|s| s.method == "PATCH").unwrap().body;
    assert!(body.contains("N3w-Passw0rd!"), "the PATCH was sent");
    assert!(!format!("{err} {err:?}").contains("N3w-Passw0rd!"));
    assert!(!format!("{err:?}").contains("tok-1"));

    let stub = Stub::start(graph(|_| Answer::Hang)).await;
    let started = Instant::now();
    let err = reset_against(&stub, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, LandingError::Indeterminate { .. }), "{err:?}");
    assert!(err.diagnostic().detail.contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn server_errors_split_by_status() {
    let stub = Stub::start(graph(|_| {
        Answer::Reply(500, &[], graph_error("UnknownError"))
    }))
    .await;
    let err = reset_against(&stub, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, LandingError::Indeterminate { .. }), "{err:?}");
    assert!(
        err.diagnostic().detail.contains("HTTP 500 UnknownError"),
        "{err}"
    );
    assert!(
        err.diagnostic().detail.contains("request-id rid-1"),
        "{err}"
    );

    for status in [502, 503, 504] {
        let stub = Stub::start(graph(move |_| Answer::Reply(status, &[], String::new()))).await;
        let err = reset_against(&stub, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(err, LandingError::Unavailable { .. }),
            "{status}: {err:?}"
        );
    }

    let stub = Stub::start(graph(|_| {
        Answer::Reply(403, &[], graph_error("Authorization_RequestDenied"))
    }))
    .await;
    let err = reset_against(&stub, Duration::from_secs(5))
        .await
        .unwrap_err();
    refused(&err, Rejection::InsufficientRights);

    let stub = Stub::start(graph(|_| {
        Answer::Reply(404, &[], graph_error("Request_ResourceNotFound"))
    }))
    .await;
    let err = reset_against(&stub, Duration::from_secs(5))
        .await
        .unwrap_err();
    refused(&err, Rejection::NoSuchUser);

    let stub = Stub::start(graph(|_| {
        Answer::Reply(400, &[], graph_error("Request_BadRequest"))
    }))
    .await;
    let err = reset_against(&stub, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.rejection(),
        Some(Rejection::Refused),
        "not complexity: {err}"
    );
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_briefly() {
    let stub = Stub::start(graph(|n| {
        if n == 0 {
            Answer::Reply(429, &[], graph_error("TooManyRequests"))
        } else {
            Answer::Reply(204, &[], String::new())
        }
    }))
    .await;
    let started = Instant::now();
    reset_against(&stub, Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
    let patches = stub.seen().iter().filter(|s| s.method == "PATCH").count();
    assert_eq!(patches, 2);

    // Always 429 without a header: gives up after the inline retries, no retry_after known.
    let stub = Stub::start(graph(|_| {
        Answer::Reply(429, &[], graph_error("TooManyRequests"))
    }))
    .await;
    let err = reset_against(&stub, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LandingError::Throttled {
                retry_after_ms: None,
                ..
            }
        ),
        "{err:?}"
    );
    let patches = stub.seen().iter().filter(|s| s.method == "PATCH").count();
    assert_eq!(patches, 3);
}

#[tokio::test]
async fn no_server_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let z = zone(config_at(&base, secret()));
    let err = z.plan(&account(1, "ann", Some(UPN))).await.unwrap_err();
    assert!(matches!(err, LandingError::Unavailable { .. }), "{err:?}");
    assert!(err.diagnostic().detail.contains("connect"), "{err}");
    assert!(!err.diagnostic().detail.contains(SECRET));
    let err = z.check().await.unwrap_err();
    assert!(err.to_string().starts_with("RK-ENTRA-005"), "{err}");
}

#[tokio::test]
async fn revocation_posts_an_empty_body_with_a_length() {
    let stub = Stub::start(graph(|_| Answer::Reply(204, &[], String::new()))).await;
    let mut cfg = config_at(&stub.base, secret());
    cfg.revoke_sessions = true;
    let a = account(1, "ann", Some(UPN));
    let grant = WriteGrant::for_zone_tests(&a);
    let landed = zone(cfg)
        .reset(
            &grant,
            &Password::from("N3w-Passw0rd!"),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(landed.sessions_revoked, Some(true), "a 204 counts too");
    let seen = stub.seen();
    let post = seen
        .iter()
        .find(|s| s.target == format!("/v1.0/users/{ID}/revokeSignInSessions"))
        .expect("revoke sent");
    assert_eq!(post.content_length.as_deref(), Some("0"));
    assert!(post.body.is_empty());
}
