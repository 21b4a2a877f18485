//! The writeback canary's reset: a dedicated account gets a fresh random password through the
//! same checks and the same first landing zone (AD) as any reset, with its own audit record
//! (`canary`, actor `system`). Proving that the password arrived on every DC is the binary's
//! part (LDAPS binds, Kerberos); this is the one write.

use super::trail::Trail;
use super::zones::ZoneReport;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::Account;
use crate::audit::Operation;
use crate::landing::{Diagnostic, LandingError, ResetOptions, WriteGrant};
use crate::secret::Password;

/// Characters of a canary password: every class AD's complexity rule counts, nothing that needs
/// quoting anywhere.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.+=";
/// Long enough for any sane minimum length, and 32 × ~5.9 bits of entropy.
const LENGTH: usize = 32;

/// A canary reset that landed: the new password (in memory only) and the DC that took it.
pub struct CanaryLanding {
    pub account: Account,
    pub password: Password,
    /// The server that took the write (`Landed::server`): the other DCs get it by replication.
    pub server: String,
}

impl std::fmt::Debug for CanaryLanding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanaryLanding")
            .field("account", &self.account.sam_account_name)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Reset the canary account `who` to a fresh random password in the first zone (AD). The
    /// account must be in scope and not privileged, like any account Rekey writes.
    ///
    /// # Errors
    /// What any operator reset could meet: not found, out of scope, privileged, the store, and
    /// `EngineError::Landing` when the DC refused or failed the write (lost rights show here).
    pub async fn canary_reset(
        &self,
        ctx: &RequestContext,
        who: &str,
    ) -> EngineResult<CanaryLanding> {
        let mut trail = Trail::new(Operation::Canary);
        trail.methods(&["canary"]);
        let result = self.canary_inner(&mut trail, who).await;
        self.record(ctx, trail, result).await
    }

    async fn canary_inner(&self, trail: &mut Trail, who: &str) -> EngineResult<CanaryLanding> {
        let account = self.operator_target(trail, who).await?;
        let password = self.canary_password();
        let zone = self.inner.zones.first().ok_or_else(|| {
            EngineError::Landing(LandingError::Unavailable {
                diagnostic: Diagnostic::new(None, "no landing zone"),
            })
        })?;
        let result = zone
            .reset(
                &WriteGrant::new(&account),
                &password,
                ResetOptions::default(),
            )
            .await;
        trail.zone(ZoneReport::from_result(zone.id(), &result).audit());
        let landed = result.map_err(EngineError::Landing)?;
        trail.landed();
        Ok(CanaryLanding {
            account,
            password,
            server: landed.server,
        })
    }

    /// 32 characters from [`ALPHABET`], uniformly (biased bytes are drawn again), with at least
    /// one upper, lower, digit and symbol.
    fn canary_password(&self) -> Password {
        // 256 is not a multiple of the alphabet's size: bytes from `limit` up are dropped.
        let limit = 256 - 256 % ALPHABET.len();
        loop {
            let mut text = zeroize::Zeroizing::new(String::with_capacity(LENGTH));
            let mut bytes = zeroize::Zeroizing::new([0_u8; LENGTH]);
            while text.len() < LENGTH {
                self.inner.random.fill(bytes.as_mut());
                for &b in bytes.iter().filter(|&&b| usize::from(b) < limit) {
                    if text.len() < LENGTH {
                        text.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
                    }
                }
            }
            let classes = [
                text.bytes().any(|b| b.is_ascii_uppercase()),
                text.bytes().any(|b| b.is_ascii_lowercase()),
                text.bytes().any(|b| b.is_ascii_digit()),
                text.bytes().any(|b| !b.is_ascii_alphanumeric()),
            ];
            if classes.iter().all(|&c| c) {
                return Password::new(std::mem::take(&mut *text));
            }
        }
    }
}
