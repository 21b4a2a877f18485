//! Graph v1.0: authentication, lookups, PATCH passwordProfile, revoke, memberOf, throttling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use rekey_graph_double::UserSpec;
use serde_json::json;
use support::*;

const ALL: &[&str] = &[
    "User.Read.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.RevokeSessions.All",
];
const ANN: &str = "11111111-1111-1111-1111-111111111111";
const BOB: &str = "22222222-2222-2222-2222-222222222222";
const BOSS: &str = "33333333-3333-3333-3333-333333333333";
/// base64 with `+`, `/` and `=` to prove percent-decoding.
const BOB_ANCHOR: &str = "q+/ZAbcdEEeFg5Hh/+iJ0A==";

async fn world(perms: &[&str], roles: &[&str]) -> (rekey_graph_double::Double, String) {
    let (d, t) = with_app(perms, roles).await;
    d.add_user(UserSpec::cloud(ANN, "ann@contoso.example", "Old-Passw0rd"));
    d.add_user(UserSpec::synced(
        BOB,
        "bob@contoso.example",
        BOB_ANCHOR,
        "bob",
    ));
    d.add_user(
        UserSpec::cloud(BOSS, "boss@contoso.example", "Boss-Passw0rd")
            .roles(&["Global Administrator"]),
    );
    (d, t)
}

#[tokio::test]
async fn graph_without_or_with_bad_token_is_401() {
    let (d, _) = world(ALL, &["User Administrator"]).await;
    let r = http(d.addr(), "GET", &format!("/v1.0/users/{ANN}"), &[], None).await;
    assert_eq!(r.status, 401);
    let e = &r.json()["error"];
    assert_eq!(e["code"], "InvalidAuthenticationToken");
    for k in ["date", "request-id", "client-request-id"] {
        assert!(e["innerError"][k].is_string(), "{k}: {}", r.body);
    }
    let r = graph(&d, "GET", &format!("/v1.0/users/{ANN}"), "forged", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn expired_token_is_401() {
    let (d, _) = world(ALL, &["User Administrator"]).await;
    d.set_token_lifetime(0);
    let t = token_by_secret(&d, "app", "s3cret").await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = get(&d, &format!("/v1.0/users/{ANN}"), &t).await;
    assert_eq!(r.status, 401);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn filter_by_immutable_id_and_upn_with_and_without_select() {
    let (d, t) = world(ALL, &["User Administrator"]).await;
    let sel = "id,userPrincipalName,accountEnabled,onPremisesSyncEnabled,onPremisesImmutableId,onPremisesSamAccountName";
    let filter = q(&format!("onPremisesImmutableId eq '{BOB_ANCHOR}'"));
    let r = get(
        &d,
        &format!("/v1.0/users?$filter={filter}&$select={sel}"),
        &t,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = &r.json()["value"];
    assert_eq!(v.as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(v[0]["id"], BOB);
    assert_eq!(v[0]["onPremisesSyncEnabled"], true);
    assert_eq!(v[0]["onPremisesSamAccountName"], "bob");
    assert_eq!(v[0]["onPremisesImmutableId"], BOB_ANCHOR);
    assert!(
        v[0].get("displayName").is_none(),
        "only $selected properties"
    );

    // Without $select: the default set, no onPremises* and no accountEnabled.
    let r = get(&d, &format!("/v1.0/users?$filter={filter}"), &t).await;
    let v = &r.json()["value"][0];
    assert_eq!(v["id"], BOB);
    assert!(v.get("onPremisesImmutableId").is_none(), "{}", r.body);
    assert!(v.get("displayName").is_some());

    // UPN, case-insensitive, with and without $select.
    let filter = q("userPrincipalName eq 'ANN@contoso.example'");
    let r = get(
        &d,
        &format!("/v1.0/users?$filter={filter}&$select=id,lastPasswordChangeDateTime"),
        &t,
    )
    .await;
    let v = &r.json()["value"];
    assert_eq!(v.as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(v[0]["id"], ANN);
    assert!(
        v[0]["lastPasswordChangeDateTime"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let r = get(&d, &format!("/v1.0/users?$filter={filter}"), &t).await;
    assert_eq!(
        r.json()["value"][0]["userPrincipalName"],
        "ann@contoso.example"
    );

    // No match: an empty list; an unknown property in $select: 400.
    let filter = q("userPrincipalName eq 'nobody@contoso.example'");
    let r = get(&d, &format!("/v1.0/users?$filter={filter}"), &t).await;
    assert_eq!(r.json()["value"], json!([]));
    let r = get(&d, "/v1.0/users?$select=nonsense", &t).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn get_by_id_and_upn_and_unknown_is_404() {
    let (d, t) = world(ALL, &["User Administrator"]).await;
    let r = get(&d, "/v1.0/users/ann@contoso.example", &t).await;
    assert_eq!((r.status, r.json()["id"].as_str()), (200, Some(ANN)));
    let r = get(&d, "/v1.0/users/nope", &t).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "Request_ResourceNotFound");
    assert_eq!(
        r.json()["error"]["message"],
        "Resource 'nope' does not exist or one of its queried reference-property objects are not present."
    );
}

/// PATCH the user's `passwordProfile` to `pw` (no forced change).
async fn patch_password(d: &rekey_graph_double::Double, token: &str, user: &str, pw: &str) -> Resp {
    let body = json!({"passwordProfile": {"password": pw, "forceChangePasswordNextSignIn": false,
           "forceChangePasswordNextSignInWithMfa": false}});
    graph(
        d,
        "PATCH",
        &format!("/v1.0/users/{user}"),
        token,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn patch_cloud_only_then_ropc_accepts_new_refuses_old() {
    let (d, t) = world(ALL, &["User Administrator"]).await;
    assert_eq!(
        ropc(&d, "ann@contoso.example", "Old-Passw0rd").await.status,
        200
    );
    let before = d.user(ANN).unwrap()["lastPasswordChangeDateTime"].clone();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = patch_password(&d, &t, ANN, "New-Passw0rd!").await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(r.body.is_empty());
    assert_ne!(d.user(ANN).unwrap()["lastPasswordChangeDateTime"], before);
    let ok = ropc(&d, "ann@contoso.example", "New-Passw0rd!").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let old = ropc(&d, "ann@contoso.example", "Old-Passw0rd").await;
    assert_eq!(old.status, 400);
    assert_eq!(old.json()["error"], "invalid_grant");
    assert_eq!(old.json()["error_codes"][0], 50_126);
}

#[tokio::test]
async fn weak_password_is_request_bad_request() {
    let (d, t) = world(ALL, &["User Administrator"]).await;
    for weak in ["short1A", "alllowercase1", "Pässwört123"] {
        let r = patch_password(&d, &t, ANN, weak).await;
        assert_eq!(r.status, 400, "{weak}");
        assert_eq!(r.json()["error"]["code"], "Request_BadRequest");
        assert_eq!(
            r.json()["error"]["message"],
            "The specified password does not comply with password complexity requirements. Please provide a different password."
        );
    }
}

#[tokio::test]
async fn patch_synced_user_is_400() {
    let (d, t) = world(ALL, &["User Administrator"]).await;
    let r = patch_password(&d, &t, BOB, "New-Passw0rd!").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().starts_with(
        "Unable to update the specified properties for on-premises mastered Directory Sync objects"
    ));
}

#[tokio::test]
async fn permissions_and_privileged_targets() {
    // Permission without the role: 403.
    let (d, t) = world(ALL, &[]).await;
    let r = patch_password(&d, &t, ANN, "New-Passw0rd!").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        r.json()["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    // Role without the permission: 403.
    let (d, t) = world(&["User.Read.All"], &["User Administrator"]).await;
    let r = patch_password(&d, &t, ANN, "New-Passw0rd!").await;
    assert_eq!(r.status, 403);
    // User Administrator cannot reset a Global Administrator …
    let (d, t) = world(ALL, &["User Administrator"]).await;
    let r = patch_password(&d, &t, BOSS, "New-Passw0rd!").await;
    assert_eq!(r.status, 403);
    // … Privileged Authentication Administrator can.
    let (d, t) = world(ALL, &["Privileged Authentication Administrator"]).await;
    let r = patch_password(&d, &t, BOSS, "New-Passw0rd!").await;
    assert_eq!(r.status, 204, "{}", r.body);
}

#[tokio::test]
async fn member_of_shows_directory_roles() {
    let (d, t) = world(ALL, &["User Administrator"]).await;
    let r = get(&d, &format!("/v1.0/users/{BOSS}/transitiveMemberOf"), &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = &r.json()["value"][0];
    assert_eq!(v["@odata.type"], "#microsoft.graph.directoryRole");
    assert_eq!(v["displayName"], "Global Administrator");
    assert_eq!(v["roleTemplateId"], "62e90394-69f5-4237-9190-012177145e10");
    let r = get(&d, &format!("/v1.0/users/{ANN}/memberOf"), &t).await;
    assert_eq!(r.json()["value"], json!([]));
}

#[tokio::test]
async fn revoke_sessions_200_and_bumps_valid_from() {
    let (d, t) = world(ALL, &["User Administrator"]).await;
    let before = d.user(ANN).unwrap()["signInSessionsValidFromDateTime"].clone();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = graph(
        &d,
        "POST",
        &format!("/v1.0/users/{ANN}/revokeSignInSessions"),
        &t,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["value"], true);
    assert!(
        r.json()["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Edm.Boolean")
    );
    assert_ne!(
        d.user(ANN).unwrap()["signInSessionsValidFromDateTime"],
        before
    );
    // Without User.RevokeSessions.All: 403.
    let (d, t) = world(&["User.Read.All"], &[]).await;
    let r = graph(
        &d,
        "POST",
        &format!("/v1.0/users/{ANN}/revokeSignInSessions"),
        &t,
        None,
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn throttled_429_with_fractional_retry_after_then_ok() {
    let (d, t) = world(ALL, &["User Administrator"]).await;
    d.throttle(1, "1.5");
    let path = format!("/v1.0/users/{ANN}");
    let r = get(&d, &path, &t).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("Retry-After"), Some("1.5"));
    let e = &r.json()["error"];
    assert_eq!(e["code"], "TooManyRequests");
    assert_eq!(e["innerError"]["status"], "429");
    // A client that honours Retry-After:
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = get(&d, &path, &t).await;
    assert_eq!(r.status, 200);
    assert!(start.elapsed() >= Duration::from_millis(1500));
    let log: Vec<_> = d
        .requests()
        .into_iter()
        .filter(|l| l.path == path)
        .collect();
    assert_eq!(
        log.iter().map(|l| l.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    assert!(log[1].at_unix_ms - log[0].at_unix_ms >= 1500);
    // The log never holds tokens or passwords.
    let dump = format!("{:?}", d.requests());
    assert!(!dump.contains(&t) && !dump.contains("s3cret"));
}

#[tokio::test]
async fn control_api_over_http() {
    let (d, t) = with_app(ALL, &["User Administrator"]).await;
    let user =
        json!({"id": ANN, "userPrincipalName": "ann@contoso.example", "accountEnabled": true,
                      "password": "Old-Passw0rd"})
        .to_string();
    let r = http(
        d.addr(),
        "POST",
        "/_double/users",
        &[],
        Some(("application/json", user.as_bytes())),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let th = json!({"count": 1, "retryAfter": "2"}).to_string();
    let r = http(
        d.addr(),
        "POST",
        "/_double/throttle",
        &[],
        Some(("application/json", th.as_bytes())),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(get(&d, &format!("/v1.0/users/{ANN}"), &t).await.status, 429);
    assert_eq!(get(&d, &format!("/v1.0/users/{ANN}"), &t).await.status, 200);
    let r = http(d.addr(), "GET", "/_double/requests", &[], None).await;
    assert!(r.json().as_array().unwrap().len() >= 4, "{}", r.body);
}
