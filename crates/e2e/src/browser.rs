//! [`Browser`]: one chromedriver + headless Chromium per test, killed as a process group on drop.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fantoccini::error::{CmdError, NewSessionError};
use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::error::E2eError;
use crate::webdriver::{Cookie, SessionCmd};

/// Where Debian's `chromium-driver` package puts chromedriver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where Debian's `chromium` package puts the browser (a wrapper script).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// What to do when either binary is missing.
pub const INSTALL_HINT: &str = "install Debian's chromium and chromium-driver (dev/test does this)";
/// NSS's command line tool (Debian's `libnss3-tools`), for [`Options::trust_ca`].
const CERTUTIL: &str = "/usr/bin/certutil";

/// How long to keep retrying the first connection to a freshly spawned chromedriver.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
/// How many characters of page text a timeout error shows.
const PAGE_TEXT_CHARS: usize = 500;
/// Chromium will not make a (headless) window narrower than this; narrower viewports are
/// emulated with CDP `Emulation.setDeviceMetricsOverride`.
pub const MIN_WINDOW_WIDTH: u32 = 500;

/// Browser settings for [`Browser::start_with`]. Start from [`Options::default`]:
/// `Options { lang: "de-DE", width: 320, ..Options::default() }`.
#[derive(Debug, Clone)]
pub struct Options {
    /// UI language and `Accept-Language` (`--lang` and the `intl.accept_languages` pref).
    pub lang: &'static str,
    /// Viewport (and screenshot) width in CSS pixels. Widths below [`MIN_WINDOW_WIDTH`] (e.g. a
    /// 320 px phone) are emulated: then the viewport is exactly `width`×`height`.
    pub width: u32,
    /// Window height; from 500 px wide the viewport is smaller by the (invisible) browser UI
    /// (768 gives a 1024×625 viewport).
    pub height: u32,
    /// How long element helpers ([`Browser::fill`], [`Browser::click`], ...) wait for their element.
    pub timeout: Duration,
    /// A CA certificate (PEM) this browser trusts for HTTPS, the way a user's machine would: it
    /// is added to an NSS database (`certutil`, Debian's `libnss3-tools`) in a `HOME` of this
    /// browser's own (`<temp dir>/home/.pki/nssdb`), which Chromium on Linux reads. Certificate
    /// errors are never ignored (`acceptInsecureCerts` is false): a certificate that does not
    /// chain to this CA (or the system's roots) fails the navigation. `None`: the usual `HOME`.
    pub trust_ca: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            lang: "en-US",
            width: 1024,
            height: 768,
            timeout: Duration::from_secs(5),
            trust_ca: None,
        }
    }
}

/// A headless Chromium session driven over WebDriver.
///
/// Owns its chromedriver process (own process group, own `TMPDIR`). Dropping it — also during
/// a panic — SIGKILLs the whole group (chromedriver and every Chromium process) and deletes
/// the temp dir.
pub struct Browser {
    client: Client,
    options: Options,
    // Declared last: dropped after `client`.
    driver: Driver,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pgid", &self.driver.child.id())
            .field("tmp", &self.driver.tmp)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Start a browser with [`Options::default`] (en-US, 1024×768).
    ///
    /// # Panics
    /// If the browser cannot start, with the reason (e.g. [`INSTALL_HINT`]). Use
    /// [`Browser::try_start_with`] to get the error instead.
    pub async fn start() -> Browser {
        Self::start_with(Options::default()).await
    }

    /// Start a browser with the given options.
    ///
    /// # Panics
    /// If the browser cannot start; see [`Browser::try_start_with`].
    pub async fn start_with(options: Options) -> Browser {
        match Self::try_start_with(options).await {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    /// Start a browser, returning [`E2eError::Setup`] if chromium/chromedriver are missing or
    /// the session cannot be created (the error then ends with chromedriver's log).
    pub async fn try_start_with(options: Options) -> Result<Browser, E2eError> {
        for bin in [CHROMEDRIVER, CHROMIUM] {
            if !Path::new(bin).exists() {
                return Err(E2eError::Setup(format!("{bin} not found: {INSTALL_HINT}")));
            }
        }
        remove_stale_temp_dirs();
        // A free port can be taken by someone else before chromedriver binds it; then
        // chromedriver exits and we try another port.
        let mut last_err = None;
        for _ in 0..3 {
            let driver = Driver::spawn(&options)?;
            match connect(&driver, &options).await {
                Ok(client) => {
                    let b = Browser {
                        client,
                        options,
                        driver,
                    };
                    if b.options.width < MIN_WINDOW_WIDTH {
                        b.emulate_viewport(b.options.width, b.options.height)
                            .await?;
                    }
                    return Ok(b);
                }
                Err(Connect::DriverExited(e)) => last_err = Some(e),
                Err(Connect::Fatal(e)) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| E2eError::Setup("chromedriver kept exiting".into())))
    }

    /// The raw fantoccini client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The options this browser was started with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// This browser's temp dir (`TMPDIR` of chromedriver and Chromium; holds the profile).
    /// Chromium's command line contains it, so tests can look for leaked processes.
    pub fn temp_dir(&self) -> &Path {
        &self.driver.tmp
    }

    /// The process group id (= chromedriver's pid) that [`Drop`] kills.
    pub fn pgid(&self) -> u32 {
        self.driver.child.id()
    }

    /// Navigate to `url` and wait for the page load.
    pub async fn goto(&self, url: &str) -> Result<(), E2eError> {
        self.client
            .goto(url)
            .await
            .map_err(E2eError::webdriver(format!("goto {url}")))
    }

    /// The current page's URL.
    pub async fn current_url(&self) -> Result<url::Url, E2eError> {
        self.client
            .current_url()
            .await
            .map_err(E2eError::webdriver("current_url"))
    }

    /// The current page's HTML as the browser serializes it.
    pub async fn page_source(&self) -> Result<String, E2eError> {
        self.client
            .source()
            .await
            .map_err(E2eError::webdriver("page_source"))
    }

    /// Wait up to `timeout` for an element matching `css` and return it. On timeout the error
    /// shows the selector, the current URL and the first 500 characters of the page text.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element, E2eError> {
        match self
            .client
            .wait()
            .at_most(timeout)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => Ok(e),
            Err(CmdError::WaitTimeout) => Err(E2eError::Timeout {
                css: css.to_owned(),
                timeout,
                url: self.url_for_error().await,
                page_text: self.page_text_for_error().await,
            }),
            Err(source) => Err(self.element_error("find", css, source).await),
        }
    }

    /// Whether an element matching `css` exists right now (no waiting).
    pub async fn exists(&self, css: &str) -> Result<bool, E2eError> {
        match self.client.find_all(Locator::Css(css)).await {
            Ok(all) => Ok(!all.is_empty()),
            Err(source) => Err(self.element_error("find", css, source).await),
        }
    }

    /// Clear the input matching `css` and type `text` into it.
    pub async fn fill(&self, css: &str, text: &str) -> Result<(), E2eError> {
        let el = self.find(css).await?;
        if let Err(source) = el.clear().await {
            return Err(self.element_error("clear", css, source).await);
        }
        if let Err(source) = el.send_keys(text).await {
            return Err(self.element_error("type into", css, source).await);
        }
        Ok(())
    }

    /// Click the element matching `css`.
    pub async fn click(&self, css: &str) -> Result<(), E2eError> {
        let el = self.find(css).await?;
        match el.click().await {
            Ok(()) => Ok(()),
            Err(source) => Err(self.element_error("click", css, source).await),
        }
    }

    /// Click the submit button matching `css` (a `<button>` whose type is submit, or an
    /// `<input type=submit|image>`). chromedriver waits for the navigation it starts.
    pub async fn submit(&self, css: &str) -> Result<(), E2eError> {
        let el = self.find(css).await?;
        let kind = async {
            let tag = el.tag_name().await?.to_ascii_lowercase();
            let ty = el.prop("type").await?.unwrap_or_default();
            Ok::<_, CmdError>((tag, ty))
        };
        let (tag, ty) = match kind.await {
            Ok(k) => k,
            Err(source) => return Err(self.element_error("submit", css, source).await),
        };
        let ok = match tag.as_str() {
            "button" => ty == "submit",
            "input" => ty == "submit" || ty == "image",
            _ => false,
        };
        if !ok {
            return Err(E2eError::Unexpected {
                action: "submit",
                css: css.to_owned(),
                url: self.url_for_error().await,
                problem: format!("not a submit button but <{tag} type={ty:?}>"),
            });
        }
        match el.click().await {
            Ok(()) => Ok(()),
            Err(source) => Err(self.element_error("submit", css, source).await),
        }
    }

    /// The rendered text of the element matching `css` (as the user sees it).
    pub async fn text(&self, css: &str) -> Result<String, E2eError> {
        let el = self.find(css).await?;
        match el.text().await {
            Ok(t) => Ok(t),
            Err(source) => Err(self.element_error("read text of", css, source).await),
        }
    }

    /// Save a PNG of the viewport as `<dir>/<name>.png` and return its path; `<dir>` is
    /// `$REKEY_SCREENSHOT_DIR` or `<cargo target dir>/screenshots`. Characters other than
    /// `[A-Za-z0-9._-]` in `name` become `_`.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, E2eError> {
        let png = self
            .client
            .screenshot()
            .await
            .map_err(E2eError::webdriver(format!("screenshot {name}")))?;
        let dir = screenshot_dir();
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| E2eError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{safe}.png"));
        std::fs::write(&path, png).map_err(io("write", &path))?;
        Ok(path)
    }

    /// All cookies visible to the current page, with the attributes WebDriver reports
    /// (`secure`, `http_only`, `same_site`, `path`, ...), e.g. to check `__Host-` cookies.
    pub async fn cookies(&self) -> Result<Vec<Cookie>, E2eError> {
        let reply = self.cmd("cookies", SessionCmd::get("cookie")).await?;
        let all = reply
            .as_array()
            .map(|a| a.iter().map(Cookie::from_json).collect::<Option<Vec<_>>>());
        match all {
            Some(Some(cookies)) => Ok(cookies),
            _ => Err(E2eError::Reply {
                action: "cookies".into(),
                reply,
            }),
        }
    }

    /// Resize the window; the viewport width follows exactly. Below [`MIN_WINDOW_WIDTH`] the
    /// viewport is emulated as exactly `width`×`height` (see [`Options::width`]).
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<(), E2eError> {
        if width < MIN_WINDOW_WIDTH {
            return self.emulate_viewport(width, height).await;
        }
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
            .await?;
        self.client
            .set_window_size(width, height)
            .await
            .map_err(E2eError::webdriver(format!(
                "set_window_size {width}x{height}"
            )))
    }

    /// Send a Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`).
    pub async fn cdp(&self, method: &str, params: Value) -> Result<Value, E2eError> {
        let body = json!({ "cmd": method, "params": params });
        self.cmd(method, SessionCmd::post("goog/cdp/execute", body))
            .await
    }

    /// A desktop (not mobile) viewport of exactly `width`×`height`, for widths Chromium's
    /// window cannot go down to. It stays for this tab across navigations.
    async fn emulate_viewport(&self, width: u32, height: u32) -> Result<(), E2eError> {
        let params = json!({
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            "mobile": false,
        });
        self.cdp("Emulation.setDeviceMetricsOverride", params)
            .await
            .map(drop)
    }

    /// Add a W3C WebDriver virtual authenticator (CTAP2, internal transport, resident keys,
    /// user verification that succeeds) and return its id. It applies to this tab across
    /// navigations; `navigator.credentials.create()/get()` then complete without a prompt.
    pub async fn add_virtual_authenticator(&self) -> Result<String, E2eError> {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        });
        let reply = self
            .cmd(
                "add virtual authenticator",
                SessionCmd::post("webauthn/authenticator", body),
            )
            .await?;
        match reply.as_str() {
            Some(id) => Ok(id.to_owned()),
            None => Err(E2eError::Reply {
                action: "add virtual authenticator".into(),
                reply,
            }),
        }
    }

    /// The credentials stored in virtual authenticator `id` (raw WebDriver JSON objects:
    /// `credentialId`, `isResidentCredential`, `rpId`, `userHandle`, `signCount`, ...).
    pub async fn authenticator_credentials(&self, id: &str) -> Result<Vec<Value>, E2eError> {
        let action = "list authenticator credentials";
        let path = format!("webauthn/authenticator/{id}/credentials");
        match self.cmd(action, SessionCmd::get(path)).await? {
            Value::Array(all) => Ok(all),
            reply => Err(E2eError::Reply {
                action: action.into(),
                reply,
            }),
        }
    }

    /// Make the next ceremonies of authenticator `id` pass (`true`) or fail (`false`) user
    /// verification (`false` gives `NotAllowedError` at once).
    pub async fn set_user_verified(&self, id: &str, verified: bool) -> Result<(), E2eError> {
        let path = format!("webauthn/authenticator/{id}/uv");
        let body = json!({ "isUserVerified": verified });
        self.cmd("set user verified", SessionCmd::post(path, body))
            .await
            .map(drop)
    }

    /// Remove virtual authenticator `id`.
    pub async fn remove_virtual_authenticator(&self, id: &str) -> Result<(), E2eError> {
        let path = format!("webauthn/authenticator/{id}");
        self.cmd("remove virtual authenticator", SessionCmd::delete(path))
            .await
            .map(drop)
    }

    async fn cmd(&self, action: &str, cmd: SessionCmd) -> Result<Value, E2eError> {
        self.client
            .issue_cmd(cmd)
            .await
            .map_err(E2eError::webdriver(action))
    }

    async fn find(&self, css: &str) -> Result<Element, E2eError> {
        self.wait_for(css, self.options.timeout).await
    }

    async fn element_error(&self, action: &'static str, css: &str, source: CmdError) -> E2eError {
        E2eError::Element {
            action,
            css: css.to_owned(),
            url: self.url_for_error().await,
            source: Box::new(source),
        }
    }

    async fn url_for_error(&self) -> String {
        match self.client.current_url().await {
            Ok(u) => u.to_string(),
            Err(e) => format!("<unknown URL: {e}>"),
        }
    }

    async fn page_text_for_error(&self) -> String {
        let script = "return document.body ? document.body.innerText \
                      : (document.documentElement ? document.documentElement.outerHTML : '')";
        match self.client.execute(script, vec![]).await {
            Ok(Value::String(s)) => s.chars().take(PAGE_TEXT_CHARS).collect(),
            Ok(other) => format!("<unexpected: {other}>"),
            Err(e) => format!("<cannot read page text: {e}>"),
        }
    }
}

/// The chromedriver child in its own process group, plus its temp dir.
struct Driver {
    child: Child,
    port: u16,
    tmp: PathBuf,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);
const TMP_PREFIX: &str = "rekey-e2e-";

impl Driver {
    fn spawn(options: &Options) -> Result<Driver, E2eError> {
        let setup = |what: &str| {
            let what = what.to_owned();
            move |e: std::io::Error| E2eError::Setup(format!("{what}: {e}"))
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(setup("find a free port"))?
            .port();
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let tmp = std::env::temp_dir().join(format!("{TMP_PREFIX}{}-{n}", std::process::id()));
        std::fs::create_dir_all(&tmp).map_err(setup(&format!("create {}", tmp.display())))?;
        let log = File::create(tmp.join("chromedriver.log")).map_err(setup("create log"))?;
        let log2 = log.try_clone().map_err(setup("clone log"))?;
        let mut command = Command::new(CHROMEDRIVER);
        command
            .arg(format!("--port={port}"))
            // Chromium inherits the group, so Drop can kill everything at once.
            .process_group(0)
            // chromedriver puts Chromium's profile (user data dir) under $TMPDIR.
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        if let Some(ca) = &options.trust_ca {
            let home = tmp.join("home");
            if let Err(e) = trust(&home, ca) {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
            command.env("HOME", &home);
        }
        let child = command.spawn();
        match child {
            Ok(child) => Ok(Driver { child, port, tmp }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(E2eError::Setup(format!("spawn {CHROMEDRIVER}: {e}")))
            }
        }
    }

    /// The end of chromedriver's output (Chromium's stderr lands there too).
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.tmp.join("chromedriver.log")).unwrap_or_default();
        let skip = log.chars().count().saturating_sub(2000);
        log.chars().skip(skip).collect()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // pgid == chromedriver's pid (process_group(0)). Killing the group, not just
        // chromedriver, is what stops Chromium: killing chromedriver alone orphans it.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.wait();
        // A killed process may still finish its current syscall; retry briefly.
        for _ in 0..20 {
            let _ = std::fs::remove_dir_all(&self.tmp);
            if !self.tmp.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// An NSS database under `home` (`$HOME/.pki/nssdb`, where Chromium on Linux looks) that trusts
/// `ca` to issue server certificates (`-t C,,`).
fn trust(home: &Path, ca: &Path) -> Result<(), E2eError> {
    if !Path::new(CERTUTIL).exists() {
        return Err(E2eError::Setup(format!(
            "{CERTUTIL} not found: install Debian's libnss3-tools (for Options::trust_ca)"
        )));
    }
    if !ca.is_file() {
        return Err(E2eError::Setup(format!(
            "trust_ca: {} is not a file",
            ca.display()
        )));
    }
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db)
        .map_err(|e| E2eError::Setup(format!("create {}: {e}", db.display())))?;
    let db_arg = format!("sql:{}", db.display());
    let run = |args: &[&std::ffi::OsStr]| -> Result<(), E2eError> {
        let out = Command::new(CERTUTIL)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| E2eError::Setup(format!("run {CERTUTIL}: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(E2eError::Setup(format!(
                "{CERTUTIL} {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )))
        }
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    run(&[os("-N"), os("-d"), db_arg.as_ref(), os("--empty-password")])?;
    run(&[
        os("-A"),
        os("-d"),
        db_arg.as_ref(),
        os("-t"),
        os("C,,"),
        os("-n"),
        os("rekey-test-ca"),
        os("-i"),
        ca.as_os_str(),
    ])
}

enum Connect {
    /// chromedriver died (likely the port was taken): retry with a fresh one.
    DriverExited(E2eError),
    Fatal(E2eError),
}

async fn connect(driver: &Driver, options: &Options) -> Result<Client, Connect> {
    let url = format!("http://127.0.0.1:{}", driver.port);
    let caps = capabilities(options);
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let fatal = |what: String| {
        Connect::Fatal(E2eError::Setup(format!(
            "{what}\n--- chromedriver log ({}) ---\n{}",
            driver.tmp.display(),
            driver.log_tail()
        )))
    };
    loop {
        let res = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await;
        let alive = pid_alive(driver.child.id());
        match res {
            Ok(client) if alive => return Ok(client),
            // Someone else's server answered on "our" port; ours has exited.
            Ok(client) => {
                let _ = client.close().await;
                return Err(Connect::DriverExited(E2eError::Setup(format!(
                    "chromedriver exited; port {} was taken",
                    driver.port
                ))));
            }
            Err(NewSessionError::Failed(_) | NewSessionError::FailedC(_)) if !alive => {
                return Err(Connect::DriverExited(E2eError::Setup(format!(
                    "chromedriver exited before accepting connections\n{}",
                    driver.log_tail()
                ))));
            }
            Err(NewSessionError::Failed(_) | NewSessionError::FailedC(_))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(POLL).await;
            }
            Err(e) => {
                return Err(fatal(format!(
                    "cannot create a WebDriver session at {url}: {e}"
                )));
            }
        }
    }
}

/// Whether `pid` is running (not exited, not a zombie) according to /proc.
fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ..." — comm may contain spaces and parens; the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn capabilities(o: &Options) -> fantoccini::wd::Capabilities {
    let args = [
        "--headless=new".to_owned(),
        // Required when running as root (CI).
        "--no-sandbox".to_owned(),
        // Containers often have a 64 MB /dev/shm; Debian's wrapper may not add this itself.
        "--disable-dev-shm-usage".to_owned(),
        format!("--window-size={},{}", o.width, o.height),
        "--disable-gpu".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-quic".to_owned(),
        format!("--lang={}", o.lang),
    ];
    let caps = json!({
        "browserName": "chrome",
        "acceptInsecureCerts": false,
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": args,
            "prefs": { "intl": { "accept_languages": o.lang } },
        },
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!("json! object literal"),
    }
}

/// `$REKEY_SCREENSHOT_DIR`, else `<target dir>/screenshots`.
fn screenshot_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("REKEY_SCREENSHOT_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    target_dir().join("screenshots")
}

/// `$CARGO_TARGET_DIR`, else the ancestor of the test binary holding cargo's `CACHEDIR.TAG`
/// (test binaries live in `<target>/<profile>/deps/`), else `<workspace>/target`.
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.ancestors().find(|d| d.join("CACHEDIR.TAG").is_file())
    {
        return dir.to_owned();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
}

/// Remove temp dirs left by test processes that were killed outright (Drop never ran).
fn remove_stale_temp_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
