//! `rekey admin api-token`: a bearer token for one integration of the JSON API.
//!
//! The token (256 random bits from the OS, `rkapi_` + 64 hex digits) is printed ONCE, alone on
//! stdout, so `TOKEN=$(rekey admin api-token …)` captures it; the `[api]` entry to add — with
//! only the token's SHA-256 — goes to stderr. Rekey keeps no copy: a lost token is replaced by
//! a new one (and the old entry removed).

use rekey_core::clock::Random;
use rekey_web::api::{TOKEN_PREFIX, token_sha256};

use crate::admin::CliError;
use crate::config::Config;
use crate::config::api::{name_problem, parse_scopes};

/// A fresh token: the prefix and 32 random bytes in hex.
fn new_token(random: &dyn Random) -> String {
    format!("{TOKEN_PREFIX}{}", rekey_core::clock::token(random, 32))
}

/// The `[api]` entry for a client (one line, TOML inline table).
fn entry(name: &str, hash: &[u8; 32], scopes: &[rekey_web::api::Scope]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| format!("{:?}", s.as_str())).collect();
    format!(
        "{{ name = {name:?}, token_sha256 = \"{}\", scopes = [{}] }}",
        hex::encode(hash),
        scopes.join(", ")
    )
}

/// Make a token for integration `name` with `scopes`.
///
/// # Errors
/// `CliError::Input` for a name or scope the config would refuse.
pub fn command(config: &Config, name: &str, scopes: &[String]) -> Result<(), CliError> {
    let bad = |why: String| CliError::Input(std::io::Error::other(why));
    if let Some(why) = name_problem(name) {
        return Err(bad(why));
    }
    let scopes = parse_scopes(scopes).map_err(bad)?;
    let token = zeroize::Zeroizing::new(new_token(&rekey_core::system::OsRandom));
    let hash = token_sha256(&token);
    println!("{}", token.as_str());
    let replaces = config.api.clients.iter().any(|c| c.name == name);
    eprintln!();
    eprintln!(
        "The line above is the bearer token of {name:?}; it is shown only now. Give it to the \
         integration (its own vault), not to a person's mail."
    );
    eprintln!(
        "Add this entry to `clients` in the [api] section of rekey.toml{} and restart \
         `rekey serve`:",
        if replaces {
            ", replacing the entry named the same (its old token stops working)"
        } else {
            ""
        }
    );
    eprintln!();
    eprintln!("[api]");
    eprintln!("clients = [");
    eprintln!("  {},", entry(name, &hash, &scopes));
    eprintln!("]");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use figment::providers::Format as _;

    use super::*;

    struct Fixed;
    impl Random for Fixed {
        fn fill(&self, buf: &mut [u8]) {
            buf.fill(0xab);
        }
    }

    #[test]
    fn the_token_is_256_bits_and_the_entry_holds_only_its_hash() {
        let token = new_token(&Fixed);
        assert_eq!(token, format!("rkapi_{}", "ab".repeat(32)));
        let hash = token_sha256(&token);
        let line = entry("chatbot", &hash, &[rekey_web::api::Scope::SelfService]);
        assert!(!line.contains(&token[6..]), "{line}");
        // The entry parses as the config's `[api]` section and gives back the same client.
        let toml = format!("clients = [{line}]");
        let section: crate::config::api::ApiSection =
            figment::Figment::from(figment::providers::Toml::string(&toml))
                .extract()
                .unwrap();
        let clients = section.clients().unwrap();
        assert_eq!(clients[0].name, "chatbot");
        assert_eq!(clients[0].token_sha256, hash);
        assert_eq!(clients[0].scopes, vec![rekey_web::api::Scope::SelfService]);
        assert!(
            new_token(&rekey_core::system::OsRandom) != new_token(&rekey_core::system::OsRandom)
        );
    }
}
