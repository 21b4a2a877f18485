//! Browser test harness for Rekey's web portal: drives a real headless Chromium through
//! Debian's `chromedriver` (WebDriver, via [`fantoccini`]).
//!
//! # Requirements
//!
//! `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian packages `chromium` and
//! `chromium-driver`; `dev/test` installs them). Nothing is downloaded at run time. Without them
//! [`Browser::start`] fails with "install Debian's chromium and chromium-driver (dev/test does this)".
//!
//! # Usage
//!
//! Serve the app under test in the same process on `127.0.0.1:0` and open it as
//! `http://localhost:PORT` (`localhost` is a secure context, so `Secure`/`__Host-` cookies and
//! WebAuthn work without TLS; WebAuthn rejects `127.0.0.1` as an rp id).
//!
//! ```no_run
//! # async fn demo(port: u16) -> Result<(), rekey_e2e::E2eError> {
//! use std::time::Duration;
//! use rekey_e2e::{Browser, Options};
//!
//! let b = Browser::start().await; // panics with a clear message if the browser cannot start
//! b.goto(&format!("http://localhost:{port}/")).await?;
//! b.fill("#user", "alice").await?;
//! b.submit("button[type=submit]").await?;
//! b.wait_for("#result", Duration::from_secs(5)).await?;
//! assert_eq!(b.text("#result").await?, "Hello, alice");
//! let session = b.cookies().await?.into_iter().find(|c| c.name == "__Host-session");
//! assert!(session.is_some_and(|c| c.secure && c.http_only && c.path == "/"));
//! let png = b.screenshot("reset-done").await?; // target/screenshots/reset-done.png
//! # let _ = png;
//!
//! // Another language / a phone-sized window:
//! let phone = Browser::start_with(Options { lang: "de-DE", width: 320, ..Options::default() }).await;
//! # drop(phone);
//! # Ok(()) }
//! ```
//!
//! Every [`Browser`] has its own `chromedriver` (own free port, own process group, own
//! `TMPDIR` holding Chromium's profile), so tests can run in parallel. Dropping the
//! [`Browser`] — also while a test panics — SIGKILLs the whole process group and deletes the
//! temp dir, so no Chromium is left behind.
//!
//! Helpers wait up to [`Options::timeout`] for their element to appear and return
//! [`E2eError`]s that name the CSS selector; timeouts also report the current URL and the
//! start of the page text. For anything else use [`Browser::client`] (the raw fantoccini client).
//!
//! Screenshots go to `$REKEY_SCREENSHOT_DIR`, or else `<cargo target dir>/screenshots`.

mod browser;
pub mod cloud;
pub mod dev;
mod directory_fixture;
mod error;
pub mod http;
#[cfg(feature = "portal")]
pub mod portal;
mod webdriver;

pub use browser::{Browser, CHROMEDRIVER, CHROMIUM, INSTALL_HINT, MIN_WINDOW_WIDTH, Options};
pub use error::E2eError;
pub use webdriver::Cookie;

/// Re-exported so tests can use the raw client and its types without their own dependency.
pub use fantoccini;
pub use url::Url;
