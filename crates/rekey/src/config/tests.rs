//! Tests of `config` (a sibling file keeps `config.rs` readable).

use std::collections::BTreeSet;

use figment::value::{Dict, Value};
use rekey_core::engine::EngineConfig;

use super::*;

/// Parse inside figment's jail: the process environment is shared by parallel tests, and
/// the jail serialises them and restores the environment afterwards.
#[allow(clippy::result_large_err)] // figment's Jail API
fn parse(toml: &str) -> Result<Config, ConfigError> {
    let mut out = None;
    figment::Jail::expect_with(|_| {
        out = Some(parse_here(toml));
        Ok(())
    });
    out.unwrap()
}

fn parse_here(toml: &str) -> Result<Config, ConfigError> {
    Config::from_figment(Figment::new().merge(Toml::string(toml)))
}

const GOOD: &str = r#"
    version = 1
    [directory]
    urls = ["ldaps://dc1.corp.example.com"]
    ca_file = "/etc/rekey/ca.pem"
    bind_dn = "CN=svc-rekey,OU=Service,DC=corp,DC=example,DC=com"
    bind_password_file = "/etc/rekey/svc.pass"
"#;

#[test]
fn good_file_parses_with_defaults() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.directory.pool_size, 2);
    assert!(c.directory.history_on_reset);
    assert!(c.tier.protected_groups.is_empty());
    assert!(c.server.is_none() && c.store.is_none() && c.smtp.is_none());
    let c = parse(&format!(
        "{GOOD}\n[server]\nlisten = \"127.0.0.1:8080\"\npublic_base_url = \"https://x\"\n\
         secret_key_file = \"/k\"\n"
    ))
    .unwrap();
    let server = c.server.unwrap();
    assert_eq!(
        (
            server.identify_deadline_ms,
            server.answer_deadline_ms,
            server.password_deadline_ms
        ),
        (400, 400, 1_500)
    );
}

#[test]
fn errors_name_the_key() {
    let typo = GOOD
        .replace("pool_size", "x")
        .replace("bind_dn", "bind_dnn");
    let err = parse(&typo).unwrap_err().to_string();
    assert!(err.contains("bind_dnn"), "{err}");
    let wrong_type = format!("{GOOD}\npool_size = \"many\"");
    let err = parse(&wrong_type).unwrap_err().to_string();
    assert!(err.contains("pool_size"), "{err}");
    let err = parse(&GOOD.replace("version = 1", "version = 7"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("version"), "{err}");
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail API
fn environment_overrides_nested_keys_only() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("REKEY_DIRECTORY__POOL_SIZE", "5");
        jail.set_env("REKEY_VERSION", "1");
        // Not settings: the binary's, the dev domain's and the tests' own variables.
        jail.set_env("REKEY_CONFIG", "/etc/rekey/rekey.toml");
        jail.set_env("REKEY_LOG", "debug");
        jail.set_env("REKEY_DEV_DIR", "/tmp/ignored");
        jail.set_env("REKEY_DEV__NESTED", "ignored too");
        jail.set_env("REKEY_TEST_PYTHON", "/usr/bin/python3");
        let c = parse_here(GOOD).map_err(|e| e.to_string())?;
        assert_eq!(c.directory.pool_size, 5);
        Ok(())
    });
}

/// The error for one variable set on top of `GOOD`.
#[allow(clippy::result_large_err)] // figment's Jail API
fn env_error(name: &str, value: &str) -> String {
    let mut out = String::new();
    figment::Jail::expect_with(|jail| {
        jail.set_env(name, value);
        out = parse_here(GOOD).unwrap_err().to_string();
        Ok(())
    });
    out
}

#[test]
fn a_single_underscore_is_an_error_with_the_right_spelling() {
    let err = env_error("REKEY_DIRECTORY_POOL_SIZE", "5");
    assert!(
        err.starts_with("RK-CFG-004: environment variable REKEY_DIRECTORY_POOL_SIZE"),
        "{err}"
    );
    assert!(
        err.contains("did you mean REKEY_DIRECTORY__POOL_SIZE?"),
        "{err}"
    );
    // figment matches the prefix in any case; so does the check.
    let err = env_error("rekey_server_listen", "0.0.0.0:80");
    assert!(err.contains("did you mean REKEY_SERVER__LISTEN?"), "{err}");
}

#[test]
fn unknown_sections_and_keys_are_errors() {
    // A section that does not exist.
    let err = env_error("REKEY_DIRECTROY__POOL_SIZE", "5");
    assert!(
        err.contains("REKEY_DIRECTROY__POOL_SIZE is not a Rekey setting")
            && err.contains("did you mean REKEY_DIRECTORY__POOL_SIZE?"),
        "{err}"
    );
    // A key that does not exist in a section that does (deny_unknown_fields would refuse
    // it too; the check names the variable first).
    let err = env_error("REKEY_DIRECTORY__POOL_SIZEX", "5");
    assert!(
        err.contains("REKEY_DIRECTORY__POOL_SIZEX")
            && err.contains("did you mean REKEY_DIRECTORY__POOL_SIZE?"),
        "{err}"
    );
    // Nothing close: the general spelling.
    let err = env_error("REKEY_LISTEN_ADDRESS_AND_PORT", "x");
    assert!(err.contains("REKEY_<SECTION>__<KEY>"), "{err}");
    // An empty level would be dropped by figment without a word.
    let err = env_error("REKEY_DIRECTORY__", "x");
    assert!(err.contains("REKEY_DIRECTORY__ is not"), "{err}");
}

#[test]
fn an_unknown_key_in_a_file_is_still_refused_by_the_types() {
    let err = parse(&format!("{GOOD}\npool_sizex = 5\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown field") && err.contains("pool_sizex"),
        "{err}"
    );
}

#[test]
fn the_error_never_shows_the_value() {
    let err = env_error("REKEY_DIRECTORY_BIND_PASSWORD", "Sup3r-secret!");
    assert!(
        err.contains("REKEY_DIRECTORY__BIND_PASSWORD") && !err.contains("Sup3r"),
        "{err}"
    );
}

// ---- every key, from the types ---------------------------------------------------------

#[test]
fn keys_are_traced_through_options_lists_enums_and_other_crates() {
    let keys = config_keys().unwrap();
    for key in [
        "version",
        "directory",
        "directory.history_on_reset",
        "directory.bind_password",
        "server.trusted_proxies",
        "server.password_deadline_ms",
        "smtp.tls",
        "smtp.port",
        "scope.pilot_group",
        "engine.lockout_margin",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
    }
}

const EXAMPLE: &str = include_str!("../../../../rekey.example.toml");

/// `# key = value` → `key = value`: the example's commented keys, as a user would enable them.
fn uncomment_line(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let (name, _) = rest.split_once('=')?;
    let name = name.trim();
    let is_key = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    is_key.then_some(rest)
}

fn uncomment(toml: &str, only: Option<usize>) -> String {
    let mut out = String::new();
    for (i, line) in toml.lines().enumerate() {
        let line = match uncomment_line(line) {
            Some(key) if only.is_none_or(|n| n == i) => key,
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn paths(dict: &Dict, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in dict {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Dict(_, inner) => paths(inner, &path, out),
            Value::Array(_, items) => {
                if let Some(Value::Dict(_, inner)) = items.first() {
                    paths(inner, &path, out);
                }
            }
            _ => {}
        }
        out.insert(path);
    }
}

#[test]
fn the_example_parses_as_is_and_with_every_key_enabled() {
    let as_is = parse(EXAMPLE).unwrap();
    assert!(as_is.server.is_some() && as_is.store.is_some() && as_is.smtp.is_some());
    parse(&uncomment(EXAMPLE, None)).unwrap();
}

#[test]
fn the_example_shows_every_key_of_every_config_type() {
    let all: Dict = Figment::from(Toml::string(&uncomment(EXAMPLE, None)))
        .extract()
        .unwrap();
    let mut shown = BTreeSet::new();
    paths(&all, "", &mut shown);
    let missing: Vec<String> = config_keys()
        .unwrap()
        .into_iter()
        .filter(|k| !shown.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "rekey.example.toml lacks {missing:?}: add each key (commented out if optional) \
         with its default and a comment"
    );
}

/// A commented-out key either restates the default (enabling it changes nothing) or shows
/// an example for a key that is empty by default.
#[test]
fn commented_keys_restate_their_defaults() {
    let base = format!("{:#?}", parse(EXAMPLE).unwrap());
    for (i, line) in EXAMPLE.lines().enumerate() {
        let Some(key) = uncomment_line(line) else {
            continue;
        };
        let name = key.split('=').next().unwrap_or_default().trim();
        let changed = format!("{:#?}", parse(&uncomment(EXAMPLE, Some(i))).unwrap());
        assert!(
            changed == base
                || base.contains(&format!("{name}: None"))
                || base.contains(&format!("{name}: []")),
            "rekey.example.toml line {}: `{key}` is not the default of {name}",
            i + 1
        );
    }
    // The engine's keys are all optional; their commented values must be the engine's own
    // defaults.
    let enabled = parse(&uncomment(EXAMPLE, None)).unwrap();
    let mut engine = EngineConfig::default();
    enabled.engine.apply(&mut engine);
    assert_eq!(
        format!("{engine:?}"),
        format!("{:?}", EngineConfig::default()),
        "[engine] in rekey.example.toml differs from EngineConfig::default()"
    );
}

// ---- engine tunables -------------------------------------------------------------------

#[test]
fn tunables_set_what_is_configured_and_keep_the_rest() {
    let t = EngineTunables {
        code_ttl_secs: Some(300),
        enroll_cooldown_secs: Some(0),
        lockout_margin: Some(3),
        emails_per_user_per_hour: Some(4),
        ..EngineTunables::default()
    };
    let mut c = EngineConfig::default();
    t.apply(&mut c);
    assert_eq!((c.code_ttl, c.enroll_cooldown), (300, 0));
    assert_eq!((c.lockout_margin, c.emails_per_user_per_hour), (3, 4));
    assert_eq!(c.flow_ttl, EngineConfig::default().flow_ttl);
    assert!(t.validate().is_ok());
    assert!(EngineTunables::default().validate().is_ok());
}

#[test]
fn tunables_beyond_the_design_name_their_key() {
    let key = |t: EngineTunables| match t.validate() {
        Err(ConfigError::Key { key, .. }) => key,
        other => panic!("{other:?}"),
    };
    let t = EngineTunables::default;
    assert_eq!(
        key(EngineTunables {
            code_ttl_secs: Some(601),
            ..t()
        }),
        "engine.code_ttl_secs"
    );
    assert_eq!(
        key(EngineTunables {
            flow_ttl_secs: Some(60),
            ..t()
        }),
        "engine.flow_ttl_secs"
    );
    assert_eq!(
        key(EngineTunables {
            max_code_attempts: Some(6),
            ..t()
        }),
        "engine.max_code_attempts"
    );
    assert_eq!(
        key(EngineTunables {
            max_failures_per_hour: Some(0),
            ..t()
        }),
        "engine.max_failures_per_hour"
    );
    assert_eq!(
        key(EngineTunables {
            lockout_margin: Some(0),
            ..t()
        }),
        "engine.lockout_margin"
    );
    assert_eq!(
        key(EngineTunables {
            enroll_cooldown_secs: Some(-1),
            ..t()
        }),
        "engine.enroll_cooldown_secs"
    );
}

// ---- the one-time-code key -------------------------------------------------------------

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

fn key_file(name: &str, content: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("rekey-config-key-{}-{name}", std::process::id()));
    std::fs::write(&path, content).unwrap();
    path
}

/// The error for a key file with `content`; it must name the key and the path and never
/// show the content.
fn key_error(name: &str, content: &str) -> String {
    let path = key_file(name, content.as_bytes());
    let err = read_secret_key(&path).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(
        err.starts_with("RK-CFG-001: server.secret_key_file: "),
        "{err}"
    );
    assert!(err.contains(&path.display().to_string()), "{err}");
    for chunk in ["aabbcc", "ccddeeff", "zz"] {
        assert!(!err.contains(chunk), "{err} echoes the key");
    }
    err
}

#[test]
fn a_good_key_is_read_with_its_newline() {
    for (name, content) in [
        ("plain", KEY.to_owned()),
        ("newline", format!("{KEY}\n")),
        ("crlf", format!("  {KEY}\r\n")),
    ] {
        let path = key_file(name, content.as_bytes());
        let key = read_secret_key(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(key[..4], [0x00, 0x11, 0x22, 0x33], "{name}");
        assert_eq!(key[28..], [0xcc, 0xdd, 0xee, 0xff], "{name}");
    }
}

#[test]
fn a_malformed_key_is_refused() {
    let spaced = KEY
        .as_bytes()
        .chunks(2)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(key_error("spaced", &spaced).contains("must hold exactly 64 hex digits"));
    // Same length as a good key, one pair replaced by junk.
    let junk = format!("{} 1{}", &KEY[..10], &KEY[12..]);
    assert!(key_error("junk", &junk).contains("not a hex digit"));
    assert!(key_error("0x", &format!("0x{}", &KEY[2..])).contains("not a hex digit"));
    assert!(key_error("63", &KEY[..63]).contains("holds 63 characters"));
    assert!(key_error("65", &format!("{KEY}0")).contains("holds 65 characters"));
    assert!(key_error("odd", "abc").contains("holds 3 characters"));
    let nonhex = format!("zz{}", &KEY[2..]);
    assert!(key_error("nonhex", &nonhex).contains("not a hex digit"));
    assert!(key_error("empty", "\n").contains("the file is empty"));
    // Two keys on two lines are not one key.
    assert!(key_error("two", &format!("{}\n{}", &KEY[..32], &KEY[32..])).contains("holds 65"));
}

#[test]
fn a_missing_key_file_is_named() {
    let path = std::path::Path::new("/nonexistent/rekey/otp.key");
    let err = read_secret_key(path).unwrap_err().to_string();
    assert!(
        err.contains("server.secret_key_file") && err.contains("/nonexistent/rekey/otp.key"),
        "{err}"
    );
}

#[test]
fn an_empty_entra_section_is_the_default_and_off() {
    let c = parse(&format!("{GOOD}\n[entra]\n")).unwrap();
    let entra = c.entra.as_ref().unwrap();
    assert_eq!(
        format!("{entra:?}"),
        format!("{:?}", EntraSection::default())
    );
    assert!(c.entra().is_none(), "not enabled");
    let on = EntraSection {
        enabled: true,
        ..EntraSection::default()
    };
    let e = on.zone_config().unwrap_err().to_string();
    assert!(e.contains("entra.tenant"), "{e}");
    let no_credential = EntraSection {
        tenant: Some("t".into()),
        client_id: Some("c".into()),
        ..on
    };
    let e = no_credential.zone_config().unwrap_err().to_string();
    assert!(e.contains("client_secret_file"), "{e}");
    let mut engine = rekey_core::engine::EngineConfig::default();
    let bad = EntraSection {
        sync_poll_secs: Some(0),
        ..EntraSection::default()
    };
    assert!(
        bad.apply(&mut engine)
            .unwrap_err()
            .to_string()
            .contains("entra.sync_poll_secs")
    );
}

#[test]
fn one_breached_source_at_most_and_each_checked_at_start() {
    let c = parse(&format!(
        "{GOOD}\n[passwords]\nbreached_range_url = \"http://example.com\"\n"
    ))
    .unwrap();
    let e = c.passwords.breached().err().unwrap().to_string();
    assert!(e.contains("passwords.breached_range_url"), "{e}");
    let c = parse(&format!(
        "{GOOD}\n[passwords]\nbreached_range_url = \"https://api.pwnedpasswords.com\"\n\
         breached_sha1_file = \"/nonexistent\"\n"
    ))
    .unwrap();
    let e = c.passwords.breached().err().unwrap().to_string();
    assert!(e.contains("not both"), "{e}");
    let c = parse(&format!(
        "{GOOD}\n[passwords]\nbreached_sha1_file = \"/nonexistent/pwned.txt\"\n"
    ))
    .unwrap();
    let e = c.passwords.breached().err().unwrap().to_string();
    assert!(e.contains("passwords.breached_sha1_file"), "{e}");
    let c = parse(&format!(
        "{GOOD}\n[passwords]\nbreached_range_url = \"https://api.pwnedpasswords.com\"\n\
         breached_min_count = 10\nbreached_fail_closed = true\n"
    ))
    .unwrap();
    assert!(c.passwords.breached().unwrap().is_some());
    let mut engine = EngineConfig::default();
    c.passwords.apply(&mut engine);
    assert_eq!(
        (engine.breached_min_count, engine.breached_fail_closed),
        (10, true)
    );
}
