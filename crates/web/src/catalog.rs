//! The message catalog: every error code a browser can see, with its text in every language.
//!
//! English is the core's own `UserFacing::message()` (one source, next to the code); every other
//! language is a column of `MESSAGES`. One table drives the lookup for every language: a code
//! without a row is a bug (the tests below enumerate every code the core can produce), and
//! adding a language to `Lang` does not compile until `Msg::text` knows its column.

use crate::i18n::Lang;

/// One error code and its translations.
pub struct Msg {
    pub code: &'static str,
    pub de: &'static str,
}

impl Msg {
    /// The text in `lang`; `english` is the core's message for this code.
    fn text(&self, lang: Lang, english: &'static str) -> &'static str {
        match lang {
            Lang::En => english,
            Lang::De => self.de,
        }
    }
}

/// Every user-facing code. Plain language, "Sie", no raw directory words; the support id is on
/// the page next to the text.
pub static MESSAGES: &[Msg] = &[
    Msg {
        code: "RK-FLOW-001",
        de: "Diese Sitzung ist abgelaufen. Bitte beginnen Sie neu.",
    },
    Msg {
        code: "RK-FLOW-002",
        de: "Dieser Schritt ist gerade nicht möglich. Bitte beginnen Sie neu.",
    },
    Msg {
        code: "RK-VERIFY-001",
        de: "Dieser Code ist falsch oder abgelaufen.",
    },
    Msg {
        code: "RK-VERIFY-002",
        de: "Zu viele Versuche. Die Selbstbedienung ist für dieses Konto vorübergehend gesperrt; \
             versuchen Sie es später erneut oder wenden Sie sich an den Helpdesk.",
    },
    Msg {
        code: "RK-CHANGE-001",
        de: "Das Passwort konnte nicht geändert werden. Prüfen Sie den Benutzernamen und das \
             aktuelle Passwort.",
    },
    Msg {
        code: "RK-RATE-001",
        de: "Zu viele Versuche. Bitte warten Sie etwas, bevor Sie es erneut versuchen.",
    },
    Msg {
        code: "RK-ENROLL-001",
        de: "Die Anmeldung ist fehlgeschlagen. Prüfen Sie Benutzernamen und Passwort.",
    },
    Msg {
        code: "RK-ENROLL-002",
        de: "Das sieht nicht nach einer E-Mail-Adresse aus.",
    },
    Msg {
        code: "RK-PWD-001",
        de: "Das neue Passwort ist für die Richtlinie Ihrer Organisation zu kurz.",
    },
    Msg {
        code: "RK-PWD-002",
        de: "Das neue Passwort ist nicht komplex genug: Verwenden Sie mindestens drei der vier \
             Zeichenarten Großbuchstaben, Kleinbuchstaben, Ziffern und Sonderzeichen, und \
             verwenden Sie nicht Ihren Namen.",
    },
    Msg {
        code: "RK-PWD-003",
        de: "Dieses Passwort haben Sie schon einmal verwendet. Wählen Sie eines, das Sie noch \
             nicht verwendet haben.",
    },
    Msg {
        code: "RK-PWD-004",
        de: "Ihr Passwort wurde erst vor Kurzem geändert. Sie können es wieder ändern, sobald \
             die vorgeschriebene Mindestdauer abgelaufen ist.",
    },
    Msg {
        code: "RK-PWD-005",
        de: "Das neue Passwort entspricht nicht der Passwortrichtlinie Ihrer Organisation.",
    },
    Msg {
        code: "RK-PWD-006",
        de: "Das aktuelle Passwort, das Sie eingegeben haben, ist nicht richtig.",
    },
    Msg {
        code: "RK-PWD-007",
        de: "Das neue Passwort enthält ein Wort, einen Namen oder ein Muster, das es leicht \
             erratbar macht. Wählen Sie eines, das schwerer zu erraten ist, zum Beispiel einige \
             Wörter, die nichts miteinander zu tun haben.",
    },
    Msg {
        code: "RK-PWD-008",
        de: "Dieses Passwort steht in Listen von Passwörtern, die bei Datenlecks bekannt wurden, \
             deshalb probieren Angreifer es aus. Wählen Sie ein anderes.",
    },
    Msg {
        code: "RK-BREACH-001",
        de: "Die Passwortprüfung ist gerade nicht verfügbar. Es wurde nichts geändert; versuchen \
             Sie es in ein paar Minuten erneut.",
    },
    Msg {
        code: "RK-PWD-010",
        de: "Das neue Passwort entspricht nicht der Passwortrichtlinie Ihrer Organisation.",
    },
    Msg {
        code: "RK-ACC-001",
        de: "Dieses Konto ist gesperrt. Entsperren Sie es zuerst oder wenden Sie sich an den \
             Helpdesk.",
    },
    Msg {
        code: "RK-DIR-001",
        de: "Rekey darf das Passwort dieses Kontos nicht ändern. Wenden Sie sich an den Helpdesk.",
    },
    Msg {
        code: "RK-DIR-002",
        de: "Das Konto wurde nicht gefunden.",
    },
    Msg {
        code: "RK-DIR-003",
        de: "Die Anfrage wurde abgelehnt.",
    },
    Msg {
        code: "RK-ZONE-001",
        de: "Dort könnte mehr als ein Konto Ihres sein, deshalb wurde es nicht geändert. Der \
             Helpdesk kann die Zuordnung korrigieren.",
    },
    Msg {
        code: "RK-ZONE-002",
        de: "Dieses Konto hat in einem verbundenen Dienst (etwa Microsoft 365) eine \
             Administratorrolle, deshalb kann die Selbstbedienung es nicht zurücksetzen. Es wurde \
             nichts geändert; wenden Sie sich an den Helpdesk.",
    },
    Msg {
        code: "RK-ZONE-003",
        de: "Der Verzeichnisdienst ist gerade ausgelastet. Dort wurde noch nichts geändert; \
             Rekey versucht es selbst erneut.",
    },
    Msg {
        // A directory read and a write that was never sent share this code: nothing changed.
        code: "RK-DIR-010",
        de: "Der Verzeichnisdienst ist gerade nicht erreichbar. Es wurde nichts geändert; \
             versuchen Sie es in ein paar Minuten erneut.",
    },
    Msg {
        code: "RK-DIR-011",
        de: "Beim Speichern Ihres Passworts ist die Verbindung zum Verzeichnisdienst abgebrochen, \
             deshalb wissen wir nicht, ob es gespeichert wurde. Melden Sie sich mit dem neuen \
             Passwort an; klappt das nicht, wenden Sie sich mit der Support-ID an den Helpdesk.",
    },
    Msg {
        code: "RK-DIR-012",
        de: "Mehrere Konten passen zu diesem Namen. Verwenden Sie Ihren vollständigen \
             Anmeldenamen.",
    },
    Msg {
        code: "RK-DIR-013",
        de: "Der Verzeichnisdienst hat unerwartet geantwortet. Wenden Sie sich an den Helpdesk.",
    },
    Msg {
        code: "RK-STORE-001",
        de: "Der Dienst ist vorübergehend nicht verfügbar. Es wurde nichts geändert; versuchen \
             Sie es in Kürze erneut.",
    },
    Msg {
        code: "RK-PASSKEY-002",
        de: "Der Passkey wurde nicht angenommen. Versuchen Sie es erneut oder bestätigen Sie auf \
             einem anderen Weg.",
    },
    Msg {
        code: "RK-VERIFY-003",
        de: "Die Antworten sind nicht richtig.",
    },
    Msg {
        code: "RK-METHOD-001",
        de: "Dieser Weg der Bestätigung ist hier nicht verfügbar.",
    },
    Msg {
        code: "RK-METHOD-002",
        de: "Diese Telefonnummer wird nicht angenommen. Verwenden Sie das internationale Format, \
             z. B. +49 170 1234567, mit einer Ländervorwahl, die Ihre Organisation zulässt.",
    },
    Msg {
        code: "RK-METHOD-003",
        de: "Wählen Sie 3 bis 5 verschiedene Fragen mit verschiedenen Antworten von 3 bis 40 \
             Zeichen.",
    },
    Msg {
        code: "RK-RATE-002",
        de: "Gerade kommen viele Anfragen an. Ihr Browser löst zuerst eine kleine Aufgabe; ohne \
             JavaScript warten Sie ein paar Sekunden und fahren dann fort.",
    },
    Msg {
        code: "RK-KEY-001",
        de: "Der Dienst ist vorübergehend nicht verfügbar. Es wurde nichts geändert; versuchen \
             Sie es in Kürze erneut.",
    },
    Msg {
        code: "RK-HD-001",
        de: "Die Helpdesk-Konsole verlangt einen zweiten Faktor, und Ihr Konto hat keinen. \
             Richten Sie im Portal unter „Wiederherstellungsmethoden einrichten“ eine \
             Authenticator-App, eine E-Mail-Adresse oder eine Telefonnummer ein und melden Sie \
             sich dann erneut an.",
    },
    Msg {
        code: "RK-HD-002",
        de: "Ihr Konto darf dies hier nicht tun (Operator- oder Freigabegruppe).",
    },
    Msg {
        code: "RK-HD-003",
        de: "Prüfen Sie zuerst den Anrufer: Senden Sie einen Code und geben Sie ein, was er \
             Ihnen vorliest.",
    },
    Msg {
        code: "RK-HD-004",
        de: "Dieser Benutzer hat keine E-Mail-Adresse und kein Telefon (älter als die \
             Wartezeit), an die ein Prüfcode gehen kann; der Anrufer kann hier nicht geprüft \
             werden. Folgen Sie Ihrem Verfahren zur persönlichen Identitätsprüfung.",
    },
    Msg {
        code: "RK-HD-005",
        de: "Sie können Ihre eigene Anfrage nicht freigeben. Eine andere freigebende Person muss \
             entscheiden.",
    },
    Msg {
        code: "RK-HD-006",
        de: "Diese Anfrage ist abgelaufen oder wurde bereits entschieden.",
    },
    Msg {
        code: "RK-HD-007",
        de: "In der Konsole kann niemand am eigenen Konto handeln.",
    },
    Msg {
        code: "RK-HD-008",
        de: "Änderungen an den Anmeldemethoden privilegierter Konten brauchen die Freigabe Ihres \
             Sicherheitsteams, und es sind keine freigebenden Personen eingerichtet. Es wurde \
             nichts geändert; wenden Sie sich an Ihr IT-Sicherheitsteam.",
    },
    Msg {
        code: "RK-HD-009",
        de: "Diese Prüfung des Anrufers stammt von einer anderen Integration oder gilt einem \
             anderen Benutzer. Prüfen Sie zuerst den Anrufer dieses Benutzers.",
    },
    Msg {
        code: "RK-ACC-002",
        de: "Das Konto ist deaktiviert.",
    },
    Msg {
        code: "RK-ACC-003",
        de: "Das Konto verlangt eine Smartcard für die interaktive Anmeldung; es hat kein \
             Kennwort zum Zurücksetzen.",
    },
    Msg {
        code: "RK-SCOPE-001",
        de: "Das Konto liegt außerhalb des Self-Service-Bereichs (Gruppen / OUs oder \
             Pilotgruppe).",
    },
    Msg {
        code: "RK-TIER-001",
        de: "Das Konto ist privilegiert (Mitglied einer geschützten Gruppe); Rekey setzt \
             privilegierte Konten nicht zurück und entsperrt sie nicht: Nutzen Sie Ihr \
             Tier-0-Verfahren.",
    },
    Msg {
        code: "RK-MAIL-001",
        de: "Die E-Mail konnte gerade nicht gesendet werden. Es wurde nichts geändert; versuchen \
             Sie es in Kürze erneut.",
    },
];

/// The row for `code`, if the catalog has one.
pub fn find(code: &str) -> Option<&'static Msg> {
    MESSAGES.iter().find(|m| m.code == code)
}

/// A zone's message in `lang`, from its code; `english` is the core's message as the zone report
/// carries it (owned: a report may come back from the store).
pub fn zone_text(lang: Lang, code: &str, english: &str) -> String {
    match (lang, find(code)) {
        (Lang::En, _) | (_, None) => english.to_owned(),
        (_, Some(m)) => m.text(lang, "").to_owned(),
    }
}

/// The message for `code` in `lang`. A code without a row (a bug the tests catch) falls back to
/// the core's English rather than showing nothing.
pub fn text(lang: Lang, code: &str, english: &'static str) -> &'static str {
    match find(code) {
        Some(m) => m.text(lang, english),
        None => {
            tracing::warn!(code, "no catalog entry for this code");
            english
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;
    use std::time::Duration;

    use rekey_core::engine::EngineError;
    use rekey_core::store::StoreError;
    use rekey_core::{
        Diagnostic, DirectoryError, LandingError, PasswordPolicy, PolicySource, Rejection,
        UserFacing,
    };

    use super::*;
    use crate::i18n::LANGUAGES;

    /// One value of every variant of `$ty` a browser can see, and an exhaustive `match` over the
    /// same list plus the variants only operator paths (CLI) produce: a new variant does not
    /// compile until it is listed here, as shown (and so its code is checked) or as not shown.
    macro_rules! every {
        (
            $ty:ident:
            $( $variant:ident $( ( $($arg:expr),* ) )? $( { $($field:ident: $val:expr),* } )? ),+
            $(,)?
            $( ; operator only: $( $hidden:ident ),+ $(,)? )?
        ) => {{
            fn listed(v: &$ty) {
                match v {
                    $( $ty::$variant { .. } => {} )+
                    $( $( $ty::$hidden { .. } => {} )+ )?
                }
            }
            let all: Vec<$ty> = vec![
                $( $ty::$variant $( ( $($arg),* ) )? $( { $($field: $val),* } )? ),+
            ];
            all.iter().for_each(listed);
            all
        }};
    }

    fn diag() -> Diagnostic {
        Diagnostic::new(Some("dc1"), "raw cause")
    }

    fn rejections() -> Vec<Rejection> {
        every!(Rejection:
            TooShort,
            Complexity,
            History,
            MinAge,
            Policy,
            WrongOldPassword,
            AccountLocked,
            InsufficientRights,
            NoSuchUser,
            Refused,
            Ambiguous,
            Privileged,
        )
    }

    /// Every landing error, with every rejection reason.
    fn landing_errors() -> Vec<LandingError> {
        let mut all = every!(LandingError:
            Rejected { reason: Rejection::Refused, diagnostic: diag() },
            Unavailable { diagnostic: diag() },
            Throttled { retry_after_ms: Some(1500), diagnostic: diag() },
            Indeterminate { diagnostic: diag() },
        );
        all.extend(
            rejections()
                .into_iter()
                .map(|reason| LandingError::Rejected {
                    reason,
                    diagnostic: diag(),
                }),
        );
        all
    }

    fn directory_errors() -> Vec<DirectoryError> {
        every!(DirectoryError:
            Unavailable(diag()),
            Ambiguous,
            Protocol(diag()),
        )
    }

    /// Every error the engine can hand a handler, with every nested landing and directory error.
    fn engine_errors() -> Vec<EngineError> {
        let policy = PasswordPolicy {
            source: PolicySource::Domain,
            min_length: 7,
            complexity: true,
            history_length: 24,
            min_age: Duration::ZERO,
            max_age: None,
            lockout_threshold: 0,
            lockout_duration: Duration::ZERO,
            lockout_window: Duration::ZERO,
            entra_rules: false,
        };
        let mut all = every!(EngineError:
            FlowExpired,
            WrongStep,
            WrongCode,
            TooManyAttempts,
            ChangeRefused,
            RateLimited,
            SignInFailed,
            BadAddress,
            Policy { violations: vec![], policy: Box::new(policy) },
            TooSoon { allowed_at: None },
            Banned,
            Breached,
            BreachCheck,
            Landing(LandingError::Unavailable { diagnostic: diag() }),
            Directory(DirectoryError::Ambiguous),
            Store(StoreError::Unavailable("down".into())),
            Mail,
            PasskeyRefused,
            WrongAnswers,
            MethodUnavailable,
            BadPhone,
            Questions(rekey_core::questions::QuestionError::Count),
            ProofOfWork { challenge: String::new(), bits: 18, wait_secs: 10 },
            SealedKey("srv1-00000000".into()),
            // The helpdesk console (operators see why they may not act).
            OperatorNeedsFactor,
            NotAllowed,
            CallerNotVerified,
            NoCallerMethod,
            SelfApproval,
            ApprovalGone,
            OwnAccount,
            // A privileged user's method change without approvers (fail closed).
            NoApprovers,
            // The helpdesk API: a verification of another integration or user.
            VerificationMismatch,
            Ineligible(rekey_core::scope::Ineligible::Disabled),
            NoSuchAccount,
        );
        use rekey_core::scope::Ineligible as I;
        all.extend(
            [
                I::SmartcardRequired,
                I::OutOfScope,
                I::NotInPilot,
                I::PrivilegedExcluded,
            ]
            .into_iter()
            .map(EngineError::Ineligible),
        );
        all.extend(landing_errors().into_iter().map(EngineError::Landing));
        all.extend(directory_errors().into_iter().map(EngineError::Directory));
        all
    }

    /// (code, English) of everything a browser can be shown.
    fn produced() -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<_> = engine_errors()
            .iter()
            .map(|e| (e.code(), e.message()))
            .collect();
        // Zone reports carry a landing error's code and message straight to the outcome page.
        out.extend(landing_errors().iter().map(|e| (e.code(), e.message())));
        out
    }

    #[test]
    fn every_produced_code_has_a_text_in_every_language() {
        let mut missing = Vec::new();
        for (code, english) in produced() {
            assert!(
                !english.trim().is_empty(),
                "{code}: the core has no English"
            );
            let Some(row) = find(code) else {
                missing.push(format!("{code}: no row in MESSAGES (English: {english})"));
                continue;
            };
            for t in LANGUAGES {
                let text = row.text(t.lang, english);
                if text.trim().is_empty() {
                    missing.push(format!("{code}: no {} text", t.code));
                }
                if t.lang != Lang::En && text == english {
                    missing.push(format!("{code}: the {} text is the English one", t.code));
                }
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

    #[test]
    fn the_catalog_has_no_code_nobody_produces_and_no_duplicates() {
        let produced: BTreeSet<_> = produced().into_iter().map(|(c, _)| c).collect();
        let mut seen = BTreeSet::new();
        for m in MESSAGES {
            assert!(seen.insert(m.code), "{} is listed twice", m.code);
            assert!(
                produced.contains(m.code),
                "{} is in MESSAGES but nothing produces it",
                m.code
            );
        }
    }

    #[test]
    fn lookup_is_by_code_and_falls_back_to_english() {
        let e = EngineError::Directory(DirectoryError::Ambiguous);
        assert_eq!(text(Lang::En, e.code(), e.message()), e.message());
        assert!(text(Lang::De, e.code(), e.message()).starts_with("Mehrere Konten"));
        assert_eq!(text(Lang::De, "RK-NOPE-999", "fallback"), "fallback");
    }
}
