//! The comparison of answers per account class (the outsider's client is `rekey_e2e::http`):
//! answers normalised (CSRF token, support ids, echoed names) before bytes are compared; p50 per
//! class.

use super::*;
/// Answers and times per account class, in the order the classes were given.
#[derive(Default)]
pub(crate) struct Samples {
    pub(crate) classes: Vec<String>,
    pub(crate) answers: BTreeMap<String, Vec<(String, String)>>,
    pub(crate) times: BTreeMap<String, Vec<Duration>>,
}

impl Samples {
    pub(crate) fn add(&mut self, class: &str, normalised: String, a: &Answer) {
        if !self.classes.iter().any(|c| c == class) {
            self.classes.push(class.to_owned());
        }
        let gists = self.answers.entry(class.to_owned()).or_default();
        gists.push((normalised, a.gist()));
        self.times.entry(class.to_owned()).or_default().push(a.took);
    }

    pub(crate) fn p50(&self, class: &str) -> Duration {
        let mut t = self.times[class].clone();
        t.sort();
        t[t.len() / 2]
    }

    /// Print per class p50 and answers; return what breaks invariant 9 (empty: nothing).
    pub(crate) fn check(&self, title: &str) -> Vec<String> {
        println!("{title}:");
        let mut distinct: Vec<(&str, Vec<&str>)> = Vec::new();
        for class in &self.classes {
            let mut gists: BTreeMap<&str, usize> = BTreeMap::new();
            for (norm, gist) in &self.answers[class] {
                *gists.entry(gist.as_str()).or_default() += 1;
                match distinct.iter_mut().find(|(n, _)| *n == norm.as_str()) {
                    Some((_, cs)) if cs.contains(&class.as_str()) => {}
                    Some((_, cs)) => cs.push(class),
                    None => distinct.push((norm, vec![class])),
                }
            }
            println!(
                "  {class:<18} p50 {:>9.2?}  n={:<3} {gists:?}",
                self.p50(class),
                self.times[class].len()
            );
        }
        let p50s: Vec<Duration> = self.classes.iter().map(|c| self.p50(c)).collect();
        let spread = *p50s.iter().max().unwrap() - *p50s.iter().min().unwrap();
        println!(
            "  p50 spread {spread:.2?} (allowed {MAX_SPREAD:?}); {} distinct answer(s)",
            distinct.len()
        );
        let mut failures = Vec::new();
        if spread > MAX_SPREAD {
            let p: Vec<String> = (self.classes.iter().zip(&p50s))
                .map(|(c, t)| format!("{c} {t:.2?}"))
                .collect();
            failures.push(format!(
                "{title}: p50 spread {spread:.2?} > {MAX_SPREAD:?}: {}",
                p.join(", ")
            ));
        }
        if distinct.len() > 1 {
            let first = distinct[0].0;
            for (other, classes) in &distinct[1..] {
                failures.push(format!(
                    "{title}: answers differ: {:?} vs {classes:?}: {}",
                    distinct[0].1,
                    difference(first, other)
                ));
            }
        }
        failures
    }
}

/// Where two answers first differ, with some context.
pub(crate) fn difference(a: &str, b: &str) -> String {
    let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let around = |s: &str| {
        let (mut start, mut end) = (at.saturating_sub(60), (at + 140).min(s.len()));
        while !s.is_char_boundary(start) {
            start -= 1;
        }
        while !s.is_char_boundary(end) {
            end += 1;
        }
        s[start..end].replace('\n', "⏎")
    };
    format!("at byte {at}: «{}» vs «{}»", around(a), around(b))
}

pub(crate) fn assert_none(failures: &[String]) {
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
