//! Banned passwords, evaluated the way Microsoft documents Entra ID's banned-password check
//! (`concept-password-ban-bad`), plus one rule of ours for predictable digit groups.
//!
//! 1. **Normalise**: lower-case, then substitute look-alike characters ([`normalise`]).
//! 2. **Find terms**: (a) a banned term (global or custom list) is found where a substring of the
//!    normalised password is within edit distance 1 of it: one insertion, deletion or
//!    substitution, so `abcdeg`, `abcdefg` and `abcde` all contain `abcdef`; (b) the user's own
//!    names and the organisation's name are found as exact substrings (after normalisation).
//! 3. **Score**: every term found is 1 point; found terms are removed greedily, longest term first
//!    (an exact match before a fuzzy one), and every remaining character is 1 point, except that a
//!    *predictable group* counts as one (see below). A password needs [`MIN_SCORE`] points.
//!
//! **Predictable groups (ours).** Microsoft's global list carries year- and counter-suffixed
//! variants (`password123`, `administrator2023`) because sprayers append them; by the bare points
//! rule `P@ssw0rd2026` would score `password` + 2,0,2,6 = 5 and pass. Instead of shipping every
//! variant we count, among the characters left over, each of these as ONE point, like a term:
//! - a year: a group of exactly four digits from 1900 to 2099 (`2026`);
//! - a digit sequence of three or more, ascending or descending (`123`, `4321`);
//! - a repetition of three or more of the same character (`000`, `!!!`).
//!
//! This is a cheap pre-check for the request path; AD (and Entra, where licensed) still decides.
//! API boundary: the password never leaves [`BannedList::evaluate`]; a [`Verdict`] carries only
//! the score and the normalised terms that were found.

use std::cmp::Reverse;

use zeroize::Zeroizing;

/// Points a password needs to be accepted (Microsoft's threshold).
pub const MIN_SCORE: u32 = 5;

/// Terms shorter than this (in characters, after normalisation) are ignored: with edit distance 1
/// a three-letter term would match any two letters.
pub const MIN_TERM_CHARS: usize = 4;

/// Separators that split names into parts (`john.smith`, `Anne-Marie`, `j_doe`, `Contoso Ltd`).
const NAME_SEPARATORS: [char; 4] = ['.', '-', '_', ' '];

const GLOBAL: &str = include_str!("../data/banned-passwords.txt");

/// Normalised banned terms: Rekey's shipped list, optionally with an organisation's own terms.
/// Build it once at start-up and share it; evaluation borrows it. `Default` has no terms (only
/// the user's names and the organisation are then checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BannedList {
    /// Normalised, de-duplicated, longest first.
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    chars: Box<[char]>,
    /// [`char_set`] of `chars`: a term with two characters the password lacks cannot match.
    set: u128,
}

/// Who the password belongs to: their own names and their organisation's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context<'a> {
    /// First name, last name, display name, `sAMAccountName`, … Each is split on `.`, `-`, `_` and
    /// space; parts shorter than [`MIN_TERM_CHARS`] after normalisation are ignored.
    pub names: Vec<&'a str>,
    /// The organisation's name, split and filtered the same way (`Contoso Ltd` → `contoso`).
    pub organisation: Option<&'a str>,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub score: u32,
    /// `score >= MIN_SCORE`.
    pub accepted: bool,
    /// The normalised terms found, in the order they occur, each once. For the audit log: these
    /// are list entries and the user's own names, never the password.
    pub terms: Vec<String>,
}

/// Lower-case, then replace look-alike characters.
///
/// Microsoft documents `0→o`, `1→l`, `$→s`, `@→a`. Rekey adds the other common leetspeak
/// substitutions: `3→e`, `4→a`, `5→s`, `7→t`, `!→i`, `|→l`, `+→t`. Lower-casing is Unicode's
/// (`İ` becomes two characters), so always index the result by `char`, never by byte.
#[must_use]
pub fn normalise(text: &str) -> String {
    lowered(text).map(substitute).collect()
}

fn lowered(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().flat_map(char::to_lowercase)
}

fn substitute(c: char) -> char {
    match c {
        // Microsoft's.
        '0' => 'o',
        '1' => 'l',
        '$' => 's',
        '@' => 'a',
        // Ours.
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' | '+' => 't',
        '!' => 'i',
        '|' => 'l',
        other => other,
    }
}

fn normalised_chars(text: &str) -> Vec<char> {
    lowered(text).map(substitute).collect()
}

impl BannedList {
    /// Rekey's shipped list (`data/banned-passwords.txt`): one term per line, `#` comment lines
    /// and blank lines ignored, terms normalised like passwords.
    #[must_use]
    pub fn global() -> Self {
        let lines = GLOBAL.lines().map(str::trim);
        Self::default().with_custom(lines.filter(|line| !line.starts_with('#')))
    }

    /// Adds an organisation's custom terms (company, products, city). Terms are normalised like
    /// passwords; blank terms and terms shorter than [`MIN_TERM_CHARS`] characters after
    /// normalisation are ignored. Add base words only: variants are caught by the algorithm.
    #[must_use]
    pub fn with_custom(mut self, terms: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        let added = terms
            .into_iter()
            .map(|term| normalised_chars(term.as_ref().trim()));
        for chars in added.filter(|term| term.len() >= MIN_TERM_CHARS) {
            let set = char_set(&chars);
            self.terms.push(Term {
                chars: chars.into_boxed_slice(),
                set,
            });
        }
        self.terms.sort_unstable_by(|a, b| {
            (b.chars.len().cmp(&a.chars.len())).then_with(|| a.chars.cmp(&b.chars))
        });
        self.terms.dedup();
        self
    }

    /// Number of distinct normalised terms.
    #[must_use]
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Scores `password` for this user (see the module documentation for the rules).
    #[must_use]
    pub fn evaluate(&self, password: &str, ctx: &Context) -> Verdict {
        let lower: Zeroizing<Vec<char>> = Zeroizing::new(lowered(password).collect());
        let norm: Zeroizing<Vec<char>> =
            Zeroizing::new(lower.iter().copied().map(substitute).collect());
        let own = ctx.terms();

        let mut found = Vec::new();
        let present = char_set(&norm);
        let index = (norm.len() <= 64).then(|| position_index(&norm));
        for term in &self.terms {
            // Cheap filter: a match within distance 1 lacks at most one of the term's characters.
            if (term.set & !present).count_ones() <= 1 {
                find_fuzzy(&norm, index.as_ref(), &term.chars, &mut found);
            }
        }
        for term in &own {
            find_exact(&norm, term, &mut found);
        }
        // Longest term first; for one term, exact before fuzzy; then left to right.
        found.sort_by_key(|m| (Reverse(m.term.len()), m.kind, m.start));

        let mut taken = vec![false; norm.len()];
        let mut picked: Vec<&Match> = Vec::new();
        for m in &found {
            let span = &mut taken[m.start..m.end];
            if span.iter().any(|&t| t) {
                continue;
            }
            span.fill(true);
            picked.push(m);
        }

        let mut score = u32::try_from(picked.len()).unwrap_or(u32::MAX);
        let mut i = 0;
        while i < lower.len() {
            let end = taken[i..]
                .iter()
                .position(|&t| t)
                .map_or(lower.len(), |p| i + p);
            score = score.saturating_add(leftover_points(&lower[i..end]));
            i = end + 1;
        }

        picked.sort_by_key(|m| m.start);
        let mut terms: Vec<String> = Vec::with_capacity(picked.len());
        for m in picked {
            let term: String = m.term.iter().collect();
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        Verdict {
            score,
            accepted: score >= MIN_SCORE,
            terms,
        }
    }
}

impl Context<'_> {
    /// The user's and organisation's terms, normalised, split, filtered, de-duplicated.
    fn terms(&self) -> Vec<Vec<char>> {
        let mut out: Vec<Vec<char>> = Vec::new();
        for whole in self.names.iter().chain(self.organisation.iter()) {
            for part in whole.split(NAME_SEPARATORS) {
                let part = normalised_chars(part);
                if part.len() >= MIN_TERM_CHARS && !out.contains(&part) {
                    out.push(part);
                }
            }
        }
        out
    }
}

/// How a span matched its term; the order is the preference when spans compete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Exact,
    Substitution,
    /// The span is the term with one character missing.
    Deletion,
    /// The span is the term with one character added.
    Insertion,
}

#[derive(Debug)]
struct Match<'t> {
    start: usize,
    end: usize,
    kind: Kind,
    term: &'t [char],
}

/// Every start where a substring is within edit distance 1 of `term`, the best kind per start.
///
/// Every kind of match has the term's first or second character at the start or next to it
/// (a substitution spares one of the two, a deletion of the first shifts the second to the front,
/// an insertion at the front shifts the first to second place), so only such starts are tried.
fn find_fuzzy<'t>(
    text: &[char],
    index: Option<&[u64; 128]>,
    term: &'t [char],
    out: &mut Vec<Match<'t>>,
) {
    let (Some(&t0), t1) = (term.first(), term.get(1).copied()) else {
        return;
    };
    if text.len() + 1 < term.len() {
        return;
    }
    let slot = |c: char| u8::try_from(c).ok().filter(u8::is_ascii).map(usize::from);
    let indexed = index.zip(slot(t0)).zip(t1.map(slot));
    if let Some(((at, s0), Some(s1))) = indexed {
        let near = at[s0] | at[s1];
        let mut starts = near | (near >> 1);
        while starts != 0 {
            let start = starts.trailing_zeros() as usize;
            starts &= starts - 1;
            match_at(text, start, term, out);
        }
    } else {
        for start in 0..text.len() {
            let hit = |c: Option<&char>| c.is_some_and(|&c| c == t0 || Some(c) == t1);
            if hit(text.get(start)) || hit(text.get(start + 1)) {
                match_at(text, start, term, out);
            }
        }
    }
}

/// Bit `i` of entry `c` is set where `text[i] == c` (ASCII `c`, `text` of at most 64 chars).
fn position_index(text: &[char]) -> [u64; 128] {
    let mut at = [0u64; 128];
    for (i, &c) in text.iter().enumerate().take(64) {
        if let Some(slot) = u8::try_from(c).ok().filter(u8::is_ascii) {
            at[usize::from(slot)] |= 1 << i;
        }
    }
    at
}

/// The best match of `term` starting at `start`, if any.
fn match_at<'t>(text: &[char], start: usize, term: &'t [char], out: &mut Vec<Match<'t>>) {
    let (rest, len) = (&text[start..], term.len());
    let kind = if rest.len() >= len && mismatches_at_most_one(&rest[..len], term) {
        if rest[..len] == *term {
            Some((Kind::Exact, len))
        } else {
            Some((Kind::Substitution, len))
        }
    } else if rest.len() + 1 >= len && len > 1 && one_deletion(&rest[..len - 1], term) {
        Some((Kind::Deletion, len - 1))
    } else if rest.len() > len && one_deletion(term, &rest[..=len]) {
        Some((Kind::Insertion, len + 1))
    } else {
        None
    };
    if let Some((kind, span)) = kind {
        out.push(Match {
            start,
            end: start + span,
            kind,
            term,
        });
    }
}

/// A 128-bit set of characters by code point modulo 128: exact for ASCII, a superset beyond.
fn char_set(chars: &[char]) -> u128 {
    chars
        .iter()
        .fold(0, |set, &c| set | 1u128 << (u32::from(c) % 128))
}

fn find_exact<'t>(text: &[char], term: &'t [char], out: &mut Vec<Match<'t>>) {
    if term.is_empty() || text.len() < term.len() {
        return;
    }
    for (start, window) in text.windows(term.len()).enumerate() {
        if window == term {
            out.push(Match {
                start,
                end: start + term.len(),
                kind: Kind::Exact,
                term,
            });
        }
    }
}

/// Equal-length slices that differ in at most one position.
fn mismatches_at_most_one(a: &[char], b: &[char]) -> bool {
    let mut seen = false;
    for (x, y) in a.iter().zip(b) {
        if x != y {
            if seen {
                return false;
            }
            seen = true;
        }
    }
    true
}

/// `short` is `long` with exactly one character removed.
fn one_deletion(short: &[char], long: &[char]) -> bool {
    if short.len() + 1 != long.len() {
        return false;
    }
    let k = short.iter().zip(long).take_while(|(a, b)| a == b).count();
    short[k..] == long[k + 1..]
}

/// Points for one run of characters that no term covered (lower-cased, not substituted, so that
/// digits are still digits).
fn leftover_points(run: &[char]) -> u32 {
    let mut points = 0u32;
    let mut i = 0;
    while i < run.len() {
        i += group_len(run, i);
        points = points.saturating_add(1);
    }
    points
}

/// Length of the group that starts at `i`: a year, a digit sequence, a repetition, or one char.
fn group_len(run: &[char], i: usize) -> usize {
    let rest = &run[i..];
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let starts_digits = i == 0 || !run[i - 1].is_ascii_digit();
    if starts_digits && digits == 4 && is_year(&rest[..4]) {
        return 4;
    }
    let step = |up: bool| {
        move |w: &[char]| match (w[0].to_digit(10), w[1].to_digit(10)) {
            (Some(a), Some(b)) if up => b == a + 1,
            (Some(a), Some(b)) => a == b + 1,
            _ => false,
        }
    };
    let up = 1 + rest.windows(2).take_while(|w| step(true)(w)).count();
    let down = 1 + rest.windows(2).take_while(|w| step(false)(w)).count();
    let same = rest.iter().take_while(|&&c| c == rest[0]).count();
    let longest = up.max(down).max(same);
    if longest >= 3 { longest } else { 1 }
}

fn is_year(digits: &[char]) -> bool {
    let value = digits
        .iter()
        .fold(0u32, |acc, c| acc * 10 + c.to_digit(10).unwrap_or(0));
    (1900..=2099).contains(&value)
}

#[cfg(test)]
mod tests;
