//! The Graph TEST DOUBLE (not Microsoft Graph) with the real dev Samba DC as its on-prem side:
//! a throwaway AD user registered as a synced cloud user (immutableId = base64 of its objectGUID,
//! read over LDAP), a password change in AD, the simulated password hash sync carrying it into
//! `lastPasswordChangeDateTime` after the delay, ROPC accepting the new password only after the
//! sync, and a paused sync carrying nothing. Needs `dev/domain up`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ldap3::Mod;
use rekey_e2e::cloud::{Cloud, query_value};
use rekey_e2e::dev::{dev, unicode_pwd};
use rekey_graph_double::SyncSettings;

fn temp_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rekey-cloud-{tag}-{}", std::process::id()))
}

async fn admin_set_password(d: &rekey_e2e::dev::Dev, dn: &str, password: &str) {
    let pwd = HashSet::from([unicode_pwd(password)]);
    d.admin_modify(dn, vec![Mod::Replace(b"unicodePwd".to_vec(), pwd)])
        .await;
}

#[tokio::test]
async fn ad_password_change_reaches_the_cloud_only_after_the_sync() {
    let d = dev();
    let dir = temp_dir("sync");
    let cloud = Cloud::start(&d, &dir).await; // delay 1 s
    let u = d.user("cloudsync").await;
    let id = cloud.synced(&d, &u).await;
    let upn = cloud.upn_of(&id);
    assert_eq!(
        upn,
        format!("{}@{}", u.sam, d.get("REKEY_DEV_DNS_DOMAIN")),
        "UPN as in AD"
    );

    // The anchor is base64 of the 16 raw objectGUID bytes, and Graph finds the user by it.
    let anchor = Cloud::objectguid_b64(&d, &u.dn).await;
    assert_eq!(anchor.len(), 24, "{anchor}");
    assert!(anchor.ends_with("=="));
    let view = cloud.user(&id);
    assert_eq!(view["onPremisesImmutableId"], anchor.as_str());
    assert_eq!(view["onPremisesSyncEnabled"], true);
    assert_eq!(view["onPremisesSamAccountName"], u.sam.as_str());
    let (status, found) = cloud
        .graph_get(&format!(
            "/v1.0/users?$filter={}&$select=id,userPrincipalName,onPremisesImmutableId,lastPasswordChangeDateTime",
            query_value(&format!("onPremisesImmutableId eq '{anchor}'"))
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["value"][0]["id"], id.as_str(), "{found}");

    // In sync at registration: the AD password works in the cloud.
    let at = Instant::now();
    assert!(cloud.cloud_sign_in(&upn, &u.password).await);
    eprintln!(
        "ROPC for a synced user (pwdLastSet read + remembered password): {:?}",
        at.elapsed()
    );
    assert!(!cloud.cloud_sign_in(&upn, "Not-The-Password-1").await);
    let secret = std::fs::read_to_string(&cloud.secret_file).unwrap();
    assert_eq!(secret, cloud.client_secret);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&cloud.secret_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The change in AD (as Administrator) lands after the 1 s delay, not before.
    tokio::time::sleep(Duration::from_millis(1100)).await; // the timestamp has seconds only
    let before = cloud.last_password_change(&id);
    let new = format!("{}-Cloud1", u.password);
    let at = Instant::now();
    admin_set_password(&d, &u.dn, &new).await;
    eprintln!("admin reset over LDAPS: {:?}", at.elapsed());
    let changed = Instant::now();
    assert!(
        !cloud.cloud_sign_in(&upn, &new).await,
        "new password before the sync"
    );
    assert_eq!(cloud.last_password_change(&id), before);
    let landed = cloud
        .wait_last_change_moves(&id, &before, Duration::from_secs(10))
        .await
        .expect("the change reached the cloud");
    let total = changed.elapsed();
    eprintln!("AD change visible in the cloud after {landed:?} (delay 1 s)");
    assert!(
        total >= Duration::from_millis(900),
        "not before the delay: {total:?}"
    );
    assert!(cloud.last_password_change(&id) > before, "moved forward");
    assert_eq!(cloud.user(&id)["syncPending"], false);
    assert!(
        cloud.cloud_sign_in(&upn, &new).await,
        "new password after the sync"
    );
    assert!(
        !cloud.cloud_sign_in(&upn, &u.password).await,
        "old password after the sync"
    );
    // Samba still accepts the old password on a simple bind (its 60 min old-password period);
    // the cloud does not, and the refusal never reached the DC as a wrong bind.
    assert_eq!(d.bind(&u.dn, &u.password).await.0, 0);
    assert_eq!(d.lockout(&u.dn).await.bad_pwd_count, 0);

    // Paused: a further change is not observed at all.
    cloud.pause_sync();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let synced = cloud.last_password_change(&id);
    let newer = format!("{}-Cloud2", u.password);
    admin_set_password(&d, &u.dn, &newer).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(cloud.last_password_change(&id), synced, "paused: no move");
    assert_eq!(
        cloud.user(&id)["syncPending"],
        false,
        "paused: not even observed"
    );
    assert!(!cloud.cloud_sign_in(&upn, &newer).await);

    // Resumed: it lands after the delay.
    cloud.resume_sync(Duration::from_secs(1));
    assert!(
        cloud
            .wait_last_change_moves(&id, &synced, Duration::from_secs(10))
            .await
            .is_some()
    );
    assert!(cloud.cloud_sign_in(&upn, &newer).await);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn cloud_only_and_privileged_accounts() {
    let d = dev();
    let dir = temp_dir("only");
    let cloud = Cloud::start_with(
        &d,
        &dir,
        SyncSettings {
            paused: true,
            delay_ms: 0,
        },
    )
    .await;
    // A cloud-only account with the same UPN as an AD account: its own cloud password.
    let upn = format!(
        "cloudonly.{}@{}",
        std::process::id(),
        d.get("REKEY_DEV_DNS_DOMAIN")
    );
    let dave = cloud.cloud_only(&upn, "Cloud-Only-Pw-1");
    assert_eq!(cloud.user(&dave)["onPremisesSyncEnabled"], false);
    assert!(cloud.cloud_sign_in(&upn, "Cloud-Only-Pw-1").await);
    assert!(!cloud.cloud_sign_in(&upn, "Cloud-Only-Pw-2").await);

    // A synced user made Global Administrator after registration; memberOf shows it.
    let u = d.user("cloudadmin").await;
    let frank = cloud.synced(&d, &u).await;
    cloud.admin_role(&frank, "Global Administrator");
    let (status, roles) = cloud
        .graph_get(&format!("/v1.0/users/{frank}/transitiveMemberOf"))
        .await;
    assert_eq!(status, 200, "{roles}");
    assert_eq!(roles["value"][0]["displayName"], "Global Administrator");
    assert_eq!(
        roles["value"][0]["roleTemplateId"],
        "62e90394-69f5-4237-9190-012177145e10"
    );
    let boss = cloud.cloud_only_with_roles(
        "boss@corp.example.com",
        "Boss-Pw-123",
        &["Privileged Authentication Administrator"],
    );
    assert_eq!(
        cloud.user(&boss)["directoryRoles"][0],
        "Privileged Authentication Administrator"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
