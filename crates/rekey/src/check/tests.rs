//! Tests of `check` (a sibling file keeps `check.rs` readable).

use super::*;

#[test]
fn listen_needs_an_ip_and_a_port() {
    assert_eq!(listen("127.0.0.1:8080").unwrap().port(), 8080);
    assert!(listen("[::]:8443").is_ok());
    for bad in [
        "localhost:8080",
        "127.0.0.1",
        ":8080",
        "127.0.0.1:0",
        "",
        "8080",
    ] {
        let err = listen(bad).unwrap_err();
        assert!(err.contains(&format!("{bad:?}")), "{err}");
    }
}

#[test]
fn public_url_is_https_or_http_on_localhost() {
    assert_eq!(
        public_base_url("https://password.corp.example.com"),
        Ok(None)
    );
    assert_eq!(
        public_base_url("https://sso.corp.example.com/rekey/"),
        Ok(None)
    );
    for local in [
        "http://localhost:8080",
        "http://127.0.0.1:8080",
        "http://[::1]",
    ] {
        let warning = public_base_url(local).unwrap().unwrap();
        assert!(warning.contains("plain HTTP"), "{warning}");
    }
    for (bad, why) in [
        ("http://password.corp.example.com", "plain HTTP"),
        ("http://localhost.evil.example", "plain HTTP"),
        ("password.corp.example.com", "not an absolute URL"),
        ("/reset", "not an absolute URL"),
        ("ftp://password.corp.example.com", "scheme ftp"),
        (
            "https://user:pw@password.corp.example.com",
            "user name or password",
        ),
        ("https://password.corp.example.com/?a=b", "query"),
        ("mailto:rekey@corp.example.com", "no host"),
    ] {
        let err = public_base_url(bad).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn ous_must_be_under_the_domain() {
    let base = "DC=corp,DC=example,DC=com";
    assert_eq!(ou_problem("OU=Staff,DC=corp,DC=example,DC=com", base), None);
    assert_eq!(ou_problem("ou=Staff,dc=CORP,dc=example,dc=com", base), None);
    assert!(
        ou_problem("OU=Staff,DC=corp", base)
            .unwrap()
            .contains("not under")
    );
    assert!(ou_problem("Staff", base).unwrap().contains("not a DN"));
    assert!(
        ou_problem("OU=Staff, DC=corp, DC=example, DC=com", base)
            .unwrap()
            .contains("spaces")
    );
}

fn server_config(key_file: std::path::PathBuf) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:8080".into(),
        public_base_url: "https://password.corp.example.com".into(),
        organisation: "Corp".into(),
        trusted_proxies: vec![IpAddr::from([127, 0, 0, 1])],
        secret_key_file: key_file,
        identify_deadline_ms: 400,
        answer_deadline_ms: 400,
        password_deadline_ms: 1_500,
        tls_cert_file: None,
        tls_key_file: None,
        ops_listen: None,
    }
}

#[test]
fn server_section_reports_every_problem_by_key() {
    let path = std::env::temp_dir().join(format!("rekey-check-key-{}", std::process::id()));
    std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
    let good = server(&server_config(path.clone()));
    assert!(good.is_ok(), "{good}");
    let mut bad = server_config("/nonexistent/otp.key".into());
    bad.listen = "localhost:8080".into();
    bad.public_base_url = "http://password.corp.example.com".into();
    bad.trusted_proxies = vec![IpAddr::from([0, 0, 0, 0])];
    bad.password_deadline_ms = 0;
    let s = server(&bad);
    let errors: Vec<&str> = s.errors().collect();
    for key in [
        "server.listen",
        "server.public_base_url",
        "server.secret_key_file",
        "server.trusted_proxies",
        "server.password_deadline_ms",
    ] {
        assert!(errors.iter().any(|e| e.contains(key)), "{key}: {errors:?}");
    }
    assert!(s.to_string().starts_with("server     FAILED\n"), "{s}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn absent_sections_are_reported_and_do_not_fail() {
    let s = Section::not_configured("smtp");
    assert_eq!(
        s.to_string(),
        "smtp       not configured (needed by rekey serve)\n"
    );
    let report = Report {
        sections: vec![s, Section::not_configured("store")],
    };
    assert!(report.verdict().is_ok());
    assert!(
        report
            .to_string()
            .ends_with("config check: every section ok\n")
    );
}

#[test]
fn the_verdict_names_failed_sections_and_picks_the_exit_code() {
    let mut dc = Section::new("directory");
    dc.unavailable("RK-DIR-010: no DC reachable");
    let report = Report {
        sections: vec![dc.clone(), Section::not_configured("smtp")],
    };
    let err = report.verdict().unwrap_err();
    assert_eq!(
        (err.sections.clone(), err.exit_code()),
        (vec!["directory"], 3)
    );
    let mut server = Section::new("server");
    server.bad("server.listen", "nope");
    let report = Report {
        sections: vec![dc, server],
    };
    let err = report.verdict().unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("directory, server"), "{err}");
    let text = report.to_string();
    assert!(
        text.contains("  error: RK-CFG-001: server.listen: nope\n"),
        "{text}"
    );
}

#[test]
fn smtp_is_built_not_contacted() {
    let ok = smtp(&rekey_notify::SmtpConfig::new(
        "smtp.corp.example.com",
        "Corp self-service <rekey@corp.example.com>",
    ));
    assert!(ok.is_ok(), "{ok}");
    assert!(ok.to_string().contains("smtp.corp.example.com:587"), "{ok}");
    let bad = smtp(&rekey_notify::SmtpConfig::new(
        "smtp.corp.example.com",
        "not a mailbox",
    ));
    assert!(bad.errors().any(|e| e.contains("smtp.from")), "{bad}");
}
