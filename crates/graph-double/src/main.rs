//! `rekey-graph-double` — runs the Graph TEST DOUBLE (not Microsoft Graph; for tests and dev
//! only).
//!
//! ```text
//! rekey-graph-double [--listen 127.0.0.1:PORT] [--state FILE]
//!                    [--sync-delay-ms N] [--sync-interval-ms N] [--sync-paused]
//!                    [--ad-url ldaps://… --ad-ca FILE --ad-bind-dn DN --ad-base-dn DN
//!                     [--ad-bind-password-file FILE]]
//! ```
//!
//! `--state` seeds apps and users from JSON: `{"apps":[AppSpec…],"users":[UserSpec…]}`
//! (camelCase fields, see the crate docs). The on-prem side of synced users is in-memory (and
//! empty), or — built with feature `ad` and given the `--ad-*` options — a real DC over LDAPS
//! (bind password from `--ad-bind-password-file`, else `REKEY_DOUBLE_AD_BIND_PASSWORD`).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use rekey_graph_double::{AppSpec, Double, MemOnPrem, Options, UserSpec};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Seed {
    apps: Vec<AppSpec>,
    users: Vec<UserSpec>,
}

const AD_KEYS: &[&str] = &[
    "--ad-url",
    "--ad-ca",
    "--ad-bind-dn",
    "--ad-base-dn",
    "--ad-bind-password-file",
];

fn usage() -> ExitCode {
    eprintln!(
        "usage: rekey-graph-double [--listen 127.0.0.1:PORT] [--state FILE] \
         [--sync-delay-ms N] [--sync-interval-ms N] [--sync-paused] \
         [--ad-url URL --ad-ca FILE --ad-bind-dn DN --ad-base-dn DN [--ad-bind-password-file FILE]]"
    );
    ExitCode::from(2)
}

fn millis(flag: &str, v: &str) -> Result<u64, String> {
    v.parse().map_err(|e| format!("{flag} {v}: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut opts = Options::in_memory(&MemOnPrem::new());
    let mut state: Option<String> = None;
    let mut ad: HashMap<String, String> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--sync-paused" {
            opts.sync.paused = true;
            continue;
        }
        let Some(v) = args.next() else {
            return usage();
        };
        let parsed = match arg.as_str() {
            "--listen" => v
                .parse()
                .map(|a| opts.listen = a)
                .map_err(|e| format!("--listen {v}: {e}")),
            "--state" => {
                state = Some(v);
                Ok(())
            }
            "--sync-delay-ms" => millis(&arg, &v).map(|n| opts.sync.delay_ms = n),
            "--sync-interval-ms" => millis(&arg, &v)
                .and_then(|n| {
                    (n > 0)
                        .then_some(n)
                        .ok_or_else(|| "--sync-interval-ms must be > 0".to_owned())
                })
                .map(|n| opts.sync_interval = Duration::from_millis(n)),
            k if AD_KEYS.contains(&k) => {
                ad.insert(k.to_owned(), v);
                Ok(())
            }
            _ => return usage(),
        };
        if let Err(e) = parsed {
            eprintln!("{e}");
            return usage();
        }
    }
    let seed: Seed = match state {
        None => Seed::default(),
        Some(path) => match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("--state {path}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let listen = opts.listen;
    let on_prem = if ad.is_empty() {
        "in-memory (empty)".to_owned()
    } else {
        match on_prem_ad(&ad) {
            Ok(on_prem) => {
                opts.oracle = on_prem.clone();
                opts.source = on_prem;
                format!("LDAPS {}", ad.get("--ad-url").map_or("", String::as_str))
            }
            Err(e) => {
                eprintln!("--ad-*: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let sync = opts.sync;
    let double = match Double::start_with(opts).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("listen {listen}: {e}");
            return ExitCode::from(3);
        }
    };
    for app in seed.apps {
        if let Err(e) = double.add_app(app) {
            eprintln!("--state: app: {e}");
            return ExitCode::from(2);
        }
    }
    let users = seed.users.len();
    for user in seed.users {
        double.add_user(user);
    }
    println!(
        "rekey-graph-double (a test double, not Microsoft Graph) listening on {}; \
         on-prem side: {on_prem}; {users} user(s); password hash sync {} after {} ms",
        double.base_url(),
        if sync.paused { "paused" } else { "running" },
        sync.delay_ms
    );
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}

#[cfg(feature = "ad")]
fn on_prem_ad(
    args: &HashMap<String, String>,
) -> Result<std::sync::Arc<rekey_graph_double::ad::LdapOnPrem>, String> {
    let get = |k: &str| args.get(k).cloned().ok_or(format!("{k} is required"));
    let bind_password = match args.get("--ad-bind-password-file") {
        Some(f) => std::fs::read_to_string(f)
            .map(|p| p.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| format!("--ad-bind-password-file {f}: {e}"))?,
        None => std::env::var("REKEY_DOUBLE_AD_BIND_PASSWORD").map_err(|_| {
            "--ad-bind-password-file or REKEY_DOUBLE_AD_BIND_PASSWORD is required".to_owned()
        })?,
    };
    let config = rekey_graph_double::ad::AdConfig {
        url: get("--ad-url")?,
        ca_file: get("--ad-ca")?.into(),
        bind_dn: get("--ad-bind-dn")?,
        base_dn: get("--ad-base-dn")?,
        bind_password,
    };
    Ok(std::sync::Arc::new(
        rekey_graph_double::ad::LdapOnPrem::new(config)?,
    ))
}

#[cfg(not(feature = "ad"))]
fn on_prem_ad(_: &HashMap<String, String>) -> Result<std::sync::Arc<MemOnPrem>, String> {
    Err("this build has no LDAP support: rebuild with --features ad".into())
}
