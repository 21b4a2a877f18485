//! The AD landing zone: reset, change and unlock, each ONE modify operation on the PDC emulator
//! (or the next DC that answers), never replayed once it may have been sent.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use ldap3::Mod;
use ldap3::controls::RawControl;
use rekey_core::{
    Account, BoxFuture, Diagnostic, Landed, LandingError, LandingZone, Password, Rejection,
    ResetOptions, WriteGrant, ZoneId,
};
use zeroize::Zeroizing;

use crate::ActiveDirectory;
use crate::mapping::{Transport, Verdict, classify, rejected, transport_phase};

/// Bytes of a modify value, zeroed on drop and never printed (ldap3 derives `Debug` on `Mod`).
#[derive(Clone, PartialEq, Eq)]
struct Value(Zeroizing<Vec<u8>>);

impl Value {
    fn text(s: &str) -> Self {
        Self(Zeroizing::new(s.as_bytes().to_vec()))
    }
    fn one(self) -> HashSet<Self> {
        HashSet::from([self])
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_slice().hash(state);
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<value>")
    }
}

fn unicode_pwd(p: &Password) -> HashSet<Value> {
    Value(p.to_unicode_pwd()).one()
}

/// LDAP_SERVER_POLICY_HINTS_OID with flags = 1: enforce history on a reset. Non-critical, so a DC
/// that does not know it (Samba) ignores it instead of failing the write.
fn policy_hints() -> RawControl {
    RawControl {
        ctype: "1.2.840.113556.1.4.2239".into(),
        crit: false,
        val: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
    }
}

fn refused(why: &str) -> LandingError {
    LandingError::Rejected {
        reason: Rejection::Refused,
        diagnostic: Diagnostic::new(None, why),
    }
}

impl ActiveDirectory {
    /// The write goes to the DC the account was read from when a read named one (invariant 23:
    /// the live state that gated it is that DC's; if it went away meanwhile the write fails as
    /// unavailable instead of landing on a DC whose state nobody checked), else to the PDC
    /// emulator first and the next DC that answers.
    async fn write(
        &self,
        account: &Account,
        mods: Vec<Mod<Value>>,
        controls: Vec<RawControl>,
    ) -> Result<Landed, LandingError> {
        let dn = account.dn.as_str();
        let pdc = self.pool.pdc_index();
        let order = match account.read_from.as_deref() {
            Some(url) => match self.pool.index_of(url) {
                Some(idx) => vec![idx],
                None => {
                    return Err(refused(
                        "the account was read from a DC that is not configured",
                    ));
                }
            },
            None => self.pool.order(),
        };
        let mut last = None;
        for idx in order {
            let url = self.pool.servers[idx].url.as_str();
            let mut lease = match self.pool.lease(idx).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(%url, error = %e, "DC unreachable before the write was sent; trying the next");
                    last = Some(Diagnostic::new(Some(url), e.to_string()));
                    continue;
                }
            };
            if let Some(p) = pdc.filter(|&p| p != idx) {
                let pdc_url = &self.pool.servers[p].url;
                tracing::warn!(pdc = %pdc_url, %url, "PDC emulator unreachable; writing to another DC");
            }
            let ldap = lease.ldap.with_timeout(self.pool.op_timeout);
            let ldap = if controls.is_empty() {
                ldap
            } else {
                ldap.with_controls(controls.clone())
            };
            let started = std::time::Instant::now();
            let result = ldap.modify(dn, mods.clone()).await;
            crate::telemetry::operation(url, "modify", started.elapsed(), result.is_ok());
            match result {
                Ok(res) if res.rc == 0 => {
                    return Ok(Landed::written(ZoneId::ActiveDirectory, url));
                }
                Ok(res) => match classify(&res) {
                    Verdict::Rejected(reason) => {
                        let err = rejected(reason, url, &res);
                        tracing::info!(%url, code = %reason_code(reason), diagnostic = %err.diagnostic(), "DC refused the write");
                        return Err(err);
                    }
                    Verdict::TryElsewhere => {
                        tracing::warn!(%url, rc = res.rc, "DC declined (busy/unavailable); trying the next");
                        last = Some(Diagnostic::new(Some(url), res.to_string()));
                    }
                },
                Err(e) => {
                    self.pool.discard(&lease).await;
                    let diagnostic = Diagnostic::new(Some(url), e.to_string());
                    match transport_phase(&e) {
                        Transport::NotSent => last = Some(diagnostic),
                        Transport::MaybeSent => {
                            tracing::error!(%url, error = %e, "connection lost after the write was sent: outcome indeterminate, not retried");
                            return Err(LandingError::Indeterminate { diagnostic });
                        }
                    }
                }
            }
        }
        Err(LandingError::Unavailable {
            diagnostic: last.unwrap_or_else(|| Diagnostic::new(None, "no DC configured")),
        })
    }

    async fn reset_password(
        &self,
        account: &Account,
        new: &Password,
        options: ResetOptions,
    ) -> Result<Landed, LandingError> {
        if new.is_blank() {
            return Err(refused("blank new password"));
        }
        let mut mods = vec![Mod::Replace(Value::text("unicodePwd"), unicode_pwd(new))];
        if options.unlock {
            mods.push(Mod::Replace(
                Value::text("lockoutTime"),
                Value::text("0").one(),
            ));
        }
        if options.must_change {
            mods.push(Mod::Replace(
                Value::text("pwdLastSet"),
                Value::text("0").one(),
            ));
        }
        let controls = if self.history_on_reset {
            vec![policy_hints()]
        } else {
            vec![]
        };
        self.write(account, mods, controls).await
    }

    /// The DC checks `old` (counting a wrong one in `badPwdCount`), history and minimum age.
    /// Works for users who cannot bind (expired, must change).
    async fn change_password(
        &self,
        account: &Account,
        old: &Password,
        new: &Password,
    ) -> Result<Landed, LandingError> {
        if old.expose().is_empty() {
            return Err(refused("empty old password"));
        }
        if new.is_blank() {
            return Err(refused("blank new password"));
        }
        let mods = vec![
            Mod::Delete(Value::text("unicodePwd"), unicode_pwd(old)),
            Mod::Add(Value::text("unicodePwd"), unicode_pwd(new)),
        ];
        self.write(account, mods, vec![]).await
    }

    async fn unlock_account(&self, account: &Account) -> Result<Landed, LandingError> {
        let mods = vec![Mod::Replace(
            Value::text("lockoutTime"),
            Value::text("0").one(),
        )];
        self.write(account, mods, vec![]).await
    }

    /// "User must change password at next logon": `pwdLastSet = 0` (AD accepts only 0 and -1).
    async fn require_change_at_logon(&self, account: &Account) -> Result<Landed, LandingError> {
        let mods = vec![Mod::Replace(
            Value::text("pwdLastSet"),
            Value::text("0").one(),
        )];
        self.write(account, mods, vec![]).await
    }
}

fn reason_code(r: Rejection) -> &'static str {
    rekey_core::UserFacing::code(&r)
}

impl LandingZone for ActiveDirectory {
    fn id(&self) -> ZoneId {
        ZoneId::ActiveDirectory
    }

    fn reset<'a>(
        &'a self,
        grant: &'a WriteGrant<'a>,
        new: &'a Password,
        options: ResetOptions,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        Box::pin(self.reset_password(grant.account(), new, options))
    }

    fn change<'a>(
        &'a self,
        grant: &'a WriteGrant<'a>,
        old: &'a Password,
        new: &'a Password,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        Box::pin(self.change_password(grant.account(), old, new))
    }

    fn unlock<'a>(
        &'a self,
        grant: &'a WriteGrant<'a>,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        Box::pin(self.unlock_account(grant.account()))
    }

    fn require_change<'a>(
        &'a self,
        grant: &'a WriteGrant<'a>,
    ) -> BoxFuture<'a, Result<Landed, LandingError>> {
        Box::pin(self.require_change_at_logon(grant.account()))
    }
}
