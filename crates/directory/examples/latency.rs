#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Latency of one password write on the dev domain: Rekey's pooled landing zone (reset and change)
//! next to the raw baselines measured in the same run:
//! - `raw-pooled`: one persistent LDAPS connection bound as the service account, `unicodePwd`
//!   replace back to back (what a perfect client does);
//! - `ldapmodify`: the OpenLDAP CLI, one process, TLS handshake and bind per write (what scripts
//!   and many peers do).
//!
//! `cargo run --release -p rekey-directory --example latency -- [N] [USER]` (after `dev/domain up`).
//! Reads `.dev/env`. Resets USER's password (default `bob.baker`) N times (default 100) per mode
//! and leaves it at the demo password when done... unless history forbids, then says so.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, LdapConnSettings, Mod};
use rekey_core::{Directory, Identifier, LandingZone, Password, ResetOptions};
use rekey_directory::{ActiveDirectory, AdConfig};

fn env() -> HashMap<String, String> {
    let dir = std::env::var("REKEY_DEV_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../.dev").into());
    std::fs::read_to_string(format!("{dir}/env"))
        .expect(".dev/env: run dev/domain up")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(name: &str, v: &[Duration], baseline: Option<Duration>) -> Duration {
    let m = p50(v.to_vec());
    let mut s = v.to_vec();
    s.sort();
    let p99 = s[(s.len() * 99 / 100).min(s.len() - 1)];
    let ratio = baseline.map_or(String::new(), |b| {
        format!(
            "  ({:+.2} ms vs raw above)",
            (m.as_secs_f64() - b.as_secs_f64()) * 1e3
        )
    });
    println!(
        "{name:<14} p50 {:>7.2} ms   p99 {:>7.2} ms{ratio}",
        m.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    m
}

fn unicode_pwd(p: &str) -> Vec<u8> {
    format!("\"{p}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let user = args.get(2).cloned().unwrap_or_else(|| "bob.baker".into());
    let e = env();
    let url = e["REKEY_DEV_LDAP_URLS"]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let mut cfg = AdConfig::new(vec![url.clone()], e["REKEY_DEV_SVC_DN"].clone());
    cfg.ca_file = Some(e["REKEY_DEV_CA_FILE"].clone().into());
    cfg.bind_password_file = Some(e["REKEY_DEV_SVC_PASSWORD_FILE"].clone().into());
    cfg.history_on_reset = std::env::var("REKEY_BENCH_NO_HINTS").is_err();
    let svc_pw = std::fs::read_to_string(&e["REKEY_DEV_SVC_PASSWORD_FILE"])
        .unwrap()
        .trim_end()
        .to_owned();
    let ad = ActiveDirectory::connect(&cfg).await.unwrap();
    let account = ad
        .find(&Identifier::parse(&user).unwrap())
        .await
        .unwrap()
        .expect("user");
    let tag = std::process::id();

    // Baseline 1: raw persistent connection.
    let pem = std::fs::read(&e["REKEY_DEV_CA_FILE"]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in
        <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(&pem)
    {
        roots.add(c.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let (conn, mut raw) =
        LdapConnAsync::with_settings(LdapConnSettings::new().set_config(Arc::new(tls)), &url)
            .await
            .unwrap();
    ldap3::drive!(conn);
    raw.simple_bind(&e["REKEY_DEV_SVC_DN"], &svc_pw)
        .await
        .unwrap()
        .success()
        .unwrap();
    // Baseline 2: ldapmodify, a process + TLS handshake + bind per write.
    let mut t_cli = Vec::new();
    for i in 0..n.min(30) {
        let ldif = format!(
            "dn: {}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {}\n-\n",
            account.dn,
            base64(&unicode_pwd(&format!("Cli-{tag}-{i}-Pw!")))
        );
        let t = Instant::now();
        // OpenLDAP canonicalises `localhost` to the host name for its TLS name check: use the IP.
        let mut child = Command::new("ldapmodify")
            .args([
                "-x",
                "-H",
                &url.replace("localhost", "127.0.0.1"),
                "-D",
                &e["REKEY_DEV_SVC_DN"],
                "-y",
                &e["REKEY_DEV_SVC_PASSWORD_FILE"],
            ])
            .env("LDAPTLS_CACERT", &e["REKEY_DEV_CA_FILE"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        t_cli.push(t.elapsed());
    }

    // Rekey and the raw connection take turns, so drift in the DC (history growth, cache,
    // other load) hits both alike. Resets: replace; changes: delete old + add new.
    let (mut t_raw, mut t_reset, mut t_raw_change, mut t_change) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let m = vec![Mod::Replace(
            b"unicodePwd".to_vec(),
            HashSet::from([unicode_pwd(&format!("Raw-{tag}-{i}-Pw!"))]),
        )];
        let t = Instant::now();
        raw.modify(&account.dn, m).await.unwrap().success().unwrap();
        t_raw.push(t.elapsed());
        let p = Password::new(format!("Reset-{tag}-{i}-Pw!"));
        let t = Instant::now();
        ad.reset(&account, &p, ResetOptions::default())
            .await
            .unwrap();
        t_reset.push(t.elapsed());
    }
    let mut old = Password::new(format!("Reset-{tag}-{}-Pw!", n - 1));
    for i in 0..n {
        let mid = format!("RawChange-{tag}-{i}-Pw!");
        let m = vec![
            Mod::Delete(
                b"unicodePwd".to_vec(),
                HashSet::from([unicode_pwd(old.expose())]),
            ),
            Mod::Add(b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(&mid)])),
        ];
        let t = Instant::now();
        raw.modify(&account.dn, m).await.unwrap().success().unwrap();
        t_raw_change.push(t.elapsed());
        let new = Password::new(format!("Change-{tag}-{i}-Pw!"));
        let t = Instant::now();
        ad.change(&account, &Password::new(mid), &new)
            .await
            .unwrap();
        t_change.push(t.elapsed());
        old = new;
    }
    assert!(
        ad.authenticate(&account.dn, &old).await.unwrap(),
        "the last password binds"
    );

    println!(
        "{n} writes each on {url} (user {user}); pooled connections opened: {}",
        ad.connections_opened()
    );
    let base = report("raw reset", &t_raw, None);
    report("ldapmodify", &t_cli, Some(base));
    report("rekey reset", &t_reset, Some(base));
    let base = report("raw change", &t_raw_change, None);
    report("rekey change", &t_change, Some(base));
    let demo = Password::new(e["REKEY_DEV_DEMO_PASSWORD"].clone());
    match ad.reset(&account, &demo, ResetOptions::default()).await {
        Ok(_) => println!("{user} is back on the demo password"),
        Err(err) => println!("could not restore {user}'s demo password: {err}"),
    }
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    b.chunks(3)
        .flat_map(|c| {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            (0..4).map(move |i| {
                if i <= c.len() {
                    T[(n >> (18 - 6 * i)) as usize & 63] as char
                } else {
                    '='
                }
            })
        })
        .collect()
}
