//! `REKEY_*` names: which are config, which are not, and what was probably meant.

/// `key` is the lowercased name after `REKEY_`.
pub(super) fn not_config(key: &str) -> bool {
    matches!(key, "config" | "log") || key.starts_with("dev_") || key.starts_with("test_")
}

/// Why `name` looks like a Rekey setting but is none; `None` when it is fine.
pub(super) fn problem(name: &str, known: &[String]) -> Option<String> {
    // As figment reads them: the prefix in any case, the name trimmed.
    let name = name.trim();
    let rest = name
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("REKEY_"))
        .and_then(|_| name.get(6..))?;
    let key = rest.to_ascii_lowercase();
    if not_config(&key) {
        return None;
    }
    let path = key.replace("__", ".");
    if known.contains(&path) {
        return None;
    }
    let hint = match suggest(&path, known) {
        Some(k) => format!(
            "did you mean REKEY_{}? (two underscores between section and key)",
            k.to_ascii_uppercase().replace('.', "__")
        ),
        None => "settings are spelled REKEY_<SECTION>__<KEY>, e.g. \
                 REKEY_DIRECTORY__POOL_SIZE (see rekey.example.toml)"
            .to_owned(),
    };
    Some(format!(
        "environment variable {name} is not a Rekey setting: {hint}"
    ))
}

/// The known key (not a table) closest to `path`, comparing with `.` and `_` alike (so a
/// single `_` where `__` was meant is an exact match), within two edits.
fn suggest<'a>(path: &str, known: &'a [String]) -> Option<&'a str> {
    let flat = path.replace('.', "_");
    let is_table = |k: &String| known.iter().any(|o| o.starts_with(&format!("{k}.")));
    known
        .iter()
        .filter(|k| !is_table(k))
        .map(|k| (distance(&flat, &k.replace('.', "_")), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance over bytes (names are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
