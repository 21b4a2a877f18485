//! The monitoring assets shipped with Rekey hold together: the Prometheus alerting rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`), every alert has a fire
//! case and a quiet case in those tests and a section in docs/runbooks.md that its
//! `runbook_url` points at, every `rekey_*` metric the rules and the Grafana dashboard use is
//! documented in docs/metrics.md, and the dashboard is valid JSON with panels.
//!
//! promtool comes from Debian's `prometheus` package (dev/test installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const RULES: &str = "ops/prometheus/rekey.rules.yml";
const RULE_TESTS: &str = "ops/prometheus/rekey.rules.test.yml";
const DASHBOARD: &str = "ops/grafana/rekey-dashboard.json";
const RUNBOOKS: &str = "docs/runbooks.md";
const METRICS: &str = "docs/metrics.md";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Runs `promtool ARGS` in the repository root; panics with promtool's output on failure.
fn promtool(args: &[&str]) -> String {
    let out = match Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed (it comes with Debian's prometheus package; dev/test \
             installs it: apt-get install -y --no-install-recommends prometheus)"
        ),
        Err(e) => panic!("promtool could not be started: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

/// The alert names of the rules file, in order, each once (an alert may have several rules,
/// e.g. a warning and a critical threshold).
fn alerts(rules: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert:") {
            let name = name.trim().to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// Every `rekey_*` metric name in `text`, without a histogram's `_bucket`/`_sum`/`_count`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let is_name = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("rekey_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && is_name(bytes[end]) {
            end += 1;
        }
        let preceded = start > 0 && (is_name(bytes[start - 1]) || bytes[start - 1] == b'/');
        if !preceded {
            let mut name = &text[start..end];
            // A histogram's series (all of Rekey's histograms are in seconds).
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix)
                    && base.ends_with("_seconds")
                {
                    name = base;
                    break;
                }
            }
            names.insert(name.to_owned());
        }
        i = end.max(start + 1);
    }
    names
}

#[test]
fn promtool_checks_the_rules() {
    let out = promtool(&["check", "rules", RULES]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let out = promtool(&["test", "rules", RULE_TESTS]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_test_case() {
    let rules = read(RULES);
    let tests = read(RULE_TESTS);
    let lines: Vec<&str> = tests.lines().map(str::trim).collect();
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(name) = line.strip_prefix("alertname:") else {
            continue;
        };
        let name = name.trim().to_owned();
        let exp = lines[n + 1..]
            .iter()
            .find(|l| l.starts_with("exp_alerts:"))
            .unwrap_or_else(|| panic!("{RULE_TESTS}: no exp_alerts after alertname {name}"));
        if exp
            .trim_start_matches("exp_alerts:")
            .trim()
            .starts_with("[]")
        {
            quiet.insert(name);
        } else {
            fires.insert(name);
        }
    }
    let alerts = alerts(&rules);
    assert!(!alerts.is_empty(), "{RULES} has no alerts");
    for alert in &alerts {
        assert!(
            fires.contains(alert),
            "{RULE_TESTS}: no case where {alert} fires"
        );
        assert!(
            quiet.contains(alert),
            "{RULE_TESTS}: no case where {alert} stays quiet"
        );
    }
}

#[test]
fn every_alert_has_labels_annotations_and_its_runbook_section() {
    let rules = read(RULES);
    let runbooks = read(RUNBOOKS);
    let headings: BTreeSet<&str> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect();
    // Each rule, from its `- alert:` line to the next.
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in rules.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert:") {
            blocks.push((name.trim().to_owned(), String::new()));
        } else if let Some((_, block)) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    assert!(!blocks.is_empty(), "{RULES} has no alerts");
    for (alert, block) in &blocks {
        for key in ["severity:", "summary:", "description:", "runbook_url:"] {
            assert!(block.contains(key), "{RULES}: {alert} has no {key}");
        }
        let anchor = alert.to_lowercase();
        let url = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("runbook_url:"))
            .map(str::trim)
            .unwrap();
        assert!(
            url.ends_with(&format!("docs/runbooks.md#{anchor}")),
            "{RULES}: {alert}'s runbook_url {url} should end with docs/runbooks.md#{anchor}"
        );
        assert!(
            headings.contains(alert.as_str()),
            "{RUNBOOKS} has no section `## {alert}` (anchor #{anchor})"
        );
    }
}

#[test]
fn every_metric_used_is_documented() {
    let documented = metric_names(&read(METRICS));
    assert!(
        documented.len() >= 10,
        "{METRICS} documents only {documented:?}"
    );
    for file in [RULES, RULE_TESTS, DASHBOARD] {
        let used = metric_names(&read(file));
        assert!(!used.is_empty(), "{file} uses no rekey_* metric");
        let missing: Vec<_> = used.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "{file} uses metrics that {METRICS} does not document: {missing:?}"
        );
    }
}

#[test]
fn dashboard_is_json_with_panels() {
    let text = read(DASHBOARD);
    let dashboard: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"));
    assert!(
        dashboard["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{DASHBOARD}: no title"
    );
    let panels = dashboard["panels"]
        .as_array()
        .unwrap_or_else(|| panic!("{DASHBOARD}: no panels array"));
    let mut queries = 0;
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default();
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{DASHBOARD}: panel {title:?} has no targets"));
        assert!(
            !targets.is_empty(),
            "{DASHBOARD}: panel {title:?} has no targets"
        );
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(
                expr.contains("rekey_"),
                "{DASHBOARD}: panel {title:?} has a query without a rekey_ metric: {expr:?}"
            );
            queries += 1;
        }
    }
    assert!(queries >= 10, "{DASHBOARD}: only {queries} queries");
    let vars: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .map(|l| l.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        vars.contains(&"dc"),
        "{DASHBOARD}: no `dc` variable: {vars:?}"
    );
}

/// Every dashboard query is valid PromQL: promtool checks them as recording rules, with
/// Grafana's variables replaced by what they expand to.
#[test]
fn dashboard_queries_are_valid_promql() {
    let dashboard: serde_json::Value = serde_json::from_str(&read(DASHBOARD)).unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                exprs.push(expr.to_owned());
            }
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(query) = var["query"]["query"].as_str() {
            // label_values(metric, label): the metric must be valid PromQL too.
            if let Some(args) = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                && let Some((metric, _)) = args.rsplit_once(',')
            {
                exprs.push(metric.trim().to_owned());
            }
        }
    }
    for expr in exprs {
        let expanded = expr
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$dc", ".*");
        n += 1;
        // A JSON string is a valid YAML double-quoted scalar.
        rules.push_str(&format!(
            "      - record: dashboard:query{n}\n        expr: {}\n",
            serde_json::Value::String(expanded)
        ));
    }
    assert!(n > 0, "{DASHBOARD}: no queries");
    let path = std::env::temp_dir().join(format!(
        "rekey-dashboard-queries-{}.rules.yml",
        std::process::id()
    ));
    std::fs::write(&path, rules).unwrap();
    let result = std::panic::catch_unwind(|| promtool(&["check", "rules", path.to_str().unwrap()]));
    let _ = std::fs::remove_file(&path);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn metric_names_are_found_in_text() {
    let names = metric_names(
        "histogram_quantile(0.95, rate(rekey_ldap_operation_duration_seconds_bucket[5m])) \
         / rekey_operations_total{x=\"rekey_no\"} crates/rekey_x",
    );
    let expected: BTreeSet<String> = [
        "rekey_ldap_operation_duration_seconds",
        "rekey_no",
        "rekey_operations_total",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, expected);
}
