//! `[api]`: the integrations that may call the JSON API, each with a hashed bearer token.
//!
//! ```toml
//! [api]
//! clients = [{ name = "chatbot", token_sha256 = "<64 hex>", scopes = ["self_service"] }]
//! ```
//!
//! Only the token's SHA-256 is configured (`rekey admin api-token` makes a token and prints the
//! entry); a config file that leaks gives no one a token. No entry: nobody can call the API.

use rekey_web::api::{ApiClient, Scope, valid_client_name};
use serde::Deserialize;

use super::ConfigError;
use crate::admin::CliError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// The integrations; empty (the default): the API refuses every call.
    #[serde(default)]
    pub clients: Vec<ApiClientConfig>,
}

/// One `[[api.clients]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiClientConfig {
    /// The integration's name: its audit records name it as `api:<name>`.
    pub name: String,
    /// SHA-256 of its bearer token, 64 hex digits.
    pub token_sha256: String,
    /// What it may call: `self_service` (reset, unlock, change for users who pass the gates),
    /// `helpdesk` (unlock, helpdesk codes; no gate).
    pub scopes: Vec<String>,
}

/// The scopes named in `names`, each known, at least one.
///
/// # Errors
/// A message naming the unknown scope, or saying none was given.
pub fn parse_scopes(names: &[String]) -> Result<Vec<Scope>, String> {
    let known = || {
        Scope::ALL
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if names.is_empty() {
        return Err(format!("name at least one scope ({})", known()));
    }
    let mut out = Vec::new();
    for n in names {
        let s = Scope::parse(n.trim())
            .ok_or_else(|| format!("unknown scope {n:?}; known: {}", known()))?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Why `name` cannot name an integration, if it cannot.
#[must_use]
pub fn name_problem(name: &str) -> Option<String> {
    (!valid_client_name(name)).then(|| {
        format!(
            "{name:?} is not a valid name: 1 to 64 of a-z, 0-9, '-', '_', '.', starting with a \
             letter or digit"
        )
    })
}

impl ApiSection {
    /// The integrations the portal accepts.
    ///
    /// # Errors
    /// `ConfigError::Key` naming the key: a bad or repeated name, a hash that is not 64 hex
    /// digits or is used twice, an unknown or missing scope.
    pub fn clients(&self) -> Result<Vec<ApiClient>, CliError> {
        Ok(self.validated()?)
    }

    /// One line for `rekey config check` / `rekey doctor`: who may call the API, with what.
    ///
    /// # Errors
    /// As [`ApiSection::clients`].
    pub fn summary(&self) -> Result<String, CliError> {
        let clients = self.clients()?;
        if clients.is_empty() {
            return Ok("no integrations: the JSON API refuses every call".into());
        }
        let each: Vec<String> = clients
            .iter()
            .map(|c| {
                let scopes: Vec<&str> = c.scopes.iter().map(|s| s.as_str()).collect();
                format!("{} ({})", c.name, scopes.join(", "))
            })
            .collect();
        Ok(format!(
            "{} integration(s) may call the JSON API: {}",
            clients.len(),
            each.join("; ")
        ))
    }

    fn validated(&self) -> Result<Vec<ApiClient>, ConfigError> {
        let mut out: Vec<ApiClient> = Vec::new();
        for (i, c) in self.clients.iter().enumerate() {
            let at = |key: &'static str, why: String| ConfigError::Key {
                key,
                why: format!("entry {} ({:?}): {why}", i + 1, c.name),
            };
            if let Some(why) = name_problem(&c.name) {
                return Err(at("api.clients.name", why));
            }
            if out.iter().any(|o| o.name == c.name) {
                return Err(at("api.clients.name", "the name is used twice".into()));
            }
            let mut hash = [0_u8; 32];
            let digits = c.token_sha256.trim();
            if digits.len() != 64 || hex::decode_to_slice(digits, &mut hash).is_err() {
                return Err(at(
                    "api.clients.token_sha256",
                    "must be 64 hex digits: the SHA-256 of the token, as `rekey admin \
                     api-token` prints it (never the token itself)"
                        .into(),
                ));
            }
            if out.iter().any(|o| o.token_sha256 == hash) {
                return Err(at(
                    "api.clients.token_sha256",
                    "the same token hash is configured twice: give each integration its own \
                     token"
                        .into(),
                ));
            }
            let scopes = parse_scopes(&c.scopes).map_err(|why| at("api.clients.scopes", why))?;
            out.push(ApiClient {
                name: c.name.clone(),
                token_sha256: hash,
                scopes,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(name: &str, hash: &str, scopes: &[&str]) -> ApiClientConfig {
        ApiClientConfig {
            name: name.into(),
            token_sha256: hash.into(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    const H1: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const H2: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    #[test]
    fn clients_convert_and_validate_naming_the_key() {
        let ok = ApiSection {
            clients: vec![
                entry("chatbot", H1, &["self_service"]),
                entry("tickets", &H2.to_uppercase(), &["helpdesk", "self_service"]),
            ],
        };
        let c = ok.clients().unwrap();
        assert_eq!(c[0].name, "chatbot");
        assert_eq!(c[0].scopes, vec![Scope::SelfService]);
        assert_eq!(c[1].scopes, vec![Scope::Helpdesk, Scope::SelfService]);
        assert_eq!(hex::encode(c[0].token_sha256), H1);
        assert!(ApiSection::default().clients().unwrap().is_empty());
        assert_eq!(
            ok.summary().unwrap(),
            "2 integration(s) may call the JSON API: chatbot (self_service); tickets \
             (helpdesk, self_service)"
        );
        assert!(
            ApiSection::default()
                .summary()
                .unwrap()
                .starts_with("no integrations")
        );

        for (section, key, says) in [
            (
                vec![entry("Chat Bot", H1, &["helpdesk"])],
                "api.clients.name",
                "not a valid name",
            ),
            (
                vec![entry("a", H1, &["helpdesk"]), entry("a", H2, &["helpdesk"])],
                "api.clients.name",
                "twice",
            ),
            (
                vec![entry("a", "abc", &["helpdesk"])],
                "api.clients.token_sha256",
                "64 hex",
            ),
            (
                vec![entry("a", &H1.replace('9', "x"), &["helpdesk"])],
                "api.clients.token_sha256",
                "64 hex",
            ),
            (
                vec![entry("a", H1, &["helpdesk"]), entry("b", H1, &["helpdesk"])],
                "api.clients.token_sha256",
                "twice",
            ),
            (
                vec![entry("a", H1, &["admin"])],
                "api.clients.scopes",
                "unknown scope",
            ),
            (
                vec![entry("a", H1, &[])],
                "api.clients.scopes",
                "at least one",
            ),
        ] {
            let err = ApiSection { clients: section }
                .clients()
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(says), "{err}");
        }
    }
}
