//! Directory set-up a test makes for itself as Administrator: groups with members, and the
//! raw attributes a test reads back (`objectGUID`, `pwdLastSet`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)] // test fixtures panic by design

use std::collections::HashSet;

use ldap3::{Scope, SearchEntry};

use crate::dev::Dev;

impl Dev {
    /// A fresh global security group in OU=Staff (swept with the test users: its name starts
    /// with the run's `rkt` prefix) with these members; returns its DN.
    pub async fn group_with(&self, tag: &str, members: &[&str]) -> String {
        let sam = format!("rkt{}g{tag}", std::process::id() % 100_000);
        let dn = format!("CN={sam},{}", self.staff_ou());
        let mut attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
            (b"objectClass".to_vec(), HashSet::from([b"group".to_vec()])),
            (
                b"sAMAccountName".to_vec(),
                HashSet::from([sam.into_bytes()]),
            ),
        ];
        if !members.is_empty() {
            attrs.push((
                b"member".to_vec(),
                members.iter().map(|m| m.as_bytes().to_vec()).collect(),
            ));
        }
        let mut admin = self.admin().await;
        admin
            .add(&dn, attrs)
            .await
            .unwrap()
            .success()
            .expect("create test group");
        dn
    }

    /// Raw values of `attr` of `dn` (base search as Administrator on the first DC).
    pub async fn raw_attr(&self, dn: &str, attr: &str) -> Option<Vec<u8>> {
        let mut admin = self.admin().await;
        let (found, _) = admin
            .search(dn, Scope::Base, "(objectClass=*)", vec![attr])
            .await
            .unwrap()
            .success()
            .unwrap_or_else(|e| panic!("read {attr} of {dn}: {e}"));
        let entry = SearchEntry::construct(found.into_iter().next()?);
        entry
            .bin_attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .and_then(|(_, v)| v.first().cloned())
            .or_else(|| {
                entry
                    .attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                    .and_then(|(_, v)| v.first().map(|s| s.clone().into_bytes()))
            })
    }

    /// `objectGUID` of `dn` (the 16 raw bytes).
    pub async fn object_guid(&self, dn: &str) -> [u8; 16] {
        self.raw_attr(dn, "objectGUID")
            .await
            .and_then(|v| v.try_into().ok())
            .unwrap_or_else(|| panic!("no objectGUID on {dn}"))
    }

    /// `pwdLastSet` of `dn` (0: must change at next logon).
    pub async fn pwd_last_set(&self, dn: &str) -> i64 {
        self.raw_attr(dn, "pwdLastSet")
            .await
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no pwdLastSet on {dn}"))
    }
}
