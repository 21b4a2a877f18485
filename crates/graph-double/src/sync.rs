//! The on-prem side of a synced user: a [`PasswordOracle`] (does this password work on-prem?) and
//! a [`ChangeSource`] (when did the on-prem password last change?), plus the simulated password
//! hash sync loop that carries an on-prem change into `lastPasswordChangeDateTime` after a delay.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::Shared;

/// A boxed future, so the traits stay object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the on-prem side knows to identify a synced user.
#[derive(Clone, Debug)]
pub struct OnPremUser {
    /// onPremisesSamAccountName.
    pub sam_account_name: Option<String>,
    /// onPremisesDistinguishedName.
    pub distinguished_name: Option<String>,
    /// userPrincipalName (cloud).
    pub user_principal_name: String,
}

/// Does this password work on-prem (e.g. an LDAP simple bind)?
pub trait PasswordOracle: Send + Sync {
    /// `Ok(true)` if the password is the user's current on-prem password.
    fn check<'a>(
        &'a self,
        user: &'a OnPremUser,
        password: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>>;
}

/// When did the user's on-prem password last change (e.g. `pwdLastSet`)?
pub trait ChangeSource: Send + Sync {
    /// The last change, or `None` if unknown.
    fn last_change<'a>(
        &'a self,
        user: &'a OnPremUser,
    ) -> BoxFuture<'a, Result<Option<SystemTime>, String>>;
}

/// An in-memory "on-prem AD" for tests: per sAMAccountName a password and its change time.
/// Implements both [`PasswordOracle`] and [`ChangeSource`].
#[derive(Clone, Default)]
pub struct MemOnPrem {
    inner: Arc<Mutex<HashMap<String, (String, SystemTime)>>>,
}

impl MemOnPrem {
    /// A new, empty on-prem side.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the on-prem password of `sam`, changed at `at`.
    pub fn set_password(&self, sam: &str, password: &str, at: SystemTime) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sam.to_ascii_lowercase(), (password.to_owned(), at));
    }
    fn get(&self, user: &OnPremUser) -> Option<(String, SystemTime)> {
        let sam = user.sam_account_name.as_deref()?.to_ascii_lowercase();
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&sam)
            .cloned()
    }
}

impl PasswordOracle for MemOnPrem {
    fn check<'a>(
        &'a self,
        user: &'a OnPremUser,
        password: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>> {
        let ok = self.get(user).is_some_and(|(p, _)| p == password);
        Box::pin(async move { Ok(ok) })
    }
}

impl ChangeSource for MemOnPrem {
    fn last_change<'a>(
        &'a self,
        user: &'a OnPremUser,
    ) -> BoxFuture<'a, Result<Option<SystemTime>, String>> {
        let at = self.get(user).map(|(_, t)| t);
        Box::pin(async move { Ok(at) })
    }
}

pub(crate) fn on_prem_of(spec: &crate::UserSpec) -> OnPremUser {
    OnPremUser {
        sam_account_name: spec.on_premises_sam_account_name.clone(),
        distinguished_name: spec.on_premises_distinguished_name.clone(),
        user_principal_name: spec.user_principal_name.clone(),
    }
}

/// One pass of the sync loop: observe newer on-prem changes, land those whose delay passed.
pub(crate) async fn sync_once(shared: &Shared) {
    let users: Vec<(String, OnPremUser)> = {
        let st = shared.state();
        if st.sync.paused {
            return;
        }
        st.users
            .iter()
            .filter(|(_, u)| u.spec.on_premises_sync_enabled)
            .map(|(k, u)| (k.clone(), on_prem_of(&u.spec)))
            .collect()
    };
    for (key, user) in users {
        let Ok(Some(changed)) = shared.source.last_change(&user).await else {
            continue;
        };
        let now = SystemTime::now();
        let mut st = shared.state();
        if st.sync.paused {
            return;
        }
        let delay = Duration::from_millis(st.sync.delay_ms);
        let Some(u) = st.users.get_mut(&key) else {
            continue;
        };
        if u.synced_change.is_none_or(|s| changed > s)
            && u.pending.is_none_or(|(p, _)| p != changed)
        {
            u.pending = Some((changed, now));
        }
        if let Some((at, seen)) = u.pending
            && now >= seen + delay
        {
            u.last_password_change = at;
            u.synced_change = Some(at);
            u.pending = None;
        }
    }
}

/// Runs [`sync_once`] every `interval` until the double is dropped.
pub(crate) fn spawn(shared: std::sync::Weak<Shared>, interval: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            sync_once(&shared).await;
        }
    });
}

/// ROPC for a synced user: the cloud accepts the on-prem password once hash sync caught up.
pub(crate) async fn synced_password_ok(shared: &Shared, key: &str, password: &str) -> bool {
    let Some((user, synced)) = ({
        let st = shared.state();
        st.users
            .get(key)
            .map(|u| (on_prem_of(&u.spec), (u.synced_change, u.pending.is_none())))
    }) else {
        return false;
    };
    let (synced_change, no_pending) = synced;
    let current = match shared.source.last_change(&user).await {
        Ok(c) => c,
        Err(_) => return false,
    };
    let caught_up = no_pending
        && match (current, synced_change) {
            (Some(c), Some(s)) => c <= s,
            (None, _) => true,
            (Some(_), None) => false,
        };
    caught_up && shared.oracle.check(&user, password).await.unwrap_or(false)
}
