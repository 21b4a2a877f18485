//! `rekey config check`: every section of the config, live where it can be (every DC, the
//! database), each reported `ok` or with errors that name the key. All sections are checked
//! before the verdict; the command fails if any of them failed.
//!
//! The relay is not contacted here (`rekey doctor` does, with `SmtpMailer::probe`, which sends
//! no mail). `offline` is the part of this check that `rekey doctor` reuses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rekey_core::DirectoryError;
use rekey_core::store::StoreError;
use rekey_directory::{ActiveDirectory, AdConfig, SetupError};

use crate::config::{Config, ServerConfig, StoreConfig, VERSION, read_secret_key};

/// Fixed answer delays above this would look like an outage to the user.
const MAX_DEADLINE_MS: u64 = 60_000;

/// One line under a section's heading.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Info(String),
    Warning(String),
    /// `unavailable`: a peer did not answer (exit 3) rather than a setting being wrong (exit 2).
    Error {
        text: String,
        unavailable: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Checked,
    /// An optional section that is absent.
    NotConfigured,
    /// Could not be checked because another section failed.
    NotChecked(&'static str),
}

/// What was found for one section of `rekey.toml`.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: &'static str,
    state: State,
    lines: Vec<Line>,
}

impl Section {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            state: State::Checked,
            lines: Vec::new(),
        }
    }

    fn not_configured(name: &'static str) -> Self {
        Self {
            state: State::NotConfigured,
            ..Self::new(name)
        }
    }

    fn info(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Info(text.into()));
    }

    fn warn(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Warning(text.into()));
    }

    /// A wrong setting: `text` names the key (`RK-CFG-001: server.listen: …`).
    fn error(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Error {
            text: text.into(),
            unavailable: false,
        });
    }

    fn bad(&mut self, key: &str, why: impl fmt::Display) {
        self.error(format!("RK-CFG-001: {key}: {why}"));
    }

    fn unavailable(&mut self, text: impl Into<String>) {
        self.lines.push(Line::Error {
            text: text.into(),
            unavailable: true,
        });
    }

    fn setup_error(&mut self, e: &SetupError) {
        match e {
            SetupError::Config { .. } | SetupError::Tls(_) => self.error(e.to_string()),
            SetupError::Bind(_) | SetupError::Directory(_) => self.unavailable(e.to_string()),
        }
    }

    fn directory_error(&mut self, key: &str, e: &DirectoryError) {
        self.unavailable(format!("{key}: {e}"));
    }

    /// No error in this section (absent optional sections are fine).
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// The warnings (settings that work but deserve a look).
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match l {
            Line::Warning(text) => Some(text.as_str()),
            _ => None,
        })
    }

    /// The errors, each naming its key.
    pub fn errors(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().filter_map(|l| match l {
            Line::Error { text, .. } => Some(text.as_str()),
            _ => None,
        })
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head = match (&self.state, self.is_ok()) {
            (State::NotConfigured, _) => "not configured (needed by rekey serve)",
            (State::NotChecked(why), _) => why,
            (State::Checked, true) => "ok",
            (State::Checked, false) => "FAILED",
        };
        writeln!(f, "{:<10} {head}", self.name)?;
        for line in &self.lines {
            match line {
                Line::Info(t) => writeln!(f, "  {t}")?,
                Line::Warning(t) => writeln!(f, "  warning: {t}")?,
                Line::Error { text, .. } => writeln!(f, "  error: {text}")?,
            }
        }
        Ok(())
    }
}

/// Every section, in the order of `rekey.example.toml`.
#[derive(Debug, Clone)]
pub struct Report {
    pub sections: Vec<Section>,
}

impl Report {
    /// `Ok` when no section failed, else which ones did.
    ///
    /// # Errors
    /// `CheckFailed` naming the failed sections, with the exit code to use.
    pub fn verdict(&self) -> Result<(), CheckFailed> {
        let failed: Vec<&Section> = self.sections.iter().filter(|s| !s.is_ok()).collect();
        if failed.is_empty() {
            return Ok(());
        }
        let only_unavailable = failed.iter().flat_map(|s| &s.lines).all(|l| match l {
            Line::Error { unavailable, .. } => *unavailable,
            _ => true,
        });
        Err(CheckFailed {
            sections: failed.iter().map(|s| s.name).collect(),
            exit_code: if only_unavailable { 3 } else { 2 },
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.sections {
            write!(f, "{s}")?;
        }
        // A failure is the caller's to print (as the command's error, on stderr).
        match self.verdict() {
            Ok(()) => writeln!(f, "config check: every section ok"),
            Err(_) => Ok(()),
        }
    }
}

/// The check failed in these sections (their errors are in the printed report).
#[derive(Debug, thiserror::Error)]
#[error("RK-CFG-005: the configuration has errors in: {}", .sections.join(", "))]
pub struct CheckFailed {
    pub sections: Vec<&'static str>,
    exit_code: u8,
}

impl CheckFailed {
    /// 2 when a setting is wrong, 3 when only peers (DCs, database) did not answer.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

/// `rekey config check`: check every section, print the report on stdout, fail if any failed.
///
/// # Errors
/// `CheckFailed` after all sections were checked and printed.
pub async fn run(config: &Config) -> Result<(), CheckFailed> {
    let report = check(config).await;
    print!("{report}");
    report.verdict()
}

/// Check every section. Never stops at the first problem.
pub async fn check(config: &Config) -> Report {
    let mut version = Section::new("version");
    version.info(format!("{} (this Rekey reads {VERSION})", config.version));
    let (directory, ad) = directory(&config.directory).await;
    let (tier, scope) = match &ad {
        Some(ad) => (tier(ad, config).await, scope(ad, config).await),
        None => {
            let why = "not checked: the directory is not reachable";
            let mut tier = Section::new("tier");
            tier.state = State::NotChecked(why);
            let mut scope = Section::new("scope");
            scope.state = State::NotChecked(why);
            (tier, scope)
        }
    };
    let server = config
        .server
        .as_ref()
        .map_or_else(|| Section::not_configured("server"), server);
    let store = match &config.store {
        Some(s) => store(s).await,
        None => Section::not_configured("store"),
    };
    let smtp = config
        .smtp
        .as_ref()
        .map_or_else(|| Section::not_configured("smtp"), smtp);
    let mut engine = Section::new("engine");
    match config.engine.validate() {
        Ok(()) => engine.info("tunables within the design's bounds"),
        Err(e) => engine.error(e.to_string()),
    }
    let mut passwords = Section::new("passwords");
    match config.passwords.banned_list() {
        Ok(list) => passwords.info(format!(
            "{} banned terms ({})",
            list.len(),
            if config.passwords.global_banned_list {
                "Rekey's list and yours"
            } else {
                "yours only: Rekey's list is off"
            }
        )),
        Err(e) => passwords.error(e.to_string()),
    }
    match config.passwords.breached() {
        Ok(None) => passwords.info("breached-password check: off"),
        Ok(Some(source)) => {
            // A look-up of a password everyone has leaked proves the source answers.
            let probe = rekey_core::Password::from("password");
            match source.times_seen(&probe).await {
                Ok(Some(n)) => passwords.info(format!(
                    "breached-password check answers (a well-known password: seen {n} times)"
                )),
                Ok(None) => passwords.warn(
                    "breached-password source answers but does not know \"password\": is it \
                     the full corpus?",
                ),
                Err(e) if config.passwords.breached_fail_closed => passwords.error(format!(
                    "{e}: with breached_fail_closed every reset is refused while it is down"
                )),
                Err(e) => passwords.unavailable(e.to_string()),
            }
        }
        Err(e) => passwords.error(e.to_string()),
    }
    let entra = match config.entra() {
        Some(e) => entra(e).await,
        None => Section::not_configured("entra"),
    };
    Report {
        sections: vec![
            version,
            directory,
            tier,
            server,
            store,
            smtp,
            scope,
            engine,
            passwords,
            entra,
            keys_and_audit(config),
            api_section(config, true),
            helpdesk_section(config),
        ],
    }
}

/// `[api]`: the integrations' entries (names, hashes, scopes).
fn api_section(config: &Config, summary: bool) -> Section {
    let mut api = Section::new("api");
    if summary {
        match config.api.summary() {
            Ok(text) => api.info(text),
            Err(e) => api.error(e.to_string()),
        }
    } else if let Err(e) = config.api.clients() {
        api.error(e.to_string());
    }
    api
}

/// `[secrets]` (the key files load) and `[audit]` (the forwarder's settings): files only.
fn keys_and_audit(config: &Config) -> Section {
    let mut s = Section::new("secrets and audit");
    match &config.secrets.key_dir {
        Some(dir) => match crate::keys::load_dir(dir) {
            Ok(keys) => s.info(format!(
                "{} key file(s) in {}; new secrets are sealed under {}",
                keys.len(),
                dir.display(),
                keys.keys().next_back().map_or("", String::as_str)
            )),
            Err(e) => s.error(e.to_string()),
        },
        None => s.info("secrets sealed under the key derived from server.secret_key_file"),
    }
    match crate::forward::checked(config.audit.forward.as_ref()) {
        Ok(Some(_)) => s.info("audit records are forwarded ([audit.forward])"),
        Ok(None) => s.info("audit forwarding: off"),
        Err(e) => s.error(e.to_string()),
    }
    s
}

/// The sections that need no peer (no DC, database, relay or Graph is contacted and nothing is
/// created): version, directory settings, server, smtp settings, engine, banned list, gates.
/// `rekey doctor` starts with these.
#[must_use]
pub fn offline(config: &Config) -> Vec<Section> {
    let mut version = Section::new("version");
    if config.version == VERSION {
        version.info(format!("{}", config.version));
    } else {
        version.bad(
            "version",
            format!("{} (this Rekey reads {VERSION})", config.version),
        );
    }
    let mut directory = Section::new("directory");
    if let Err(e) = rekey_directory::probe::check_settings(&config.directory) {
        directory.error(e.to_string());
    }
    if config.directory.allow_plaintext {
        directory.warn(
            "directory.allow_plaintext = true: with an ldap:// URL, passwords cross the network \
             in clear text (lab only)",
        );
    }
    let server = config
        .server
        .as_ref()
        .map_or_else(|| Section::not_configured("server"), server);
    let smtp = config
        .smtp
        .as_ref()
        .map_or_else(|| Section::not_configured("smtp"), smtp);
    let mut engine = Section::new("engine");
    if let Err(e) = config.engine.validate() {
        engine.error(e.to_string());
    }
    let mut passwords = Section::new("passwords");
    if let Err(e) = config.passwords.banned_list() {
        passwords.error(e.to_string());
    }
    let mut gates = Section::new("gates");
    if let Err(e) = config.gates.gates() {
        gates.error(e.to_string());
    }
    let mut entra = Section::new("entra");
    if let Some(section) = config.entra() {
        let mut engine = rekey_core::engine::EngineConfig::default();
        if let Err(e) = section.apply(&mut engine) {
            entra.error(e.to_string());
        }
        if let Err(e) = section.zone_config() {
            entra.error(e.to_string());
        }
    }
    vec![
        version,
        directory,
        server,
        smtp,
        engine,
        passwords,
        gates,
        entra,
        keys_and_audit(config),
        api_section(config, false),
        helpdesk_section(config),
    ]
}

/// `[helpdesk]` against `[gates.privileged]`: served privileged users need approvers.
fn helpdesk_section(config: &Config) -> Section {
    let mut s = Section::new("helpdesk");
    if let Err(e) = config
        .helpdesk
        .validate_for_privileged(config.gates.privileged.is_some())
    {
        s.error(e.to_string());
    }
    s
}

/// `[entra]`: the credential reads, a token comes, and Graph answers one read with it.
async fn entra(section: &crate::config::EntraSection) -> Section {
    let mut s = Section::new("entra");
    let mut engine = rekey_core::engine::EngineConfig::default();
    if let Err(e) = section.apply(&mut engine) {
        s.error(e.to_string());
    }
    let zone = match section
        .zone_config()
        .map_err(|e| e.to_string())
        .and_then(|c| rekey_entra::EntraId::new(c).map_err(|e| e.to_string()))
    {
        Ok(z) => z,
        Err(e) => {
            s.error(e);
            return s;
        }
    };
    match zone.check().await {
        Ok(report) => s.info(report.to_string()),
        Err(e) => s.unavailable(e.to_string()),
    }
    s.info(format!(
        "synced users: proof within {} s (look every {} s); failed cloud writes retried for {} s",
        engine.sync_deadline, engine.sync_poll, engine.zone_retry_window
    ));
    s
}

/// Connect to all DCs together (PDC emulator, domain SID, policy) and to each one alone.
async fn directory(config: &AdConfig) -> (Section, Option<ActiveDirectory>) {
    let mut s = Section::new("directory");
    let ad = match ActiveDirectory::connect(config).await {
        Ok(ad) => ad,
        Err(e) => {
            s.setup_error(&e);
            return (s, None);
        }
    };
    s.info(format!("base          {}", ad.base_dn()));
    if config.urls.len() > 1 {
        for url in &config.urls {
            let one = AdConfig {
                urls: vec![url.clone()],
                ..config.clone()
            };
            match ActiveDirectory::connect(&one).await {
                Ok(dc) if dc.domain_sid() == ad.domain_sid() => {
                    s.info(format!("DC            {url} ok"));
                }
                Ok(dc) => s.bad(
                    "directory.urls",
                    format!(
                        "{url} serves domain {}, the others {}",
                        dc.domain_sid(),
                        ad.domain_sid()
                    ),
                ),
                Err(e) => s.unavailable(format!("directory.urls: {url}: {e}")),
            }
        }
    }
    s.info(format!(
        "PDC emulator  {}",
        ad.pdc_url().unwrap_or("not among directory.urls")
    ));
    if ad.pdc_url().is_none() {
        s.warn("the PDC emulator is not among directory.urls: writes use the configured order");
    }
    s.info(format!("domain SID    {}", ad.domain_sid()));
    match ad.domain_policy().await {
        Ok(p) => s.info(format!(
            "policy        {}",
            crate::admin::describe_policy(&p)
        )),
        Err(e) => s.directory_error("directory", &e),
    }
    if config.allow_plaintext {
        s.warn(
            "directory.allow_plaintext = true: with an ldap:// URL, passwords cross the network \
             in clear text (lab only)",
        );
    }
    (s, Some(ad))
}

/// Resolve group DNs to SIDs, one line each.
async fn groups(s: &mut Section, ad: &ActiveDirectory, key: &str, dns: &[String]) {
    for dn in dns {
        match ad.group_sid(dn).await {
            Ok(Some(sid)) => s.info(format!("{dn}  {sid}")),
            Ok(None) => s.bad(key, format!("group {dn} not found")),
            Err(e) => s.directory_error(key, &e),
        }
    }
}

async fn tier(ad: &ActiveDirectory, config: &Config) -> Section {
    let mut s = Section::new("tier");
    let extra = &config.tier.protected_groups;
    if extra.is_empty() {
        s.info("built-in protected groups only");
    }
    groups(&mut s, ad, "tier.protected_groups", extra).await;
    s
}

async fn scope(ad: &ActiveDirectory, config: &Config) -> Section {
    let mut s = Section::new("scope");
    let scope = &config.scope;
    if scope.groups.is_empty() {
        s.info("groups: everyone (scope.groups is empty)");
    }
    groups(&mut s, ad, "scope.groups", &scope.groups).await;
    if let Some(pilot) = &scope.pilot_group {
        s.info("pilot: only members of the pilot group");
        groups(&mut s, ad, "scope.pilot_group", std::slice::from_ref(pilot)).await;
    }
    for (key, ous) in [
        ("scope.allow_ous", &scope.allow_ous),
        ("scope.deny_ous", &scope.deny_ous),
    ] {
        for ou in ous {
            match ou_problem(ou, ad.base_dn()) {
                Some(why) => s.bad(key, why),
                None => s.info(format!("{key}: {ou}")),
            }
        }
    }
    s
}

/// Why `ou` cannot match any account of the domain `base` (accounts match by DN suffix).
fn ou_problem(ou: &str, base: &str) -> Option<String> {
    let norm = |dn: &str| {
        dn.split(',')
            .map(|rdn| rdn.trim().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",")
    };
    let (ou_n, base_n) = (norm(ou), norm(base));
    if ou.trim().is_empty() || !ou.contains('=') {
        return Some(format!("{ou:?} is not a DN like OU=Staff,{base}"));
    }
    if ou_n != base_n && !ou_n.ends_with(&format!(",{base_n}")) {
        return Some(format!(
            "{ou} is not under the domain {base}: no account could match"
        ));
    }
    if ou_n != ou.to_ascii_lowercase() {
        return Some(format!(
            "{ou} has spaces around its commas; accounts match by exact DN suffix: write it \
             without them"
        ));
    }
    None
}

/// `[server]`: everything but the port being free (the portal may be running).
pub fn server(server: &ServerConfig) -> Section {
    let mut s = Section::new("server");
    match listen(&server.listen) {
        Ok(addr) => {
            s.info(format!("listen        {addr}"));
            if addr.ip().is_loopback() && server.trusted_proxies.is_empty() {
                s.warn(
                    "server.listen is loopback but trusted_proxies is empty: if a reverse proxy \
                     on this host forwards to Rekey, every user shares its IP and so one \
                     engine.per_ip_attempts_per_hour budget; list it in trusted_proxies",
                );
            }
        }
        Err(why) => s.bad("server.listen", why),
    }
    match public_base_url(&server.public_base_url) {
        Ok(warning) => {
            s.info(format!("public URL    {}", server.public_base_url));
            if let Some(w) = warning {
                s.warn(w);
            }
        }
        Err(why) => s.bad("server.public_base_url", why),
    }
    if server.organisation.trim().is_empty() {
        s.bad(
            "server.organisation",
            "must not be empty: pages and mail show it",
        );
    }
    match read_secret_key(&server.secret_key_file) {
        Ok(_) => {
            s.info(format!(
                "code key      {} (32 bytes)",
                server.secret_key_file.display()
            ));
            if let Some(w) = key_file_mode(&server.secret_key_file) {
                s.warn(w);
            }
        }
        Err(e) => s.error(e.to_string()),
    }
    for ip in &server.trusted_proxies {
        if ip.is_unspecified() || ip.is_multicast() || *ip == IpAddr::from([255, 255, 255, 255]) {
            s.bad(
                "server.trusted_proxies",
                format!("{ip} is not the address of a proxy"),
            );
        }
    }
    if !server.trusted_proxies.is_empty() {
        let list: Vec<String> = server
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        s.info(format!("proxies       {}", list.join(", ")));
    }
    for (key, ms) in [
        ("server.identify_deadline_ms", server.identify_deadline_ms),
        ("server.answer_deadline_ms", server.answer_deadline_ms),
        ("server.password_deadline_ms", server.password_deadline_ms),
    ] {
        if !(1..=MAX_DEADLINE_MS).contains(&ms) {
            s.bad(key, format!("must be between 1 and {MAX_DEADLINE_MS} (ms)"));
        }
    }
    s
}

/// `server.listen`: an IP address and a port (a host name could resolve to another family).
fn listen(raw: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = raw.trim().parse().map_err(|_| {
        format!("{raw:?} is not an IP address and port, e.g. 127.0.0.1:8080 or [::]:8443")
    })?;
    if addr.port() == 0 {
        return Err(format!("{raw:?}: port 0 would pick a random port"));
    }
    Ok(addr)
}

/// `server.public_base_url`: an absolute `https://` URL; `http://` for localhost with a warning.
fn public_base_url(raw: &str) -> Result<Option<String>, String> {
    let example = "e.g. https://password.corp.example.com";
    let url = url::Url::parse(raw.trim())
        .map_err(|e| format!("{raw:?} is not an absolute URL ({e}); {example}"))?;
    let Some(host) = url.host() else {
        return Err(format!("{raw:?} has no host; {example}"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?} must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{raw:?} must not have a query (?…) or fragment (#…)"
        ));
    }
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => Ok(None),
        "http" if loopback => Ok(Some(format!(
            "server.public_base_url {raw:?} is plain HTTP: fine on this machine, never for users"
        ))),
        "http" => Err(format!(
            "{raw:?} is plain HTTP: the links in mail and the session cookie need https:// \
             (http:// only for localhost)"
        )),
        other => Err(format!(
            "{raw:?} has scheme {other}:, not https:; {example}"
        )),
    }
}

/// A warning when the key file is readable by others than its owner.
#[cfg(unix)]
fn key_file_mode(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "server.secret_key_file {} is readable by group or others (mode {:o}): chmod 600",
            path.display(),
            mode & 0o777
        )
    })
}

#[cfg(not(unix))]
fn key_file_mode(_: &std::path::Path) -> Option<String> {
    None
}

/// `[store]`: connect (this applies pending migrations, as `rekey serve` would) and ping.
async fn store(config: &StoreConfig) -> Section {
    let mut s = Section::new("store");
    let fail = |s: &mut Section, e: &StoreError| match e {
        StoreError::Unavailable(_) => s.unavailable(format!("store.url: {e}")),
        _ => s.bad("store.url", e),
    };
    match rekey_store::SqlStore::connect(&config.url).await {
        Ok(db) => {
            match db.ping().await {
                Ok(()) => s.info(match db.backend() {
                    rekey_store::Backend::Sqlite => "SQLite database open, schema up to date",
                    rekey_store::Backend::Postgres => {
                        "PostgreSQL database reachable, schema up to date"
                    }
                }),
                Err(e) => fail(&mut s, &e),
            }
            db.close().await;
        }
        Err(e) => fail(&mut s, &e),
    }
    s
}

/// `[smtp]`: build the mailer (settings, password file, CA). The relay is not contacted.
fn smtp(config: &rekey_notify::SmtpConfig) -> Section {
    let mut s = Section::new("smtp");
    match rekey_notify::SmtpMailer::new(config) {
        Ok(_) => {
            s.info(format!(
                "relay         {}:{} (tls = {})",
                config.host,
                config.effective_port(),
                format!("{:?}", config.tls).to_ascii_lowercase()
            ));
            s.info("settings checked; the relay is not contacted (that would mean sending mail)");
            if config.tls == rekey_notify::TlsMode::None && !config.host_is_loopback() {
                s.warn(format!(
                    "smtp.tls = \"none\": codes travel unencrypted to {}",
                    config.host
                ));
            }
        }
        Err(e) => s.error(e.to_string()),
    }
    s
}

#[cfg(test)]
mod tests;
