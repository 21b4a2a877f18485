//! `rekey-graph-double [--listen 127.0.0.1:PORT] [--state FILE]` — runs the Graph TEST DOUBLE
//! (not Microsoft Graph; for tests and dev only). `--state` seeds apps and users from JSON:
//! `{"apps":[AppSpec…],"users":[UserSpec…]}` (camelCase fields, see the crate docs). The on-prem
//! side is in-memory, or — built with feature `ad` and given `--ad-url ldaps://… --ad-ca FILE
//! --ad-bind-dn DN --ad-base-dn DN` (bind password in `REKEY_DOUBLE_AD_BIND_PASSWORD`) — a real DC.

use std::net::SocketAddr;
use std::process::ExitCode;

use rekey_graph_double::{AppSpec, Double, MemOnPrem, Options, UserSpec};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Seed {
    apps: Vec<AppSpec>,
    users: Vec<UserSpec>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: rekey-graph-double [--listen 127.0.0.1:PORT] [--state FILE] \
         [--ad-url URL --ad-ca FILE --ad-bind-dn DN --ad-base-dn DN]"
    );
    ExitCode::from(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut state: Option<String> = None;
    let mut ad: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(v)) => match v.parse() {
                Ok(a) => listen = a,
                Err(e) => {
                    eprintln!("--listen {v}: {e}");
                    return usage();
                }
            },
            ("--state", Some(v)) => state = Some(v),
            (k, Some(v)) if k.starts_with("--ad-") => {
                ad.insert(k.to_owned(), v);
            }
            _ => return usage(),
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
    let mut opts = Options::in_memory(&MemOnPrem::new());
    opts.listen = listen;
    if !ad.is_empty() {
        match on_prem_ad(&ad) {
            Ok(on_prem) => {
                opts.oracle = on_prem.clone();
                opts.source = on_prem;
            }
            Err(e) => {
                eprintln!("--ad-*: {e}");
                return ExitCode::from(2);
            }
        }
    }
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
    for user in seed.users {
        double.add_user(user);
    }
    println!(
        "rekey-graph-double (a test double, not Microsoft Graph) listening on {}",
        double.base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}

#[cfg(feature = "ad")]
fn on_prem_ad(
    args: &std::collections::HashMap<String, String>,
) -> Result<std::sync::Arc<rekey_graph_double::ad::LdapOnPrem>, String> {
    let get = |k: &str| args.get(k).cloned().ok_or(format!("{k} is required"));
    let config = rekey_graph_double::ad::AdConfig {
        url: get("--ad-url")?,
        ca_file: get("--ad-ca")?.into(),
        bind_dn: get("--ad-bind-dn")?,
        base_dn: get("--ad-base-dn")?,
        bind_password: std::env::var("REKEY_DOUBLE_AD_BIND_PASSWORD")
            .map_err(|_| "REKEY_DOUBLE_AD_BIND_PASSWORD is not set".to_owned())?,
    };
    Ok(std::sync::Arc::new(
        rekey_graph_double::ad::LdapOnPrem::new(config)?,
    ))
}

#[cfg(not(feature = "ad"))]
fn on_prem_ad(
    _: &std::collections::HashMap<String, String>,
) -> Result<std::sync::Arc<MemOnPrem>, String> {
    Err("this build has no LDAP support: rebuild with --features ad".into())
}
