//! Enrollment: sign in with directory credentials, prove a method already enrolled (where one
//! exists), then add or remove methods. Adding a method is a privileged act — whoever can add
//! one can reset the password — so every change needs a sign-in ≤ 5 min old, is mailed to the
//! user's existing addresses, audited, and a new method serves a reset only after a cool-down.
//! A privileged user's change (when that tier is served) is proven here, then waits for an
//! approver (`method_approval`).

use super::gates::Choice;
use super::method_approval::{EnrollOutcome, MethodChange, PendingChange};
use super::methods::MethodView;
use super::state::{Ceremony, FlowId, Loaded, Step};
use super::trail::Trail;
use super::{Engine, EngineError, EngineResult, RequestContext};
use crate::account::{Account, Guid};
use crate::audit::Operation;
use crate::mask::{mask_email, mask_phone};
use crate::notify::Email;
use crate::passkey::PasskeyCredential;
use crate::secret::Password;
use crate::store::{Enrollment, FlowKind, MethodKind};

/// Where an enrollment flow stands, for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollStep {
    /// Signed in; an existing method must prove it is the user: these can.
    StepUp(Vec<Choice>),
    /// A step-up gate is in progress (the code, passkey or questions page).
    StepUpGate(super::gates::Chosen),
    /// The methods page.
    Manage {
        methods: Vec<MethodView>,
        /// Methods this server offers that the user may add.
        addable: Vec<MethodKind>,
        /// How many methods the user's tier needs (the reminder banner when fewer).
        needed: usize,
        /// The tier needs a passkey the user does not have.
        passkey_missing: bool,
        /// The admin's list of questions (empty: users write their own).
        questions: Vec<String>,
        /// The user's changes waiting for an approver (privileged tier).
        pending: Vec<PendingChange>,
    },
    /// A code went to this (masked) address or number.
    AwaitCode { masked: String, kind: MethodKind },
    /// An authenticator app is being set up: the otpauth URI (for the QR code) and the seed
    /// in base32 (to type in).
    Totp { uri: String, secret: String },
    /// A passkey is being registered: the options for `navigator.credentials.create()`.
    Passkey { options: String },
}

/// A plausible address: one `@`, no spaces or controls, a dot in the domain, ≤ 254 bytes.
pub(crate) fn valid_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    a.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !a.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
}

impl Engine {
    /// Sign in for enrollment with the directory password (same budgets as change).
    pub async fn enroll_sign_in(
        &self,
        ctx: &RequestContext,
        who: &str,
        password: &Password,
    ) -> EngineResult<FlowId> {
        let mut trail = Trail::new(Operation::Enroll);
        trail.methods(&["password"]);
        let result = self
            .enroll_sign_in_inner(ctx, &mut trail, who, password)
            .await;
        self.record(ctx, trail, result).await
    }

    async fn enroll_sign_in_inner(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        who: &str,
        password: &Password,
    ) -> EngineResult<FlowId> {
        let (account, reservation) = self
            .password_attempt(ctx, trail, who, password, EngineError::SignInFailed)
            .await?;
        let verdict = self.inner.directory.authenticate(&account, password).await;
        self.settle(reservation, matches!(verdict, Ok(true))).await;
        if !verdict? {
            return Err(EngineError::SignInFailed);
        }
        trail.note("signed_in");
        let now = self.now();
        let has_method = self
            .inner
            .store
            .enrollments(&account.guid)
            .await?
            .iter()
            .any(|e| self.method_configured(e.method));
        // Whoever holds the password must also prove a method the user already has.
        let step = if has_method {
            Step::Gate {
                passed: Vec::new(),
                pending: None,
                attempts: 0,
                signed_in: Some(now),
            }
        } else {
            Step::SignedIn { at: now }
        };
        self.new_flow(FlowKind::Enroll, Some(account.guid), &step)
            .await
    }

    pub async fn enroll_step(&self, flow: &str) -> EngineResult<EnrollStep> {
        let loaded = self.load(flow, &[FlowKind::Enroll]).await?;
        let user = *loaded.user().ok_or(EngineError::FlowExpired)?;
        match &loaded.step {
            Step::Gate { pending: None, .. } => {
                Ok(EnrollStep::StepUp(self.gate_choices(flow).await?))
            }
            Step::Gate { .. } => Ok(EnrollStep::StepUpGate(self.pending_gate(flow).await?)),
            Step::SignedIn { .. } => self.manage_view(&user).await,
            Step::AwaitEnrollCode { address, kind, .. } => Ok(EnrollStep::AwaitCode {
                masked: match kind {
                    MethodKind::Sms => mask_phone(address),
                    _ => mask_email(address),
                },
                kind: *kind,
            }),
            Step::TotpSetup { sealed_seed, .. } => {
                let seed =
                    self.open_method(&user, MethodKind::Totp, &self.method_key_id(), sealed_seed)?;
                let account = self.account_of(&user).await?;
                let (uri, secret) = crate::totp::enrollment(
                    &seed,
                    &self.inner.config.organisation,
                    &account.sam_account_name,
                )
                .ok_or(EngineError::MethodUnavailable)?;
                Ok(EnrollStep::Totp { uri, secret })
            }
            Step::PasskeySetup { ceremony, .. } => Ok(EnrollStep::Passkey {
                options: ceremony.options.clone(),
            }),
            _ => Err(EngineError::WrongStep),
        }
    }

    async fn account_of(&self, user: &Guid) -> EngineResult<Account> {
        self.inner
            .directory
            .by_guid(user)
            .await?
            .ok_or(EngineError::FlowExpired)
    }

    async fn manage_view(&self, user: &Guid) -> EngineResult<EnrollStep> {
        let account = self.account_of(user).await?;
        let rule = self.rule_for(&account);
        let enrolled = self.inner.store.enrollments(user).await?;
        let privileged = matches!(
            self.inner.protected.classify(&account),
            crate::tier::Tier::Privileged { .. }
        );
        let addable = MethodKind::ALL
            .into_iter()
            .filter(|k| self.enrollable(&account, *k))
            // Questions never serve the privileged tier (invariant 6).
            .filter(|k| !(privileged && *k == MethodKind::Questions))
            .filter(|k| *k == MethodKind::Passkey || !enrolled.iter().any(|e| e.method == *k))
            .collect();
        let needed = rule.as_ref().map_or(1, |r| usize::from(r.gates));
        let passkey_missing = rule.as_ref().is_some_and(|r| r.phishing_resistant)
            && !enrolled.iter().any(|e| e.method == MethodKind::Passkey);
        let pending = if self.needs_approval(&account) {
            let _ = self.expire_approvals().await;
            self.pending_changes(user).await?
        } else {
            Vec::new()
        };
        Ok(EnrollStep::Manage {
            pending,
            methods: enrolled.iter().map(|e| self.view(e)).collect(),
            addable,
            needed,
            passkey_missing,
            questions: self.inner.config.question_list.clone(),
        })
    }

    /// The signed-in flow, if its sign-in is recent enough to change methods (≤ 5 min).
    async fn signed_in(&self, trail: &mut Trail, flow: &str) -> EngineResult<(Loaded, Guid, i64)> {
        let loaded = self.load(flow, &[FlowKind::Enroll]).await?;
        trail.target_guid(loaded.user());
        let user = *loaded.user().ok_or(EngineError::FlowExpired)?;
        let at = match loaded.step {
            Step::SignedIn { at }
            | Step::AwaitEnrollCode { at, .. }
            | Step::TotpSetup { at, .. }
            | Step::PasskeySetup { at, .. } => at,
            _ => return Err(EngineError::WrongStep),
        };
        if at + self.inner.config.enroll_signin_ttl < self.now() {
            trail.note("sign_in_too_old");
            return Err(EngineError::FlowExpired);
        }
        Ok((loaded, user, at))
    }

    /// Register an address: a code goes to it; the sign-in must be recent (≤ 5 min).
    pub async fn enroll_email(
        &self,
        ctx: &RequestContext,
        flow: &str,
        address: &str,
    ) -> EngineResult<()> {
        self.enroll_contact(ctx, flow, MethodKind::Email, address)
            .await
    }

    /// Register a phone number (E.164, an allowed country): a code goes to it by SMS.
    pub async fn enroll_phone(
        &self,
        ctx: &RequestContext,
        flow: &str,
        number: &str,
    ) -> EngineResult<()> {
        self.enroll_contact(ctx, flow, MethodKind::Sms, number)
            .await
    }

    async fn enroll_contact(
        &self,
        ctx: &RequestContext,
        flow: &str,
        kind: MethodKind,
        value: &str,
    ) -> EngineResult<()> {
        let mut trail = Trail::new(Operation::Enroll);
        trail.methods(&[kind.as_str()]);
        trail.note("address");
        let result = self
            .enroll_contact_inner(ctx, &mut trail, flow, kind, value)
            .await;
        self.record(ctx, trail, result).await
    }

    async fn enroll_contact_inner(
        &self,
        ctx: &RequestContext,
        trail: &mut Trail,
        flow: &str,
        kind: MethodKind,
        value: &str,
    ) -> EngineResult<()> {
        let (loaded, user, at) = self.signed_in(trail, flow).await?;
        if !self.enrollable(&self.account_of(&user).await?, kind) {
            return Err(EngineError::MethodUnavailable);
        }
        let value: String = match kind {
            MethodKind::Sms => value
                .chars()
                .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')' | '/'))
                .collect(),
            _ => value.trim().to_owned(),
        };
        match kind {
            MethodKind::Email if !valid_address(&value) => return Err(EngineError::BadAddress),
            MethodKind::Sms if !self.phone_allowed(&value) => return Err(EngineError::BadPhone),
            _ => {}
        }
        let step = Step::AwaitEnrollCode {
            at,
            address: value.clone(),
            attempts: 0,
            kind,
        };
        self.advance(&loaded, &step).await?;
        let purpose = enroll_purpose(kind);
        if kind == MethodKind::Sms {
            let sent = self
                .send_sms_code_for(ctx, &loaded.record.id, &user, &value, &purpose, trail)
                .await?;
            if !sent {
                return Err(EngineError::RateLimited);
            }
            return Ok(());
        }
        let subject = format!(
            "Confirm your address for {} self-service",
            self.inner.config.organisation
        );
        self.issue_code(&loaded.record.id, &user, &purpose, &value, &subject)
            .await
    }

    /// Confirm the address or number with its code; the method is then enrolled (or, for a
    /// privileged user, waits for an approver).
    pub async fn enroll_confirm(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
    ) -> EngineResult<EnrollOutcome> {
        let mut trail = enroll_trail("code", "confirm");
        let result = self.enroll_confirm_inner(&mut trail, flow, code).await;
        self.record(ctx, trail, result).await
    }

    async fn enroll_confirm_inner(
        &self,
        trail: &mut Trail,
        flow: &str,
        code: &str,
    ) -> EngineResult<EnrollOutcome> {
        let (loaded, user, _) = self.signed_in(trail, flow).await?;
        let Step::AwaitEnrollCode {
            at,
            address,
            attempts,
            kind,
        } = loaded.step.clone()
        else {
            return Err(EngineError::WrongStep);
        };
        trail.methods(&[kind.as_str()]);
        let retry = |attempts| Step::AwaitEnrollCode {
            at,
            address: address.clone(),
            attempts,
            kind,
        };
        self.check_code(&loaded, &enroll_purpose(kind), code, attempts, retry)
            .await?;
        let enrollment = Enrollment::contact(user, kind, &address, self.now());
        self.save_method(trail, &loaded, user, at, enrollment, Some(&address))
            .await
    }

    /// Store a new or replaced method, go back to the methods page, and tell the user. A
    /// privileged user's method is kept in a request for approval instead (`held`: what the
    /// approver applies; the enrollment itself when `None`).
    async fn save_method(
        &self,
        trail: &mut Trail,
        loaded: &Loaded,
        user: Guid,
        at: i64,
        enrollment: Enrollment,
        new_address: Option<&str>,
    ) -> EngineResult<EnrollOutcome> {
        let live = self.account_of(&user).await?;
        if self.needs_approval(&live) {
            let change = MethodChange::add(&enrollment);
            return self
                .hold_method_change(trail, loaded, at, &live, change)
                .await;
        }
        let before = self.inner.store.enrollments(&user).await?;
        self.inner.store.upsert_enrollment(&enrollment).await?;
        trail.note("added");
        self.advance(loaded, &Step::SignedIn { at }).await?;
        let account = self.inner.directory.by_guid(&user).await?;
        if let Some(a) = &account {
            trail.target(a);
        }
        let what = format!("{} was added", method_words(enrollment.method));
        let to_new = new_address.filter(|_| enrollment.method == MethodKind::Email);
        self.notify_method_change(&user, account.as_ref(), &before, &what, to_new)
            .await;
        Ok(EnrollOutcome::Applied)
    }

    /// Begin setting up an authenticator app: a new seed, sealed in the flow until confirmed.
    pub async fn enroll_totp_begin(&self, ctx: &RequestContext, flow: &str) -> EngineResult<()> {
        let mut trail = enroll_trail("totp", "begin");
        let result = async {
            let (loaded, user, at) = self.signed_in(&mut trail, flow).await?;
            if !self.enrollable(&self.account_of(&user).await?, MethodKind::Totp) {
                return Err(EngineError::MethodUnavailable);
            }
            let seed = crate::totp::new_seed(self.inner.random.as_ref());
            let (_, sealed_seed) = self.seal_method(&user, MethodKind::Totp, &seed);
            let step = Step::TotpSetup {
                at,
                sealed_seed,
                attempts: 0,
            };
            self.advance(&loaded, &step).await
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Confirm the app with its first code (±1 step); the seed is then stored sealed.
    pub async fn enroll_totp_confirm(
        &self,
        ctx: &RequestContext,
        flow: &str,
        code: &str,
    ) -> EngineResult<EnrollOutcome> {
        let mut trail = enroll_trail("totp", "confirm");
        let result = async {
            let (loaded, user, _) = self.signed_in(&mut trail, flow).await?;
            let Step::TotpSetup {
                at,
                sealed_seed,
                attempts,
            } = loaded.step.clone()
            else {
                return Err(EngineError::WrongStep);
            };
            if attempts >= self.inner.config.max_code_attempts {
                return Err(EngineError::TooManyAttempts);
            }
            let key_id = self.method_key_id();
            let seed = self.open_method(&user, MethodKind::Totp, &key_id, &sealed_seed)?;
            let Some(step) = crate::totp::matching_step(&seed, code, self.now()) else {
                let retry = Step::TotpSetup {
                    at,
                    sealed_seed,
                    attempts: attempts + 1,
                };
                self.advance(&loaded, &retry).await?;
                return Err(EngineError::WrongCode);
            };
            // The confirming code is spent: it cannot serve again.
            let _ = self
                .inner
                .store
                .reserve(&format!("totp:{user}:{step}"), self.now(), 120, 1)
                .await?;
            let mut e =
                Enrollment::contact(user, MethodKind::Totp, "authenticator app", self.now());
            e.key_id = key_id;
            e.data = sealed_seed;
            self.save_method(&mut trail, &loaded, user, at, e, None)
                .await
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Begin registering a passkey (resident key, user verification required).
    pub async fn enroll_passkey_begin(&self, ctx: &RequestContext, flow: &str) -> EngineResult<()> {
        let mut trail = enroll_trail("passkey", "begin");
        let result = async {
            let (loaded, user, at) = self.signed_in(&mut trail, flow).await?;
            let passkeys = self
                .inner
                .passkeys
                .as_ref()
                .ok_or(EngineError::MethodUnavailable)?;
            let account = self.account_of(&user).await?;
            if !self.enrollable(&account, MethodKind::Passkey) {
                return Err(EngineError::MethodUnavailable);
            }
            let existing = self.inner.store.enrollments(&user).await?;
            let existing = existing.iter().find(|e| e.method == MethodKind::Passkey);
            let handle = match existing.and_then(|e| e.lookup.clone()) {
                Some(h) => h,
                None => {
                    let mut h = [0u8; 16];
                    self.inner.random.fill(&mut h);
                    h.iter().map(|b| format!("{b:02x}")).collect()
                }
            };
            let creds = existing.map(Self::passkeys_of).unwrap_or_default();
            let bytes = unhex(&handle).ok_or(EngineError::MethodUnavailable)?;
            let display = account
                .display_name
                .clone()
                .unwrap_or_else(|| account.sam_account_name.clone());
            let name = account
                .user_principal_name
                .clone()
                .unwrap_or_else(|| account.sam_account_name.clone());
            let c = passkeys
                .begin_register(&bytes, &name, &display, &creds)
                .map_err(|_| EngineError::MethodUnavailable)?;
            let step = Step::PasskeySetup {
                at,
                ceremony: Ceremony {
                    options: c.options,
                    state: c.state,
                },
                handle,
            };
            self.advance(&loaded, &step).await
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Finish registering: the new credential joins the user's passkeys; the passkey method
    /// cools down again (a new credential must not serve a reset at once).
    pub async fn enroll_passkey_finish(
        &self,
        ctx: &RequestContext,
        flow: &str,
        response: &str,
        label: &str,
    ) -> EngineResult<EnrollOutcome> {
        let mut trail = enroll_trail("passkey", "register");
        let result = async {
            let (loaded, user, _) = self.signed_in(&mut trail, flow).await?;
            let Step::PasskeySetup {
                at,
                ceremony,
                handle,
            } = loaded.step.clone()
            else {
                return Err(EngineError::WrongStep);
            };
            let passkeys = self
                .inner
                .passkeys
                .as_ref()
                .ok_or(EngineError::MethodUnavailable)?;
            let label: String = label.trim().chars().take(40).collect();
            let label = if label.is_empty() {
                "passkey".to_owned()
            } else {
                label
            };
            let cred = passkeys
                .finish_register(&ceremony.state, response, &label, self.now())
                .map_err(|_| EngineError::PasskeyRefused)?;
            // A privileged user's new credential alone waits for the approver, who merges it
            // with the passkeys the user has THEN.
            let live = self.account_of(&user).await?;
            if self.needs_approval(&live) {
                let change = MethodChange::passkey(&cred, &handle);
                return self
                    .hold_method_change(&mut trail, &loaded, at, &live, change)
                    .await;
            }
            let existing = self.inner.store.enrollments(&user).await?;
            let mut creds: Vec<PasskeyCredential> = existing
                .iter()
                .find(|e| e.method == MethodKind::Passkey)
                .map(Self::passkeys_of)
                .unwrap_or_default();
            creds.retain(|c| c.id != cred.id);
            creds.push(cred);
            let value = if creds.len() == 1 {
                "1 passkey".to_owned()
            } else {
                format!("{} passkeys", creds.len())
            };
            let mut e = Enrollment::contact(user, MethodKind::Passkey, &value, self.now());
            e.data = serde_json::to_vec(&creds).unwrap_or_default();
            e.lookup = Some(handle);
            self.save_method(&mut trail, &loaded, user, at, e, None)
                .await
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Enroll security questions (3–5, answers normalised and hashed with Argon2id).
    pub async fn enroll_questions(
        &self,
        ctx: &RequestContext,
        flow: &str,
        pairs: &[(String, String)],
    ) -> EngineResult<EnrollOutcome> {
        let mut trail = Trail::new(Operation::Enroll);
        trail.methods(&["questions"]);
        let result = async {
            let (loaded, user, at) = self.signed_in(&mut trail, flow).await?;
            if !self.method_configured(MethodKind::Questions) {
                return Err(EngineError::MethodUnavailable);
            }
            let account = self.account_of(&user).await?;
            if matches!(
                self.inner.protected.classify(&account),
                crate::tier::Tier::Privileged { .. }
            ) {
                return Err(EngineError::MethodUnavailable);
            }
            let list = &self.inner.config.question_list;
            if !list.is_empty() && pairs.iter().any(|(q, _)| !list.contains(q)) {
                return Err(EngineError::MethodUnavailable);
            }
            let hashed = crate::questions::enroll(pairs, self.inner.random.as_ref())
                .map_err(EngineError::Questions)?;
            let plain = zeroize::Zeroizing::new(serde_json::to_vec(&hashed).unwrap_or_default());
            let (key_id, data) = self.seal_method(&user, MethodKind::Questions, &plain);
            let value = format!("{} questions", hashed.len());
            let mut e = Enrollment::contact(user, MethodKind::Questions, &value, self.now());
            e.key_id = key_id;
            e.data = data;
            self.save_method(&mut trail, &loaded, user, at, e, None)
                .await
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Leave an unfinished setup (a code sent, an app or a passkey begun) for the methods page:
    /// nothing is enrolled, the sign-in keeps its age.
    pub async fn enroll_cancel(&self, ctx: &RequestContext, flow: &str) -> EngineResult<()> {
        let mut trail = enroll_trail("none", "cancel");
        let result = async {
            let (loaded, _, at) = self.signed_in(&mut trail, flow).await?;
            if matches!(loaded.step, Step::SignedIn { .. }) {
                return Ok(());
            }
            self.advance(&loaded, &Step::SignedIn { at }).await
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Remove a method (every credential of its kind: all passkeys at once). A privileged
    /// user's removal waits for an approver like an add.
    pub async fn enroll_remove(
        &self,
        ctx: &RequestContext,
        flow: &str,
        kind: MethodKind,
    ) -> EngineResult<EnrollOutcome> {
        let mut trail = Trail::new(Operation::MethodRemoved);
        trail.methods(&[kind.as_str()]);
        let result = async {
            let (loaded, user, at) = self.signed_in(&mut trail, flow).await?;
            if !matches!(loaded.step, Step::SignedIn { .. }) {
                return Err(EngineError::WrongStep);
            }
            let before = self.inner.store.enrollments(&user).await?;
            let live = self.account_of(&user).await?;
            if self.needs_approval(&live) {
                let Some(e) = before.iter().find(|e| e.method == kind) else {
                    return Err(EngineError::MethodUnavailable);
                };
                let change = MethodChange::remove(e, self.view(e).hint);
                return self
                    .hold_method_change(&mut trail, &loaded, at, &live, change)
                    .await;
            }
            if !self.inner.store.delete_enrollment(&user, kind).await? {
                return Err(EngineError::MethodUnavailable);
            }
            self.advance(&loaded, &Step::SignedIn { at }).await?;
            let account = self.inner.directory.by_guid(&user).await?;
            if let Some(a) = &account {
                trail.target(a);
            }
            let what = format!("{} was removed", method_words(kind));
            self.notify_method_change(&user, account.as_ref(), &before, &what, None)
                .await;
            Ok(EnrollOutcome::Applied)
        }
        .await;
        self.record(ctx, trail, result).await
    }

    /// Tell the user at every address they had (enrolled emails and the directory's) and at a
    /// newly added one: a hijacker changing a method must not go unnoticed.
    pub(crate) async fn notify_method_change(
        &self,
        user: &Guid,
        account: Option<&Account>,
        before: &[Enrollment],
        what: &str,
        new_address: Option<&str>,
    ) {
        let org = &self.inner.config.organisation;
        let sam = account.map_or(String::new(), |a| format!(" {}", a.sam_account_name));
        let mut to: Vec<String> = before
            .iter()
            .filter(|e| e.method == MethodKind::Email)
            .map(|e| e.value.clone())
            .chain(account.and_then(|a| a.mail.clone()))
            .chain(new_address.map(str::to_owned))
            .collect();
        to.sort_by_key(|a| a.to_lowercase());
        to.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let subject = format!("Your {org} self-service methods changed");
        let body = format!(
            "A way to verify your identity for {org} self-service (account{sam}) changed: {what}.\n\n\
             Not you? Contact the helpdesk at once.\n"
        );
        for address in to {
            let mail = Email {
                to: address,
                subject: subject.clone(),
                body: body.clone(),
            };
            let _ = self.queue_notice(user, &mail).await;
        }
        self.kick_outbox().await;
    }
}

/// The audit trail of an enrollment step: the method it concerns and what the step did.
fn enroll_trail(method: &str, step: &str) -> Trail {
    let mut trail = Trail::new(Operation::Enroll);
    trail.methods(&[method]);
    trail.note(step);
    trail
}

fn enroll_purpose(kind: MethodKind) -> String {
    format!("enroll:{}", kind.as_str())
}

/// How a mail names a method.
pub(super) fn method_words(kind: MethodKind) -> &'static str {
    match kind {
        MethodKind::Email => "an email address",
        MethodKind::Sms => "a phone number for text messages",
        MethodKind::Totp => "an authenticator app",
        MethodKind::Passkey => "a passkey",
        MethodKind::Questions => "security questions",
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn address_validation() {
        assert!(valid_address("a.b+c@corp.example.com"));
        assert!(!valid_address("a b@corp.example.com"));
        assert!(!valid_address("a@b@c.com"));
        assert!(!valid_address("a@localhost"));
        assert!(!valid_address("<a@b.com>"));
    }
}
