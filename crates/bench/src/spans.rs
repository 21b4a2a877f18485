//! `rekey-bench --spans`: the pieces of Rekey's set-password and change steps, timed one by one
//! against the same real backends (DC, SQLite file, SMTP sink) — where the time of an HTTP
//! reset goes beyond the one `unicodePwd` write.

use std::sync::Arc;
use std::time::Instant;

use rekey_core::notify::{Email, Mailer};
use rekey_core::store::{FlowKind, FlowRecord, Store};
use rekey_core::{Directory, Identifier, LandingZone, Password, ResetOptions, WriteGrant};
use rekey_directory::{ActiveDirectory, AdConfig};

use crate::dc::{self, BenchResult};

/// One component: p50 latency, CPU of this process and of the DC per call.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Span {
    pub name: String,
    pub calls: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub bench_cpu_ms: f64,
    pub dc_cpu_ms: f64,
}

async fn time<F, Fut>(name: &str, n: usize, mut f: F) -> BenchResult<Span>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = BenchResult<()>>,
{
    let ticks = dc::clock_ticks();
    let (s0, d0) = (dc::self_ticks(), dc::samba_ticks());
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await.map_err(|e| format!("{name}: {e}"))?;
        lat.push(t.elapsed());
    }
    let (s1, d1) = (dc::self_ticks(), dc::samba_ticks());
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)].as_secs_f64() * 1e3;
    let per = |t: u64| t as f64 / ticks * 1e3 / n as f64;
    Ok(Span {
        name: name.into(),
        calls: n,
        p50_ms: pct(50),
        p99_ms: pct(99),
        bench_cpu_ms: per(s1.saturating_sub(s0)),
        dc_cpu_ms: per(dc::samba_delta(&d0, &d1)),
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Time every component `n` times (sequentially, one user).
pub async fn run(n: usize) -> BenchResult<Vec<Span>> {
    let dev = rekey_e2e::dev::dev();
    let tag = format!("s{:x}", now() % 0xff_ffff);
    let users = dc::prepare_users(&dev, 1, &tag).await?;
    let out = run_on(&dev, &users[0], n, &tag).await;
    dc::delete_users(&dev, &users).await?;
    out
}

async fn run_on(
    dev: &rekey_e2e::dev::Dev,
    user: &dc::BenchUser,
    n: usize,
    tag: &str,
) -> BenchResult<Vec<Span>> {
    let mut cfg = AdConfig::new(vec![dev.dc1_url()], dev.get("REKEY_DEV_SVC_DN"));
    cfg.ca_file = Some(dev.get("REKEY_DEV_CA_FILE").into());
    cfg.bind_password_file = Some(dev.get("REKEY_DEV_SVC_PASSWORD_FILE").into());
    let ad = Arc::new(
        ActiveDirectory::connect(&cfg)
            .await
            .map_err(|e| e.to_string())?,
    );
    let account = ad
        .account_by_dn(&user.dn)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("bench user not found")?;
    let raw = dc::connect_service(dev).await?;
    let db = std::env::temp_dir().join(format!("rekey-spans-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&db);
    let store = rekey_store::SqlStore::connect(&format!("sqlite://{}", db.display()))
        .await
        .map_err(|e| e.to_string())?;
    let (port, _codes) = crate::portal::smtp_sink(std::slice::from_ref(user)).await?;
    let mut smtp = rekey_notify::SmtpConfig::new("127.0.0.1", "Rekey <rekey@corp.example.com>");
    smtp.port = Some(port);
    smtp.tls = rekey_notify::TlsMode::None;
    let mailer = rekey_notify::SmtpMailer::new(&smtp).map_err(|e| e.to_string())?;
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let mut out = Vec::new();
    let pw = |i: usize| format!("Rb{tag}-s-{i}-Pw!");

    out.push(
        time("ldap: raw unicodePwd replace", n, |i| {
            let (mut raw, dn, p) = (raw.clone(), user.dn.clone(), pw(i));
            async move { dc::raw_reset(&mut raw, &dn, &p).await }
        })
        .await?,
    );
    out.push(
        time("ldap: zone reset (replace + lockoutTime=0)", n, |i| {
            let (ad, a, p) = (ad.clone(), account.clone(), pw(n + i));
            let opts = ResetOptions {
                unlock: true,
                must_change: false,
                replay_of: None,
            };
            async move {
                LandingZone::reset(
                    ad.as_ref(),
                    &WriteGrant::for_zone_tests(&a),
                    &Password::new(p),
                    opts,
                )
                .await
                .map(|_| ())
                .map_err(|x| format!("{x:?}"))
            }
        })
        .await?,
    );
    let guid = account.guid;
    out.push(
        time("ldap: live re-read by GUID (tokenGroups)", n, |_| {
            let ad = ad.clone();
            async move {
                ad.account_by_guid(&guid)
                    .await
                    .map(|_| ())
                    .map_err(|x| e(&x))
            }
        })
        .await?,
    );
    out.push(
        time("ldap: effective policy (msDS-ResultantPSO)", n, |_| {
            let (ad, a) = (ad.clone(), account.clone());
            async move {
                Directory::effective_policy(ad.as_ref(), &a)
                    .await
                    .map(|_| ())
                    .map_err(|x| e(&x))
            }
        })
        .await?,
    );
    let id = Identifier::parse(&user.sam).ok_or("identifier")?;
    out.push(
        time("ldap: find by sAMAccountName", n, |_| {
            let (ad, id) = (ad.clone(), id.clone());
            async move {
                Directory::find(ad.as_ref(), &id)
                    .await
                    .map(|_| ())
                    .map_err(|x| e(&x))
            }
        })
        .await?,
    );
    let flow = |i: usize| FlowRecord {
        id: format!("flow-{i}"),
        kind: FlowKind::Reset,
        user: Some(guid),
        state: "{\"step\":\"verified\"}".into(),
        version: 0,
        created_at: now(),
        expires_at: now() + 900,
    };
    out.push(
        time("sqlite: insert flow (commit)", n, |i| {
            let (s, f) = (&store, flow(i));
            async move { s.insert_flow(&f).await.map_err(|x| e(&x)) }
        })
        .await?,
    );
    out.push(
        time(
            "sqlite: advance flow (UPDATE … WHERE version, commit)",
            n,
            |i| {
                let (s, f) = (&store, flow(i));
                async move { s.update_flow(&f).await.map(|_| ()).map_err(|x| e(&x)) }
            },
        )
        .await?,
    );
    out.push(
        time("sqlite: delete user flows (commit)", n, |_| {
            let s = &store;
            async move {
                s.delete_user_flows(&guid)
                    .await
                    .map(|_| ())
                    .map_err(|x| e(&x))
            }
        })
        .await?,
    );
    out.push(
        time("sqlite: counter hit (BEGIN IMMEDIATE, commit)", n, |_| {
            let s = &store;
            async move {
                s.hit(&format!("mail:{guid}"), now(), 3600)
                    .await
                    .map(|_| ())
                    .map_err(|x| e(&x))
            }
        })
        .await?,
    );
    out.push(
        time("sqlite: audit append (locked tx, commit)", n, |i| {
            let s = &store;
            let ev = rekey_core::audit::AuditEvent {
                at_ms: now() * 1000,
                support_id: format!("S{i}"),
                actor: rekey_core::audit::Actor::User,
                operation: rekey_core::audit::Operation::Reset,
                result: "ok".into(),
                client_ip: Some("127.0.0.1".into()),
                user_agent: None,
                target_guid: None,
                target_sam: Some(user.sam.clone()),
                methods: vec!["email".into()],
                zones: vec![],
                error_code: None,
                detail: None,
            };
            async move { s.append_audit(&ev).await.map(|_| ()).map_err(|x| e(&x)) }
        })
        .await?,
    );
    out.push(
        time("sqlite: enrollments read", n, |_| {
            let s = &store;
            async move { s.enrollments(&guid).await.map(|_| ()).map_err(|x| e(&x)) }
        })
        .await?,
    );
    out.push(
        time(
            "smtp: send notice (pooled lettre → loopback sink)",
            n,
            |_| {
                let (m, to) = (&mailer, user.address.clone());
                async move {
                    let mail = Email {
                        to,
                        subject: "Your Corp account password was reset".into(),
                        body: "The password of your account was reset.\n".into(),
                    };
                    m.send(&mail).await.map_err(|x| e(&x))
                }
            },
        )
        .await?,
    );
    for nodelay in [false, true] {
        let name = format!(
            "smtp: same dialogue, raw client, body + terminator as 2 writes, TCP_NODELAY={nodelay}"
        );
        let to = user.address.clone();
        out.push(time(&name, n, |_| smtp_raw(port, to.clone(), nodelay)).await?);
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(out)
}

/// One SMTP dialogue on a fresh connection, writing the body and the terminator separately as
/// lettre does: shows whether Nagle + delayed ACK is what a send waits for.
async fn smtp_raw(port: u16, to: String, nodelay: bool) -> BenchResult<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    s.set_nodelay(nodelay).map_err(|e| e.to_string())?;
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    let mut expect = async |r: &mut BufReader<_>, code: &str| -> BenchResult<()> {
        loop {
            line.clear();
            r.read_line(&mut line).await.map_err(|e| e.to_string())?;
            if !line.starts_with(code) {
                return Err(format!("expected {code}, got {line:?}"));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    expect(&mut r, "220").await?;
    let io = |e: std::io::Error| e.to_string();
    for (cmd, code) in [
        ("EHLO bench\r\n".to_owned(), "250"),
        ("MAIL FROM:<rekey@corp.example.com>\r\n".to_owned(), "250"),
        (format!("RCPT TO:<{to}>\r\n"), "250"),
        ("DATA\r\n".to_owned(), "354"),
    ] {
        w.write_all(cmd.as_bytes()).await.map_err(io)?;
        expect(&mut r, code).await?;
    }
    let body = format!("To: {to}\r\nSubject: Your Corp account password was reset\r\n\r\nbody\r\n");
    w.write_all(body.as_bytes()).await.map_err(io)?;
    w.write_all(b"\r\n.\r\n").await.map_err(io)?;
    expect(&mut r, "250").await?;
    w.write_all(b"QUIT\r\n").await.map_err(io)?;
    Ok(())
}

/// The spans as a Markdown table.
#[must_use]
pub fn markdown(spans: &[Span]) -> String {
    let mut s = String::from(
        "| component | calls | p50 ms | p99 ms | bench CPU ms/call | DC CPU ms/call |\n\
         |---|--:|--:|--:|--:|--:|\n",
    );
    for x in spans {
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.3} | {:.1} |\n",
            x.name, x.calls, x.p50_ms, x.p99_ms, x.bench_cpu_ms, x.dc_cpu_ms
        ));
    }
    s
}
