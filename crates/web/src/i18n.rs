//! Two languages, chosen from the `__Host-rekey-lang` cookie, else Accept-Language; a switch on
//! every page. Page texts live here; the engine's error messages live in `catalog`.

use crate::catalog;

/// The languages the portal speaks. Adding one is a compile error until every page text
/// (`Texts`) and every error message (`catalog::Msg`) has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
}

/// Every language, in the order the switch shows them.
pub static LANGUAGES: [&Texts; 2] = [&EN, &DE];

/// Every string a page shows.
pub struct Texts {
    pub lang: Lang,
    /// The BCP 47 tag: `<html lang>`, the `?lang=` switch and the cookie value.
    pub code: &'static str,
    pub title: &'static str,
    pub start_lead: &'static str,
    pub menu_reset: &'static str,
    pub menu_unlock: &'static str,
    pub menu_change: &'static str,
    pub menu_enroll: &'static str,
    pub reset_title: &'static str,
    pub unlock_title: &'static str,
    pub identify_lead: &'static str,
    pub username: &'static str,
    pub username_hint: &'static str,
    pub continue_: &'static str,
    pub code_title: &'static str,
    pub code_lead: &'static str,
    pub code_label: &'static str,
    pub verify: &'static str,
    pub new_password_title: &'static str,
    pub policy_intro: &'static str,
    pub new_password: &'static str,
    pub confirm_password: &'static str,
    pub mismatch: &'static str,
    pub set_password: &'static str,
    pub unlock_lead: &'static str,
    pub unlock_button: &'static str,
    pub change_title: &'static str,
    pub current_password: &'static str,
    pub change_button: &'static str,
    pub enroll_title: &'static str,
    pub enroll_lead: &'static str,
    pub sign_in: &'static str,
    pub password: &'static str,
    pub email_title: &'static str,
    pub email_current: &'static str,
    pub email_label: &'static str,
    pub send_code: &'static str,
    pub enroll_code_lead: &'static str,
    pub enrolled: &'static str,
    pub done_title: &'static str,
    pub reset_done: &'static str,
    pub unlock_done: &'static str,
    pub change_done: &'static str,
    pub zone: &'static str,
    pub outcome: &'static str,
    pub support_id: &'static str,
    pub error_title: &'static str,
    pub start_again: &'static str,
    pub home: &'static str,
    pub no_auto_sign_in: &'static str,
    pub policy_min_length: &'static str,
    pub policy_complexity: &'static str,
    pub policy_history: &'static str,
    pub policy_source_pso: &'static str,
    pub allowed_at: &'static str,
    pub violation_empty: &'static str,
    pub violation_banned: &'static str,
    pub policy_banned: &'static str,
    pub violation_too_long: &'static str,
    pub zone_landed: &'static str,
    pub zone_rejected: &'static str,
    pub zone_indeterminate: &'static str,
    pub zone_failed: &'static str,
    pub zone_absent: &'static str,
    pub zone_queued: &'static str,
    pub zone_pending: &'static str,
    /// `{}`: seconds.
    pub zone_synced: &'static str,
    /// `{}`: minutes.
    pub zone_not_synced: &'static str,
    pub zone_active_directory: &'static str,
    pub zone_entra_id: &'static str,
    pub sessions_revoked: &'static str,
    pub sessions_not_revoked: &'static str,
    pub still_moving: &'static str,
    pub refresh_now: &'static str,
    pub policy_entra: &'static str,
    pub violation_cloud_characters: &'static str,
    pub violation_breached: &'static str,
    pub partly_done: &'static str,
}

impl Texts {
    /// A zone's outcome (the engine's `landed` / `rejected` / `indeterminate` / `failed`) in
    /// this language.
    #[must_use]
    pub fn zone_outcome<'a>(&self, outcome: &'a str) -> &'a str {
        match outcome {
            "landed" => self.zone_landed,
            "rejected" => self.zone_rejected,
            "indeterminate" => self.zone_indeterminate,
            "failed" => self.zone_failed,
            "absent" => self.zone_absent,
            "queued" => self.zone_queued,
            "pending" => self.zone_pending,
            "synced" => self.zone_synced,
            "not_synced" => self.zone_not_synced,
            other => other,
        }
    }

    /// A landing zone's name as people know it.
    #[must_use]
    pub fn zone_name(&self, zone: rekey_core::ZoneId) -> &'static str {
        match zone {
            rekey_core::ZoneId::ActiveDirectory => self.zone_active_directory,
            rekey_core::ZoneId::EntraId => self.zone_entra_id,
        }
    }
}

pub static EN: Texts = Texts {
    lang: Lang::En,
    code: "en",
    title: "Password self-service",
    start_lead: "Forgot your password or locked out? You can fix it here.",
    menu_reset: "I forgot my password",
    menu_unlock: "My account is locked",
    menu_change: "Change my password",
    menu_enroll: "Register my recovery email",
    reset_title: "Reset your password",
    unlock_title: "Unlock your account",
    identify_lead: "Enter your user name. If the account can use self-service, we send a code to its registered email address.",
    username: "User name or email",
    username_hint: "For example jane.doe or jane.doe@corp.example.com",
    continue_: "Continue",
    code_title: "Enter your code",
    code_lead: "If the account exists and has a registered email address, a 6-digit code is on its way. It is valid for 10 minutes.",
    code_label: "6-digit code",
    verify: "Verify",
    new_password_title: "Choose a new password",
    policy_intro: "Your organisation's rules for this account:",
    new_password: "New password",
    confirm_password: "New password again",
    mismatch: "The two passwords are not the same.",
    set_password: "Set new password",
    unlock_lead: "Your identity is verified. Unlock the account; your password stays the same.",
    unlock_button: "Unlock my account",
    change_title: "Change your password",
    current_password: "Current password",
    change_button: "Change password",
    enroll_title: "Register a recovery email",
    enroll_lead: "Sign in with your current password to register where we send reset codes.",
    sign_in: "Sign in",
    password: "Password",
    email_title: "Your recovery email",
    email_current: "Currently registered:",
    email_label: "Email address (not your work address, if you can)",
    send_code: "Send a code",
    enroll_code_lead: "We sent a 6-digit code to the new address. Enter it to confirm.",
    enrolled: "Your recovery email is registered. After 24 hours you can use it to reset your password.",
    done_title: "Done",
    reset_done: "Your password was reset. Sign in with the new password.",
    unlock_done: "Your account was unlocked.",
    change_done: "Your password was changed.",
    zone: "Where",
    outcome: "Result",
    support_id: "Support id",
    error_title: "That did not work",
    start_again: "Start again",
    home: "Home",
    no_auto_sign_in: "You are not signed in automatically: sign in as usual with the new password.",
    policy_min_length: "At least {} characters",
    policy_complexity: "Three of: upper-case letters, lower-case letters, digits, symbols; not your name",
    policy_history: "Not one of your last {} passwords",
    policy_source_pso: "A stricter policy applies to your account.",
    allowed_at: "You can change it again after {} (UTC).",
    violation_empty: "Enter a new password.",
    policy_banned: "No common words, names or patterns attackers try first (like P@ssw0rd2026)",
    violation_banned: "Too easy to guess: it contains a common word, a name or a pattern attackers try first.",
    violation_too_long: "At most 256 characters.",
    // The engine's own words; the browser tests look for "landed".
    zone_landed: "landed",
    zone_rejected: "rejected",
    zone_indeterminate: "indeterminate",
    zone_failed: "failed",
    zone_absent: "no account there: nothing to do",
    zone_queued: "not yet: Rekey retries on its own",
    zone_pending: "waiting for the sync from Active Directory",
    zone_synced: "synced after {}\u{a0}s",
    zone_not_synced: "not synced within {}\u{a0}min (your IT team has been told through the audit log)",
    zone_active_directory: "Active Directory (Windows sign-in, VPN, file shares)",
    zone_entra_id: "Microsoft 365 (Entra ID)",
    sessions_revoked: "signed out of existing sessions",
    sessions_not_revoked: "existing sessions could not be signed out",
    still_moving: "Not every place has the new password yet. This page refreshes by itself.",
    refresh_now: "Refresh now",
    policy_entra: "Microsoft 365 also needs: at least 8 characters; three of upper-case, lower-case, digits, symbols; only letters A–Z, digits, space and common symbols",
    violation_cloud_characters: "Microsoft 365 accepts only letters A–Z, digits, space and common symbols (no accents or other scripts).",
    violation_breached: "This password appears in lists leaked in data breaches, so attackers try it. Choose another one.",
    partly_done: "The new password is set in Active Directory, but not everywhere yet: see each place below.",
};

pub static DE: Texts = Texts {
    lang: Lang::De,
    code: "de",
    title: "Passwort-Selbstbedienung",
    start_lead: "Passwort vergessen oder gesperrt? Hier können Sie es selbst beheben.",
    menu_reset: "Ich habe mein Passwort vergessen",
    menu_unlock: "Mein Konto ist gesperrt",
    menu_change: "Mein Passwort ändern",
    menu_enroll: "Wiederherstellungs-E-Mail registrieren",
    reset_title: "Passwort zurücksetzen",
    unlock_title: "Konto entsperren",
    identify_lead: "Geben Sie Ihren Benutzernamen ein. Wenn das Konto die Selbstbedienung nutzen darf, senden wir einen Code an die registrierte E-Mail-Adresse.",
    username: "Benutzername oder E-Mail",
    username_hint: "Zum Beispiel erika.mustermann oder erika.mustermann@corp.example.com",
    continue_: "Weiter",
    code_title: "Code eingeben",
    code_lead: "Wenn das Konto existiert und eine registrierte E-Mail-Adresse hat, ist ein 6-stelliger Code unterwegs. Er gilt 10 Minuten.",
    code_label: "6-stelliger Code",
    verify: "Prüfen",
    new_password_title: "Neues Passwort wählen",
    policy_intro: "Die Regeln Ihrer Organisation für dieses Konto:",
    new_password: "Neues Passwort",
    confirm_password: "Neues Passwort wiederholen",
    mismatch: "Die beiden Passwörter stimmen nicht überein.",
    set_password: "Neues Passwort setzen",
    unlock_lead: "Ihre Identität ist bestätigt. Entsperren Sie das Konto; Ihr Passwort bleibt gleich.",
    unlock_button: "Konto entsperren",
    change_title: "Passwort ändern",
    current_password: "Aktuelles Passwort",
    change_button: "Passwort ändern",
    enroll_title: "Wiederherstellungs-E-Mail registrieren",
    enroll_lead: "Melden Sie sich mit Ihrem aktuellen Passwort an, um festzulegen, wohin wir Codes senden.",
    sign_in: "Anmelden",
    password: "Passwort",
    email_title: "Ihre Wiederherstellungs-E-Mail",
    email_current: "Derzeit registriert:",
    email_label: "E-Mail-Adresse (möglichst nicht die dienstliche)",
    send_code: "Code senden",
    enroll_code_lead: "Wir haben einen 6-stelligen Code an die neue Adresse gesendet. Geben Sie ihn zur Bestätigung ein.",
    enrolled: "Ihre Wiederherstellungs-E-Mail ist registriert. Nach 24 Stunden können Sie damit Ihr Passwort zurücksetzen.",
    done_title: "Erledigt",
    reset_done: "Ihr Passwort wurde zurückgesetzt. Melden Sie sich mit dem neuen Passwort an.",
    unlock_done: "Ihr Konto wurde entsperrt.",
    change_done: "Ihr Passwort wurde geändert.",
    zone: "Wo",
    outcome: "Ergebnis",
    support_id: "Support-ID",
    error_title: "Das hat nicht geklappt",
    start_again: "Neu beginnen",
    home: "Startseite",
    no_auto_sign_in: "Sie werden nicht automatisch angemeldet: Melden Sie sich wie gewohnt mit dem neuen Passwort an.",
    policy_min_length: "Mindestens {} Zeichen",
    policy_complexity: "Drei von: Großbuchstaben, Kleinbuchstaben, Ziffern, Sonderzeichen; nicht Ihr Name",
    policy_history: "Keines Ihrer letzten {} Passwörter",
    policy_source_pso: "Für Ihr Konto gilt eine strengere Richtlinie.",
    allowed_at: "Sie können es nach {} (UTC) wieder ändern.",
    violation_empty: "Geben Sie ein neues Passwort ein.",
    policy_banned: "Keine häufigen Wörter, Namen oder Muster, die Angreifer zuerst ausprobieren (wie P@ssw0rd2026)",
    violation_banned: "Zu leicht zu erraten: Es enthält ein häufiges Wort, einen Namen oder ein Muster, das Angreifer zuerst ausprobieren.",
    violation_too_long: "Höchstens 256 Zeichen.",
    zone_landed: "erledigt",
    zone_rejected: "abgelehnt",
    zone_indeterminate: "unklar",
    zone_failed: "fehlgeschlagen",
    zone_absent: "kein Konto dort: nichts zu tun",
    zone_queued: "noch nicht: Rekey versucht es selbst erneut",
    zone_pending: "wartet auf die Synchronisierung aus dem Active Directory",
    zone_synced: "synchronisiert nach {}\u{a0}s",
    zone_not_synced: "nicht synchronisiert innerhalb von {}\u{a0}min (Ihre IT ist über das Audit-Protokoll informiert)",
    zone_active_directory: "Active Directory (Windows-Anmeldung, VPN, Dateifreigaben)",
    zone_entra_id: "Microsoft 365 (Entra ID)",
    sessions_revoked: "bestehende Sitzungen abgemeldet",
    sessions_not_revoked: "bestehende Sitzungen konnten nicht abgemeldet werden",
    still_moving: "Noch nicht überall ist das neue Passwort angekommen. Diese Seite aktualisiert sich selbst.",
    refresh_now: "Jetzt aktualisieren",
    policy_entra: "Microsoft 365 verlangt außerdem: mindestens 8 Zeichen; drei von Großbuchstaben, Kleinbuchstaben, Ziffern, Sonderzeichen; nur Buchstaben A–Z, Ziffern, Leerzeichen und übliche Sonderzeichen",
    violation_cloud_characters: "Microsoft 365 akzeptiert nur Buchstaben A–Z, Ziffern, Leerzeichen und übliche Sonderzeichen (keine Umlaute oder andere Schriften).",
    violation_breached: "Dieses Passwort steht in Listen aus Datenlecks, deshalb probieren Angreifer es aus. Wählen Sie ein anderes.",
    partly_done: "Das neue Passwort ist im Active Directory gesetzt, aber noch nicht überall: Details unten.",
};

/// An engine error's message in the page's language, by its stable code (see `catalog`).
/// `english` is the core's `UserFacing::message()`.
pub fn message(lang: &Texts, code: &str, english: &'static str) -> &'static str {
    catalog::text(lang.lang, code, english)
}

/// Pick a language: explicit choice first, then the browser's preference, else English.
pub fn choose(cookie: Option<&str>, accept_language: Option<&str>) -> &'static Texts {
    if let Some(c) = cookie {
        return by_code(c).unwrap_or(&EN);
    }
    let prefers_de = accept_language
        .and_then(|h| h.split(',').next())
        .is_some_and(|first| first.trim().to_ascii_lowercase().starts_with("de"));
    if prefers_de { &DE } else { &EN }
}

/// The language with this exact tag (`en`, `de`).
pub fn by_code(code: &str) -> Option<&'static Texts> {
    LANGUAGES.iter().copied().find(|t| t.code == code)
}
