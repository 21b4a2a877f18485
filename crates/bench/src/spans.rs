//! `rekey-bench --spans`: the pieces of Rekey's set-password and change steps, timed one by one
//! against the same real backends (DC, SQLite file, SMTP sink) — where the time of an HTTP
//! reset goes beyond the one `unicodePwd` write.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ldap3::{Ldap, LdapConnAsync, Mod, Scope};

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
    /// The part of `dc_cpu_ms` spent by DC1 (the PDC emulator, where writes go) and by DC2.
    pub dc1_cpu_ms: f64,
    pub dc2_cpu_ms: f64,
}

/// CPU ticks of the samba processes, split by DC: each process counts for the DC whose root
/// process (parent = init) holds that DC's `sam.ldb` (`.dev/dc1/…` or `.dev/dc2/…`).
fn ticks_by_dc() -> (HashMap<String, u64>, HashMap<String, u64>) {
    let all = dc::samba_ticks();
    let ppid = |pid: &str| -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)
            .map(str::to_owned)
    };
    let label = |root: &str| -> Option<u8> {
        for fd in std::fs::read_dir(format!("/proc/{root}/fd"))
            .ok()?
            .flatten()
        {
            let target = std::fs::read_link(fd.path()).ok()?;
            let t = target.to_string_lossy();
            if t.contains("/dc1/") {
                return Some(1);
            }
            if t.contains("/dc2/") {
                return Some(2);
            }
        }
        None
    };
    let mut roots: HashMap<String, Option<u8>> = HashMap::new();
    let (mut one, mut two) = (HashMap::new(), HashMap::new());
    for (pid, t) in all {
        let mut cur = pid.clone();
        for _ in 0..16 {
            match ppid(&cur) {
                Some(p) if p != "1" && p != "0" => cur = p,
                _ => break,
            }
        }
        let dc = *roots.entry(cur.clone()).or_insert_with(|| label(&cur));
        match dc {
            Some(2) => two.insert(pid, t),
            _ => one.insert(pid, t),
        };
    }
    (one, two)
}

async fn time<F, Fut>(name: &str, n: usize, mut f: F) -> BenchResult<Span>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = BenchResult<()>>,
{
    let ticks = dc::clock_ticks();
    let (s0, (a0, b0)) = (dc::self_ticks(), ticks_by_dc());
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(i).await.map_err(|e| format!("{name}: {e}"))?;
        lat.push(t.elapsed());
    }
    let (s1, (a1, b1)) = (dc::self_ticks(), ticks_by_dc());
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)].as_secs_f64() * 1e3;
    let per = |t: u64| t as f64 / ticks * 1e3 / n as f64;
    Ok(Span {
        name: name.into(),
        calls: n,
        p50_ms: pct(50),
        p99_ms: pct(99),
        bench_cpu_ms: per(s1.saturating_sub(s0)),
        dc_cpu_ms: per(dc::samba_delta(&a0, &a1) + dc::samba_delta(&b0, &b1)),
        dc1_cpu_ms: per(dc::samba_delta(&a0, &a1)),
        dc2_cpu_ms: per(dc::samba_delta(&b0, &b1)),
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
    let current = format!("Rb{tag}-s-{}-Pw!", 2 * n - 1);
    out.extend(directory_spans(dev, &ad, user, &account, n, tag, current).await?);
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
        "| component | calls | p50 ms | p99 ms | bench CPU ms/call | DC CPU ms/call | DC1 | DC2 |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for x in spans {
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.3} | {:.2} | {:.2} | {:.2} |\n",
            x.name,
            x.calls,
            x.p50_ms,
            x.p99_ms,
            x.bench_cpu_ms,
            x.dc_cpu_ms,
            x.dc1_cpu_ms,
            x.dc2_cpu_ms
        ));
    }
    s
}

/// What Rekey's account look-up reads (the adapter's `ACCOUNT_ATTRS`).
const ACCOUNT_ATTRS: &[&str] = &[
    "objectGUID",
    "mS-DS-ConsistencyGuid",
    "objectSid",
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "displayName",
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
    "pwdLastSet",
    "lockoutTime",
    "badPwdCount",
    "tokenGroups",
    "msDS-ResultantPSO",
];

/// The stored (not constructed) attributes of `ACCOUNT_ATTRS`: what a subtree search may return.
const STORED_ATTRS: &[&str] = &[
    "objectGUID",
    "mS-DS-ConsistencyGuid",
    "objectSid",
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "displayName",
    "userAccountControl",
    "pwdLastSet",
    "lockoutTime",
    "badPwdCount",
];

async fn connect_to(dev: &rekey_e2e::dev::Dev, url: &str, dn: &str, pw: &str) -> BenchResult<Ldap> {
    let (conn, mut ldap) = LdapConnAsync::with_settings(dc::tls(dev)?, url)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    ldap3::drive!(conn);
    ldap.simple_bind(dn, pw)
        .await
        .map_err(|e| format!("bind: {e}"))?
        .success()
        .map_err(|e| format!("bind: {e}"))?;
    Ok(ldap)
}

async fn search(
    ldap: &Ldap,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
) -> BenchResult<()> {
    let (found, _) = ldap
        .clone()
        .search(base, scope, filter, attrs.to_vec())
        .await
        .map_err(|e| e.to_string())?
        .success()
        .map_err(|e| e.to_string())?;
    if found.is_empty() {
        return Err("nothing found".into());
    }
    Ok(())
}

/// One AD-native change (delete old + add new) on `ldap`, optionally shaped: the two values in
/// the other order, or with extra controls. Updates `current` when the DC accepted it.
async fn change(
    ldap: &Ldap,
    dn: &str,
    current: &Mutex<String>,
    new: String,
    add_first: bool,
    controls: Vec<ldap3::controls::RawControl>,
) -> BenchResult<()> {
    let old = current.lock().map_err(|_| "poisoned")?.clone();
    let del = Mod::Delete(
        b"unicodePwd".to_vec(),
        HashSet::from([rekey_e2e::dev::unicode_pwd(&old)]),
    );
    let add = Mod::Add(
        b"unicodePwd".to_vec(),
        HashSet::from([rekey_e2e::dev::unicode_pwd(&new)]),
    );
    let mods = if add_first {
        vec![add, del]
    } else {
        vec![del, add]
    };
    let mut ldap = ldap.clone();
    let ldap = if controls.is_empty() {
        &mut ldap
    } else {
        ldap.with_controls(controls)
    };
    let r = ldap.modify(dn, mods).await.map_err(|e| e.to_string())?;
    r.success().map_err(|e| format!("change: {e}"))?;
    *current.lock().map_err(|_| "poisoned")? = new;
    Ok(())
}

/// The directory work of a change, piece by piece, and the shapes of the change itself tried
/// for issue 13 (where each piece's DC CPU goes, DC1 = the writer vs DC2).
#[allow(clippy::too_many_lines)]
async fn directory_spans(
    dev: &rekey_e2e::dev::Dev,
    ad: &Arc<ActiveDirectory>,
    user: &dc::BenchUser,
    account: &rekey_core::Account,
    n: usize,
    tag: &str,
    current: String,
) -> BenchResult<Vec<Span>> {
    let svc_dn = dev.get("REKEY_DEV_SVC_DN").to_owned();
    let svc_pw = std::fs::read_to_string(dev.get("REKEY_DEV_SVC_PASSWORD_FILE"))
        .map_err(|e| e.to_string())?
        .trim_end()
        .to_owned();
    let urls = dev.urls();
    let dc1 = connect_to(dev, &urls[0], &svc_dn, &svc_pw).await?;
    let dc2 = match urls.get(1) {
        Some(u) => Some(connect_to(dev, u, &svc_dn, &svc_pw).await?),
        None => None,
    };
    let base = ad.base_dn().to_owned();
    let dn = user.dn.clone();
    let by_guid = format!("<GUID={}>", account.guid);
    let sam = user.sam.clone();
    let find_filter = format!("(&(objectCategory=person)(objectClass=user)(sAMAccountName={sam}))");
    let mut out = Vec::new();
    let reads: Vec<(&str, String, Scope, String, Vec<&str>)> = vec![
        (
            "read: subtree (&(objectCategory=person)(objectClass=user)(sAMAccountName=…)) → 1.1 [find step 1]",
            base.clone(),
            Scope::Subtree,
            find_filter.clone(),
            vec!["1.1"],
        ),
        (
            "read: subtree (sAMAccountName=…) → 1.1",
            base.clone(),
            Scope::Subtree,
            format!("(sAMAccountName={sam})"),
            vec!["1.1"],
        ),
        (
            "read: subtree find → stored attributes (no constructed)",
            base.clone(),
            Scope::Subtree,
            find_filter.clone(),
            STORED_ATTRS.to_vec(),
        ),
        (
            "read: base by DN → all account attributes [find step 2]",
            dn.clone(),
            Scope::Base,
            "(objectClass=user)".into(),
            ACCOUNT_ATTRS.to_vec(),
        ),
        (
            "read: base by <GUID=…> → all account attributes [re-read]",
            by_guid.clone(),
            Scope::Base,
            "(objectClass=user)".into(),
            ACCOUNT_ATTRS.to_vec(),
        ),
        (
            "read: base by <GUID=…>, (objectCategory=person)(objectClass=user) filter",
            by_guid.clone(),
            Scope::Base,
            "(&(objectCategory=person)(objectClass=user))".into(),
            ACCOUNT_ATTRS.to_vec(),
        ),
        (
            "read: base by <GUID=…> → stored attributes only",
            by_guid.clone(),
            Scope::Base,
            "(objectClass=user)".into(),
            STORED_ATTRS.to_vec(),
        ),
        (
            "read: base by <GUID=…> → tokenGroups only",
            by_guid.clone(),
            Scope::Base,
            "(objectClass=user)".into(),
            vec!["tokenGroups"],
        ),
        (
            "read: base by <GUID=…> → msDS-ResultantPSO only",
            by_guid.clone(),
            Scope::Base,
            "(objectClass=user)".into(),
            vec!["msDS-ResultantPSO"],
        ),
        (
            "read: base by <GUID=…> → msDS-User-Account-Control-Computed only",
            by_guid.clone(),
            Scope::Base,
            "(objectClass=user)".into(),
            vec!["msDS-User-Account-Control-Computed"],
        ),
        (
            "read: base by <GUID=…> → 1.1",
            by_guid.clone(),
            Scope::Base,
            "(objectClass=user)".into(),
            vec!["1.1"],
        ),
    ];
    for (name, b, scope, filter, attrs) in reads {
        out.push(
            time(name, n, |_| {
                let (l, b, f, a) = (&dc1, b.clone(), filter.clone(), attrs.clone());
                async move { search(l, &b, scope, &f, &a).await }
            })
            .await?,
        );
    }
    // Samba (and Windows) refuse tokenGroups outside a base search: say so rather than time it.
    let one_op = search(&dc1, &base, Scope::Subtree, &find_filter, ACCOUNT_ATTRS).await;
    if let Err(e) = one_op {
        eprintln!("subtree search with tokenGroups (one-operation find) refused: {e}");
    }
    if let Some(dc2) = &dc2 {
        out.push(
            time("read on DC2: base by <GUID=…> → all account attributes", n, |_| {
                let (l, g) = (dc2, by_guid.clone());
                async move { search(l, &g, Scope::Base, "(objectClass=user)", ACCOUNT_ATTRS).await }
            })
            .await?,
        );
        out.push(
            time("read on DC2: subtree find → 1.1", n, |_| {
                let (l, b, f) = (dc2, base.clone(), find_filter.clone());
                async move { search(l, &b, Scope::Subtree, &f, &["1.1"]).await }
            })
            .await?,
        );
    }
    let id = Identifier::parse(&user.sam).ok_or("identifier")?;
    out.push(
        time(
            "path: Directory::find + effective_policy (what a change reads)",
            n,
            |_| {
                let (ad, id) = (ad.clone(), id.clone());
                async move {
                    let a = Directory::find(ad.as_ref(), &id)
                        .await
                        .map_err(|x| x.to_string())?
                        .ok_or("not found")?;
                    Directory::effective_policy(ad.as_ref(), &a)
                        .await
                        .map(|_| ())
                        .map_err(|x| x.to_string())
                }
            },
        )
        .await?,
    );

    // The change itself, shaped in different ways (part 3). Each variant sets fresh passwords.
    let cur = Arc::new(Mutex::new(current));
    let pw = |k: &str, i: usize| format!("Rc{tag}-{k}-{i}-Pw!");
    let lazy = ldap3::controls::RawControl {
        ctype: "1.2.840.113556.1.4.619".into(),
        crit: false,
        val: None,
    };
    let variants: Vec<(&str, &str, bool, Vec<ldap3::controls::RawControl>)> = vec![
        (
            "change: delete+add on DC1 (service account) [Rekey]",
            "a",
            false,
            vec![],
        ),
        ("change: add+delete order on DC1", "b", true, vec![]),
        (
            "change: delete+add + LAZY_COMMIT control (non-critical) on DC1",
            "c",
            false,
            vec![lazy],
        ),
    ];
    for (name, k, add_first, controls) in variants {
        let r = time(name, n, |i| {
            let (l, d, c, p, ctl) = (&dc1, dn.clone(), cur.clone(), pw(k, i), controls.clone());
            async move { change(l, &d, &c, p, add_first, ctl).await }
        })
        .await;
        match r {
            Ok(s) => out.push(s),
            Err(e) => eprintln!("{name}: refused by the DC: {e}"),
        }
    }
    if let Some(dc2) = &dc2 {
        // A change on DC2 right after one on DC1 fails as "wrong old password" (and counts in
        // badPwdCount) until replication brings DC1's write over: wait for it, both ways.
        let settle = std::time::Duration::from_secs(12);
        tokio::time::sleep(settle).await;
        let r = time("change: delete+add on DC2 (not the PDC)", n, |i| {
            let (d, c, p) = (dn.clone(), cur.clone(), pw("d", i));
            async move { change(dc2, &d, &c, p, false, vec![]).await }
        })
        .await;
        match r {
            Ok(s) => out.push(s),
            Err(e) => eprintln!("change on DC2 refused: {e}"),
        }
        tokio::time::sleep(settle).await;
    }
    let cur_pw = cur.lock().map_err(|_| "poisoned")?.clone();
    let as_user = connect_to(dev, &urls[0], &dn, &cur_pw).await?;
    out.push(
        time(
            "change: delete+add on a connection bound as the user (DC1)",
            n,
            |i| {
                let (l, d, c, p) = (&as_user, dn.clone(), cur.clone(), pw("e", i));
                async move { change(l, &d, &c, p, false, vec![]).await }
            },
        )
        .await?,
    );
    out.push(
        time(
            "change: fresh TLS + user bind + delete+add (per request)",
            n,
            |i| {
                let (d, c, p, u) = (dn.clone(), cur.clone(), pw("f", i), urls[0].clone());
                async move {
                    let old = c.lock().map_err(|_| "poisoned")?.clone();
                    let l = connect_to(dev, &u, &d, &old).await?;
                    change(&l, &d, &c, p, false, vec![]).await
                }
            },
        )
        .await?,
    );
    let zone = ad.clone();
    out.push(
        time("change: zone change (LandingZone::change, pool)", n, |i| {
            let (z, a, c, p) = (zone.clone(), account.clone(), cur.clone(), pw("g", i));
            async move {
                let old = c.lock().map_err(|_| "poisoned")?.clone();
                LandingZone::change(
                    z.as_ref(),
                    &WriteGrant::for_zone_tests(&a),
                    &Password::new(old),
                    &Password::new(p.clone()),
                )
                .await
                .map_err(|x| format!("{x:?}"))?;
                *c.lock().map_err(|_| "poisoned")? = p;
                Ok(())
            }
        })
        .await?,
    );
    Ok(out)
}
