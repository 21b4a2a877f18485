//! Persistent, bound LDAPS connections to each DC, with failover and PDC-emulator preference.
//!
//! Each DC gets `pool_size` slots. A slot holds one TLS connection bound as the service account;
//! an `ldap3::Ldap` handle multiplexes many concurrent operations over it, so no operation pays
//! for a TLS handshake or a bind. A slot whose connection closed is reopened on next use.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use rekey_core::Password;
use tokio::sync::Mutex as AsyncMutex;

use crate::AdConfig;
use crate::SetupError;

pub(crate) struct Server {
    pub url: String,
    slots: Vec<AsyncMutex<Option<Ldap>>>,
    next: AtomicUsize,
    /// rootDSE `dsServiceName` (the DC's NTDS Settings DN), learnt on first connect.
    service_name: Mutex<Option<String>>,
}

impl Server {
    pub fn service_name(&self) -> Option<String> {
        self.service_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A connection handed out by the pool, remembering its slot so a broken one can be dropped.
pub(crate) struct Lease {
    pub ldap: Ldap,
    pub server: usize,
    slot: usize,
}

pub(crate) struct Pool {
    pub servers: Vec<Server>,
    settings: LdapConnSettings,
    bind_dn: String,
    bind_password: Password,
    pub op_timeout: Duration,
    /// `fSMORoleOwner` of the domain head: the PDC emulator's NTDS Settings DN.
    pdc: Mutex<Option<String>>,
    opened: AtomicU64,
}

impl Pool {
    pub fn new(config: &AdConfig, password: Password) -> Result<Self, SetupError> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(config.connect_timeout());
        if config
            .urls
            .iter()
            .any(|u| u.to_ascii_lowercase().starts_with("ldaps:"))
        {
            settings = settings.set_config(crate::tls::client_config(config.ca_file.as_deref())?);
        }
        if config.allow_plaintext {
            tracing::warn!(
                "directory.allow_plaintext is on: passwords may cross the network in clear text. \
                 Lab use only."
            );
        }
        let servers = config
            .urls
            .iter()
            .map(|url| Server {
                url: url.clone(),
                slots: (0..config.pool_size)
                    .map(|_| AsyncMutex::new(None))
                    .collect(),
                next: AtomicUsize::new(0),
                service_name: Mutex::new(None),
            })
            .collect();
        Ok(Self {
            servers,
            settings,
            bind_dn: config.bind_dn.clone(),
            bind_password: password,
            op_timeout: config.op_timeout(),
            pdc: Mutex::new(None),
            opened: AtomicU64::new(0),
        })
    }

    /// TLS connections opened so far (each one handshake and one bind).
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    pub fn set_pdc(&self, ntds_dn: Option<String>) {
        *self.pdc.lock().unwrap_or_else(PoisonError::into_inner) = ntds_dn;
    }

    /// Index of the configured server that is the PDC emulator, if known.
    pub fn pdc_index(&self) -> Option<usize> {
        let pdc = self
            .pdc
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        self.servers.iter().position(|s| {
            s.service_name()
                .is_some_and(|n| n.eq_ignore_ascii_case(&pdc))
        })
    }

    /// Index of the server configured with exactly this URL.
    pub fn index_of(&self, url: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.url == url)
    }

    /// Servers in the order operations try them: the PDC emulator first, then the configured order.
    pub fn order(&self) -> Vec<usize> {
        let pdc = self.pdc_index();
        pdc.into_iter()
            .chain((0..self.servers.len()).filter(|&i| Some(i) != pdc))
            .collect()
    }

    /// A bound connection to server `idx`, reusing the slot's connection while it is open.
    pub async fn lease(&self, idx: usize) -> Result<Lease, LdapError> {
        let server = &self.servers[idx];
        let slot = server.next.fetch_add(1, Ordering::Relaxed) % server.slots.len();
        let mut guard = server.slots[slot].lock().await;
        if let Some(ldap) = guard.as_mut()
            && !ldap.is_closed()
        {
            return Ok(Lease {
                ldap: ldap.clone(),
                server: idx,
                slot,
            });
        }
        if guard.take().is_some() {
            crate::telemetry::connections(&server.url, -1.0);
        }
        let ldap = match self.open(server).await {
            Ok(l) => l,
            Err(e) => {
                crate::telemetry::dc_up(&server.url, false);
                return Err(e);
            }
        };
        crate::telemetry::connections(&server.url, 1.0);
        crate::telemetry::dc_up(&server.url, true);
        *guard = Some(ldap.clone());
        Ok(Lease {
            ldap,
            server: idx,
            slot,
        })
    }

    /// Drop a connection that failed, so the next lease reconnects.
    pub async fn discard(&self, lease: &Lease) {
        let server = &self.servers[lease.server];
        if server.slots[lease.slot].lock().await.take().is_some() {
            crate::telemetry::connections(&server.url, -1.0);
        }
    }

    async fn open(&self, server: &Server) -> Result<Ldap, LdapError> {
        let mut ldap = connect(&self.settings, &server.url).await?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        ldap.with_timeout(self.op_timeout)
            .simple_bind(&self.bind_dn, self.bind_password.expose())
            .await?
            .success()?;
        if server.service_name().is_none() {
            let (entries, _) = ldap
                .with_timeout(self.op_timeout)
                .search("", Scope::Base, "(objectClass=*)", vec!["dsServiceName"])
                .await?
                .success()?;
            let name = entries
                .into_iter()
                .next()
                .map(SearchEntry::construct)
                .and_then(|e| e.attrs.get("dsServiceName")?.first().cloned());
            *server
                .service_name
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = name;
        }
        tracing::debug!(url = %server.url, "opened a pooled LDAP connection");
        Ok(ldap)
    }

    /// A fresh connection bound as the service account, outside the pool (a long paged search
    /// must not hold up the pooled connections the portal's requests share).
    pub async fn connect_bound(&self, idx: usize) -> Result<Ldap, LdapError> {
        let mut ldap = connect(&self.settings, &self.servers[idx].url).await?;
        ldap.with_timeout(self.op_timeout)
            .simple_bind(&self.bind_dn, self.bind_password.expose())
            .await?
            .success()?;
        Ok(ldap)
    }

    /// A fresh, unpooled connection with the same TLS settings (for user binds).
    pub async fn connect_unpooled(&self, idx: usize) -> Result<Ldap, LdapError> {
        connect(&self.settings, &self.servers[idx].url).await
    }
}

async fn connect(settings: &LdapConnSettings, url: &str) -> Result<Ldap, LdapError> {
    let (conn, ldap) = LdapConnAsync::with_settings(settings.clone(), url).await?;
    let url: Arc<str> = url.into();
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(%url, error = %e, "LDAP connection ended");
        }
    });
    Ok(ldap)
}
