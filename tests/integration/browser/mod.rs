//! Flows in a real browser: Debian's `chromium` driven headless by `chromedriver` over
//! WebDriver (fantoccini). On every page a flow visits, [`Browser::check_page`] runs axe-core
//! (injected by the test, `tests/browser-assets/axe.min.js`) and fails on a serious or critical
//! violation, and fails on any console error or Content-Security-Policy violation (a listener
//! installed before any page script, plus the browser's own log). Each flow saves screenshots
//! under `<target>/test-artifacts/browser/`.
//!
//! Without chromium and chromedriver the flows skip with a message; with
//! `GUILDHALL_TEST_REQUIRE_BROWSER=1` (scripts/test.sh sets it after installing them) a missing
//! browser is a failure.

mod dash_flows;
mod discord_flows;
mod flows;
mod keyboard;
mod links_flow;
mod ws_flows;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a flow waits for something the page should show (a loaded machine included).
pub const WAIT: Duration = Duration::from_secs(15);

/// Installed on every new document before its own scripts: records CSP violations and errors
/// the page raises, for [`Browser::check_page`] to read.
const WATCHER: &str = r#"
window.__gh = { csp: [], errors: [] };
document.addEventListener('securitypolicyviolation', function (e) {
  window.__gh.csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || '') + ':' + (e.lineNumber || 0));
});
window.addEventListener('error', function (e) { window.__gh.errors.push(String(e.message)); });
window.addEventListener('unhandledrejection', function (e) { window.__gh.errors.push('unhandled rejection: ' + String(e.reason)); });
"#;

/// chromedriver and everything it started, killed together when dropped.
struct DriverGroup(Child);

impl Drop for DriverGroup {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            // SAFETY: signals the process group this harness created, nothing else.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.0.wait();
    }
}

pub struct Browser {
    pub client: Client,
    _driver: DriverGroup,
    artifacts: PathBuf,
    flow: &'static str,
    shots: u32,
}

/// Is a browser required (CI) rather than optional (a developer machine)?
fn required() -> bool {
    std::env::var("GUILDHALL_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Where screenshots go: `$GUILDHALL_TEST_ARTIFACTS`, else `<target dir>/test-artifacts`.
fn artifacts_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("GUILDHALL_TEST_ARTIFACTS") {
        return PathBuf::from(dir).join("browser");
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").to_owned());
    PathBuf::from(target).join("test-artifacts").join("browser")
}

/// `POST /session/{id}/goog/cdp/execute`: a Chrome DevTools command through chromedriver.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (
            reqwest::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}

/// `POST /session/{id}/se/log`: chromedriver's browser console log since the last read.
#[derive(Debug)]
struct ConsoleLog;

impl WebDriverCompatibleCommand for ConsoleLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (
            reqwest::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

impl Browser {
    /// A headless chromium for `flow`, or `None` (with a message) when none is installed and
    /// none is required.
    pub async fn start(flow: &'static str) -> Option<Browser> {
        let installed =
            std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
        if !installed {
            assert!(
                !required(),
                "GUILDHALL_TEST_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing \
                 (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "SKIPPED browser flow {flow}: chromium/chromedriver not installed \
                 (apt-get install chromium chromium-driver, or run scripts/test.sh)"
            );
            return None;
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = crate::common::free_port();
        // Its own process group, which the chromium it starts joins: a flow that fails (a
        // panic before `close`) still takes both down (see `DriverGroup`).
        let driver = DriverGroup(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver starts"),
        );
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--no-first-run", "--disable-extensions"],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::rustls()
                .expect("rustls connector")
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) => {
                    assert!(Instant::now() < deadline, "no WebDriver session: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        client
            .issue_cmd(Cdp {
                cmd: "Page.addScriptToEvaluateOnNewDocument",
                params: json!({ "source": WATCHER }),
            })
            .await
            .expect("watcher installed");
        let artifacts = artifacts_dir();
        std::fs::create_dir_all(&artifacts).expect("artifacts dir");
        Some(Browser {
            client,
            _driver: driver,
            artifacts,
            flow,
            shots: 0,
        })
    }

    /// Emulates a phone-sized viewport (`width` CSS pixels) and the system's colour scheme.
    pub async fn emulate(&self, width: u32, scheme: &str) {
        self.client
            .issue_cmd(Cdp {
                cmd: "Emulation.setDeviceMetricsOverride",
                params: json!({ "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": true }),
            })
            .await
            .expect("viewport");
        self.client
            .issue_cmd(Cdp {
                cmd: "Emulation.setEmulatedMedia",
                params: json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
            })
            .await
            .expect("colour scheme");
    }

    /// How much wider than the viewport the page is (0: no sideways scrolling).
    pub async fn overflow_px(&self) -> i64 {
        self.client
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_i64())
            .unwrap_or(-1)
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_owned()
    }

    /// Waits (bounded) until the page's URL path is `path`.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        while self.path().await != path {
            assert!(
                Instant::now() < deadline,
                "{}: still on {} waiting for {path}",
                self.flow,
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until an element matching `css` exists.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no {css}: {e}", self.flow))
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.expect("click");
    }

    /// Fills the sign-in form (the browser is on the sign-in page) and submits it.
    pub async fn submit_sign_in(&self, username: &str, password: &str) {
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click(r#"form[action="/sign-in"] button[type="submit"]"#)
            .await;
    }

    /// Opens `url` (a page that sends a visitor who is not signed in to the sign-in page),
    /// signs in there as `username` with the test password, and waits to be back on `url`'s
    /// path.
    pub async fn sign_in_at(&self, url: &str, username: &str) {
        let path = url::Url::parse(url).expect("url").path().to_owned();
        self.goto(url).await;
        self.wait_for_path("/sign-in").await;
        self.submit_sign_in(username, crate::common::auth::PASSWORD)
            .await;
        self.wait_for_path(&path).await;
    }

    /// Waits (bounded) until the text of `css` contains `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text_of(css).await;
            if text.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {css} never showed {needle:?}; it shows {text:?}",
                self.flow
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text content of the first element matching `css` ("" when there is none).
    pub async fn text_of(&self, css: &str) -> String {
        self.client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
                vec![json!(css)],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Saves a screenshot as `<flow>-<n>-<name>.png` and returns its path.
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        self.shots += 1;
        let path = self
            .artifacts
            .join(format!("{}-{:02}-{name}.png", self.flow, self.shots));
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// The page as loaded must be accessible and quiet: no serious or critical axe-core
    /// violation, no console error, no CSP violation. Also saves a screenshot.
    pub async fn check_page(&mut self, name: &str) {
        self.screenshot(name).await;
        let axe = include_str!("../../browser-assets/axe.min.js");
        self.client
            .execute(&format!("{axe}\nreturn true;"), vec![])
            .await
            .expect("axe injected");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' +
                          v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))
                 )).catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("axe ran");
        let violations: Vec<String> = serde_json::from_value(result).unwrap_or_default();
        assert!(
            violations.is_empty(),
            "{} / {name}: accessibility violations:\n{}",
            self.flow,
            violations.join("\n")
        );
        self.assert_quiet(name).await;
    }

    /// No CSP violation or script error recorded by the watcher, no SEVERE console entry.
    pub async fn assert_quiet(&self, name: &str) {
        let seen = self
            .client
            .execute(
                "return window.__gh || { csp: ['watcher missing'], errors: [] };",
                vec![],
            )
            .await
            .expect("watcher read");
        let csp = seen["csp"].as_array().cloned().unwrap_or_default();
        let errors = seen["errors"].as_array().cloned().unwrap_or_default();
        assert!(
            csp.is_empty(),
            "{} / {name}: CSP violations: {csp:?}",
            self.flow
        );
        assert!(
            errors.is_empty(),
            "{} / {name}: script errors: {errors:?}",
            self.flow
        );
        let log = self
            .client
            .issue_cmd(ConsoleLog)
            .await
            .unwrap_or(Value::Null);
        let severe: Vec<String> = log
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            // A refused sign-in or a 4xx a flow provokes on purpose is the server's answer,
            // not a page error; the browser logs each such response as a console error.
            .filter(|m| !m.contains("the server responded with a status of 4"))
            .collect();
        assert!(
            severe.is_empty(),
            "{} / {name}: console errors: {severe:?}",
            self.flow
        );
    }

    /// Ends the session (chromium quits); dropping the browser then stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}
