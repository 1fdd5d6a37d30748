//! A real headless Chromium driven over WebDriver: Debian's `chromium` and
//! `chromium-driver` (installed by `scripts/services`), one browser per
//! test with a fresh profile, at 1366×768.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join(name)).find(|p| p.is_file())
}

fn missing(what: &str) -> ! {
    panic!(
        "the console's browser tests need {what}: install Debian's chromium, chromium-driver and \
         fonts-wqy-microhei (`apt-get install chromium chromium-driver fonts-wqy-microhei`; \
         scripts/services does it), or point YUNZHI_CHROMIUM and YUNZHI_CHROMEDRIVER at them"
    )
}

/// Where screenshots go: `YUNZHI_SCREENSHOTS`, else `target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("YUNZHI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots"))
}

/// The browser's console messages (chromedriver's `se/log`).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    base: String,
}

impl Browser {
    /// A fresh browser pointed at the server at `base`.
    pub async fn start(base: &str) -> Browser {
        let chromium = std::env::var_os("YUNZHI_CHROMIUM")
            .map(PathBuf::from)
            .or_else(|| which("chromium"))
            .unwrap_or_else(|| missing("chromium"));
        let chromedriver = std::env::var_os("YUNZHI_CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| which("chromedriver"))
            .unwrap_or_else(|| missing("chromedriver (package chromium-driver)"));
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let profile = tempfile::tempdir().expect("a browser profile folder");
        let caps = json!({
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--disable-dev-shm-usage", "--window-size=1366,768", "--lang=zh-CN",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        driver,
                        _profile: profile,
                        base: base.trim_end_matches('/').into(),
                    };
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("chromedriver at {url} did not open a session: {last:?}");
    }

    pub async fn goto(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.expect("the page opens");
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("a current address");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Waits up to ten seconds for `css` to match.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on {}: {e}", self.base))
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("its text")
    }

    /// Replaces what `css` holds with `text`. A field that htmx swapped
    /// out under us is found again, once.
    pub async fn type_into(&self, css: &str, text: &str) {
        for attempt in 0..2 {
            let field = self.find(css).await;
            let done = async {
                field.clear().await?;
                field.send_keys(text).await
            };
            match done.await {
                Ok(()) => return,
                Err(e) if attempt == 0 && format!("{e:?}").contains("StaleElementReference") => continue,
                Err(e) => panic!("typing into {css}: {e:?}"),
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("clicked");
    }

    /// Waits until the page's text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str) {
        for _ in 0..100 {
            let body = self.client.find(Locator::Css("body")).await.ok();
            if let Some(b) = body
                && b.text().await.unwrap_or_default().contains(needle)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let source = self.client.source().await.unwrap_or_default();
        panic!("the page never said {needle:?}; it holds:\n{source}");
    }

    /// Waits until `css` matches an element whose text is `expected`, or,
    /// for `None`, until nothing matches `css`.
    pub async fn wait_for_text_of(&self, css: &str, expected: Option<&str>) {
        let mut seen = None;
        for _ in 0..100 {
            let found = self.client.find(Locator::Css(css)).await.ok();
            seen = match found {
                Some(e) => e.text().await.ok(),
                None => None,
            };
            if seen.as_deref() == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} shows {seen:?}, not {expected:?}");
    }

    /// Waits until the address starts with `prefix` and is not `prefix`
    /// alone (htmx pushes the new address as it settles the page), and
    /// returns it.
    pub async fn wait_for_path_under(&self, prefix: &str) -> String {
        for _ in 0..100 {
            let path = self.path().await;
            if path.starts_with(prefix) && path.len() > prefix.len() {
                return path;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser stayed at {} rather than going under {prefix}", self.path().await);
    }

    /// Waits until the browser is at `path`.
    pub async fn wait_for_path(&self, path: &str) {
        for _ in 0..100 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser stayed at {} rather than going to {path}", self.path().await);
    }

    /// Whether the page is no wider than the window: nothing to scroll
    /// sideways (wide tables scroll inside their own box).
    pub async fn fits_the_width(&self) -> bool {
        let v = self
            .client
            .execute(
                "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .expect("the page answers");
        v == Value::Bool(true)
    }

    /// Signs in on the sign-in page.
    pub async fn sign_in(&self, username: &str, password: &str) {
        self.goto("/login").await;
        self.type_into("#username", username).await;
        self.type_into("#password", password).await;
        self.click("#sign-in").await;
    }

    /// Keeps a screenshot of the page as `<name>.png` in [`screenshot_dir`].
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("the screenshot is written");
    }

    /// The errors the page's scripts or loads reported in the browser's console.
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self.client.issue_cmd(BrowserLog).await.expect("the browser's log");
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// Fails if the browser's console holds an error, then closes it.
    pub async fn finish(mut self) {
        let errors = self.console_errors().await;
        let client = self.client.clone();
        let _ = client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        assert!(errors.is_empty(), "the browser's console reported errors: {errors:#?}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
