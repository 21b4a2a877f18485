//! Tests of the banned-password evaluation: Microsoft's documented examples first.

use super::*;

fn custom(terms: &[&str]) -> BannedList {
    BannedList::default().with_custom(terms)
}

fn contoso() -> Context<'static> {
    Context {
        names: Vec::new(),
        organisation: Some("Contoso"),
    }
}

fn score(list: &BannedList, password: &str) -> u32 {
    list.evaluate(password, &Context::default()).score
}

// -- Microsoft's documented examples ----------------------------------------------------------

#[test]
fn documented_contoso_blank_is_rejected_with_four_points() {
    for list in [
        custom(&["blank"]),
        BannedList::global().with_custom(["blank"]),
    ] {
        let verdict = list.evaluate("C0ntos0Blank12", &contoso());
        assert_eq!(verdict.score, 4, "contoso + blank + 1 + 2");
        assert!(!verdict.accepted);
        assert_eq!(verdict.terms, ["contoso", "blank"]);
    }
}

#[test]
fn documented_contoso_blank_f9_is_accepted_with_five_points() {
    for list in [
        custom(&["blank"]),
        BannedList::global().with_custom(["blank"]),
    ] {
        let verdict = list.evaluate("ContoS0Bl@nkf9!", &contoso());
        assert_eq!(verdict.score, 5, "contoso + blank + f + 9 + !");
        assert!(verdict.accepted);
    }
}

#[test]
fn documented_fuzzy_examples_match_abcdef() {
    let list = custom(&["abcdef"]);
    for password in ["abcdeg", "abcdefg", "abcde"] {
        let verdict = list.evaluate(password, &Context::default());
        assert_eq!(verdict.terms, ["abcdef"], "{password}");
    }
    assert_eq!(score(&list, "abcdeg"), 1);
    assert_eq!(
        score(&list, "abcdefg"),
        2,
        "the exact match wins, g is left over"
    );
    assert_eq!(score(&list, "abcde"), 1);
}

#[test]
fn documented_normalisation_example() {
    assert_eq!(normalise("Bl@nK"), "blank");
}

// -- normalisation ----------------------------------------------------------------------------

#[test]
fn normalisation_applies_microsofts_and_our_substitutions() {
    assert_eq!(normalise("0 1 $ @"), "o l s a");
    assert_eq!(normalise("3 4 5 7 ! | +"), "e a s t i l t");
    assert_eq!(normalise("P@ssw0rd"), "password");
    assert_eq!(
        normalise("2 6 8 9"),
        "2 6 8 9",
        "digits without a look-alike stay"
    );
}

#[test]
fn matching_is_case_insensitive() {
    let list = custom(&["Sunshine"]);
    for password in ["sunshine", "SUNSHINE", "SuNsHiNe", "5un5h1ne"] {
        assert_eq!(score(&list, password), 1, "{password}");
    }
}

// -- fuzzy matching ---------------------------------------------------------------------------

#[test]
fn fuzzy_match_at_the_ends_and_inside_the_password() {
    let list = custom(&["dragon"]);
    // Substitution and deletion at either end, insertion inside; each covers its whole span,
    // so the score is 1. Padded past 64 characters the unindexed path must agree.
    for password in [
        "xragon", "ragon", "dragox", "drago", "draxgon", "dagon", "Dr@gon",
    ] {
        for pad in [String::new(), "~".repeat(70)] {
            let verdict = list.evaluate(&format!("{pad}{password}"), &Context::default());
            assert_eq!(verdict.terms, ["dragon"], "{password}");
            assert_eq!(verdict.score, 1 + u32::from(!pad.is_empty()), "{password}");
        }
    }
    // Two edits are too many.
    for password in ["dxagox", "drag", "rago", "dr-ag-on"] {
        assert!(
            list.evaluate(password, &Context::default())
                .terms
                .is_empty(),
            "{password}"
        );
    }
}

#[test]
fn fuzzy_match_does_not_swallow_neighbours_when_an_exact_match_exists() {
    // "blankf" is within distance 1 of "blank", but the exact "blank" is preferred.
    assert_eq!(score(&custom(&["blank"]), "blankf"), 2);
}

// -- names and organisation -------------------------------------------------------------------

#[test]
fn own_names_and_organisation_are_found_exactly() {
    let ctx = Context {
        names: vec!["Anne-Marie", "Jones", "am.jones_2"],
        organisation: Some("Fabrikam Ltd"),
    };
    let list = BannedList::default();
    let verdict = list.evaluate("J0nes-Fabrikam", &ctx);
    assert_eq!(verdict.terms, ["jones", "fabrikam"]);
    assert_eq!(verdict.score, 3, "jones + - + fabrikam");
    assert_eq!(list.evaluate("marieXY", &ctx).terms, ["marie"]);
    // Parts shorter than four characters ("anne" is four, "am", "ltd", "2" are not) are ignored.
    assert_eq!(list.evaluate("anne", &ctx).terms, ["anne"]);
    assert!(list.evaluate("am-ltd-2", &ctx).terms.is_empty());
    // Names are matched exactly, not fuzzily.
    assert!(list.evaluate("Jonas", &ctx).terms.is_empty());
}

// -- scoring ----------------------------------------------------------------------------------

#[test]
fn overlapping_terms_are_removed_longest_first() {
    let list = custom(&["sunshine", "shine", "sunny"]);
    // "sunshine" (8) wins over "shine" (5), which overlaps it; x and y are left over.
    let verdict = list.evaluate("xSunshiney", &Context::default());
    assert_eq!(verdict.terms, ["sunshine"]);
    assert_eq!(verdict.score, 3);
    // Repeated terms count each time.
    assert_eq!(score(&list, "sunshinesunshine"), 2);
}

#[test]
fn predictable_digit_groups_count_as_one() {
    let list = BannedList::default();
    assert_eq!(score(&list, "2026"), 1, "a year");
    assert_eq!(score(&list, "1899"), 4, "not a year");
    assert_eq!(score(&list, "20260"), 5, "five digits are not a year");
    assert_eq!(score(&list, "123"), 1);
    assert_eq!(score(&list, "98765"), 1);
    assert_eq!(score(&list, "!!!!"), 1);
    assert_eq!(score(&list, "12"), 2, "two are not a sequence");
    assert_eq!(score(&list, "1357"), 4);
}

#[test]
fn spray_favourites_are_rejected_by_the_global_list() {
    let list = BannedList::global();
    for password in [
        "P@ssw0rd2026",
        "Password2026!",
        "Welcome123",
        "Summer2025!",
        "Qwerty123!",
    ] {
        let verdict = list.evaluate(password, &Context::default());
        assert!(!verdict.accepted, "{password}: {verdict:?}");
    }
    let verdict = list.evaluate("P@ssw0rd2026", &Context::default());
    assert_eq!(
        (verdict.score, verdict.terms.as_slice()),
        (2, ["password".to_owned()].as_slice())
    );
}

#[test]
fn long_passphrases_are_accepted_by_the_global_list() {
    let list = BannedList::global();
    for password in ["correct-Horse-battery-7", "Tr4vel-to-Oslo-in-May"] {
        let verdict = list.evaluate(password, &Context::default());
        assert!(verdict.accepted, "{password}: {verdict:?}");
    }
}

#[test]
fn unicode_and_empty_passwords_do_not_panic() {
    let list = BannedList::global().with_custom(["Größe", "пароль"]);
    assert_eq!(
        list.evaluate("", &Context::default()),
        Verdict {
            score: 0,
            accepted: false,
            terms: Vec::new()
        }
    );
    assert_eq!(
        list.evaluate("ПАРОЛЬ", &Context::default()).terms,
        ["пароль"]
    );
    assert_eq!(
        list.evaluate("grösse", &Context::default()).terms,
        Vec::<String>::new()
    );
    assert_eq!(
        list.evaluate("größe!", &Context::default()).terms,
        ["größe"]
    );
    // "İ" lower-cases to two characters; emoji are one char each.
    let verdict = list.evaluate(
        "İ🦀😀é",
        &Context {
            names: vec!["İİ"],
            organisation: Some("😀😀😀😀"),
        },
    );
    assert_eq!(verdict.score, 5);
    for password in ["ß", "🦀", "a\u{301}", "\u{0}", "ﬃ"] {
        let _ = list.evaluate(
            password,
            &Context {
                names: vec![password],
                organisation: Some(password),
            },
        );
    }
}

// -- the lists --------------------------------------------------------------------------------

#[test]
fn custom_terms_shorter_than_four_characters_are_ignored() {
    let list = custom(&["abc", " ab ", "", "l0v", "love", "LOVE", "l0ve"]);
    assert_eq!(list.len(), 1, "only \"love\", once");
    assert!(custom(&["abc"]).is_empty());
}

#[test]
fn shipped_list_is_sane() {
    let list = BannedList::global();
    assert!((300..=600).contains(&list.len()), "{} terms", list.len());
    assert!(list.terms.iter().all(|t| t.chars.len() >= MIN_TERM_CHARS));
    assert!(
        list.terms
            .iter()
            .all(|t| !t.chars.iter().all(char::is_ascii_digit))
    );
    assert!(!list.terms.iter().any(|t| t.chars.contains(&'#')));
}

#[test]
fn evaluation_is_fast_enough_for_the_request_path() {
    // 1,000 pseudo-random words of 5 to 10 letters on top of the shipped list.
    let mut seed = 0x2545_f491_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let words: Vec<String> = (0..1_000)
        .map(|_| {
            let len = 5 + next() % 6;
            (0..len)
                .filter_map(|_| char::from_u32(u32::from('a') + next() % 26))
                .collect()
        })
        .collect();
    let ctx = Context {
        names: vec!["Anne-Marie", "Jones"],
        organisation: Some("Contoso"),
    };
    let password = "Tr4vel-to-Oslo-in-May-2026!xyz";
    for list in [
        BannedList::default(),
        BannedList::global(),
        BannedList::global().with_custom(words),
    ] {
        let rounds = 300u32;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(list.evaluate(std::hint::black_box(password), &ctx));
        }
        let each = started.elapsed() / rounds;
        let chars = password.chars().count();
        println!(
            "banned: {} terms × {chars} chars: {each:?} per evaluation",
            list.len()
        );
    }
}
