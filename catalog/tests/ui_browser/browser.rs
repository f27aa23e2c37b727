//! The browser session: chromedriver and headless Chromium, sign-in with password and
//! TOTP, finding elements and waiting for their text, screenshots.

use super::common::free_port;
use super::processes::{on_path, target_dir, wait_until, Process};
use fantoccini::{Client, Locator};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use weir_catalog::store::now_secs;
use weir_catalog::users::totp;

/// The browser session and where its screenshots go.
pub struct Browser {
    pub client: Client,
    pub base: String,
    pub shots: PathBuf,
}

impl Browser {
    pub async fn start(chromedriver: &Path, dir: &Path, base: String) -> (Process, Browser) {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(std::fs::File::create(dir.join("chromedriver.log")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Process(child);
        assert!(
            wait_until(Duration::from_secs(20), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok())
            .is_some(),
            "chromedriver did not listen on {port}"
        );
        let chromium = on_path("chromium").unwrap();
        let profile = dir.join("chromium-profile");
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display())],
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("chromedriver session");
        let shots = target_dir().join("ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        (
            driver,
            Browser {
                client,
                base,
                shots,
            },
        )
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                if let Ok(t) = el.text().await {
                    if t.contains(needle) {
                        return t;
                    }
                    if start.elapsed() > Duration::from_secs(10) {
                        panic!("{css} says {t:?}, never {needle:?}");
                    }
                }
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("{css} never appeared (waiting for {needle:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Follows a nav link and waits for the page to be drawn.
    pub async fn open(&self, view: &str) {
        self.click(&format!("#nav a[data-view={view}]")).await;
        self.find(&format!("main[data-page={view}]:not([aria-busy])"))
            .await;
    }

    /// Signs `user` in through the form with `password` and a code from its TOTP secret
    /// (the next step's: the enrolment may have spent the current one).
    pub async fn sign_in(&self, user: &str, password: &str, totp_secret: &[u8]) {
        self.client.goto(&format!("{}/", self.base)).await.unwrap();
        self.find("#signin-user")
            .await
            .send_keys(user)
            .await
            .unwrap();
        self.find("#signin-password")
            .await
            .send_keys(password)
            .await
            .unwrap();
        let code = format!("{:06}", totp(totp_secret, now_secs() as u64 + 30));
        self.find("#signin-code")
            .await
            .send_keys(&code)
            .await
            .unwrap();
        self.click("#signin-submit").await;
    }

    pub async fn sign_out(&self) {
        self.click("#sign-out").await;
        self.find("#signin").await;
    }

    pub async fn screenshot(&self, name: &str) -> Vec<u8> {
        let png = self.client.screenshot().await.unwrap();
        assert_eq!(&png[1..4], b"PNG");
        std::fs::write(self.shots.join(format!("{name}.png")), &png).unwrap();
        png
    }
}
