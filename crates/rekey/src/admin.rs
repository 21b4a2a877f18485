//! Operator commands: look at an account, reset, unlock, change.

use std::fmt::Write as _;
use std::time::Duration;

use rekey_core::audit::Actor;
use rekey_core::engine::{EngineError, RequestContext, ResetOutcome};
use rekey_core::{
    Account, Directory, Identifier, LandingError, PasswordPolicy, PolicySource, ProtectedGroups,
    ResetOptions, Tier, UserFacing,
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
    Engine(EngineError),
    #[error("RK-CLI-002: {0}")]
    Input(#[from] std::io::Error),
    #[error("RK-AUDIT-001: the audit chain is broken: {0}")]
    AuditBroken(rekey_core::audit::ChainBreak),
    #[error("RK-STORE-001: {0}")]
    Store(#[from] rekey_core::store::StoreError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Setup(SetupError::Config { .. } | SetupError::Tls(_)) | Self::Config(_) => 2,
            Self::Engine(EngineError::Landing(LandingError::Indeterminate { .. })) => 4,
            Self::Setup(_)
            | Self::Directory(_)
            | Self::Store(_)
            | Self::Engine(
                EngineError::Landing(LandingError::Unavailable { .. })
                | EngineError::Directory(_)
                | EngineError::Store(_),
            ) => 3,
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

/// The operator running the CLI, as the OS knows them (named in every audit record).
fn operator() -> String {
    std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown-operator".into())
}

/// The request context of a CLI command: the operator as actor, a fresh support id.
fn operator_context(engine: &rekey_core::engine::Engine, command: &str) -> RequestContext {
    RequestContext {
        client_ip: None,
        user_agent: Some(format!("rekey {command}")),
        support_id: engine.support_id(),
        actor: Actor::Admin(operator()),
    }
}

/// The engine error, with its cause in the log for the operator (never the password), and
/// the rules a refused password broke on stderr.
fn refused(e: EngineError, support_id: &str) -> CliError {
    match &e {
        EngineError::Landing(l) => {
            tracing::info!(code = e.code(), support_id, diagnostic = %l.diagnostic(), "refused");
        }
        EngineError::Policy { violations, .. } => {
            for v in violations {
                eprintln!("  {}", violation(v));
            }
        }
        _ => {}
    }
    eprintln!("  support id {support_id}");
    CliError::Engine(e)
}

fn violation(v: &rekey_core::Violation) -> String {
    use rekey_core::Violation as V;
    match v {
        V::Empty => "the password is empty".into(),
        V::TooShort { min, .. } => format!("shorter than {min} characters"),
        V::TooFewCategories { found } => format!(
            "uses {found} of the character kinds (upper, lower, digit, symbol, other); 3 are needed"
        ),
        V::ContainsName => "contains the account name or part of the display name".into(),
        V::TooLong => "longer than 256 characters".into(),
        V::Banned => "too easy to guess (a banned word, a name or a common pattern)".into(),
        V::Breached => "appears in known data breaches".into(),
        V::CloudCharacters => {
            "has characters Entra ID refuses (only printable ASCII: letters, digits, space, \
             symbols)"
                .into()
        }
    }
}

/// One line per zone, and the support id of the audit record.
fn print_outcome(sam: &str, what: &str, out: &ResetOutcome) -> Result<(), CliError> {
    for z in &out.zones {
        let detail = match (z.secs, &z.code) {
            (Some(s), _) => format!(" ({s} s)"),
            (None, Some(code)) => format!(" ({code})"),
            _ => String::new(),
        };
        println!("{sam}: {what}: {} {}{detail}", z.zone, z.state.as_str());
    }
    if out.receipt.is_some() {
        println!("  the rest continues from the outbox of `rekey serve` (audited)");
    }
    println!("  support id {}", out.support_id);
    Ok(())
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

/// Set a new password as an operator: through the engine (scope, tier, AD's policy, audit).
pub async fn reset(
    config: &Config,
    name: &str,
    unlock: bool,
    must_change: bool,
) -> Result<(), CliError> {
    let built = crate::portal::engine(config, false).await?;
    let ctx = operator_context(&built.engine, "admin reset");
    let new = secrets::read(&format!("New password for {name}: "), true)?;
    let options = ResetOptions {
        unlock,
        must_change,
        replay_of: None,
    };
    let out = built
        .engine
        .admin_reset(&ctx, name, &new, options)
        .await
        .map_err(|e| refused(e, &ctx.support_id))?;
    print_outcome(name, "password reset", &out)
}

pub async fn unlock(config: &Config, name: &str) -> Result<(), CliError> {
    let built = crate::portal::engine(config, false).await?;
    let ctx = operator_context(&built.engine, "admin unlock");
    let out = built
        .engine
        .admin_unlock(&ctx, name)
        .await
        .map_err(|e| refused(e, &ctx.support_id))?;
    print_outcome(name, "unlocked", &out)
}

/// A change with the current password, through the engine like the portal's (same budgets).
pub async fn change(config: &Config, name: &str) -> Result<(), CliError> {
    let built = crate::portal::engine(config, false).await?;
    let ctx = operator_context(&built.engine, "change");
    let old = secrets::read("Current password: ", false)?;
    let new = secrets::read("New password: ", true)?;
    let out = built
        .engine
        .change(&ctx, name, &old, &new)
        .await
        .map_err(|e| refused(e, &ctx.support_id))?;
    println!("{name}: changed\n  support id {}", out.support_id);
    Ok(())
}

/// Register a recovery email as the operator (e.g. bulk onboarding, the dev demo). The engine's
/// cool-down runs from now; the old and new addresses are told; the operator is audited.
pub async fn enroll(config: &Config, name: &str, email: &str) -> Result<(), CliError> {
    let built = crate::portal::engine(config, false).await?;
    let ctx = operator_context(&built.engine, "admin enroll");
    built
        .engine
        .admin_enroll(&ctx, name, email)
        .await
        .map_err(|e| refused(e, &ctx.support_id))?;
    println!(
        "{name}: recovery email registered\n  support id {}",
        ctx.support_id
    );
    Ok(())
}

/// `rekey admin helpdesk-code USER`: a one-time code for a caller the operator verified.
pub async fn helpdesk_code(config: &Config, name: &str) -> Result<(), CliError> {
    let built = crate::portal::engine(config, false).await?;
    let ctx = operator_context(&built.engine, "admin helpdesk-code");
    let code = built
        .engine
        .helpdesk_code(&ctx, name)
        .await
        .map_err(|e| refused(e, &ctx.support_id))?;
    let (a, b) = code.split_at(code.len() / 2);
    println!(
        "{name}: helpdesk code {a} {b}\n  single use; the user types it on the code page\n  support id {}",
        ctx.support_id
    );
    Ok(())
}

/// `rekey admin enrollment-report`: users whose methods do not meet their tier's gates.
pub async fn enrollment_report(config: &Config, names: &[String]) -> Result<(), CliError> {
    let built = crate::portal::engine(config, false).await?;
    let rows = built
        .engine
        .enrollment_report(names)
        .await
        .map_err(CliError::Engine)?;
    if rows.is_empty() {
        println!("every listed user has the methods their tier needs");
    }
    for r in rows {
        let methods: Vec<&str> = r.methods.iter().map(|m| m.as_str()).collect();
        println!(
            "{}\t{}\tneeds {}\thas {}",
            r.sam_account_name,
            if r.privileged {
                "privileged"
            } else {
                "standard"
            },
            r.needed,
            if methods.is_empty() {
                "nothing".to_owned()
            } else {
                methods.join(",")
            }
        );
    }
    Ok(())
}
