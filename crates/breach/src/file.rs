//! `Sha1File`: a local breach corpus in HIBP's downloadable "ordered by hash" format.
//!
//! One line per hash, `HEX40:COUNT` (upper case; lower case and lines without `:COUNT`, which
//! count as 1, are accepted too), LF or CRLF, sorted by hash, often tens of GB. A look-up is a
//! binary search over byte offsets: seek to the middle, skip to the next line start, compare; about
//! log₂(lines) reads of a few hundred bytes each, on the blocking pool. The file is never loaded
//! and is reopened for every look-up, so replacing it (rename) takes effect at once and a file that
//! vanished or turned unreadable answers `Unavailable`.
//!
//! The order is trusted, not checked: an unsorted file gives wrong answers, a corrupt line met on
//! the way gives `Unavailable`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use rekey_core::breached::{BreachError, BreachedPasswords};
use rekey_core::landing::BoxFuture;
use rekey_core::secret::Password;
use zeroize::Zeroizing;

use crate::SetupError;
use crate::hash::{self, HEX_LEN, Sha1Hex};

/// Longest line accepted: 40 digits, `:`, a `u64` (20 digits), CR, with room to spare.
const MAX_LINE: usize = 100;
/// One read: the tail of the line before (up to a whole line and its LF) plus one whole line.
const WINDOW: usize = 2 * (MAX_LINE + 1) + 1;

/// A sorted SHA-1 file as a [`BreachedPasswords`] source.
#[derive(Debug, Clone)]
pub struct Sha1File {
    path: Arc<Path>,
}

impl Sha1File {
    /// Checks that `path` is a readable regular file whose first line is `HEX40[:COUNT]`. The file
    /// is not kept open.
    ///
    /// # Errors
    /// [`SetupError::File`] naming the path: missing, unreadable, not a file, empty, or a first
    /// line in another format.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SetupError> {
        let path = path.as_ref();
        let bad = |why: String| SetupError::File {
            path: path.to_path_buf(),
            why,
        };
        let mut file = File::open(path).map_err(|e| bad(e.to_string()))?;
        let meta = file.metadata().map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() {
            return Err(bad("not a regular file".into()));
        }
        let len = meta.len();
        if len == 0 {
            return Err(bad("empty".into()));
        }
        match line_at_or_after(&mut file, 0, len) {
            Ok(Some(line)) if line.entry.is_some() => Ok(Self { path: path.into() }),
            Ok(_) => Err(bad(
                "the first line is not HEX40[:COUNT] (HIBP's \"ordered by hash\" SHA-1 format)"
                    .into(),
            )),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// The file searched.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl BreachedPasswords for Sha1File {
    fn times_seen<'a>(
        &'a self,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<u64>, BreachError>> {
        Box::pin(async move {
            let hash = Sha1Hex::of(password);
            let path = Arc::clone(&self.path);
            let shown = self.path.display().to_string();
            tokio::task::spawn_blocking(move || search(&path, &hash))
                .await
                .map_err(|_| BreachError::Unavailable(format!("{shown}: look-up task failed")))?
                .map_err(|e| BreachError::Unavailable(format!("{shown}: {e}")))
        })
    }
}

/// Looks `hash` up in the file at `path`, opened afresh. Errors never quote a line.
fn search(path: &Path, hash: &Sha1Hex) -> io::Result<Option<u64>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    search_in(&mut file, len, hash.digits())
}

/// Binary search over byte offsets `[0, len)`.
///
/// Invariant: if the wanted line exists, it starts in `[lo, hi)`. Probing at `mid` reads the first
/// line starting at or after `mid`; a greater key moves `hi` to `mid` (no line starts in
/// `[mid, start)`), a smaller one moves `lo` past that line (> `mid`). Each step halves the range
/// at least, so a look-up makes at most ⌈log₂ len⌉ + 1 reads of `WINDOW` bytes.
fn search_in<R: Read + Seek>(
    file: &mut R,
    len: u64,
    want: &[u8; HEX_LEN],
) -> io::Result<Option<u64>> {
    let (mut lo, mut hi) = (0u64, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let Some(line) = line_at_or_after(file, mid, len)? else {
            hi = mid;
            continue;
        };
        let Some((key, count)) = line.entry else {
            return Err(invalid(format!(
                "the line at byte {} is not HEX40[:COUNT]",
                line.start
            )));
        };
        match key[..].cmp(&want[..]) {
            std::cmp::Ordering::Equal => return Ok(Some(count.max(1))),
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Less => lo = line.next,
        }
    }
    Ok(None)
}

/// A line found by [`line_at_or_after`].
struct Line {
    /// Offset of its first byte.
    start: u64,
    /// Offset just past its LF (or the end of the file).
    next: u64,
    /// Upper-cased hash and count, if the line parses.
    entry: Option<(Zeroizing<[u8; HEX_LEN]>, u64)>,
}

/// The first line that starts at or after `pos` (a line starts at 0 or after an LF), or `None` if
/// none does. Reads at most `WINDOW` bytes.
fn line_at_or_after<R: Read + Seek>(file: &mut R, pos: u64, len: u64) -> io::Result<Option<Line>> {
    if pos >= len {
        return Ok(None);
    }
    // From `pos - 1`: if that byte is an LF, the line at `pos` itself is the one.
    let from = pos.saturating_sub(1);
    let mut buf = Zeroizing::new([0u8; WINDOW]);
    file.seek(SeekFrom::Start(from))?;
    let n = read_full(file, &mut buf[..])?;
    let buf = &buf[..n];
    let at_eof = from + n as u64 >= len;
    let begin = if pos == 0 {
        0
    } else {
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if at_eof => return Ok(None),
            None => return Err(too_long(from)),
        }
    };
    if begin >= buf.len() {
        // The LF was the last byte of the file (or of the window, if the file is still longer:
        // then the window was too short, which `WINDOW` rules out for lines ≤ `MAX_LINE`).
        return if at_eof {
            Ok(None)
        } else {
            Err(too_long(from))
        };
    }
    let rest = &buf[begin..];
    let (end, next) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (begin + i, begin + i + 1),
        None if at_eof => (buf.len(), buf.len()),
        None => return Err(too_long(from)),
    };
    Ok(Some(Line {
        start: from + begin as u64,
        next: from + next as u64,
        entry: parse(&buf[begin..end]),
    }))
}

/// `HEX40[:COUNT]`, with an optional trailing CR; no count means 1.
fn parse(raw: &[u8]) -> Option<(Zeroizing<[u8; HEX_LEN]>, u64)> {
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    let (hex, count) = match line.iter().position(|&b| b == b':') {
        Some(i) => (&line[..i], hash::count(&line[i + 1..])?),
        None => (line, 1),
    };
    Some((Zeroizing::new(hash::upper_hex::<HEX_LEN>(hex)?), count))
}

/// Reads until `buf` is full or the file ends.
fn read_full<R: Read>(file: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

fn too_long(from: u64) -> io::Error {
    invalid(format!(
        "a line near byte {from} is longer than {MAX_LINE} bytes (not HEX40[:COUNT])"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Counts the seeks (one per probe) and the bytes read.
    struct Counting {
        inner: Cursor<Vec<u8>>,
        seeks: u32,
        bytes: usize,
    }

    impl Read for Counting {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.bytes += n;
            Ok(n)
        }
    }

    impl Seek for Counting {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.seeks += 1;
            self.inner.seek(pos)
        }
    }

    #[test]
    fn a_look_up_reads_log_n_small_windows() {
        // 200,000 sorted lines (even numbers, so odd ones are absent), ~8.6 MB.
        let lines = 200_000u64;
        let mut text = Vec::new();
        for i in 0..lines {
            text.extend_from_slice(format!("{:040X}:{}\r\n", i * 2, i + 1).as_bytes());
        }
        let len = text.len() as u64;
        let max_probes = 64 - len.leading_zeros() + 1; // ⌈log₂ len⌉ + 1
        let mut file = Counting {
            inner: Cursor::new(text),
            seeks: 0,
            bytes: 0,
        };
        for (i, expect) in [
            (0, Some(1)),
            (2, Some(2)),
            (1, None),
            (199_999 * 2, Some(200_000)),
            (199_999 * 2 + 1, None),
            (123_456 * 2, Some(123_457)),
            (123_456 * 2 + 1, None),
        ] {
            file.seeks = 0;
            file.bytes = 0;
            let want: [u8; HEX_LEN] = format!("{i:040X}").into_bytes().try_into().unwrap();
            assert_eq!(search_in(&mut file, len, &want).unwrap(), expect, "{i}");
            assert!(file.seeks <= max_probes, "{i}: {} probes", file.seeks);
            assert!(
                file.bytes <= max_probes as usize * WINDOW,
                "{i}: {} bytes",
                file.bytes
            );
        }
    }

    #[test]
    fn lines() {
        let ok = parse(b"21bd12dc183f740ee76f27b78eb39c8ad972a757:5\r").unwrap();
        assert_eq!(&ok.0[..], b"21BD12DC183F740EE76F27B78EB39C8AD972A757");
        assert_eq!(ok.1, 5);
        assert_eq!(
            parse(b"21BD12DC183F740EE76F27B78EB39C8AD972A757")
                .unwrap()
                .1,
            1
        );
        for bad in [
            &b""[..],
            b"21BD12DC183F740EE76F27B78EB39C8AD972A75",
            b"21BD12DC183F740EE76F27B78EB39C8AD972A757:",
            b"21BD12DC183F740EE76F27B78EB39C8AD972A757:x",
            b"21BD12DC183F740EE76F27B78EB39C8AD972A757 :1",
            b"hello world",
        ] {
            assert!(parse(bad).is_none());
        }
    }
}
