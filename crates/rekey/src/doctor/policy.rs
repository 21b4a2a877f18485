//! The effective password policies: the domain's and every PSO with whom it applies to.

use rekey_directory::probe::{Entry, Session, rdn_value};

use super::Finding;

fn interval_days(v: Option<&str>) -> String {
    // AD stores ages as negative 100 ns intervals; "never" is the most negative value.
    match v.and_then(|x| x.trim().parse::<i64>().ok()) {
        None => "?".into(),
        Some(0) => "0".into(),
        Some(i64::MIN) => "never".into(),
        Some(x) => {
            let secs = x.unsigned_abs() / 10_000_000;
            if secs % 86_400 == 0 {
                format!("{} d", secs / 86_400)
            } else {
                format!("{secs} s")
            }
        }
    }
}

pub(super) async fn policy(s: &mut Session, base: &str, head: &Entry, out: &mut Vec<Finding>) {
    let v = |a: &str| head.first(a).unwrap_or("?").to_owned();
    let complexity = head
        .first("pwdProperties")
        .and_then(|p| p.trim().parse::<u32>().ok())
        .map_or("?", |p| if p & 1 != 0 { "on" } else { "off" });
    out.push(Finding::pass(
        "policy",
        format!(
            "domain: min length {}, complexity {complexity}, history {}, min age {}, max age {}, lockout after {}",
            v("minPwdLength"),
            v("pwdHistoryLength"),
            interval_days(head.first("minPwdAge")),
            interval_days(head.first("maxPwdAge")),
            v("lockoutThreshold"),
        ),
    ));
    match s.password_settings(base).await {
        Ok(psos) if psos.is_empty() => out.push(Finding::pass("policy.pso", "no fine-grained password policy (PSO)")),
        Ok(psos) => {
            let mut unreadable = Vec::new();
            for p in &psos {
                let name = p.first("cn").unwrap_or(&p.dn).to_owned();
                if p.first("msDS-MinimumPasswordLength").is_none() {
                    unreadable.push(name.clone());
                }
                let applies: Vec<&str> = p.all("msDS-PSOAppliesTo").iter().map(|d| rdn_value(d)).collect();
                let attr = |a: &str| p.first(a).unwrap_or("?").to_owned();
                out.push(
                    Finding::pass(
                        "policy.pso",
                        format!(
                            "{name} (precedence {}): min length {}, complexity {}, history {}, min age {}, max age {}, lockout after {}",
                            attr("msDS-PasswordSettingsPrecedence"),
                            attr("msDS-MinimumPasswordLength"),
                            match p.first("msDS-PasswordComplexityEnabled") {
                                Some(v) if v.eq_ignore_ascii_case("TRUE") => "on",
                                Some(_) => "off",
                                None => "?",
                            },
                            attr("msDS-PasswordHistoryLength"),
                            interval_days(p.first("msDS-MinimumPasswordAge")),
                            interval_days(p.first("msDS-MaximumPasswordAge")),
                            attr("msDS-LockoutThreshold"),
                        ),
                    )
                    .detail(format!("applies to: {}", if applies.is_empty() { "nobody".into() } else { applies.join(", ") })),
                );
            }
            if !unreadable.is_empty() {
                out.push(
                    Finding::warn(
                        "policy.pso",
                        "RK-DOC-051",
                        "the service account cannot read these PSOs' settings: Rekey's pre-check falls back to the domain policy",
                    )
                    .details(unreadable)
                    .fix(format!("grant the service account read on CN=Password Settings Container,CN=System,{base}")),
                );
            }
        }
        Err(e) => out.push(
            Finding::warn("policy.pso", "RK-DOC-050", format!("PSOs unreadable: {e}"))
                .fix(format!("grant the service account read on CN=Password Settings Container,CN=System,{base}")),
        ),
    }
}
