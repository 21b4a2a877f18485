//! `rekey-sms-double` — runs the SMS gateway TEST DOUBLE (not Twilio; for tests and dev only).
//!
//! ```text
//! rekey-sms-double --account-sid SID --auth-token-file FILE [--listen 127.0.0.1:PORT]
//!                  [--api-key-sid SID --api-key-file FILE]
//! ```
//!
//! Files hold one line (a trailing newline is ignored). Point `rekey-sms`'s `base_url` at the
//! printed URL; the control routes are under `/_control/` (see the crate docs).

use std::process::ExitCode;

use rekey_sms_double::Config;

fn usage() -> ExitCode {
    eprintln!(
        "usage: rekey-sms-double --account-sid SID --auth-token-file FILE \
         [--listen 127.0.0.1:PORT] [--api-key-sid SID --api-key-file FILE]"
    );
    ExitCode::from(2)
}

fn read_line(flag: &str, path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{flag} {path}: {e}"))?;
    let line = text.trim_end_matches(['\r', '\n']);
    if line.is_empty() {
        return Err(format!("{flag} {path}: the file is empty"));
    }
    Ok(line.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut config = Config::new(String::new(), String::new());
    let mut token_file = None;
    let mut key_sid = None;
    let mut key_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(v) = args.next() else {
            return usage();
        };
        match arg.as_str() {
            "--listen" => match v.parse() {
                Ok(addr) => config.listen = addr,
                Err(e) => {
                    eprintln!("--listen {v}: {e}");
                    return usage();
                }
            },
            "--account-sid" => config.account_sid = v,
            "--auth-token-file" => token_file = Some(v),
            "--api-key-sid" => key_sid = Some(v),
            "--api-key-file" => key_file = Some(v),
            _ => return usage(),
        }
    }
    let Some(token_file) = token_file.filter(|_| !config.account_sid.is_empty()) else {
        return usage();
    };
    let loaded = read_line("--auth-token-file", &token_file).and_then(|token| {
        config.auth_token = token;
        match (key_sid, key_file) {
            (None, None) => Ok(()),
            (Some(sid), Some(file)) => {
                let key = read_line("--api-key-file", &file)?;
                config.api_keys.push((sid, key));
                Ok(())
            }
            _ => Err("--api-key-sid and --api-key-file go together".to_owned()),
        }
    });
    if let Err(e) = loaded {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let listen = config.listen;
    let account = config.account_sid.clone();
    let double = match rekey_sms_double::start(config).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("listen {listen}: {e}");
            return ExitCode::from(3);
        }
    };
    println!(
        "rekey-sms-double (a test double, not Twilio) listening on {}; account {account}; \
         messages are kept in memory, see GET {}/_control/messages",
        double.url(),
        double.url()
    );
    let _ = tokio::signal::ctrl_c().await;
    double.stop().await;
    ExitCode::SUCCESS
}
