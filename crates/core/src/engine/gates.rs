//! Gates: what a person must pass before a reset or unlock (invariant 1), and the step-up that
//! guards enrollment (whoever can add a method can reset the password).
//!
//! The first gate is one page for everyone — decoys included (invariant 9): "type the code from
//! your authenticator app, or the one we sent you". Behind it the engine accepts the code sent
//! to the user's email (or, without email, SMS), their authenticator app's code, or a helpdesk
//! code. A passkey needs no user name at all (a discoverable credential names its user). The
//! list of further methods, with masked hints, appears only after one gate has passed.

use super::state::{Ceremony, FlowId, Loaded, Pending, Step};
use super::trail::Trail;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::Guid;
use crate::audit::Operation;
use crate::mask::{mask_email, mask_phone};
use crate::method::{Method, Strength};
use crate::notify::Sms;
use crate::otp;
use crate::passkey::PasskeyCredential;
use crate::questions;
use crate::store::{Challenge, Enrollment, FlowKind, MethodKind};

/// Where a passed gate leads. Either way the flow has a NEW id (invariant 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Every gate passed: the new-password page (reset), the confirmation (unlock), or the
    /// methods page (enrollment).
    Verified(FlowId),
    /// Another gate is needed: the list of methods.
    More(FlowId),
}

impl Progress {
    /// The flow's new id, whichever way it leads.
    #[must_use]
    pub fn into_id(self) -> FlowId {
        match self {
            Self::Verified(id) | Self::More(id) => id,
        }
    }
}

/// A method offered as the next gate, with its masked hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub method: Method,
    pub hint: String,
    pub strength: Strength,
}

/// What the page for the chosen gate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chosen {
    /// A code was sent (email, SMS) or is read from the app (TOTP): the code page.
    Code(Method),
    /// The passkey page, with the options for `navigator.credentials.get()`.
    Passkey { options: String },
    /// The questions to answer.
    Questions { questions: Vec<String> },
}

fn purpose(method: Method) -> String {
    format!("gate:{}", method.as_str())
}

const HELPDESK: &str = "helpdesk";

/// What a failed verification counts and answers: the attempts so far, the step to store with
/// one more, and the error to give.
struct Failed {
    /// The metric's method label: `Method::as_str`, or `code` at a first gate that accepts
    /// several methods' codes.
    method: &'static str,
    attempts: u32,
    retry: Step,
    error: EngineError,
}
/// A used TOTP step is remembered this long (the ±1 window is 90 s at most).
const TOTP_REPLAY_WINDOW: i64 = 120;

/// The kind of flow a step belongs to, for the audit.
fn operation_of(kind: FlowKind) -> Operation {
    match kind {
        FlowKind::Enroll => Operation::Enroll,
        FlowKind::Console => Operation::HelpdeskSignIn,
        _ => Operation::Verify,
    }
}

/// Every kind of flow that passes gates.
const GATED: &[FlowKind] = &[
    FlowKind::Reset,
    FlowKind::Unlock,
    FlowKind::Enroll,
    FlowKind::Console,
];

impl Engine {
    /// What a real account's first gate accepts, decided once at identify from its usable
    /// methods: the code sent to its email (else its phone), its app's code, and a helpdesk
    /// code where its tier counts one. Returns the enrollment to send a code to, if any.
    pub(crate) fn first_gate(
        usable: &[Enrollment],
        rule: &crate::method::GateRule,
    ) -> (Option<Enrollment>, Vec<Method>) {
        let find = |k: MethodKind| usable.iter().find(|e| e.method == k);
        let send = find(MethodKind::Email).or_else(|| find(MethodKind::Sms));
        let mut accept: Vec<Method> = send.iter().map(|e| Method::of(e.method)).collect();
        if find(MethodKind::Totp).is_some() {
            accept.push(Method::Totp);
        }
        if rule.allows(Method::HelpdeskCode) {
            accept.push(Method::HelpdeskCode);
        }
        (send.cloned(), accept)
    }

    /// Send the first gate's code (to the email address, else by SMS) for the flow `flow_key`.
    pub(crate) async fn send_first_code(
        &self,
        ctx: &RequestContext,
        flow_key: &str,
        to: &Enrollment,
        trail: &mut Trail,
    ) -> EngineResult<()> {
        let method = Method::of(to.method);
        let p = purpose(method);
        if method == Method::SmsOtp {
            self.send_sms_code_for(ctx, flow_key, &to.user, &to.value, &p, trail)
                .await?;
            return Ok(());
        }
        let subject = format!("Your {} verification code", self.inner.config.organisation);
        self.issue_code(flow_key, &to.user, &p, &to.value, &subject)
            .await
    }

    /// Reserve the SMS budgets (per user, per client IP, for the portal, per day) and queue a
    /// code to `number`. Over a budget, or to a country not allowed, nothing is sent and the
    /// page is the same (invariant 27); the audit record says why.
    pub(crate) async fn send_sms_code_for(
        &self,
        ctx: &RequestContext,
        flow_key: &str,
        user: &Guid,
        number: &str,
        purpose: &str,
        trail: &mut Trail,
    ) -> EngineResult<bool> {
        if !self.phone_allowed(number) {
            trail.note("sms_country_refused");
            return Ok(false);
        }
        if !self.reserve_sms(ctx, user).await? {
            trail.note("sms_budget_spent");
            return Ok(false);
        }
        let code = self.put_code(flow_key, user, purpose).await?;
        let sms = Sms {
            to: number.to_owned(),
            body: format!(
                "{org} code: {code}. Valid {minutes} min. Never share it.",
                org = self.inner.config.organisation,
                code = code.as_str(),
                minutes = self.inner.config.code_ttl.min(600) / 60,
            ),
        };
        self.queue_sms(user, &sms, self.inner.config.code_ttl.min(600))
            .await?;
        self.kick_outbox().await;
        Ok(true)
    }

    /// E.164 (`+`, 8–15 digits) and a country calling code on the allow-list.
    pub(crate) fn phone_allowed(&self, number: &str) -> bool {
        let Some(digits) = number.strip_prefix('+') else {
            return false;
        };
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && self
                .inner
                .config
                .sms_countries
                .iter()
                .any(|cc| !cc.is_empty() && digits.starts_with(cc.as_str()))
    }

    /// Texts the portal may still send in the current 24 hours (`[sms] per_day` minus what was
    /// sent), for `/metrics`; `None` without an SMS gateway.
    ///
    /// # Errors
    /// The store failing.
    pub async fn sms_budget_left(&self) -> EngineResult<Option<u32>> {
        if self.inner.sms.is_none() {
            return Ok(None);
        }
        let used = self.inner.store.hits("sms:all", self.now(), 86_400).await?;
        Ok(Some(self.inner.config.sms_per_day.saturating_sub(used)))
    }

    /// One unit of each daily SMS budget, all or none (atomic per budget in the store; a unit
    /// taken from one budget is given back when another is spent).
    async fn reserve_sms(&self, ctx: &RequestContext, user: &Guid) -> EngineResult<bool> {
        let cfg = &self.inner.config;
        let now = self.now();
        let mut budgets = vec![
            (format!("sms:user:{user}"), cfg.sms_per_user_per_day),
            ("sms:all".to_owned(), cfg.sms_per_day),
        ];
        if let Some(ip) = &ctx.client_ip {
            budgets.push((format!("sms:ip:{ip}"), cfg.sms_per_ip_per_day));
        }
        let mut taken = Vec::new();
        for (key, limit) in &budgets {
            match self.inner.store.reserve(key, now, 86_400, *limit).await? {
                Some(id) => taken.push((key, id)),
                None => {
                    for (k, id) in taken {
                        let _ = self.inner.store.release(k, id).await;
                    }
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The store key of a user's helpdesk code (one at a time: a new one replaces the old).
    pub(crate) fn helpdesk_key(&self, user: &Guid) -> String {
        self.flow_key(&format!("helpdesk:{user}"))
    }

    /// Which accepted method the typed code belongs to, if any. A code that matches is spent
    /// (the challenge consumed, the TOTP step reserved) before this returns it: of concurrent
    /// requests with the same code exactly one gets it (invariant 7).
    async fn match_code(
        &self,
        loaded: &Loaded,
        user: &Guid,
        accepted: &[Method],
        code: &str,
    ) -> EngineResult<Option<Method>> {
        let now = self.now();
        let typed = otp::typed(code);
        let key = &self.inner.otp_key;
        for &m in accepted {
            match m {
                Method::EmailOtp | Method::SmsOtp => {
                    let p = purpose(m);
                    let store = &self.inner.store;
                    if let Some(c) = store.challenge(&loaded.record.id, &p, now).await?
                        && otp::matches(key, &loaded.record.id, user, &p, &typed, &c.code_hash)
                    {
                        return Ok(store.consume_challenge(&c.id).await?.then_some(m));
                    }
                }
                Method::Totp => {
                    if let Some(step) = self.totp_step(user, &typed).await? {
                        let spent = self
                            .inner
                            .store
                            .reserve(&format!("totp:{user}:{step}"), now, TOTP_REPLAY_WINDOW, 1)
                            .await?;
                        // A step already used is a replay: refused like a wrong code.
                        return Ok(spent.map(|_| m));
                    }
                }
                Method::HelpdeskCode => {
                    let flow = self.helpdesk_key(user);
                    if let Some(c) = self.inner.store.challenge(&flow, HELPDESK, now).await?
                        && otp::matches_digits(
                            key,
                            &flow,
                            user,
                            HELPDESK,
                            &typed,
                            &c.code_hash,
                            otp::HELPDESK_DIGITS,
                        )
                    {
                        return Ok(self
                            .inner
                            .store
                            .consume_challenge(&c.id)
                            .await?
                            .then_some(m));
                    }
                }
                Method::Passkey | Method::Questions => {}
            }
        }
        Ok(None)
    }

    /// The TOTP step the code belongs to (±1 step), if the user has an authenticator app.
    async fn totp_step(&self, user: &Guid, typed: &str) -> EngineResult<Option<i64>> {
        let enrolled = self.inner.store.enrollments(user).await?;
        let Some(e) = enrolled.iter().find(|e| e.method == MethodKind::Totp) else {
            return Ok(None);
        };
        let seed = self.open_method(user, MethodKind::Totp, &e.key_id, &e.data)?;
        Ok(crate::totp::matching_step(&seed, typed, self.now()))
    }

    /// A failed verification: counted on the flow (≤ 5, decoys alike), on the user per hour
    /// (≤ 5, then self-service is locked for 24 h) and on the code's challenge (invariant 3).
    async fn gate_failed(
        &self,
        loaded: &Loaded,
        attempts: u32,
        retry: Step,
        error: EngineError,
    ) -> EngineError {
        let cfg = &self.inner.config;
        let now = self.now();
        if let Some(user) = loaded.user() {
            let challenges: Vec<Challenge> = {
                let mut out = Vec::new();
                for m in [Method::EmailOtp, Method::SmsOtp] {
                    if let Ok(Some(c)) = self
                        .inner
                        .store
                        .challenge(&loaded.record.id, &purpose(m), now)
                        .await
                    {
                        out.push(c);
                    }
                }
                out
            };
            for c in &challenges {
                if let Ok(Some(n)) = self.inner.store.fail_challenge(&c.id).await
                    && n >= cfg.max_code_attempts
                {
                    let _ = self.inner.store.consume_challenge(&c.id).await;
                }
            }
            if let Ok(n) = self
                .inner
                .store
                .hit(&format!("verify-fail:{user}"), now, 3600)
                .await
                && n >= cfg.max_failures_per_hour
            {
                let _ = self
                    .inner
                    .store
                    .lock(&Self::lock_key(user), now + cfg.lock_secs)
                    .await;
                crate::telemetry::self_service_lock();
                for c in &challenges {
                    let _ = self.inner.store.consume_challenge(&c.id).await;
                }
            }
        }
        if let Err(e) = self.advance(loaded, &retry).await {
            return e;
        }
        if attempts + 1 >= cfg.max_code_attempts {
            EngineError::TooManyAttempts
        } else {
            error
        }
    }

    /// The end of a verification: the next step when `won` names the user and the method that
    /// passed, else a counted failure.
    async fn gate_end(
        &self,
        trail: &mut Trail,
        flow: &str,
        loaded: &Loaded,
        mut passed: Vec<Method>,
        won: Option<(Guid, Method)>,
        failed: Failed,
    ) -> EngineResult<Progress> {
        crate::telemetry::verification(
            won.map_or(failed.method, |(_, m)| m.as_str()),
            won.is_some(),
        );
        match won {
            Some((user, method)) => {
                passed.push(method);
                self.gate_passed(trail, flow, loaded, user, passed).await
            }
            None => Err(self
                .gate_failed(loaded, failed.attempts, failed.retry, failed.error)
                .await),
        }
    }

    /// A gate passed with `method`: the next step under a fresh id.
    async fn gate_passed(
        &self,
        trail: &mut Trail,
        flow: &str,
        loaded: &Loaded,
        user: Guid,
        passed: Vec<Method>,
    ) -> EngineResult<Progress> {
        let now = self.now();
        if let Some(kind) = passed.last().and_then(|m| m.enrolled_as()) {
            let _ = self.inner.store.touch_enrollment(&user, kind, now).await;
        }
        let names: Vec<&str> = passed.iter().map(|m| m.as_str()).collect();
        trail.methods(&names);
        let kind = loaded.record.kind;
        let (step, more) = if kind == FlowKind::Console {
            let Step::Gate {
                signed_in: Some(at),
                ..
            } = loaded.step
            else {
                return Err(EngineError::WrongStep);
            };
            let account = self
                .inner
                .directory
                .by_guid(&user)
                .await?
                .ok_or(EngineError::FlowExpired)?;
            trail.target(&account);
            trail.note("second_factor");
            let operator = account.sam_account_name;
            (
                Step::Console {
                    at,
                    operator,
                    caller: None,
                },
                false,
            )
        } else if kind == FlowKind::Enroll {
            let Step::Gate {
                signed_in: Some(at),
                ..
            } = loaded.step
            else {
                return Err(EngineError::WrongStep);
            };
            (Step::SignedIn { at }, false)
        } else {
            let account = self
                .inner
                .directory
                .by_guid(&user)
                .await?
                .ok_or(EngineError::FlowExpired)?;
            trail.target(&account);
            let rule = self.rule_for(&account).ok_or(EngineError::FlowExpired)?;
            if rule.satisfied(&passed) {
                let methods = passed.iter().map(|m| m.as_str().to_owned()).collect();
                (Step::Verified { methods }, false)
            } else {
                trail.note("another_gate_needed");
                let step = Step::Gate {
                    passed,
                    pending: None,
                    attempts: 0,
                    signed_in: None,
                };
                (step, true)
            }
        };
        // Exactly one caller wins the old id; the flow continues under a fresh one.
        if !self.forget(flow).await? {
            return Err(EngineError::WrongStep);
        }
        let id = self.new_flow(kind, Some(user), &step).await?;
        Ok(if more {
            Progress::More(id)
        } else {
            Progress::Verified(id)
        })
    }

    /// Check a typed code: the first gate's (any code the account may use), or a chosen gate's.
    /// On success the flow gets a NEW id (the caller replaces its cookie).
    pub async fn verify_reset_code(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
    ) -> EngineResult<Progress> {
        self.verify_code(ctx, flow, code, &[FlowKind::Reset, FlowKind::Unlock])
            .await
    }

    /// Enrollment's step-up by a code (sent, or from the app).
    pub async fn enroll_verify_code(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
    ) -> EngineResult<Progress> {
        self.verify_code(ctx, flow, code, &[FlowKind::Enroll]).await
    }

    /// The helpdesk console's second factor by a code (sent to the operator, or from the app).
    pub async fn helpdesk_verify_factor(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
    ) -> EngineResult<Progress> {
        self.verify_code(ctx, flow, code, &[FlowKind::Console])
            .await
    }

    async fn verify_code(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
        kinds: &[FlowKind],
    ) -> EngineResult<Progress> {
        let mut trail = Trail::new(operation_of(kinds[0]));
        let result = self.verify_code_inner(&mut trail, flow, code, kinds).await;
        self.record(ctx, trail, result).await
    }

    async fn verify_code_inner(
        &self,
        trail: &mut Trail,
        flow: &str,
        code: &str,
        kinds: &[FlowKind],
    ) -> EngineResult<Progress> {
        let loaded = self.load(flow, kinds).await?;
        trail.target_guid(loaded.user());
        let (accepted, attempts, passed, retry): (Vec<Method>, u32, Vec<Method>, Step) =
            match loaded.step.clone() {
                Step::AwaitCode { attempts, accept } => {
                    trail.methods(&["code"]);
                    let retry = Step::AwaitCode {
                        attempts: attempts + 1,
                        accept: accept.clone(),
                    };
                    (accept, attempts, Vec::new(), retry)
                }
                Step::Gate {
                    passed,
                    pending: Some(Pending::Code { method }),
                    attempts,
                    signed_in,
                } => {
                    trail.methods(&[method.as_str()]);
                    let retry = Step::Gate {
                        passed: passed.clone(),
                        pending: Some(Pending::Code { method }),
                        attempts: attempts + 1,
                        signed_in,
                    };
                    (vec![method], attempts, passed, retry)
                }
                _ => return Err(EngineError::WrongStep),
            };
        if attempts >= self.inner.config.max_code_attempts {
            return Err(EngineError::TooManyAttempts);
        }
        let user = match loaded.user() {
            Some(u) if !self.sspr_locked(u).await? => Some(*u),
            _ => None,
        };
        let matched = match user {
            Some(u) => self.match_code(&loaded, &u, &accepted, code).await?,
            None => None,
        };
        let won = user.zip(matched);
        let failed = Failed {
            method: match accepted.as_slice() {
                [one] => one.as_str(),
                _ => "code",
            },
            attempts,
            retry,
            error: EngineError::WrongCode,
        };
        self.gate_end(trail, flow, &loaded, passed, won, failed)
            .await
    }

    /// The methods that may serve as the next gate, with masked hints — only once a gate has
    /// passed (reset, unlock), or after the directory sign-in (enrollment's step-up).
    pub async fn gate_choices(&self, flow: &str) -> EngineResult<Vec<Choice>> {
        let loaded = self.load(flow, GATED).await?;
        self.choices(&loaded).await
    }

    async fn choices(&self, loaded: &Loaded) -> EngineResult<Vec<Choice>> {
        let Step::Gate { passed, .. } = &loaded.step else {
            return Err(EngineError::WrongStep);
        };
        let user = loaded.user().ok_or(EngineError::FlowExpired)?;
        let enrolled: Vec<Enrollment> = if loaded.record.kind == FlowKind::Console {
            // An operator's second factor: a code (sent, or from the app) on the console's
            // script-free pages.
            self.inner
                .store
                .enrollments(user)
                .await?
                .into_iter()
                .filter(|e| {
                    super::helpdesk::second_factor(e.method) && self.method_configured(e.method)
                })
                .collect()
        } else if loaded.record.kind == FlowKind::Enroll {
            // Any method the user has proves it is them, cool-down or not; questions only when
            // nothing else is enrolled.
            let account = self
                .inner
                .directory
                .by_guid(user)
                .await?
                .ok_or(EngineError::FlowExpired)?;
            let all: Vec<Enrollment> = self
                .inner
                .store
                .enrollments(user)
                .await?
                .into_iter()
                .filter(|e| self.enrollable(&account, e.method))
                .collect();
            let only_questions = all.iter().all(|e| e.method == MethodKind::Questions);
            all.into_iter()
                .filter(|e| only_questions || e.method != MethodKind::Questions)
                .collect()
        } else {
            let account = self
                .inner
                .directory
                .by_guid(user)
                .await?
                .ok_or(EngineError::FlowExpired)?;
            let rule = self.rule_for(&account).ok_or(EngineError::FlowExpired)?;
            let next = rule.next_choices(passed);
            self.usable(user, rule)
                .await?
                .into_iter()
                .filter(|e| next.contains(&Method::of(e.method)))
                .collect()
        };
        Ok(enrolled
            .iter()
            .filter(|e| !passed.contains(&Method::of(e.method)))
            .map(|e| {
                let method = Method::of(e.method);
                let hint = match e.method {
                    MethodKind::Email => mask_email(&e.value),
                    MethodKind::Sms => mask_phone(&e.value),
                    _ => String::new(),
                };
                Choice {
                    method,
                    hint,
                    strength: method.strength(),
                }
            })
            .collect())
    }

    /// Choose the next gate: a code is sent (email, SMS), the app's is expected (TOTP), a
    /// passkey ceremony begins, or the questions are asked.
    pub async fn choose_gate(
        &self,
        ctx: &RequestContext,
        flow: &str,
        method: Method,
    ) -> EngineResult<Chosen> {
        let mut trail = Trail::new(Operation::Verify);
        trail.methods(&[method.as_str()]);
        trail.note("chosen");
        let result = self.choose_gate_inner(ctx, &mut trail, flow, method).await;
        self.record(ctx, trail, result).await
    }

    async fn choose_gate_inner(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        flow: &str,
        method: Method,
    ) -> EngineResult<Chosen> {
        let loaded = self.load(flow, GATED).await?;
        trail.target_guid(loaded.user());
        let user = *loaded.user().ok_or(EngineError::FlowExpired)?;
        if self.sspr_locked(&user).await? {
            return Err(EngineError::TooManyAttempts);
        }
        let Step::Gate {
            passed, signed_in, ..
        } = loaded.step.clone()
        else {
            return Err(EngineError::WrongStep);
        };
        if !self
            .choices(&loaded)
            .await?
            .iter()
            .any(|c| c.method == method)
        {
            return Err(EngineError::MethodUnavailable);
        }
        let enrolled = self.inner.store.enrollments(&user).await?;
        let find = |k: MethodKind| enrolled.iter().find(|e| e.method == k);
        let (pending, chosen) = match method {
            Method::EmailOtp | Method::SmsOtp | Method::Totp => {
                (Pending::Code { method }, Chosen::Code(method))
            }
            Method::Passkey => {
                let creds = find(MethodKind::Passkey)
                    .map(Self::passkeys_of)
                    .unwrap_or_default();
                let ceremony = self.begin_passkey_get(&creds)?;
                let options = ceremony.options.clone();
                (Pending::Passkey { ceremony }, Chosen::Passkey { options })
            }
            Method::Questions => {
                let e = find(MethodKind::Questions).ok_or(EngineError::MethodUnavailable)?;
                let questions = self
                    .questions_of(&user, e)?
                    .into_iter()
                    .map(|q| q.question)
                    .collect();
                (Pending::Questions, Chosen::Questions { questions })
            }
            Method::HelpdeskCode => return Err(EngineError::MethodUnavailable),
        };
        let step = Step::Gate {
            passed,
            pending: Some(pending),
            attempts: 0,
            signed_in,
        };
        self.advance(&loaded, &step).await?;
        match method {
            Method::EmailOtp => {
                let e = find(MethodKind::Email).ok_or(EngineError::MethodUnavailable)?;
                let subject = format!("Your {} verification code", self.inner.config.organisation);
                self.issue_code(
                    &loaded.record.id,
                    &user,
                    &purpose(method),
                    &e.value,
                    &subject,
                )
                .await?;
            }
            Method::SmsOtp => {
                let e = find(MethodKind::Sms).ok_or(EngineError::MethodUnavailable)?;
                let p = purpose(method);
                self.send_sms_code_for(ctx, &loaded.record.id, &user, &e.value, &p, trail)
                    .await?;
            }
            _ => {}
        }
        Ok(chosen)
    }

    /// The page of the gate in progress: what a GET of the code, passkey or questions page
    /// shows (the chosen method; the passkey options; the question texts).
    pub async fn pending_gate(&self, flow: &str) -> EngineResult<Chosen> {
        let loaded = self.load(flow, GATED).await?;
        match &loaded.step {
            Step::AwaitCode { .. } => Ok(Chosen::Code(Method::EmailOtp)),
            Step::PasskeyFirst { ceremony, .. } => Ok(Chosen::Passkey {
                options: ceremony.options.clone(),
            }),
            Step::Gate {
                pending: Some(p), ..
            } => {
                let user = loaded.user().ok_or(EngineError::FlowExpired)?;
                Ok(match p {
                    Pending::Code { method } => Chosen::Code(*method),
                    Pending::Passkey { ceremony } => Chosen::Passkey {
                        options: ceremony.options.clone(),
                    },
                    Pending::Questions => {
                        let enrolled = self.inner.store.enrollments(user).await?;
                        let e = enrolled
                            .iter()
                            .find(|e| e.method == MethodKind::Questions)
                            .ok_or(EngineError::MethodUnavailable)?;
                        Chosen::Questions {
                            questions: self
                                .questions_of(user, e)?
                                .into_iter()
                                .map(|q| q.question)
                                .collect(),
                        }
                    }
                })
            }
            _ => Err(EngineError::WrongStep),
        }
    }

    pub(crate) fn questions_of(
        &self,
        user: &Guid,
        e: &Enrollment,
    ) -> EngineResult<Vec<questions::Enrolled>> {
        let plain = self.open_method(user, MethodKind::Questions, &e.key_id, &e.data)?;
        serde_json::from_slice(&plain).map_err(|_| EngineError::SealedKey(e.key_id.clone()))
    }

    fn begin_passkey_get(&self, allow: &[PasskeyCredential]) -> EngineResult<Ceremony> {
        let passkeys = self
            .inner
            .passkeys
            .as_ref()
            .ok_or(EngineError::MethodUnavailable)?;
        let c = passkeys
            .begin_authenticate(allow)
            .map_err(|_| EngineError::MethodUnavailable)?;
        Ok(Ceremony {
            options: c.options,
            state: c.state,
        })
    }

    /// Start a reset or unlock with a passkey: no user name (a discoverable credential).
    pub async fn start_passkey(
        &self,
        ctx: &RequestContext,
        kind: FlowKind,
    ) -> EngineResult<FlowId> {
        let mut trail = Trail::new(Operation::Identify);
        trail.methods(&["passkey"]);
        let result = async {
            let ceremony = self.begin_passkey_get(&[])?;
            let kind = if kind == FlowKind::Unlock {
                FlowKind::Unlock
            } else {
                FlowKind::Reset
            };
            let step = Step::PasskeyFirst {
                ceremony,
                attempts: 0,
            };
            self.new_flow(kind, None, &step).await
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Check a passkey answer: the first gate (the credential names its user) or a chosen gate.
    pub async fn verify_passkey(
        &self,
        ctx: &RequestContext,
        flow: &str,
        response: &str,
    ) -> EngineResult<Progress> {
        let mut trail = Trail::new(Operation::Verify);
        trail.methods(&["passkey"]);
        let result = self.verify_passkey_inner(&mut trail, flow, response).await;
        self.record(ctx, trail, result).await
    }

    async fn verify_passkey_inner(
        &self,
        trail: &mut Trail,
        flow: &str,
        response: &str,
    ) -> EngineResult<Progress> {
        let loaded = self.load(flow, GATED).await?;
        trail.target_guid(loaded.user());
        let (ceremony, attempts, passed, retry) = match loaded.step.clone() {
            Step::PasskeyFirst { ceremony, attempts } => {
                let retry = Step::PasskeyFirst {
                    ceremony: ceremony.clone(),
                    attempts: attempts + 1,
                };
                (ceremony, attempts, Vec::new(), retry)
            }
            Step::Gate {
                passed,
                pending: Some(Pending::Passkey { ceremony }),
                attempts,
                signed_in,
            } => {
                let retry = Step::Gate {
                    passed: passed.clone(),
                    pending: Some(Pending::Passkey {
                        ceremony: ceremony.clone(),
                    }),
                    attempts: attempts + 1,
                    signed_in,
                };
                (ceremony, attempts, passed, retry)
            }
            _ => return Err(EngineError::WrongStep),
        };
        if attempts >= self.inner.config.max_code_attempts {
            return Err(EngineError::TooManyAttempts);
        }
        let won = self
            .check_passkey(trail, &loaded, &ceremony, response)
            .await?
            .map(|user| (user, Method::Passkey));
        let failed = Failed {
            method: Method::Passkey.as_str(),
            attempts,
            retry,
            error: EngineError::PasskeyRefused,
        };
        self.gate_end(trail, flow, &loaded, passed, won, failed)
            .await
    }

    /// Verify the answer; `Some(user)` if it is a valid passkey of the flow's user (or, for a
    /// first gate, of an eligible user whose passkey is past the cool-down).
    async fn check_passkey(
        &self,
        trail: &mut Trail,
        loaded: &Loaded,
        ceremony: &Ceremony,
        response: &str,
    ) -> EngineResult<Option<Guid>> {
        let Some(passkeys) = self.inner.passkeys.as_ref() else {
            return Err(EngineError::MethodUnavailable);
        };
        let Ok(claim) = passkeys.claim(response) else {
            trail.note("passkey_invalid");
            return Ok(None);
        };
        let enrollment = match (loaded.user(), &claim.user_handle) {
            (Some(user), _) => {
                let all = self.inner.store.enrollments(user).await?;
                all.into_iter().find(|e| e.method == MethodKind::Passkey)
            }
            (None, Some(handle)) => {
                let lookup: String = handle.iter().map(|b| format!("{b:02x}")).collect();
                self.inner
                    .store
                    .enrollment_by_lookup(MethodKind::Passkey, &lookup)
                    .await?
            }
            (None, None) => None,
        };
        let Some(mut enrollment) = enrollment else {
            trail.note("passkey_unknown");
            return Ok(None);
        };
        trail.target_guid(Some(&enrollment.user));
        let mut creds = Self::passkeys_of(&enrollment);
        let Some(pos) = creds.iter().position(|c| c.id == claim.credential_id) else {
            trail.note("passkey_unknown");
            return Ok(None);
        };
        let updated = match passkeys.finish_authenticate(&ceremony.state, response, &creds[pos]) {
            Ok(u) => u,
            Err(_) => {
                trail.note("passkey_refused");
                return Ok(None);
            }
        };
        creds[pos] = updated;
        enrollment.data = serde_json::to_vec(&creds).unwrap_or_default();
        self.inner.store.upsert_enrollment(&enrollment).await?;
        if loaded.user().is_none() {
            // A first gate: the same checks identify makes, now that the user is known.
            let account = self
                .inner
                .directory
                .by_guid(&enrollment.user)
                .await?
                .ok_or(EngineError::PasskeyRefused)?;
            trail.target(&account);
            let eligible = self
                .inner
                .scope
                .check(&account, &self.inner.protected)
                .is_ok();
            let rule = self.rule_for(&account);
            let allowed = rule.is_some_and(|r| r.allows(Method::Passkey));
            let cooled = enrollment.verified_at + self.inner.config.enroll_cooldown <= self.now();
            if !eligible || !allowed || self.sspr_locked(&enrollment.user).await? {
                trail.note("not_eligible");
                return Ok(None);
            }
            if !cooled {
                trail.note("enrollment_cooling_down");
                return Ok(None);
            }
        }
        Ok(Some(enrollment.user))
    }

    /// Check the answers to the user's security questions (all of them, each compared).
    pub async fn verify_questions(
        &self,
        ctx: &RequestContext,
        flow: &str,
        answers: &[String],
    ) -> EngineResult<Progress> {
        let mut trail = Trail::new(Operation::Verify);
        trail.methods(&["questions"]);
        let result = self.verify_questions_inner(&mut trail, flow, answers).await;
        self.record(ctx, trail, result).await
    }

    async fn verify_questions_inner(
        &self,
        trail: &mut Trail,
        flow: &str,
        answers: &[String],
    ) -> EngineResult<Progress> {
        let loaded = self.load(flow, GATED).await?;
        trail.target_guid(loaded.user());
        let Step::Gate {
            passed,
            pending: Some(Pending::Questions),
            attempts,
            signed_in,
        } = loaded.step.clone()
        else {
            return Err(EngineError::WrongStep);
        };
        if attempts >= self.inner.config.max_code_attempts {
            return Err(EngineError::TooManyAttempts);
        }
        let user = *loaded.user().ok_or(EngineError::FlowExpired)?;
        let enrolled = self.inner.store.enrollments(&user).await?;
        let e = enrolled
            .iter()
            .find(|e| e.method == MethodKind::Questions)
            .ok_or(EngineError::MethodUnavailable)?;
        let asked = self.questions_of(&user, e)?;
        // Every answer is hashed, right or wrong: the time says nothing about which was wrong.
        let mut right = asked.len() == answers.len() && !self.sspr_locked(&user).await?;
        for (q, a) in asked.iter().zip(answers) {
            right &= questions::matches(q, a);
        }
        let retry = Step::Gate {
            passed: passed.clone(),
            pending: Some(Pending::Questions),
            attempts: attempts + 1,
            signed_in,
        };
        let won = right.then_some((user, Method::Questions));
        let failed = Failed {
            method: Method::Questions.as_str(),
            attempts,
            retry,
            error: EngineError::WrongAnswers,
        };
        self.gate_end(trail, flow, &loaded, passed, won, failed)
            .await
    }
}
