//! Matching: synced twins by source anchor, cloud-only users by UPN, never a guess.

use rekey_core::landing::{Plan, ZoneRules};
use rekey_core::{Guid, LandingZone, Rejection};
use rekey_entra::{Anchor, immutable_id};
use rekey_graph_double::UserSpec;

use crate::support::*;

const SYNCED: &str = "5e000000-0000-4000-8000-000000000001";
const OTHER: &str = "5e000000-0000-4000-8000-000000000002";
const CLOUD: &str = "c1000000-0000-4000-8000-000000000001";

fn write() -> Plan {
    Plan::Write {
        rules: ZoneRules { entra: true },
    }
}

#[tokio::test]
async fn synced_user_by_object_guid() {
    let (d, _) = with_app().await;
    // 0xfb bytes: the anchor's base64 holds '+' and '/', which must survive the query string.
    let a = account(0xfb, "sam", Some("sam@contoso.example"));
    let anchor = immutable_id(&a, Anchor::ObjectGuid);
    assert!(anchor.contains('+') && anchor.contains('/') && anchor.ends_with('='));
    d.add_user(UserSpec::synced(
        SYNCED,
        "sam@contoso.example",
        &anchor,
        "sam",
    ));
    let mut cfg = config(&d);
    cfg.anchor = Anchor::ObjectGuid;
    let plan = zone(cfg).plan(&a).await.unwrap();
    assert_sync(plan, SYNCED);
}

#[tokio::test]
async fn synced_user_by_consistency_guid_when_set() {
    let (d, _) = with_app().await;
    let mut a = account(1, "sam", Some("sam@contoso.example"));
    a.consistency_guid = Some(Guid([2; 16]));
    // A decoy carrying the objectGUID anchor: the ConsistencyGuid anchor must not pick it.
    d.add_user(UserSpec::synced(
        OTHER,
        "decoy@contoso.example",
        &b64(a.guid),
        "decoy",
    ));
    d.add_user(UserSpec::synced(
        SYNCED,
        "sam@contoso.example",
        &b64(Guid([2; 16])),
        "sam",
    ));
    let z = zone(config(&d));
    assert_sync(z.plan(&a).await.unwrap(), SYNCED);
    // Without a consistency guid the default anchor falls back to objectGUID.
    let b = account(1, "sam2", None);
    assert_sync(z.plan(&b).await.unwrap(), OTHER);
}

#[tokio::test]
async fn cloud_only_user_by_upn_is_written() {
    let (d, _) = with_app().await;
    d.add_user(UserSpec::cloud(
        CLOUD,
        "o'brien@contoso.example",
        "Old-Passw0rd",
    ));
    let a = account(3, "obrien", Some("O'Brien@contoso.example"));
    assert_eq!(zone(config(&d)).plan(&a).await.unwrap(), write());
    // The role check looked at the user's memberships.
    assert_eq!(count(&d, "GET", &format!("/{CLOUD}/transitiveMemberOf")), 1);

    let mut cfg = config(&d);
    cfg.match_by_upn = false;
    assert_eq!(zone(cfg).plan(&a).await.unwrap(), Plan::Absent);
}

#[tokio::test]
async fn absent_without_a_match() {
    let (d, _) = with_app().await;
    d.add_user(UserSpec::cloud(
        CLOUD,
        "ann@contoso.example",
        "Old-Passw0rd",
    ));
    let z = zone(config(&d));
    let nobody = account(4, "nobody", Some("nobody@contoso.example"));
    assert_eq!(z.plan(&nobody).await.unwrap(), Plan::Absent);
    let no_upn = account(5, "noupn", None);
    assert_eq!(z.plan(&no_upn).await.unwrap(), Plan::Absent);
}

#[tokio::test]
async fn two_users_with_one_anchor_are_ambiguous() {
    let (d, _) = with_app().await;
    let a = account(6, "twin", Some("twin@contoso.example"));
    let anchor = immutable_id(&a, Anchor::ConsistencyGuid);
    d.add_user(UserSpec::synced(
        SYNCED,
        "twin@contoso.example",
        &anchor,
        "twin",
    ));
    d.add_user(UserSpec::synced(
        OTHER,
        "twin2@contoso.example",
        &anchor,
        "twin2",
    ));
    assert_eq!(zone(config(&d)).plan(&a).await.unwrap(), Plan::Ambiguous);
}

#[tokio::test]
async fn upn_naming_another_objects_synced_twin_is_ambiguous() {
    let (d, _) = with_app().await;
    d.add_user(UserSpec::synced(
        OTHER,
        "sam@contoso.example",
        &b64(Guid([9; 16])),
        "sam",
    ));
    let a = account(7, "sam", Some("sam@contoso.example"));
    assert_eq!(zone(config(&d)).plan(&a).await.unwrap(), Plan::Ambiguous);
    // And no write either.
    let grant = rekey_core::WriteGrant::for_zone_tests(&a);
    let err = zone(config(&d))
        .reset(&grant, &"N3w-Passw0rd!".into(), Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.rejection(), Some(Rejection::Ambiguous), "{err}");
    assert_eq!(count(&d, "PATCH", OTHER), 0);
}

#[tokio::test]
async fn directory_role_holders_are_privileged() {
    let (d, _) = with_app().await;
    d.add_user(
        UserSpec::cloud(CLOUD, "admin@contoso.example", "Old-Passw0rd")
            .roles(&["Global Administrator"]),
    );
    let a = account(8, "admin", Some("admin@contoso.example"));
    let err = zone(config(&d)).plan(&a).await.unwrap_err();
    let diagnostic = refused(&err, Rejection::Privileged);
    assert!(
        diagnostic.detail.contains("Global Administrator"),
        "{diagnostic}"
    );

    // A synced twin with a role is refused too.
    let s = account(9, "sadmin", None);
    d.add_user(
        UserSpec::synced(SYNCED, "sadmin@contoso.example", &b64(s.guid), "sadmin")
            .roles(&["Helpdesk Administrator"]),
    );
    let err = zone(config(&d)).plan(&s).await.unwrap_err();
    assert_eq!(err.rejection(), Some(Rejection::Privileged), "{err}");

    // Turned off: planned as a write; Graph itself then refuses a User Administrator app.
    let mut cfg = config(&d);
    cfg.refuse_directory_roles = false;
    let z = zone(cfg);
    assert_eq!(z.plan(&a).await.unwrap(), write());
    let grant = rekey_core::WriteGrant::for_zone_tests(&a);
    let err = z
        .reset(&grant, &"N3w-Passw0rd!".into(), Default::default())
        .await
        .unwrap_err();
    refused(&err, Rejection::InsufficientRights);
    assert!(
        err.diagnostic()
            .detail
            .contains("Authorization_RequestDenied")
    );
}

/// A `Sync` plan for `id`, carrying the cloud's last change before the write.
fn assert_sync(plan: Plan, id: &str) {
    assert!(
        matches!(&plan, Plan::Sync { handle } if handle.starts_with(&format!("{id}|"))),
        "{plan:?}"
    );
}
