//! Records the fixtures under `tests/data/` from the dev domain's DC1 KDC (run once, by hand):
//! `cargo test -p rekey-kerberos capture_fixtures -- --ignored`.
//!
//! Each scenario runs the real exchange with a fixed nonce and the current time, writes every
//! request and reply as DER (without the TCP length prefix) and the parameters to `meta.txt`.
//! The users are throwaway accounts with [`FIXTURE_PASSWORD`], deleted at the end.

use std::collections::HashSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ldap3::Mod;
use rekey_e2e::dev::{dev, unicode_pwd};

use super::{FIXTURE_PASSWORD, WRONG_PASSWORD, data_dir};
use crate::exchange::{Exchange, Now, Step};
use crate::transport::round_trip;

const KDC1: &str = "127.0.0.1:88";

fn replace(attr: &str, value: Vec<u8>) -> Vec<Mod<Vec<u8>>> {
    vec![Mod::Replace(
        attr.as_bytes().to_vec(),
        HashSet::from([value]),
    )]
}

async fn record(dir: &Path, realm: &str, user: &str, password: &str, nonce: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let now = Now {
        unix_secs: since.as_secs(),
        micros: since.subsec_micros(),
    };
    let which = if password == FIXTURE_PASSWORD {
        "fixture"
    } else {
        "wrong"
    };
    std::fs::write(
        dir.join("meta.txt"),
        format!(
            "realm={realm}\nuser={user}\npassword={which}\nnonce={nonce}\nunix_secs={}\nmicros={}\n",
            now.unix_secs, now.micros
        ),
    )
    .unwrap();
    let mut ex = Exchange::new(realm, user, password, nonce, now).unwrap();
    let mut request = ex.first_request().unwrap();
    for i in 1..=2 {
        std::fs::write(dir.join(format!("{i}-as-req.der")), &request).unwrap();
        let reply = round_trip(KDC1, &request, ex.preauth_sent()).await.unwrap();
        std::fs::write(dir.join(format!("{i}-reply.der")), &reply).unwrap();
        match ex.on_reply(&reply).unwrap() {
            Step::Send(next) => request = next,
            Step::Done(v) => {
                eprintln!("{}: {v:?}", dir.display());
                return;
            }
        }
    }
}

#[tokio::test]
#[ignore = "records fixtures from the dev domain; run by hand"]
async fn capture_fixtures() {
    let d = dev();
    let realm = d.get("REKEY_DEV_REALM").to_owned();
    let root = data_dir();
    let mut made = Vec::new();
    for (scenario, nonce) in [
        ("accepted", 0x1234_5678),
        ("wrong-password", 0x2345_6789),
        ("must-change", 0x3456_789a),
        ("disabled", 0x4567_89ab),
    ] {
        let u = d.staff_user(&format!("krb-fixture-{scenario}")).await;
        d.admin_modify(&u.dn, replace("unicodePwd", unicode_pwd(FIXTURE_PASSWORD)))
            .await;
        match scenario {
            "must-change" => {
                d.admin_modify(&u.dn, replace("pwdLastSet", b"0".to_vec()))
                    .await;
            }
            "disabled" => {
                d.admin_modify(&u.dn, replace("userAccountControl", b"514".to_vec()))
                    .await;
            }
            _ => {}
        }
        let password = if scenario == "wrong-password" {
            WRONG_PASSWORD
        } else {
            FIXTURE_PASSWORD
        };
        record(&root.join(scenario), &realm, &u.sam, password, nonce).await;
        made.push(u.dn);
    }
    let nobody = format!("rkt-nobody-{}", std::process::id());
    record(
        &root.join("unknown"),
        &realm,
        &nobody,
        FIXTURE_PASSWORD,
        0x5678_9abc,
    )
    .await;
    let mut admin = d.admin().await;
    for dn in made {
        admin.delete(&dn).await.unwrap().success().unwrap();
    }
}
