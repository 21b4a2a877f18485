//! Security questions (invariant 6): off by default, never for the privileged tier, never the
//! only proof. Answers are normalised (Unicode NFKC, lower case, runs of white space as one
//! space, trimmed) and hashed with Argon2id (m = 19456 KiB, t = 2, p = 1); they are never shown
//! back, and the hashes are sealed at rest with the other method secrets.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::clock::Random;

pub const MIN_QUESTIONS: usize = 3;
pub const MAX_QUESTIONS: usize = 5;
pub const MIN_ANSWER_CHARS: usize = 3;
pub const MAX_ANSWER_CHARS: usize = 40;
pub const MAX_QUESTION_CHARS: usize = 120;

/// One enrolled question: its text and the Argon2id hash (PHC string) of the normalised answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolled {
    pub question: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuestionError {
    #[error("between {MIN_QUESTIONS} and {MAX_QUESTIONS} questions are needed")]
    Count,
    #[error("the same question twice")]
    Duplicate,
    #[error("a question is empty or too long")]
    Question,
    #[error("an answer must be {MIN_ANSWER_CHARS} to {MAX_ANSWER_CHARS} characters")]
    Answer,
    #[error("two answers are the same")]
    SameAnswer,
}

/// The form an answer is compared in.
#[must_use]
pub fn normalise(answer: &str) -> Zeroizing<String> {
    let folded: String = answer.nfkc().collect::<String>().to_lowercase();
    Zeroizing::new(folded.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Check a set of (question, answer) pairs and hash the answers.
pub fn enroll(
    pairs: &[(String, String)],
    random: &dyn Random,
) -> Result<Vec<Enrolled>, QuestionError> {
    if !(MIN_QUESTIONS..=MAX_QUESTIONS).contains(&pairs.len()) {
        return Err(QuestionError::Count);
    }
    let mut seen_q: Vec<String> = Vec::new();
    let mut seen_a: Vec<Zeroizing<String>> = Vec::new();
    let mut out = Vec::with_capacity(pairs.len());
    for (q, a) in pairs {
        let q = q.trim();
        if q.is_empty() || q.chars().count() > MAX_QUESTION_CHARS {
            return Err(QuestionError::Question);
        }
        let key = normalise(q).to_string();
        if seen_q.contains(&key) {
            return Err(QuestionError::Duplicate);
        }
        seen_q.push(key);
        let a = normalise(a);
        if !(MIN_ANSWER_CHARS..=MAX_ANSWER_CHARS).contains(&a.chars().count()) {
            return Err(QuestionError::Answer);
        }
        if seen_a.iter().any(|x| **x == *a) {
            return Err(QuestionError::SameAnswer);
        }
        let mut salt = [0u8; 16];
        random.fill(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|_| QuestionError::Answer)?;
        let hash = argon2()
            .hash_password(a.as_bytes(), &salt)
            .map_err(|_| QuestionError::Answer)?
            .to_string();
        seen_a.push(a);
        out.push(Enrolled {
            question: q.to_owned(),
            hash,
        });
    }
    Ok(out)
}

/// Does the typed answer match? Always runs the full Argon2id computation.
#[must_use]
pub fn matches(enrolled: &Enrolled, typed: &str) -> bool {
    let Ok(hash) = PasswordHash::new(&enrolled.hash) else {
        return false;
    };
    argon2()
        .verify_password(normalise(typed).as_bytes(), &hash)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    struct Seq(AtomicU8);
    impl Random for Seq {
        fn fill(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.0.fetch_add(7, Ordering::Relaxed);
            }
        }
    }

    fn pairs(answers: [&str; 3]) -> Vec<(String, String)> {
        ["First pet?", "City of birth?", "First school?"]
            .iter()
            .zip(answers)
            .map(|(q, a)| ((*q).to_owned(), a.to_owned()))
            .collect()
    }

    #[test]
    fn normalisation() {
        assert_eq!(*normalise("  Ｍüller\t  Straße "), "müller straße");
        assert_eq!(*normalise("ﬁdo"), "fido");
    }

    #[test]
    fn hashes_are_argon2id_with_the_design_parameters_and_match_normalised() {
        let r = Seq(AtomicU8::new(1));
        let e = enroll(&pairs(["Rex the Dog", "Zürich", "St. Mary's"]), &r).unwrap();
        assert!(
            e[0].hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            e[0].hash
        );
        assert!(!e[0].hash.to_lowercase().contains("rex"));
        assert!(matches(&e[0], "  rex THE   dog"));
        assert!(matches(&e[1], "ZÜRICH"));
        assert!(!matches(&e[0], "rex the cat"));
        assert_ne!(e[0].hash, e[2].hash);
    }

    #[test]
    fn rules() {
        let r = Seq(AtomicU8::new(1));
        assert_eq!(
            enroll(&pairs(["ab", "cde", "fgh"]), &r),
            Err(QuestionError::Answer)
        );
        assert_eq!(
            enroll(&pairs(["same", "Same ", "other"]), &r),
            Err(QuestionError::SameAnswer)
        );
        assert_eq!(
            enroll(&pairs(["abc", "def", "ghi"])[..2], &r),
            Err(QuestionError::Count)
        );
        let mut dup = pairs(["abc", "def", "ghi"]);
        dup[1].0 = "first PET?".into();
        assert_eq!(enroll(&dup, &r), Err(QuestionError::Duplicate));
        let long = "x".repeat(41);
        assert_eq!(
            enroll(&pairs(["abc", "def", &long]), &r),
            Err(QuestionError::Answer)
        );
    }
}
