//! Test support specific to the landing zone's tests; the dev-domain helpers are shared in
//! `rekey_e2e::dev`.

pub mod proxy;

use rekey_directory::AdConfig;
pub use rekey_e2e::dev::{Dev, Krb, dev};

/// The landing zone's config for the dev domain: the service account, the dev CA, these DCs.
pub fn config(d: &Dev, urls: Vec<String>) -> AdConfig {
    let mut c = AdConfig::new(urls, d.get("REKEY_DEV_SVC_DN"));
    c.ca_file = Some(d.get("REKEY_DEV_CA_FILE").into());
    c.bind_password_file = Some(d.get("REKEY_DEV_SVC_PASSWORD_FILE").into());
    c
}
