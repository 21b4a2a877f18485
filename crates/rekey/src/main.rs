//! `rekey`: the binary that wires Rekey's adapters together.

use rekey::{admin, api_token, audit_chain, audit_cmd, check, config, doctor, keys, remind, serve};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rekey",
    version,
    about = "Self-service password reset for Active Directory"
)]
struct Cli {
    /// Config file (TOML). Every key can be overridden with REKEY_SECTION__KEY variables.
    #[arg(
        long,
        short,
        env = "REKEY_CONFIG",
        default_value = "rekey.toml",
        global = true
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Helpdesk and operator commands.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Change a password knowing the current one (prompts for both, no echo).
    Change {
        /// sAMAccountName, DOMAIN\name, UPN or mail.
        user: String,
    },
    /// Check the configuration and the connection to every DC.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check a deployment: DCs (TLS, bind, clock, PDC), the service account's rights, accounts
    /// delegation cannot reach, privileged accounts in scope, policies, SMTP, SMS, store and
    /// other reset authorities. Reads only. Exit code: 0 all pass, 1 warnings, 2 failures.
    Doctor {
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the self-service portal.
    Serve,
    /// The audit chain.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Show an account: state, tier and the groups that make it, effective password policy.
    User { user: String },
    /// Set a new password (prompted without echo, or read from stdin; never from arguments).
    Reset {
        user: String,
        /// Also clear a lockout.
        #[arg(long)]
        unlock: bool,
        /// Require a change at next logon.
        #[arg(long)]
        must_change: bool,
    },
    /// Clear an account's lockout without changing its password.
    Unlock { user: String },
    /// Register a verified recovery email for a user (operator-asserted; audited).
    Enroll {
        user: String,
        /// The address to register.
        #[arg(long)]
        email: String,
    },
    /// Issue a helpdesk one-time code for a caller you verified (8 digits, single use,
    /// short-lived; audited with you as the operator). Read it to the caller.
    HelpdeskCode { user: String },
    /// List users with fewer methods than their tier needs (enrolled users, plus any named).
    EnrollmentReport {
        /// Also check these accounts (e.g. every user in scope).
        users: Vec<String>,
    },
    /// Mail password expiry reminders now (`rekey serve` does it every `[reminders]
    /// every_secs` when enabled): every enabled user in scope whose password expires within
    /// the window, once per password.
    Remind {
        /// List who would be mailed; send and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// The window in days (default `[reminders] within_days`).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Make a bearer token for an integration of the JSON API: prints the token once and the
    /// `[[api.clients]]` entry (with only its hash) to add to the config.
    ApiToken {
        /// A name for the integration (the actor in its audit records).
        name: String,
        /// What it may call (repeat or comma-separate).
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
    /// Seal every stored secret under the current key of `[secrets] key_dir` (after adding a
    /// new key file there), while the server runs; prints what is left under older keys.
    RotateKey,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every record's hash and link and the signed checkpoints: an edited, deleted, moved
    /// or inserted record, a truncated tail or a forged checkpoint is named (exit 1).
    Verify {
        /// A trusted checkpoint public key file (64 hex digits); repeat for rotated keys.
        /// Default: the key of `[audit] checkpoint_key_file`.
        #[arg(long = "public-key", value_name = "FILE")]
        public_key: Vec<PathBuf>,
    },
    /// Make a checkpoint key: the Ed25519 seed as hex in a NEW file (mode 0600); prints the
    /// public key.
    Keygen { path: PathBuf },
    /// Sign a checkpoint of the chain's head now.
    Checkpoint,
    /// Delete records written before DATE (YYYY-MM-DD, UTC), after signing checkpoints; needs
    /// the table owner's rights.
    Prune {
        #[arg(long)]
        before: String,
    },
    /// Show the records of a support id and the rest of their flow (the same account, 15
    /// minutes around them), as text.
    Show {
        /// The support id the user saw on the page.
        support_id: String,
    },
    /// Write audit records for a SIEM, one line each: JSON Lines, CEF or RFC 5424 syslog.
    /// Walks and verifies the whole chain.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: audit_cmd::ExportFormat,
        /// From this time on (RFC 3339, or YYYY-MM-DD: that day from 00:00 UTC).
        #[arg(long, value_parser = audit_cmd::parse_since)]
        since: Option<i64>,
        /// Before this time (RFC 3339, or YYYY-MM-DD: up to the end of that day, UTC).
        #[arg(long, value_parser = audit_cmd::parse_until)]
        until: Option<i64>,
        /// Only these operations (repeat or comma-separate): reset, unlock, change, …
        #[arg(long = "operation", value_delimiter = ',', value_parser = audit_cmd::parse_operation)]
        operations: Vec<String>,
        /// Write to this file (created with mode 0600) instead of stdout.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Parse the config, connect to the DCs and report.
    Check,
}

/// Logs on stderr: `REKEY_LOG` filters (default: warnings; `rekey serve` also logs Rekey's own
/// info lines — one per request with its support id, canary runs, reminders); `[log] format`
/// picks text or JSON (one object per line, with the request span's support id).
fn init_logs(format: config::ops::LogFormat, serving: bool) {
    let default = if serving {
        "warn,rekey=info,rekey_web=info,rekey_core=info,rekey_directory=info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REKEY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::ops::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        config::ops::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rekey: cannot start the async runtime: {e}");
            return ExitCode::from(70);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    // A new key needs no config (it is made before the config names it).
    if let Command::Audit(AuditCommand::Keygen { path }) = &cli.command {
        return ExitCode::from(audit_chain::keygen_command(path));
    }
    let config = match config::Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rekey: {e}");
            return ExitCode::from(2);
        }
    };
    init_logs(config.log.format, matches!(cli.command, Command::Serve));
    let result = match cli.command {
        Command::Admin(AdminCommand::User { user }) => admin::show_user(&config, &user).await,
        Command::Admin(AdminCommand::Reset {
            user,
            unlock,
            must_change,
        }) => admin::reset(&config, &user, unlock, must_change).await,
        Command::Admin(AdminCommand::Unlock { user }) => admin::unlock(&config, &user).await,
        Command::Change { user } => admin::change(&config, &user).await,
        Command::Config(ConfigCommand::Check) => {
            return match check::run(&config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rekey: {e}");
                    ExitCode::from(e.exit_code())
                }
            };
        }
        Command::Doctor { json } => return ExitCode::from(doctor::run(&config, json).await),
        Command::Serve => serve::serve(&config).await,
        Command::Audit(AuditCommand::Verify { public_key }) => {
            let key = config.audit.checkpoint_key_file.as_deref();
            return ExitCode::from(audit_chain::verify_command(&config, key, &public_key).await);
        }
        Command::Audit(AuditCommand::Keygen { path }) => {
            return ExitCode::from(audit_chain::keygen_command(&path));
        }
        Command::Audit(AuditCommand::Checkpoint) => {
            let key = config.audit.checkpoint_key_file.as_deref();
            return ExitCode::from(audit_chain::checkpoint_command(&config, key).await);
        }
        Command::Audit(AuditCommand::Prune { before }) => {
            let key = config.audit.checkpoint_key_file.as_deref();
            return ExitCode::from(audit_chain::prune_command(&config, key, &before).await);
        }
        Command::Audit(AuditCommand::Show { support_id }) => {
            audit_cmd::show(&config, &support_id).await
        }
        Command::Audit(AuditCommand::Export {
            format,
            since,
            until,
            operations,
            out,
        }) => {
            let args = audit_cmd::ExportArgs {
                format,
                since,
                until,
                operations,
                out,
            };
            audit_cmd::export(&config, args).await
        }
        Command::Admin(AdminCommand::HelpdeskCode { user }) => {
            admin::helpdesk_code(&config, &user).await
        }
        Command::Admin(AdminCommand::EnrollmentReport { users }) => {
            admin::enrollment_report(&config, &users).await
        }
        Command::Admin(AdminCommand::Remind { dry_run, days }) => {
            remind::command(&config, dry_run, days).await
        }
        Command::Admin(AdminCommand::Enroll { user, email }) => {
            admin::enroll(&config, &user, &email).await
        }
        Command::Admin(AdminCommand::ApiToken { name, scopes }) => {
            api_token::command(&config, &name, &scopes)
        }
        Command::Admin(AdminCommand::RotateKey) => keys::rotate_command(&config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rekey: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
