//! `[gates]`, `[passkeys]`, `[sms]`, `[questions]`, `[abuse]`: how people prove who they are.

use std::path::PathBuf;

use rekey_core::method::{GateRule, Gates, Method};
use serde::Deserialize;

use super::ConfigError;

fn key(key: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key,
        why: why.into(),
    }
}

/// One tier's rule as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    /// 1 or 2 distinct methods.
    pub gates: u8,
    /// Method names: email_otp, sms_otp, totp, passkey, questions, helpdesk_code.
    pub methods: Vec<String>,
    /// One passed method must be a passkey.
    #[serde(default)]
    pub phishing_resistant: bool,
}

impl RuleSection {
    fn rule(&self, k: &'static str, privileged: bool) -> Result<GateRule, ConfigError> {
        let mut methods = Vec::new();
        for m in &self.methods {
            methods.push(Method::parse(m).ok_or_else(|| {
                key(
                    k,
                    format!(
                        "{m:?} is no method (email_otp, sms_otp, totp, passkey, questions, helpdesk_code)"
                    ),
                )
            })?);
        }
        let rule = GateRule {
            gates: self.gates,
            methods,
            phishing_resistant: self.phishing_resistant,
        };
        rule.validate(privileged).map_err(|why| key(k, why))?;
        Ok(rule)
    }
}

/// `[gates]`: standard users one gate of any method (default); privileged users excluded unless
/// `[gates.privileged]` is set (the option "two gates, one of them a passkey, no questions, no
/// SMS": `gates = 2, methods = ["email_otp", "totp", "passkey"], phishing_resistant = true`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatesSection {
    #[serde(default)]
    pub standard: Option<RuleSection>,
    #[serde(default)]
    pub privileged: Option<RuleSection>,
}

impl GatesSection {
    /// # Errors
    /// A rule DESIGN.md forbids (3 gates, questions or SMS for the privileged tier, …).
    pub fn gates(&self) -> Result<Gates, ConfigError> {
        Ok(Gates {
            standard: match &self.standard {
                Some(r) => r.rule("gates.standard", false)?,
                None => GateRule::standard(),
            },
            privileged: self
                .privileged
                .as_ref()
                .map(|r| r.rule("gates.privileged", true))
                .transpose()?,
        })
    }
}

/// `[passkeys]`: WebAuthn. The relying party is the portal's public URL.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeysSection {
    /// Offer passkeys (default false).
    #[serde(default)]
    pub enabled: bool,
    /// The RP id (default: the host of `server.public_base_url`). Passkeys are bound to it:
    /// changing it later orphans every registered passkey.
    #[serde(default)]
    pub rp_id: Option<String>,
}

/// `[sms]`: text-message codes through a Twilio-style messages API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSection {
    /// Send codes by SMS (default false).
    #[serde(default)]
    pub enabled: bool,
    /// The API's base URL (default Twilio's).
    #[serde(default = "default_sms_url")]
    pub base_url: String,
    #[serde(default)]
    pub account_sid: Option<String>,
    /// Basic-auth user when it is not the account SID (an API key SID).
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the auth token (or API key secret).
    #[serde(default)]
    pub auth_token_file: Option<PathBuf>,
    /// The sender number (E.164) — or `messaging_service_sid`.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Country calling codes numbers may belong to, e.g. ["49", "44", "1"] (invariant 27:
    /// premium and unknown prefixes are refused). Required.
    #[serde(default)]
    pub countries: Vec<String>,
    #[serde(default)]
    pub per_user_per_day: Option<u32>,
    #[serde(default)]
    pub per_ip_per_day: Option<u32>,
    #[serde(default)]
    pub per_day: Option<u32>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// A CA file to trust besides Mozilla's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_sms_url() -> String {
    "https://api.twilio.com".into()
}

/// `[questions]`: security questions, off by default (invariant 6).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionsSection {
    #[serde(default)]
    pub enabled: bool,
    /// The questions users pick from; empty: users write their own.
    #[serde(default)]
    pub list: Vec<String>,
}

/// `[abuse]`: when identify asks for a proof of work (invariant 28), and helpdesk codes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbuseSection {
    /// Identify requests per client IP per minute before a proof of work is asked (default 10;
    /// 0: never).
    #[serde(default)]
    pub pow_per_ip_per_minute: Option<u32>,
    /// Identify requests per minute for the whole portal before everyone is asked (default 300).
    #[serde(default)]
    pub pow_per_minute: Option<u32>,
    /// Difficulty in leading zero bits (default 18: well under a second in a browser).
    #[serde(default)]
    pub pow_bits: Option<u8>,
    /// Without JavaScript, the wait that replaces the puzzle (default 10 s).
    #[serde(default)]
    pub pow_fallback_secs: Option<i64>,
    /// How long a helpdesk one-time code lives (default 900; 60–3600).
    #[serde(default)]
    pub helpdesk_code_ttl_secs: Option<i64>,
}

/// Apply the method sections to the engine's configuration.
///
/// # Errors
/// The `ConfigError::Key` of the first value that cannot work.
pub fn apply(
    config: &super::Config,
    c: &mut rekey_core::engine::EngineConfig,
) -> Result<(), ConfigError> {
    c.gates = config.gates.gates()?;
    c.questions_enabled = config.questions.enabled;
    c.question_list.clone_from(&config.questions.list);
    if let Some(q) = c
        .question_list
        .iter()
        .find(|q| q.trim().is_empty() || q.chars().count() > 120)
    {
        return Err(key("questions.list", format!("{q:?}: 1 to 120 characters")));
    }
    if let Some(sms) = config.sms.as_ref().filter(|s| s.enabled) {
        if sms.countries.is_empty() {
            return Err(key(
                "sms.countries",
                "name the country calling codes SMS may go to",
            ));
        }
        if let Some(cc) = sms
            .countries
            .iter()
            .find(|cc| cc.is_empty() || cc.len() > 3 || !cc.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(key(
                "sms.countries",
                format!("{cc:?}: a calling code is 1–3 digits"),
            ));
        }
        c.sms_countries.clone_from(&sms.countries);
        if let Some(n) = sms.per_user_per_day {
            c.sms_per_user_per_day = n;
        }
        if let Some(n) = sms.per_ip_per_day {
            c.sms_per_ip_per_day = n;
        }
        if let Some(n) = sms.per_day {
            c.sms_per_day = n;
        }
    }
    let a = &config.abuse;
    if let Some(n) = a.pow_per_ip_per_minute {
        c.pow_per_ip_per_minute = n;
    }
    if let Some(n) = a.pow_per_minute {
        c.pow_per_minute = n;
    }
    if let Some(n) = a.pow_bits {
        if n > 28 {
            return Err(key(
                "abuse.pow_bits",
                "at most 28 (a browser must solve it)",
            ));
        }
        c.pow_bits = n;
    }
    if let Some(n) = a.pow_fallback_secs {
        c.pow_fallback_secs = n.clamp(1, 120);
    }
    if let Some(n) = a.helpdesk_code_ttl_secs {
        if !(60..=3600).contains(&n) {
            return Err(key("abuse.helpdesk_code_ttl_secs", "between 60 and 3600"));
        }
        c.helpdesk_code_ttl = n;
    }
    Ok(())
}
