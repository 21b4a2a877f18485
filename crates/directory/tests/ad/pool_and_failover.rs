//! Pooling, failover and the indeterminate outcome, with a TCP proxy in front of the real DC.

use std::net::SocketAddr;
use std::time::Instant;

use super::support::{dev, proxy::Proxy};
use super::{account, pw};
use rekey_core::{Directory, Identifier, LandingError, LandingZone, ResetOptions, WriteGrant};
use rekey_directory::ActiveDirectory;

const DC1: &str = "127.0.0.1:636";

fn dc1() -> SocketAddr {
    DC1.parse().unwrap()
}

#[tokio::test]
async fn many_operations_one_handshake_per_pooled_connection() {
    let d = dev();
    let proxy = Proxy::start(dc1()).await;
    let mut c = super::support::config(&d, vec![proxy.url()]);
    c.pool_size = 2;
    let ad = ActiveDirectory::connect(&c).await.unwrap();
    let u = d.user("pool").await;
    let a = account(&ad, &u.sam).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    let ad = std::sync::Arc::new(ad);
    for i in 0..8 {
        let (ad, a) = (ad.clone(), a.clone());
        tasks.push(tokio::spawn(async move {
            for j in 0..12 {
                let p = pw(&format!("Pooled-{i}-{j}-Pw!"));
                ad.reset(&WriteGrant::for_zone_tests(&a), &p, ResetOptions::default())
                    .await
                    .unwrap();
                ad.account_by_dn(&a.dn).await.unwrap().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 96 resets + 96 reads (+ the lookups) over exactly pool_size TLS connections.
    assert_eq!(
        proxy.accepted(),
        2,
        "TCP/TLS connections accepted by the DC side"
    );
    assert_eq!(ad.connections_opened(), 2);
    eprintln!("192 pooled operations in {:?}", started.elapsed());
}

#[tokio::test]
async fn first_dc_dead_lands_on_the_next() {
    let d = dev();
    // Nothing listens on this port: a stopped DC.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let urls = vec![format!("ldaps://localhost:{dead}"), d.dc1_url()];
    let ad = ActiveDirectory::connect(&super::support::config(&d, urls))
        .await
        .unwrap();
    let u = d.user("failover").await;
    let a = account(&ad, &u.sam).await;
    let landed = ad
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw("Failed-Over-1x"),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(landed.server, d.dc1_url());
    assert_eq!(d.bind(&u.dn, "Failed-Over-1x").await.0, 0);
}

#[tokio::test]
async fn dc_stopping_after_start_fails_over() {
    let d = dev();
    let proxy = Proxy::start(dc1()).await;
    let urls = vec![proxy.url(), d.dc1_url()];
    let ad = ActiveDirectory::connect(&super::support::config(&d, urls))
        .await
        .unwrap();
    // Both URLs reach the PDC emulator; the first listed is preferred.
    assert_eq!(ad.pdc_url(), Some(proxy.url().as_str()));
    let u = d.user("dcstop").await;
    let a = account(&ad, &u.sam).await;
    let landed = ad
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw("Before-Stop-1x"),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(landed.server, proxy.url());
    proxy.stop();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // State read from the DC that went away gates no write elsewhere (invariant 23): the write
    // is unavailable, not sent to a DC whose state nobody read.
    let stale = ad
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw("Unread-State-2x"),
            ResetOptions::default(),
        )
        .await;
    assert!(
        matches!(stale, Err(LandingError::Unavailable { .. })),
        "{stale:?}"
    );
    assert_ne!(
        d.bind(&u.dn, "Unread-State-2x").await.0,
        0,
        "nothing landed"
    );
    // Read again: the read fails over, and the write follows it.
    let a = account(&ad, &u.sam).await;
    assert_eq!(a.read_from.as_deref(), Some(d.dc1_url().as_str()));
    let landed = ad
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw("After-Stop-2x"),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(landed.server, d.dc1_url(), "the write moved to the next DC");
    assert_eq!(d.bind(&u.dn, "After-Stop-2x").await.0, 0);
}

#[tokio::test]
async fn a_write_lands_on_the_dc_its_account_was_read_from() {
    let d = dev();
    if !d.has_dc2() {
        panic!("the dev domain runs without DC2; start it with `dev/domain up --dc2`");
    }
    let urls = d.urls();
    let dc2 = urls.iter().find(|u| **u != d.dc1_url()).unwrap().clone();
    let both =
        ActiveDirectory::connect(&super::support::config(&d, vec![d.dc1_url(), dc2.clone()]))
            .await
            .unwrap();
    // What a portal sees while the PDC emulator does not answer its reads: DC2's state.
    let only_dc2 = ActiveDirectory::connect(&super::support::config(&d, vec![dc2.clone()]))
        .await
        .unwrap();
    let u = d.user("readdc").await;
    // The user was made on DC1: wait until DC2 has it (replication takes seconds).
    let id = Identifier::parse(&u.sam).unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    let a = loop {
        if let Some(a) = only_dc2.find(&id).await.unwrap() {
            break a;
        }
        assert!(Instant::now() < deadline, "DC2 never got {}", u.sam);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(a.read_from.as_deref(), Some(dc2.as_str()));
    // The PDC answers again by the time of the write: the write still goes where the state came
    // from, not to the PDC whose state was never read.
    let landed = both
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw("Where-Read-1x"),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(landed.server, dc2);
    // Read from the PDC: the write goes there, as ever.
    let a = account(&both, &u.sam).await;
    assert_eq!(a.read_from.as_deref(), Some(d.dc1_url().as_str()));
    let landed = both
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw("On-The-Pdc-2x"),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(landed.server, d.dc1_url());
    assert_eq!(d.bind(&u.dn, "On-The-Pdc-2x").await.0, 0);
}

#[tokio::test]
async fn writes_prefer_the_pdc_emulator_over_list_order() {
    let d = dev();
    if !d.has_dc2() {
        panic!("the dev domain runs without DC2; start it with `dev/domain up --dc2`");
    }
    let urls = d.urls();
    let dc2 = urls.iter().find(|u| **u != d.dc1_url()).unwrap().clone();
    // DC2 listed first, yet DC1 holds the PDC emulator role: writes go to DC1.
    let ad = ActiveDirectory::connect(&super::support::config(&d, vec![dc2.clone(), d.dc1_url()]))
        .await
        .unwrap();
    assert_eq!(ad.pdc_url(), Some(d.dc1_url().as_str()));
    let u = d.user("pdc").await;
    let a = account(&ad, &u.sam).await;
    let landed = ad
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw("On-The-Pdc-1x"),
            ResetOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(landed.server, d.dc1_url());
}

#[tokio::test]
async fn lost_answer_after_write_is_indeterminate_and_not_replayed() {
    let d = dev();
    let proxy = Proxy::start(dc1()).await;
    let mut c = super::support::config(&d, vec![proxy.url(), d.dc1_url()]);
    c.pool_size = 1;
    let ad = ActiveDirectory::connect(&c).await.unwrap();
    let u = d.user("indet").await;
    let a = account(&ad, &u.sam).await;
    let opened = ad.connections_opened();
    proxy.cut_next_answer();
    let r = ad
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw("Maybe-Landed-1x"),
            ResetOptions::default(),
        )
        .await;
    assert!(
        matches!(r, Err(LandingError::Indeterminate { .. })),
        "{r:?}"
    );
    // Not replayed: no new connection to any DC was opened for a retry.
    assert_eq!(ad.connections_opened(), opened);
    // It did land on the DC: exactly why a blind replay (or a "failed" page) would be wrong.
    assert_eq!(d.bind(&u.dn, "Maybe-Landed-1x").await.0, 0);
}

#[tokio::test]
async fn all_dcs_down_is_unavailable_not_indeterminate() {
    let d = dev();
    let proxy = Proxy::start(dc1()).await;
    let ad = ActiveDirectory::connect(&super::support::config(&d, vec![proxy.url()]))
        .await
        .unwrap();
    let u = d.user("alldown").await;
    let a = account(&ad, &u.sam).await;
    proxy.stop();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let r = ad
        .reset(
            &WriteGrant::for_zone_tests(&a),
            &pw("Never-Sent-1x"),
            ResetOptions::default(),
        )
        .await;
    assert!(matches!(r, Err(LandingError::Unavailable { .. })), "{r:?}");
    assert_eq!(d.bind(&u.dn, &u.password).await.0, 0, "nothing changed");
}
