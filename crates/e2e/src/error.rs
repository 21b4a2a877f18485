//! [`E2eError`]: errors that say which selector failed, where, and what the page showed.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use fantoccini::error::CmdError;

/// An error from the harness. `Debug` prints the same text as `Display`, so a test's
/// `.unwrap()` or `?` shows a readable message.
#[derive(thiserror::Error)]
pub enum E2eError {
    /// The browser could not be started (missing packages, chromedriver failed, ...).
    #[error("cannot start the browser: {0}")]
    Setup(String),

    /// No element matched `css` within `timeout`.
    #[error(
        "timed out after {timeout:?} waiting for `{css}` at {url}\n--- page text (first 500 chars) ---\n{page_text}\n---"
    )]
    Timeout {
        css: String,
        timeout: Duration,
        url: String,
        page_text: String,
    },

    /// A WebDriver command on the element matched by `css` failed.
    #[error("{action} `{css}` at {url}: {source}")]
    Element {
        action: &'static str,
        css: String,
        url: String,
        #[source]
        source: Box<CmdError>,
    },

    /// The element matched by `css` is not what the helper expects (e.g. not a submit button).
    #[error("{action} `{css}` at {url}: {problem}")]
    Unexpected {
        action: &'static str,
        css: String,
        url: String,
        problem: String,
    },

    /// A WebDriver command not tied to an element failed.
    #[error("{action}: {source}")]
    WebDriver {
        action: String,
        #[source]
        source: Box<CmdError>,
    },

    /// A WebDriver reply did not have the expected shape.
    #[error("{action}: unexpected reply {reply}")]
    Reply {
        action: String,
        reply: serde_json::Value,
    },

    /// Writing a file (e.g. a screenshot) failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl fmt::Debug for E2eError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl E2eError {
    pub(crate) fn webdriver(action: impl Into<String>) -> impl FnOnce(CmdError) -> Self {
        let action = action.into();
        move |source| E2eError::WebDriver {
            action,
            source: Box::new(source),
        }
    }
}
