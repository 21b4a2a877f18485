//! Verification methods, their strength, and the gates each tier must pass (invariant 1).

use serde::{Deserialize, Serialize};

use crate::store::MethodKind;

/// How much a passed method proves. Ordered: a stronger class compares greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strength {
    /// Something the user knows, or was told by a person (security questions, helpdesk code).
    Knowledge,
    /// Something the user holds that can be phished or intercepted (email, SMS, authenticator app).
    Possession,
    /// Bound to the site's origin by the authenticator: a passkey.
    PhishingResistant,
}

impl Strength {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Knowledge => "knowledge",
            Self::Possession => "possession",
            Self::PhishingResistant => "phishing_resistant",
        }
    }
}

/// A way to pass a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    EmailOtp,
    SmsOtp,
    Totp,
    Passkey,
    Questions,
    /// A one-time code a helpdesk operator issued to a caller they verified.
    HelpdeskCode,
}

impl Method {
    pub const ALL: [Self; 6] = [
        Self::EmailOtp,
        Self::SmsOtp,
        Self::Totp,
        Self::Passkey,
        Self::Questions,
        Self::HelpdeskCode,
    ];

    /// The name in configuration, audit records and forms.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailOtp => "email_otp",
            Self::SmsOtp => "sms_otp",
            Self::Totp => "totp",
            Self::Passkey => "passkey",
            Self::Questions => "questions",
            Self::HelpdeskCode => "helpdesk_code",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    #[must_use]
    pub fn strength(self) -> Strength {
        match self {
            Self::Passkey => Strength::PhishingResistant,
            Self::EmailOtp | Self::SmsOtp | Self::Totp => Strength::Possession,
            Self::Questions | Self::HelpdeskCode => Strength::Knowledge,
        }
    }

    /// The enrollment behind the method (`None` for a helpdesk code: issued, not enrolled).
    #[must_use]
    pub fn enrolled_as(self) -> Option<MethodKind> {
        match self {
            Self::EmailOtp => Some(MethodKind::Email),
            Self::SmsOtp => Some(MethodKind::Sms),
            Self::Totp => Some(MethodKind::Totp),
            Self::Passkey => Some(MethodKind::Passkey),
            Self::Questions => Some(MethodKind::Questions),
            Self::HelpdeskCode => None,
        }
    }

    #[must_use]
    pub fn of(kind: MethodKind) -> Self {
        match kind {
            MethodKind::Email => Self::EmailOtp,
            MethodKind::Sms => Self::SmsOtp,
            MethodKind::Totp => Self::Totp,
            MethodKind::Passkey => Self::Passkey,
            MethodKind::Questions => Self::Questions,
        }
    }
}

/// What one tier must pass before it may reset or unlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateRule {
    /// 1 or 2 distinct methods.
    pub gates: u8,
    /// The methods that count for this tier.
    pub methods: Vec<Method>,
    /// At least one passed method must be phishing-resistant (a passkey).
    pub phishing_resistant: bool,
}

impl GateRule {
    /// Standard users: one gate of any enrolled method except questions on their own.
    #[must_use]
    pub fn standard() -> Self {
        Self {
            gates: 1,
            methods: vec![
                Method::EmailOtp,
                Method::SmsOtp,
                Method::Totp,
                Method::Passkey,
                Method::Questions,
                Method::HelpdeskCode,
            ],
            phishing_resistant: false,
        }
    }

    /// The privileged option: two gates, one of them a passkey; no questions, no SMS, no helpdesk
    /// code.
    #[must_use]
    pub fn privileged() -> Self {
        Self {
            gates: 2,
            methods: vec![Method::EmailOtp, Method::Totp, Method::Passkey],
            phishing_resistant: true,
        }
    }

    #[must_use]
    pub fn allows(&self, method: Method) -> bool {
        self.methods.contains(&method)
    }

    /// Enforce what no configuration may loosen: 1–2 gates, never questions or SMS for the
    /// privileged tier (invariant 6). Returns the reasons a rule was refused.
    pub fn validate(&self, privileged: bool) -> Result<(), String> {
        if !(1..=2).contains(&self.gates) {
            return Err(format!("gates must be 1 or 2, not {}", self.gates));
        }
        if self.methods.is_empty() {
            return Err("no method counts".into());
        }
        if privileged {
            for m in [Method::Questions, Method::SmsOtp, Method::HelpdeskCode] {
                if self.allows(m) {
                    return Err(format!("{} may not serve the privileged tier", m.as_str()));
                }
            }
        }
        if self.phishing_resistant && !self.allows(Method::Passkey) {
            return Err("phishing_resistant needs passkey among the methods".into());
        }
        Ok(())
    }

    /// Do the passed methods satisfy the rule?
    #[must_use]
    pub fn satisfied(&self, passed: &[Method]) -> bool {
        let counted: Vec<Method> = passed.iter().copied().filter(|m| self.allows(*m)).collect();
        counted.len() >= usize::from(self.gates)
            && (!self.phishing_resistant || counted.contains(&Method::Passkey))
            // Knowledge alone never resets: with one gate, it must be more than knowledge.
            && counted.iter().any(|m| m.strength() > Strength::Knowledge
                || *m == Method::HelpdeskCode)
    }

    /// Methods that may serve as the next gate after `passed`.
    #[must_use]
    pub fn next_choices(&self, passed: &[Method]) -> Vec<Method> {
        let remaining = usize::from(self.gates).saturating_sub(passed.len());
        let needs_passkey = self.phishing_resistant && !passed.contains(&Method::Passkey);
        self.methods
            .iter()
            .copied()
            .filter(|m| !passed.contains(m))
            .filter(|m| !(needs_passkey && remaining <= 1 && *m != Method::Passkey))
            .collect()
    }
}

/// The gates of both tiers. `privileged: None` keeps privileged accounts out (the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gates {
    pub standard: GateRule,
    pub privileged: Option<GateRule>,
}

impl Default for Gates {
    fn default() -> Self {
        Self {
            standard: GateRule::standard(),
            privileged: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_rule_needs_a_passkey_and_two_gates() {
        let r = GateRule::privileged();
        assert!(r.validate(true).is_ok());
        assert!(!r.satisfied(&[Method::Passkey]));
        assert!(!r.satisfied(&[Method::EmailOtp, Method::Totp]));
        assert!(r.satisfied(&[Method::EmailOtp, Method::Passkey]));
        assert_eq!(r.next_choices(&[Method::EmailOtp]), vec![Method::Passkey]);
        assert_eq!(
            r.next_choices(&[Method::Passkey]),
            vec![Method::EmailOtp, Method::Totp]
        );
        let mut loose = r.clone();
        loose.methods.push(Method::Questions);
        assert!(loose.validate(true).is_err());
        loose.methods.pop();
        loose.methods.push(Method::SmsOtp);
        assert!(loose.validate(true).is_err());
    }

    #[test]
    fn questions_never_alone() {
        let r = GateRule::standard();
        assert!(!r.satisfied(&[Method::Questions]));
        assert!(r.satisfied(&[Method::Totp]));
        assert!(r.satisfied(&[Method::HelpdeskCode]));
        let two = GateRule {
            gates: 2,
            ..GateRule::standard()
        };
        assert!(!two.satisfied(&[Method::Totp]));
        assert!(two.satisfied(&[Method::Totp, Method::Questions]));
        assert!(GateRule { gates: 3, ..two }.validate(false).is_err());
    }
}
