//! The simulated password hash sync for synced users.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rekey_graph_double::{AppSpec, Double, MemOnPrem, Options, SyncSettings, UserSpec, iso8601};
use support::*;

const BOB: &str = "22222222-2222-2222-2222-222222222222";

async fn start(delay_ms: u64, paused: bool) -> (Double, MemOnPrem, SystemTime) {
    let on_prem = MemOnPrem::new();
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    on_prem.set_password("bob", "Old-Passw0rd", t0);
    let mut opts = Options::in_memory(&on_prem);
    opts.sync = SyncSettings { paused, delay_ms };
    let d = Double::start_with(opts).await.unwrap();
    d.add_app(AppSpec::new("app").secret("s3cret")).unwrap();
    let mut bob = UserSpec::synced(BOB, "bob@contoso.example", "AAAA", "bob");
    bob.last_password_change_unix = Some(1_700_000_000);
    d.add_user(bob);
    (d, on_prem, t0)
}

fn last_change(d: &Double) -> String {
    d.user(BOB).unwrap()["lastPasswordChangeDateTime"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn on_prem_change_lands_after_the_delay() {
    let (d, on_prem, t0) = start(2000, false).await;
    assert_eq!(last_change(&d), iso8601(t0));
    // Before any change the cloud accepts the on-prem password.
    assert_eq!(
        ropc(&d, "bob@contoso.example", "Old-Passw0rd").await.status,
        200
    );

    let t1 = SystemTime::now();
    on_prem.set_password("bob", "New-Passw0rd!", t1);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(last_change(&d), iso8601(t0), "not before the delay");
    // Not caught up yet: neither the new nor (the double does not know it) the old password.
    assert_eq!(
        ropc(&d, "bob@contoso.example", "New-Passw0rd!")
            .await
            .status,
        400
    );

    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(last_change(&d), iso8601(t1), "landed after the delay");
    assert_eq!(
        ropc(&d, "bob@contoso.example", "New-Passw0rd!")
            .await
            .status,
        200
    );
    let old = ropc(&d, "bob@contoso.example", "Old-Passw0rd").await;
    assert_eq!(old.json()["error_codes"][0], 50_126);
}

#[tokio::test]
async fn paused_sync_never_moves() {
    let (d, on_prem, t0) = start(200, true).await;
    on_prem.set_password("bob", "New-Passw0rd!", SystemTime::now());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(last_change(&d), iso8601(t0));
    assert_eq!(d.user(BOB).unwrap()["syncPending"], false);
    assert_eq!(
        ropc(&d, "bob@contoso.example", "New-Passw0rd!")
            .await
            .status,
        400
    );

    // Resumed: it lands.
    d.set_sync(SyncSettings {
        paused: false,
        delay_ms: 200,
    });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_ne!(last_change(&d), iso8601(t0));
    assert_eq!(
        ropc(&d, "bob@contoso.example", "New-Passw0rd!")
            .await
            .status,
        200
    );
}
