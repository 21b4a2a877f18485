//! Operator commands: look at an account, reset, unlock, change.

use std::fmt::Write as _;
use std::time::Duration;

use rekey_core::{
    Account, Directory, Identifier, LandingError, LandingZone, PasswordPolicy, PolicySource,
    ProtectedGroups, ResetOptions, Tier, UserFacing,
};
use rekey_directory::{ActiveDirectory, SetupError};

use crate::config::Config;
use crate::secrets;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Setup(#[from] SetupError),
    #[error("RK-CLI-001: {0:?} is not a valid account name")]
    BadName(String),
    #[error("RK-DIR-002: no account matches {0:?}")]
    NotFound(String),
    #[error("{code}: {message}", code = .0.code(), message = .0.message())]
    Directory(#[from] rekey_core::DirectoryError),
    #[error("{code}: {message}", code = .0.code(), message = .0.message())]
    Landing(LandingError),
    #[error("RK-CLI-002: {0}")]
    Input(#[from] std::io::Error),
    #[error("RK-AUDIT-001: the audit chain is broken: {0}")]
    AuditBroken(rekey_core::audit::ChainBreak),
    #[error(
        "RK-TIER-001: {0} is a privileged account (member of a protected group); Rekey does not \
         reset or unlock privileged accounts: use your tier-0 procedure"
    )]
    Privileged(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Setup(SetupError::Config { .. } | SetupError::Tls(_)) => 2,
            Self::Landing(LandingError::Indeterminate { .. }) => 4,
            Self::Setup(_)
            | Self::Directory(_)
            | Self::Landing(LandingError::Unavailable { .. }) => 3,
            _ => 1,
        }
    }
}

async fn connect(config: &Config) -> Result<ActiveDirectory, CliError> {
    Ok(ActiveDirectory::connect(&config.directory).await?)
}

async fn lookup(ad: &ActiveDirectory, name: &str) -> Result<Account, CliError> {
    let id = Identifier::parse(name).ok_or_else(|| CliError::BadName(name.to_owned()))?;
    ad.find(&id)
        .await?
        .ok_or_else(|| CliError::NotFound(name.to_owned()))
}

/// The built-in protected groups plus `tier.protected_groups`, resolved to SIDs.
async fn protected_groups(
    ad: &ActiveDirectory,
    config: &Config,
) -> Result<ProtectedGroups, CliError> {
    let mut extra = Vec::new();
    for dn in &config.tier.protected_groups {
        match ad.group_sid(dn).await? {
            Some(sid) => extra.push((sid, dn.clone())),
            None => tracing::warn!(group = %dn, "tier.protected_groups: group not found"),
        }
    }
    Ok(ad.protected_groups(extra))
}

/// Look an account up for a write, refusing privileged ones. Samba has no AdminSDHolder, so
/// the DC itself would let the delegated service account reset a Domain Admin: Rekey must not.
async fn lookup_for_write(
    ad: &ActiveDirectory,
    config: &Config,
    name: &str,
) -> Result<Account, CliError> {
    let account = lookup(ad, name).await?;
    match protected_groups(ad, config).await?.classify(&account) {
        Tier::Normal => Ok(account),
        Tier::Privileged { .. } => Err(CliError::Privileged(account.sam_account_name)),
    }
}

/// Log the cause (for operators), return the two-faced error.
fn landing_failed(e: LandingError) -> CliError {
    tracing::info!(code = e.code(), diagnostic = %e.diagnostic(), "landing failed");
    CliError::Landing(e)
}

fn days(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => "none".into(),
        s if s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

pub fn describe_policy(p: &PasswordPolicy) -> String {
    let source = match &p.source {
        PolicySource::Domain => "domain policy".to_owned(),
        PolicySource::Pso { name, .. } => format!("fine-grained policy {name}"),
    };
    let lockout = if p.lockout_threshold == 0 {
        "never locks out".to_owned()
    } else {
        format!(
            "locks after {} failures for {}",
            p.lockout_threshold,
            days(p.lockout_duration)
        )
    };
    format!(
        "{source}: min length {}, complexity {}, history {}, min age {}, max age {}, {lockout}",
        p.min_length,
        if p.complexity { "on" } else { "off" },
        p.history_length,
        days(p.min_age),
        p.max_age.map_or_else(|| "never".to_owned(), days),
    )
}

pub async fn show_user(config: &Config, name: &str) -> Result<(), CliError> {
    let ad = connect(config).await?;
    let account = lookup(&ad, name).await?;
    let protected = protected_groups(&ad, config).await?;
    let policy = ad.effective_policy(&account).await?;
    let s = &account.state;
    let mut flags = vec![if s.enabled { "enabled" } else { "DISABLED" }];
    if s.locked {
        flags.push("LOCKED OUT");
    }
    if s.must_change {
        flags.push("must change password at next logon");
    }
    if s.password_expired {
        flags.push("password EXPIRED");
    }
    if s.smartcard_required {
        flags.push("smartcard required");
    }
    if s.password_never_expires {
        flags.push("password never expires");
    }
    let tier = match protected.classify(&account) {
        Tier::Normal => "normal".to_owned(),
        Tier::Privileged { via } if via.is_empty() => {
            "PRIVILEGED (built-in Administrator)".to_owned()
        }
        Tier::Privileged { via } => format!(
            "PRIVILEGED via {}",
            via.iter()
                .map(|sid| protected.name_of(sid).unwrap_or("?"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", account.sam_account_name);
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(out, "  {k:<14}{v}");
    };
    row("name", account.display_name.as_deref().unwrap_or("-"));
    row("dn", &account.dn);
    row("guid", &account.guid.to_string());
    row("upn", account.user_principal_name.as_deref().unwrap_or("-"));
    row("mail", account.mail.as_deref().unwrap_or("-"));
    row("state", &flags.join(", "));
    row("bad logons", &s.bad_pwd_count.to_string());
    row("tier", &tier);
    row(
        "groups",
        &format!("{} (transitive, incl. primary)", account.groups.len()),
    );
    row("policy", &describe_policy(&policy));
    print!("{out}");
    Ok(())
}

pub async fn reset(
    config: &Config,
    name: &str,
    unlock: bool,
    must_change: bool,
) -> Result<(), CliError> {
    let ad = connect(config).await?;
    let account = lookup_for_write(&ad, config, name).await?;
    let new = secrets::read(
        &format!("New password for {}: ", account.sam_account_name),
        true,
    )?;
    let landed = ad
        .reset(
            &account,
            &new,
            ResetOptions {
                unlock,
                must_change,
            },
        )
        .await
        .map_err(landing_failed)?;
    println!(
        "{}: password reset ({} landed via {})",
        account.sam_account_name, landed.zone, landed.server
    );
    Ok(())
}

pub async fn unlock(config: &Config, name: &str) -> Result<(), CliError> {
    let ad = connect(config).await?;
    let account = lookup_for_write(&ad, config, name).await?;
    let landed = ad.unlock(&account).await.map_err(landing_failed)?;
    println!(
        "{}: unlocked ({} via {})",
        account.sam_account_name, landed.zone, landed.server
    );
    Ok(())
}

pub async fn change(config: &Config, name: &str) -> Result<(), CliError> {
    let ad = connect(config).await?;
    let account = lookup(&ad, name).await?;
    let old = secrets::read("Current password: ", false)?;
    let new = secrets::read("New password: ", true)?;
    let landed = ad
        .change(&account, &old, &new)
        .await
        .map_err(landing_failed)?;
    println!(
        "{}: password changed ({} via {})",
        account.sam_account_name, landed.zone, landed.server
    );
    Ok(())
}

pub async fn check(config: &Config) -> Result<(), CliError> {
    let ad = connect(config).await?;
    let policy = ad.domain_policy().await?;
    println!("config ok; base {}", ad.base_dn());
    println!(
        "  PDC emulator  {}",
        ad.pdc_url().unwrap_or("not among directory.urls")
    );
    println!("  domain SID    {}", ad.domain_sid());
    println!("  policy        {}", describe_policy(&policy));
    Ok(())
}

/// Register a recovery email as the operator (e.g. bulk onboarding, the dev demo). The engine's
/// cool-down still applies from now; the action is audited with the operator as actor.
pub async fn enroll(config: &Config, name: &str, email: &str) -> Result<(), CliError> {
    use rekey_core::audit::{Actor, AuditEvent, Operation};
    use rekey_core::store::Store;
    use rekey_core::store::{Enrollment, MethodKind};
    let ad = connect(config).await?;
    let account = lookup_for_write(&ad, config, name).await?;
    if !email.contains('@') || email.chars().any(char::is_whitespace) {
        return Err(CliError::BadName(email.to_owned()));
    }
    let store = crate::serve::store(config).await?;
    let now = std::time::SystemTime::now();
    let store_err =
        |e: rekey_core::store::StoreError| CliError::Input(std::io::Error::other(e.to_string()));
    store
        .upsert_enrollment(&Enrollment {
            user: account.guid,
            method: MethodKind::Email,
            value: email.to_owned(),
            verified_at: rekey_core::clock::unix(now),
        })
        .await
        .map_err(store_err)?;
    let operator = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "operator".into());
    let event = AuditEvent {
        at_ms: rekey_core::clock::unix_ms(now),
        support_id: "admin".into(),
        actor: Actor::Admin(operator),
        operation: Operation::Enroll,
        result: "ok".into(),
        client_ip: None,
        user_agent: Some("rekey admin enroll".into()),
        target_guid: Some(account.guid.to_string()),
        target_sam: Some(account.sam_account_name.clone()),
        methods: vec!["email".into()],
        zones: vec![],
        error_code: None,
    };
    store.append_audit(&event).await.map_err(store_err)?;
    println!("{}: recovery email registered", account.sam_account_name);
    Ok(())
}

/// `rekey audit verify`: walk the whole chain from the first record.
pub async fn audit_verify(config: &Config) -> Result<(), CliError> {
    use rekey_core::audit::{GENESIS, verify};
    use rekey_core::store::Store;
    let store = crate::serve::store(config).await?;
    let mut at = (0, GENESIS);
    loop {
        let page = store
            .audit_after(at.0, 10_000)
            .await
            .map_err(|e| CliError::Input(std::io::Error::other(e.to_string())))?;
        if page.is_empty() {
            break;
        }
        at = verify(&page, at).map_err(CliError::AuditBroken)?;
    }
    println!("audit chain intact: {} records", at.0);
    Ok(())
}
