//! `rekey doctor`: one command that checks a deployment and says, for each check, pass, warn or
//! fail and what to do about it. Text on stdout, or one JSON document with `--json`
//! (`{"worst", "exit_code", "counts": {"pass", "warn", "fail"}, "findings": [{"check",
//! "target"?, "status", "code"?, "summary", "details"?, "fix"?}]}`).
//!
//! Exit code = the worst result: 0 every check passed, 1 at least one warning, 2 at least one
//! failure (a config file that does not load is 2 as well, before any check).
//!
//! The checks (check name: fail / warn; codes `RK-DOC-0NN`, stable):
//! - `config`: the offline sections of `rekey config check` — an error fails (001), a warning
//!   warns (002).
//! - `dc.certificate`, `dc.reachable`: per DC, a rustls handshake trusting only
//!   `directory.ca_file` — no connection fails (010), untrusted/expired fails (011), `notAfter`
//!   within `doctor.cert_warn_days` warns (012).
//! - `dc.bind`: the service account binds on each DC, else fail (013).
//! - `dc.clock`: rootDSE `currentTime` against this host — above `clock_skew_warn_secs` warns
//!   (015), above 300 s fails (016).
//! - `pdc`: `fSMORoleOwner` not among the reachable configured DCs warns (014).
//! - `rights`: the service account's token (SID + `tokenGroups` + Everyone + Authenticated
//!   Users) against each scoped OU's DACL (read with the SD-flags control, evaluated by
//!   `rekey_directory::acl`): Reset Password, Change Password, write `lockoutTime` and
//!   `pwdLastSet`, inheritable to user objects — missing on an OU of `scope.allow_ous` fails
//!   (020), on an OU where members of `scope.groups` live (when `allow_ous` is empty) warns (021:
//!   only those members are affected); Unexpire Password on the domain head missing fails (022);
//!   unreadable fails (023).
//! - `adminsdholder` / `inheritance`: accounts in scope with `adminCount=1` (030) or a protected
//!   DACL (031) warn, listed (capped at 10); a partial scan warns (032).
//! - `privileged`: accounts in scope that are transitive members of a protected group (or RID
//!   500), with the group path — warn (040) unless `[gates.privileged]` is configured.
//! - `policy`, `policy.pso`: the domain policy and every PSO with what it sets and whom it applies
//!   to (pass); PSOs unreadable by the service account warn (050/051).
//! - `canary` (when enabled): missing, out of scope or privileged fails (090).
//! - `smtp`: connect + EHLO + STARTTLS/TLS + AUTH + NOOP, no mail — failure fails (060); no
//!   `[smtp]` warns (062). `sms` (when enabled): TCP connect to `sms.base_url` fails (061).
//! - `store`: opened read-only — unreachable fails (070), migrations pending warn (071), a newer
//!   schema fails (072), no `[store]` warns (073).
//! - `authorities`: each `doctor.other_reset_authorities` entry whose OUs overlap the scope warns
//!   (080) unless it states a `boundary` (pass, quoted); `[entra]` adds a hint (pass).
//!
//! Doctor only reads: LDAP searches and binds as the service account, a TLS handshake per DC,
//! an SMTP session without a message, a TCP connect to the SMS gateway, and a read-only look at
//! the store. It never writes to AD and never applies migrations. (A wrong bind password does
//! count toward the service account's lockout, like any wrong bind.)

mod accounts;
mod directory;
mod policy;
mod services;

use std::fmt;

use serde::Serialize;

use crate::config::Config;

/// How a check came out. Ordered: the worst wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    /// 0 pass, 1 warn, 2 fail.
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Pass => 0,
            Self::Warn => 1,
            Self::Fail => 2,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// The result of one check on one target.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Which check (`dc.certificate`, `rights`, …).
    pub check: &'static str,
    /// What it was checked on (a DC URL, an OU, …), if not the whole deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub status: Status,
    /// A stable code for a warning or failure (`RK-DOC-0NN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    pub summary: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// What to do about a warning or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn pass(check: &'static str, summary: impl Into<String>) -> Self {
        Self {
            check,
            target: None,
            status: Status::Pass,
            code: None,
            summary: summary.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    fn warn(check: &'static str, code: &'static str, summary: impl Into<String>) -> Self {
        Self {
            status: Status::Warn,
            code: Some(code),
            ..Self::pass(check, summary)
        }
    }

    fn fail(check: &'static str, code: &'static str, summary: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            code: Some(code),
            ..Self::pass(check, summary)
        }
    }

    fn on(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }

    fn details(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.details.extend(lines);
        self
    }
}

/// Every finding, in the order the checks ran.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// The worst status (pass when there are no findings).
    #[must_use]
    pub fn worst(&self) -> Status {
        self.findings
            .iter()
            .map(|f| f.status)
            .max()
            .unwrap_or(Status::Pass)
    }

    /// The findings of one check.
    pub fn of<'a>(&'a self, check: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings.iter().filter(move |f| f.check == check)
    }

    /// The report as JSON: `{"worst", "exit_code", "counts": {pass, warn, fail}, "findings": [...]}`.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let count = |s: Status| self.findings.iter().filter(|f| f.status == s).count();
        serde_json::json!({
            "worst": self.worst(),
            "exit_code": self.worst().exit_code(),
            "counts": {
                "pass": count(Status::Pass),
                "warn": count(Status::Warn),
                "fail": count(Status::Fail),
            },
            "findings": self.findings,
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for x in &self.findings {
            let target = x
                .target
                .as_deref()
                .map(|t| format!(" [{t}]"))
                .unwrap_or_default();
            let code = x.code.map(|c| format!("{c}: ")).unwrap_or_default();
            writeln!(
                f,
                "{}  {:<18}{target} {code}{}",
                x.status.label(),
                x.check,
                x.summary
            )?;
            for d in &x.details {
                writeln!(f, "        {d}")?;
            }
            if let Some(fix) = &x.fix {
                writeln!(f, "        fix: {fix}")?;
            }
        }
        let count = |s: Status| self.findings.iter().filter(|x| x.status == s).count();
        writeln!(
            f,
            "doctor: {} pass, {} warn, {} fail (exit {})",
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            self.worst().exit_code()
        )
    }
}

/// `rekey doctor [--json]`: run every check, print the report, return the exit code.
pub async fn run(config: &Config, json: bool) -> u8 {
    let report = diagnose(config).await;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    report.worst().exit_code()
}

/// Run every check. Never stops at the first problem; checks that need the directory are
/// skipped (with a failure saying why) when no DC could be bound.
pub async fn diagnose(config: &Config) -> Report {
    let mut findings = config_findings(config);
    let now = unix_now();
    let domain = directory::check(config, now, &mut findings).await;
    services::check(config, domain.as_ref(), &mut findings).await;
    Report { findings }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `config`: the offline sections of `rekey config check` (RK-DOC-001 for errors, RK-DOC-002
/// for warnings).
fn config_findings(config: &Config) -> Vec<Finding> {
    let sections = crate::check::offline(config);
    let errors: Vec<String> = sections
        .iter()
        .flat_map(|s| s.errors().map(move |e| format!("{}: {e}", s.name)))
        .collect();
    let warnings: Vec<String> = sections
        .iter()
        .flat_map(|s| s.warnings().map(move |e| format!("{}: {e}", s.name)))
        .collect();
    let mut out = Vec::new();
    if errors.is_empty() {
        out.push(Finding::pass(
            "config",
            "every section is valid (version, directory, server, smtp, engine, passwords, gates, entra)",
        ));
    } else {
        out.push(
            Finding::fail("config", "RK-DOC-001", "the configuration has errors")
                .details(errors)
                .fix("correct the keys named above (`rekey config check` explains each)"),
        );
    }
    if !warnings.is_empty() {
        out.push(
            Finding::warn(
                "config",
                "RK-DOC-002",
                "the configuration works but deserves a look",
            )
            .details(warnings),
        );
    }
    out
}

/// Certificate: fail when expired, warn within `warn_days` of `not_after`.
#[must_use]
pub fn cert_status(not_after: i64, now: i64, warn_days: u32) -> Status {
    if not_after <= now {
        Status::Fail
    } else if not_after - now < i64::from(warn_days) * 86_400 {
        Status::Warn
    } else {
        Status::Pass
    }
}

/// Kerberos refuses tickets beyond 5 minutes of skew.
pub const KERBEROS_MAX_SKEW_SECS: u64 = 300;

/// Clock skew to a DC: fail above 300 s (Kerberos breaks), warn above `warn_secs`.
#[must_use]
pub fn skew_status(skew_secs: i64, warn_secs: u64) -> Status {
    let skew = skew_secs.unsigned_abs();
    if skew > KERBEROS_MAX_SKEW_SECS {
        Status::Fail
    } else if skew > warn_secs {
        Status::Warn
    } else {
        Status::Pass
    }
}

/// `YYYY-MM-DD` of Unix seconds (UTC).
#[must_use]
pub fn date(unix: i64) -> String {
    let (y, m, d) = rekey_core::clock::civil_from_days(unix.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clock skew cannot be provoked on a live DC (its clock is the host's), so its evaluation
    /// is tested here.
    #[test]
    fn clock_skew_thresholds() {
        assert_eq!(skew_status(0, 60), Status::Pass);
        assert_eq!(skew_status(60, 60), Status::Pass);
        assert_eq!(skew_status(-61, 60), Status::Warn);
        assert_eq!(skew_status(300, 60), Status::Warn);
        assert_eq!(skew_status(301, 60), Status::Fail);
        assert_eq!(skew_status(-3600, 60), Status::Fail);
        // A warning threshold above Kerberos' limit still fails at 300 s.
        assert_eq!(skew_status(400, 600), Status::Fail);
    }

    #[test]
    fn certificate_thresholds() {
        let day = 86_400;
        assert_eq!(cert_status(100 * day, 0, 30), Status::Pass);
        assert_eq!(cert_status(29 * day, 0, 30), Status::Warn);
        assert_eq!(cert_status(0, 0, 30), Status::Fail);
        assert_eq!(cert_status(-5, 0, 0), Status::Fail);
    }

    #[test]
    fn dates_and_worst() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_796_201_112), "2026-12-02");
        assert_eq!(date(951_782_400), "2000-02-29");
        let mut r = Report {
            findings: vec![Finding::pass("a", "ok")],
        };
        assert_eq!(r.worst().exit_code(), 0);
        r.findings.push(Finding::warn("b", "RK-DOC-999", "hm"));
        assert_eq!(r.worst().exit_code(), 1);
        r.findings.push(Finding::fail("c", "RK-DOC-999", "no"));
        assert_eq!(r.worst().exit_code(), 2);
        assert_eq!(r.to_json()["exit_code"], 2);
        assert_eq!(r.to_json()["findings"][1]["status"], "warn");
    }
}
