//! Control API additions: roles on an existing user, the user list, the sync settings, ids.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use rekey_graph_double::{SyncSettings, UserSpec, immutable_id, new_object_id};
use serde_json::json;
use support::*;

const ALL: &[&str] = &[
    "User.Read.All",
    "User-PasswordProfile.ReadWrite.All",
    "User.RevokeSessions.All",
];

#[tokio::test]
async fn granting_a_role_makes_a_user_privileged() {
    let (d, t) = with_app(ALL, &["User Administrator"]).await;
    let id = new_object_id();
    assert_eq!(id.len(), 36);
    assert_ne!(id, new_object_id());
    d.add_user(UserSpec::cloud(&id, "ann@contoso.example", "Old-Passw0rd"));
    let patch = json!({"passwordProfile": {"password": "New-Passw0rd!"}});
    let path = format!("/v1.0/users/{id}");
    let r = graph(&d, "PATCH", &path, &t, Some(patch.clone())).await;
    assert_eq!(r.status, 204, "{}", r.body);

    // In process, by UPN: the User Administrator may no longer reset her.
    assert!(d.grant_roles("ANN@contoso.example", &["Global Administrator"]));
    assert!(!d.grant_roles("nobody@contoso.example", &["Global Administrator"]));
    assert_eq!(
        d.user(&id).unwrap()["directoryRoles"],
        json!(["Global Administrator"])
    );
    let r = graph(&d, "PATCH", &path, &t, Some(patch.clone())).await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Over HTTP: roles add up, without duplicates; unknown users are 404.
    let body = json!({"roles": ["Helpdesk Administrator", "global administrator"]}).to_string();
    let r = http(
        d.addr(),
        "POST",
        &format!("/_double/users/{id}/roles"),
        &[],
        Some(("application/json", body.as_bytes())),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        d.user(&id).unwrap()["directoryRoles"],
        json!(["Global Administrator", "Helpdesk Administrator"])
    );
    let r = graph(&d, "GET", &format!("{path}/memberOf"), &t, None).await;
    assert_eq!(r.json()["value"].as_array().unwrap().len(), 2, "{}", r.body);
    let r = http(
        d.addr(),
        "POST",
        "/_double/users/nobody/roles",
        &[],
        Some(("application/json", body.as_bytes())),
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn users_and_sync_settings_can_be_read() {
    let (d, _) = with_app(ALL, &[]).await;
    let anchor = immutable_id(&[0xab, 0xff, 0xfe, 0x01]);
    assert_eq!(anchor, "q//+AQ==");
    d.add_user(UserSpec::cloud(
        "22222222-2222-2222-2222-222222222222",
        "b@x.example",
        "Pw-123456",
    ));
    d.add_user(UserSpec::synced(
        "11111111-1111-1111-1111-111111111111",
        "a@x.example",
        &anchor,
        "a",
    ));
    let all = d.users();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["userPrincipalName"], "a@x.example");
    assert_eq!(all[0]["onPremisesImmutableId"], anchor);
    let r = http(d.addr(), "GET", "/_double/users", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!(all));
    assert!(!r.body.contains("Pw-123456"), "no passwords in the view");

    d.set_sync(SyncSettings {
        paused: true,
        delay_ms: 20_000,
    });
    assert!(d.sync_settings().paused);
    let r = http(d.addr(), "GET", "/_double/sync", &[], None).await;
    assert_eq!(r.json(), json!({"paused": true, "delayMs": 20_000}));
}
