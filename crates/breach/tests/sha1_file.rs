//! `Sha1File` over generated files in HIBP's "ordered by hash" format.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support code panics by design

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use rekey_breach::{SetupError, Sha1File};
use rekey_core::breached::{BreachError, BreachedPasswords};
use rekey_core::secret::Password;
use sha1::{Digest, Sha1};
use tempfile::{NamedTempFile, TempDir};

fn hex(password: &str) -> String {
    Sha1::digest(password.as_bytes())
        .iter()
        .fold(String::with_capacity(40), |mut out, b| {
            let _ = write!(out, "{b:02X}");
            out
        })
}

/// One password of the corpus, in hash order, and how its line is written.
struct Entry {
    password: String,
    hash: String,
    count: u64,
}

/// 10,010 generated passwords sorted by hash. The file leaves out the first and the last (so they
/// sort before the first line and after the last one) and a few in the middle (gaps).
struct Corpus {
    sorted: Vec<Entry>,
}

const LOWER: usize = 2_500;
const NO_COUNT: usize = 7_500;
const GAPS: [usize; 3] = [1_000, 5_005, 9_000];

impl Corpus {
    fn new() -> Self {
        let mut sorted: Vec<Entry> = (0..10_010u64)
            .map(|i| {
                let password = format!("generated-{i}");
                Entry {
                    hash: hex(&password),
                    password,
                    count: i + 1,
                }
            })
            .collect();
        sorted.sort_by(|a, b| a.hash.cmp(&b.hash));
        Self { sorted }
    }

    fn last(&self) -> usize {
        self.sorted.len() - 1
    }

    fn listed(&self, i: usize) -> bool {
        i != 0 && i != self.last() && !GAPS.contains(&i)
    }

    /// The file's text; `final_eol` decides whether the last line ends with one.
    fn text(&self, eol: &str, final_eol: bool) -> String {
        let lines: Vec<String> = (0..self.sorted.len())
            .filter(|&i| self.listed(i))
            .map(|i| {
                let e = &self.sorted[i];
                match i {
                    LOWER => format!("{}:{}", e.hash.to_lowercase(), e.count),
                    NO_COUNT => e.hash.clone(),
                    _ => format!("{}:{}", e.hash, e.count),
                }
            })
            .collect();
        let mut out = lines.join(eol);
        if final_eol {
            out.push_str(eol);
        }
        out
    }

    /// What a look-up must answer for entry `i`.
    fn expected(&self, i: usize) -> Option<u64> {
        if !self.listed(i) {
            None
        } else if i == NO_COUNT {
            Some(1)
        } else {
            Some(self.sorted[i].count)
        }
    }
}

fn file_with(text: &[u8]) -> NamedTempFile {
    let mut f = NamedTempFile::new().unwrap();
    f.write_all(text).unwrap();
    f.flush().unwrap();
    f
}

async fn ask(source: &Sha1File, password: &str) -> Result<Option<u64>, BreachError> {
    source.times_seen(&Password::from(password)).await
}

/// The boundaries, the special lines, the gaps, and a sample of everything else.
async fn check(corpus: &Corpus, path: &Path) {
    let source = Sha1File::open(path).unwrap();
    let last = corpus.last();
    let mut probes = vec![
        0,
        1,
        2,
        last - 2,
        last - 1,
        last,
        LOWER,
        LOWER - 1,
        LOWER + 1,
        NO_COUNT,
        NO_COUNT - 1,
        NO_COUNT + 1,
    ];
    for g in GAPS {
        probes.extend([g - 1, g, g + 1]);
    }
    probes.extend((0..=last).step_by(97));
    for i in probes {
        let e = &corpus.sorted[i];
        assert_eq!(
            ask(&source, &e.password).await,
            Ok(corpus.expected(i)),
            "entry {i} ({}) in {}",
            e.hash,
            path.display()
        );
    }
    for absent in [
        "P@ssw0rd",
        "",
        "not generated",
        "generated-10010",
        "generated-",
    ] {
        assert_eq!(ask(&source, absent).await, Ok(None), "{absent}");
    }
}

#[tokio::test]
async fn lf_file_with_final_newline() {
    let corpus = Corpus::new();
    let f = file_with(corpus.text("\n", true).as_bytes());
    check(&corpus, f.path()).await;
}

#[tokio::test]
async fn crlf_file_without_final_newline() {
    let corpus = Corpus::new();
    let f = file_with(corpus.text("\r\n", false).as_bytes());
    check(&corpus, f.path()).await;
}

#[tokio::test]
async fn crlf_file_with_final_newline() {
    let corpus = Corpus::new();
    let f = file_with(corpus.text("\r\n", true).as_bytes());
    check(&corpus, f.path()).await;
}

#[tokio::test]
async fn tiny_files() {
    let hash = hex("P@ssw0rd");
    for text in [
        format!("{hash}:9"),
        format!("{hash}:9\n"),
        format!("{hash}:9\r\n"),
        format!("0000000000000000000000000000000000000000:1\n{hash}:9\n"),
        format!("{hash}:9\nFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:1\n"),
    ] {
        let f = file_with(text.as_bytes());
        let source = Sha1File::open(f.path()).unwrap();
        assert_eq!(ask(&source, "P@ssw0rd").await, Ok(Some(9)), "{text:?}");
        assert_eq!(ask(&source, "password").await, Ok(None), "{text:?}");
    }
    // A listed hash counts as seen even with a count of 0 (HIBP's files never have one).
    let f = file_with(format!("{hash}:0\n").as_bytes());
    let source = Sha1File::open(f.path()).unwrap();
    assert_eq!(ask(&source, "P@ssw0rd").await, Ok(Some(1)));
}

#[test]
fn open_refuses_what_is_not_a_hash_file() {
    let refused = |path: &Path, why: &str| {
        let e = Sha1File::open(path).unwrap_err();
        assert!(matches!(e, SetupError::File { .. }), "{e}");
        let text = e.to_string();
        assert!(text.starts_with("RK-BREACH-103"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(why), "{text}");
    };
    let dir = TempDir::new().unwrap();
    refused(&dir.path().join("missing.txt"), "No such file");
    refused(dir.path(), "not a regular file");
    refused(file_with(b"").path(), "empty");
    for garbage in [
        &b"hello world\n"[..],
        b"\n",
        b"21BD12DC183F740EE76F27B78EB39C8AD972A75:1\n",
        b"21BD12DC183F740EE76F27B78EB39C8AD972A757:many\n",
        b"\x00\x01\x02\x03",
        &[b'A'; 5000][..],
    ] {
        refused(file_with(garbage).path(), "HEX40");
    }
}

#[tokio::test]
async fn a_file_removed_after_open_is_unavailable() {
    let corpus = Corpus::new();
    let f = file_with(corpus.text("\n", true).as_bytes());
    let source = Sha1File::open(f.path()).unwrap();
    let e = &corpus.sorted[1];
    assert_eq!(ask(&source, &e.password).await, Ok(Some(e.count)));

    let path = f.path().to_path_buf();
    f.close().unwrap();
    let err = ask(&source, &e.password).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(text.starts_with("RK-BREACH-001"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        !text.contains(&e.hash) && !text.contains(&e.password),
        "{text}"
    );
}

#[tokio::test]
async fn a_corrupt_line_met_by_the_search_is_unavailable_not_absent() {
    let hash = hex("P@ssw0rd");
    let mut text = String::from("0000000000000000000000000000000000000000:1\n");
    for _ in 0..1_000 {
        text.push_str("this line is not a hash\n");
    }
    let f = file_with(text.as_bytes());
    let source = Sha1File::open(f.path()).unwrap();
    let err = ask(&source, "P@ssw0rd").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not HEX40"), "{text}");
    assert!(!text.contains(&hash), "{text}");
}

#[tokio::test]
async fn a_replaced_file_is_read_afresh() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("pwned.txt");
    let hash = hex("P@ssw0rd");
    std::fs::write(&path, "0000000000000000000000000000000000000000:1\n").unwrap();
    let source = Sha1File::open(&path).unwrap();
    assert_eq!(ask(&source, "P@ssw0rd").await, Ok(None));
    let next = dir.path().join("pwned.txt.new");
    std::fs::write(&next, format!("{hash}:4\n")).unwrap();
    std::fs::rename(&next, &path).unwrap();
    assert_eq!(ask(&source, "P@ssw0rd").await, Ok(Some(4)));
}
