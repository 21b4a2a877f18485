//! `EntraId`: the landing zone itself — matching, the role check, the write, the arrival check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rekey_core::landing::{Plan, ZoneRules};
use rekey_core::{
    Account, BoxFuture, Diagnostic, Guid, Landed, LandingError, LandingZone, Password, Rejection,
    ResetOptions, WriteGrant, ZoneId,
};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::assertion::AssertionSigner;
use crate::config::{self, Anchor, Credential, EntraConfig};
use crate::http::{CallError, Graph, Verb};
use crate::token::{TokenCredential, Tokens};
use crate::util::{ceil_ms, odata_string, parse_iso8601, percent_encode};
use crate::{CheckReport, EntraError, immutable_id};

/// `plan` is asked just before `reset`: its answer is kept this long.
const PLAN_TTL: Duration = Duration::from_secs(30);
/// Pages of `transitiveMemberOf` followed at most (100 objects each).
const MAX_PAGES: usize = 50;
const SELECT: &str = "id,userPrincipalName,accountEnabled,onPremisesSyncEnabled,\
                      onPremisesImmutableId,lastPasswordChangeDateTime";

/// Where an account lands in Entra.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Write {
        id: String,
    },
    /// `baseline`: `lastPasswordChangeDateTime` before anything was written (Unix seconds).
    Sync {
        id: String,
        baseline: Option<i64>,
    },
    Absent,
    Ambiguous,
}

/// What a cached plan was computed from (a renamed account is planned again).
#[derive(Clone, PartialEq, Eq)]
struct PlanKey {
    anchor: String,
    upn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    id: String,
    #[serde(default)]
    on_premises_sync_enabled: Option<bool>,
    #[serde(default)]
    on_premises_immutable_id: Option<String>,
    #[serde(default)]
    last_password_change_date_time: Option<String>,
}

impl User {
    fn synced(&self) -> bool {
        self.on_premises_sync_enabled == Some(true)
    }
}

/// The Entra ID landing zone.
pub struct EntraId {
    graph: Graph,
    anchor: Anchor,
    match_by_upn: bool,
    refuse_directory_roles: bool,
    revoke_sessions: bool,
    plans: Mutex<HashMap<Guid, (Instant, PlanKey, Target)>>,
}

impl EntraId {
    /// Checks the configuration and parses the credential; contacts nothing.
    pub fn new(cfg: EntraConfig) -> Result<Self, EntraError> {
        let login = config::base("entra.login_base_url", &cfg.login_base_url)?;
        let graph = config::base("entra.graph_base_url", &cfg.graph_base_url)?;
        let tenant = config::tenant(cfg.tenant.trim())?;
        let client_id = cfg.client_id.trim();
        if client_id.is_empty() || client_id.len() > 256 {
            return Err(EntraError::Config {
                key: "entra.client_id",
                why: "the app registration's application (client) id is required".into(),
            });
        }
        let credential = match cfg.credential {
            Credential::Secret(s) if s.is_empty() => {
                return Err(EntraError::Credential("the client secret is empty".into()));
            }
            Credential::Secret(s) => TokenCredential::Secret(s),
            Credential::Certificate {
                cert_pem,
                key_pem,
                alg,
            } => TokenCredential::Assertion(Box::new(AssertionSigner::new(
                &cert_pem, &key_pem, alg,
            )?)),
        };
        let http = rekey_https::client(&rekey_https::ClientOptions {
            ca_file: cfg.ca_file.as_deref(),
            timeout: cfg.timeout,
            user_agent: concat!("rekey/", env!("CARGO_PKG_VERSION")),
            loopback_only: login.loopback && graph.loopback,
        })
        .map_err(|e| match e {
            rekey_https::Error::CaFile(why) => EntraError::Config {
                key: "entra.ca_file",
                why,
            },
            other => EntraError::Tls(other.to_string()),
        })?;
        let tokens = Tokens::new(
            format!("{}/{tenant}/oauth2/v2.0/token", login.url),
            client_id.to_owned(),
            config::scope(&graph),
            credential,
        );
        Ok(Self {
            graph: Graph {
                http,
                root: format!("{}/v1.0", graph.url),
                host: graph.host,
                tokens: Arc::new(tokens),
                max_inline_wait: cfg.max_inline_wait,
            },
            anchor: cfg.anchor,
            match_by_upn: cfg.match_by_upn,
            refuse_directory_roles: cfg.refuse_directory_roles,
            revoke_sessions: cfg.revoke_sessions,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// For `rekey check`: a token (cached or fetched) and one cheap Graph read with it.
    pub async fn check(&self) -> Result<CheckReport, EntraError> {
        let started = Instant::now();
        let url = self.graph.url("/users?$top=1&$select=id");
        let reply = self
            .graph
            .call(&Verb::Get, &url)
            .await
            .map_err(CallError::into_entra)?;
        reply.json().map_err(CallError::into_entra)?;
        Ok(CheckReport {
            token: self.graph.tokens.kind(),
            token_url: self.graph.tokens.url().to_owned(),
            graph_host: self.graph.host.clone(),
            elapsed: started.elapsed(),
        })
    }

    fn diag(&self, detail: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Some(&self.graph.host), detail)
    }

    fn rejected(&self, reason: Rejection, detail: impl Into<String>) -> LandingError {
        LandingError::Rejected {
            reason,
            diagnostic: self.diag(detail),
        }
    }

    /// A failed call as a landing outcome. `write`: the request may have changed something.
    fn failure(&self, e: CallError, write: bool) -> LandingError {
        let unavailable = |detail: String| LandingError::Unavailable {
            diagnostic: self.diag(detail),
        };
        let indeterminate = |detail: String| LandingError::Indeterminate {
            diagnostic: self.diag(detail),
        };
        match e {
            CallError::Token(t) => unavailable(t.into_entra().to_string()),
            CallError::Transport(t) if write && t.sent => indeterminate(t.detail),
            CallError::Transport(t) => unavailable(t.detail),
            CallError::Throttled {
                retry_after,
                detail,
            } => LandingError::Throttled {
                retry_after_ms: retry_after.map(ceil_ms),
                diagnostic: self.diag(detail),
            },
            CallError::Protocol(d) if write => indeterminate(d),
            CallError::Protocol(d) => unavailable(d),
            CallError::Status(f) => {
                let detail = f.detail();
                match f.status {
                    400 if f.code.eq_ignore_ascii_case("Request_BadRequest")
                        && f.message.to_ascii_lowercase().contains("password")
                        && f.message.to_ascii_lowercase().contains("complexity") =>
                    {
                        self.rejected(Rejection::Complexity, detail)
                    }
                    401 | 403 => self.rejected(Rejection::InsufficientRights, detail),
                    404 => self.rejected(Rejection::NoSuchUser, detail),
                    400..=499 => self.rejected(Rejection::Refused, detail),
                    502..=504 => unavailable(detail),
                    _ if write => indeterminate(detail),
                    _ => unavailable(detail),
                }
            }
        }
    }

    async fn get_json(&self, url: &str) -> Result<Value, LandingError> {
        let reply = self
            .graph
            .call(&Verb::Get, url)
            .await
            .map_err(|e| self.failure(e, false))?;
        reply.json().map_err(|e| self.failure(e, false))
    }

    /// Users with `prop eq 'value'`; more than one, or more pages, is `None` (ambiguous).
    async fn users_where(
        &self,
        prop: &str,
        value: &str,
    ) -> Result<Option<Vec<User>>, LandingError> {
        let filter = format!("{prop} eq {}", odata_string(value));
        let url = self.graph.url(&format!(
            "/users?$filter={}&$select={SELECT}",
            percent_encode(&filter)
        ));
        let v = self.get_json(&url).await?;
        if v.get("@odata.nextLink").is_some() {
            return Ok(None);
        }
        let users: Vec<User> =
            serde_json::from_value(v["value"].clone()).map_err(|_| LandingError::Unavailable {
                diagnostic: self.diag("GET /users: an answer without a user list"),
            })?;
        Ok((users.len() <= 1).then_some(users))
    }

    /// The first directory role `id` holds, if any (`transitiveMemberOf`, all pages).
    async fn directory_role(&self, id: &str) -> Result<Option<String>, LandingError> {
        let mut url = self.graph.url(&format!(
            "/users/{}/transitiveMemberOf?$select=id,displayName",
            percent_encode(id)
        ));
        for _ in 0..MAX_PAGES {
            let v = self.get_json(&url).await?;
            let items = v["value"].as_array().map(Vec::as_slice).unwrap_or_default();
            if let Some(role) = items
                .iter()
                .find(|o| o["@odata.type"].as_str() == Some("#microsoft.graph.directoryRole"))
            {
                return Ok(Some(
                    role["displayName"]
                        .as_str()
                        .unwrap_or("(unnamed)")
                        .to_owned(),
                ));
            }
            match v["@odata.nextLink"].as_str() {
                Some(next) if self.graph.owns(next) => next.clone_into(&mut url),
                Some(_) => {
                    return Err(LandingError::Unavailable {
                        diagnostic: self.diag("transitiveMemberOf: a next page on another host"),
                    });
                }
                None => return Ok(None),
            }
        }
        Err(LandingError::Unavailable {
            diagnostic: self.diag(format!(
                "transitiveMemberOf: more than {MAX_PAGES} pages, role check not finished"
            )),
        })
    }

    async fn role_check(&self, id: &str) -> Result<(), LandingError> {
        if !self.refuse_directory_roles {
            return Ok(());
        }
        match self.directory_role(id).await? {
            Some(role) => Err(self.rejected(
                Rejection::Privileged,
                format!("Entra user {id} holds directory role '{role}'"),
            )),
            None => Ok(()),
        }
    }

    /// Matching (§A4), uncached.
    async fn locate(&self, account: &Account, key: &PlanKey) -> Result<Target, LandingError> {
        let Some(by_anchor) = self
            .users_where("onPremisesImmutableId", &key.anchor)
            .await?
        else {
            return Ok(Target::Ambiguous);
        };
        if let Some(u) = by_anchor.first() {
            self.role_check(&u.id).await?;
            // Sync turned off for the object: it is mastered in the cloud now.
            return Ok(if u.synced() {
                Target::Sync {
                    id: u.id.clone(),
                    baseline: u
                        .last_password_change_date_time
                        .as_deref()
                        .and_then(parse_iso8601),
                }
            } else {
                Target::Write { id: u.id.clone() }
            });
        }
        let upn = match &key.upn {
            Some(upn) if self.match_by_upn => upn,
            _ => return Ok(Target::Absent),
        };
        let Some(by_upn) = self.users_where("userPrincipalName", upn).await? else {
            return Ok(Target::Ambiguous);
        };
        let Some(u) = by_upn.first() else {
            return Ok(Target::Absent);
        };
        let foreign_anchor = u
            .on_premises_immutable_id
            .as_deref()
            .is_some_and(|a| !a.is_empty() && a != key.anchor);
        if u.synced() || foreign_anchor {
            // Another AD object's twin (or a leftover of one) under this UPN: never a guess.
            tracing::info!(
                sam = %account.sam_account_name,
                entra_id = %u.id,
                "entra: the UPN names an object with another source anchor"
            );
            return Ok(Target::Ambiguous);
        }
        self.role_check(&u.id).await?;
        Ok(Target::Write { id: u.id.clone() })
    }

    /// `locate`, through a short cache (plan then reset within seconds).
    async fn resolve(&self, account: &Account) -> Result<Target, LandingError> {
        let key = PlanKey {
            anchor: immutable_id(account, self.anchor),
            upn: account.user_principal_name.clone(),
        };
        let cached = self
            .plans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&account.guid)
            .filter(|(at, k, _)| at.elapsed() < PLAN_TTL && *k == key)
            .map(|(_, _, t)| t.clone());
        if let Some(t) = cached {
            return Ok(t);
        }
        let target = self.locate(account, &key).await?;
        let mut plans = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        plans.retain(|_, (at, _, _)| at.elapsed() < PLAN_TTL);
        plans.insert(account.guid, (Instant::now(), key, target.clone()));
        Ok(target)
    }

    fn forget(&self, account: &Account) {
        self.plans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&account.guid);
    }

    /// `lastPasswordChangeDateTime` and `signInSessionsValidFromDateTime` (Unix seconds).
    async fn password_times(
        &self,
        id: &str,
        sessions: bool,
    ) -> Result<(Option<i64>, Option<i64>), LandingError> {
        let select = if sessions {
            "lastPasswordChangeDateTime,signInSessionsValidFromDateTime"
        } else {
            "lastPasswordChangeDateTime"
        };
        let url = self
            .graph
            .url(&format!("/users/{}?$select={select}", percent_encode(id)));
        let v = self.get_json(&url).await?;
        let time = |k: &str| v[k].as_str().and_then(parse_iso8601);
        Ok((
            time("lastPasswordChangeDateTime"),
            time("signInSessionsValidFromDateTime"),
        ))
    }

    /// `revokeSignInSessions`; a failure is logged, never fails the landed write.
    async fn revoke(&self, id: &str) -> bool {
        let url = self.graph.url(&format!(
            "/users/{}/revokeSignInSessions",
            percent_encode(id)
        ));
        match self.graph.call(&Verb::Post, &url).await {
            Ok(_) => true,
            Err(e) => {
                let e = self.failure(e, false);
                tracing::warn!(diagnostic = %e.diagnostic(), "entra: revokeSignInSessions failed");
                false
            }
        }
    }

    async fn do_reset(
        &self,
        account: &Account,
        new: &Password,
        options: ResetOptions,
    ) -> Result<Landed, LandingError> {
        if new.is_blank() {
            return Err(self.rejected(Rejection::Refused, "blank password: not sent"));
        }
        let id = match self.resolve(account).await? {
            Target::Write { id } => id,
            Target::Sync { id, .. } => {
                return Err(self.rejected(
                    Rejection::Refused,
                    format!("synced user {id}: written on-premises, arrives by password hash sync"),
                ));
            }
            Target::Absent => {
                return Err(self.rejected(Rejection::NoSuchUser, "no Entra user for the account"));
            }
            Target::Ambiguous => {
                return Err(self.rejected(
                    Rejection::Ambiguous,
                    "more than one Entra user could be the account",
                ));
            }
        };
        if options.unlock {
            tracing::debug!("entra: unlock asked with the reset; Graph cannot clear smart lockout");
        }
        if let Some(first) = options.replay_of {
            let (changed, sessions_from) = self.password_times(&id, self.revoke_sessions).await?;
            // Strictly later: Graph's times have whole seconds, and a change earlier in the same
            // second must not pass for ours. Writing the same password twice is harmless (a
            // reset may repeat one); skipping a write that did not land is not.
            if changed.is_some_and(|c| c > first) {
                tracing::info!(entra_id = %id, "entra: replay verified, the earlier write had landed");
                let mut landed = Landed::written(ZoneId::EntraId, self.graph.host.clone());
                if self.revoke_sessions {
                    let done = sessions_from.zip(changed).is_some_and(|(s, c)| s >= c);
                    landed.sessions_revoked = Some(done || self.revoke(&id).await);
                }
                return Ok(landed);
            }
        }
        let body = patch_body(new, options.must_change);
        let url = self.graph.url(&format!("/users/{}", percent_encode(&id)));
        if let Err(e) = self.graph.call(&Verb::Patch(body), &url).await {
            self.forget(account);
            return Err(self.failure(e, true));
        }
        let mut landed = Landed::written(ZoneId::EntraId, self.graph.host.clone());
        if self.revoke_sessions {
            landed.sessions_revoked = Some(self.revoke(&id).await);
        }
        Ok(landed)
    }
}

/// `{"passwordProfile":{"password":…,"forceChangePasswordNextSignIn":…}}`, built in place in a
/// buffer that is zeroed on drop.
fn patch_body(new: &Password, must_change: bool) -> Zeroizing<String> {
    let quoted = Zeroizing::new(
        serde_json::to_string(new.expose()).unwrap_or_else(|_| String::from("\"\"")),
    );
    let mut body = Zeroizing::new(String::with_capacity(quoted.len() + 96));
    body.push_str(r#"{"passwordProfile":{"password":"#);
    body.push_str(&quoted);
    body.push_str(r#","forceChangePasswordNextSignIn":"#);
    body.push_str(if must_change { "true" } else { "false" });
    body.push_str("}}");
    body
}

impl LandingZone for EntraId {
    fn id(&self) -> ZoneId {
        ZoneId::EntraId
    }

    fn reset<'a>(
        &'a self,
        grant: &'a WriteGrant<'a>,
        new: &'a Password,
        options: ResetOptions,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        Box::pin(self.do_reset(grant.account(), new, options))
    }

    fn change<'a>(
        &'a self,
        _grant: &'a WriteGrant<'a>,
        _old: &'a Password,
        _new: &'a Password,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        let e = self.rejected(
            Rejection::Refused,
            "Entra ID has no app-only password change with the old password (only a reset)",
        );
        Box::pin(std::future::ready(Err(e)))
    }

    fn unlock<'a>(
        &'a self,
        _grant: &'a WriteGrant<'a>,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        let e = self.rejected(
            Rejection::Refused,
            "Graph cannot clear Entra smart lockout; it ends by itself",
        );
        Box::pin(std::future::ready(Err(e)))
    }

    fn plan<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, Result<Plan, LandingError>> {
        Box::pin(async move {
            Ok(match self.resolve(account).await? {
                Target::Write { .. } => Plan::Write {
                    rules: ZoneRules { entra: true },
                },
                Target::Sync { id, baseline } => Plan::Sync {
                    handle: sync_handle(&id, baseline),
                },
                Target::Absent => Plan::Absent,
                Target::Ambiguous => Plan::Ambiguous,
            })
        })
    }

    fn arrived<'a>(
        &'a self,
        handle: &'a str,
        since: i64,
    ) -> BoxFuture<'a, Result<Option<i64>, LandingError>> {
        Box::pin(async move {
            let (id, baseline) = parse_sync_handle(handle);
            let (changed, _) = self.password_times(id, false).await?;
            Ok(changed.filter(|&t| arrived_at(t, since, baseline)))
        })
    }
}

/// The proof's handle: the object id and, if Graph gave one, `lastPasswordChangeDateTime` as it
/// was before the write (`{id}|{unix seconds}`; object ids are GUIDs).
fn sync_handle(id: &str, baseline: Option<i64>) -> String {
    match baseline {
        Some(b) => format!("{id}|{b}"),
        None => id.to_owned(),
    }
}

fn parse_sync_handle(handle: &str) -> (&str, Option<i64>) {
    match handle.split_once('|') {
        Some((id, b)) => (id, b.parse().ok()),
        None => (handle, None),
    }
}

/// The password written at `since` has arrived when the cloud's last change is at or after it
/// AND later than the change it had before the write: Graph's times have whole seconds, so a
/// change earlier in the same second as the write must not count as its arrival.
fn arrived_at(t: i64, since: i64, baseline: Option<i64>) -> bool {
    t >= since && baseline.is_none_or(|b| t > b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_is_proven_only_by_a_change_after_the_baseline() {
        let h = sync_handle("0b1c-id", Some(1_000));
        assert_eq!(parse_sync_handle(&h), ("0b1c-id", Some(1_000)));
        assert_eq!(parse_sync_handle("0b1c-id"), ("0b1c-id", None));
        // The write at 1000 in the same second as the old change: only a later one proves it.
        assert!(!arrived_at(1_000, 1_000, Some(1_000)));
        assert!(arrived_at(1_001, 1_000, Some(1_000)));
        assert!(!arrived_at(999, 1_000, None));
        assert!(arrived_at(1_000, 1_000, None));
    }

    #[test]
    fn patch_body_escapes() {
        let b = patch_body(&Password::from("a\"b\\c"), true);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["passwordProfile"]["password"], "a\"b\\c");
        assert_eq!(v["passwordProfile"]["forceChangePasswordNextSignIn"], true);
        let b = patch_body(&Password::from("x"), false);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["passwordProfile"]["forceChangePasswordNextSignIn"], false);
    }
}
