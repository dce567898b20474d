//! A real browser for the console's tests: Debian's Chromium, headless,
//! driven over the DevTools protocol (JSON over a WebSocket) — the same
//! protocol Puppeteer and chromiumoxide speak, here only the handful of
//! calls the tests need: open a page, evaluate, click, take a screenshot.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium with one page.
pub struct Browser {
    child: Child,
    socket: Socket,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// Where Chromium is: `CHROMIUM`, or Debian's.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_string())
}

impl Browser {
    /// Start Chromium headless and attach to its page.
    pub async fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless=new",
                // Tests run as root in CI, where the sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1440,1100",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} (examples/setup.sh --tests installs it): {e}", chromium()));
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/…"
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(url) = line.strip_prefix("DevTools listening on ") {
                        let port = url.trim_start_matches("ws://127.0.0.1:").split('/').next().unwrap();
                        break port.parse::<u16>().unwrap();
                    }
                    seen.push(line);
                }
                _ => panic!("Chromium stopped before it listened: {seen:#?}"),
            }
        };
        // Chromium keeps writing to standard error; it must not block on it.
        std::thread::spawn(move || for _ in lines {});
        let (_, list) = super::get(&format!("http://127.0.0.1:{port}/json/list"), &[]).await;
        let targets: Vec<Value> = serde_json::from_str(&list).unwrap();
        let page = targets
            .iter()
            .find(|t| t["type"] == "page")
            .unwrap_or_else(|| panic!("no page among {targets:#?}"));
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut browser = Browser {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        };
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
    }

    /// One DevTools call; its result. Events arriving meanwhile are skipped.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::text(message)).await.unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer from Chromium within 30 s"))
                .expect("Chromium closed the DevTools connection")
                .unwrap();
            let Message::Text(text) = message else { continue };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Go to `url`, and wait until the page has loaded.
    pub async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete'", Duration::from_secs(10))
            .await;
    }

    /// The value of the JavaScript expression `script` in the page (a
    /// promise is waited for).
    pub async fn eval(&mut self, script: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": script, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(result.get("exceptionDetails").is_none(), "{script}: {result}");
        result["result"]["value"].clone()
    }

    /// Wait until `condition` (JavaScript) holds in the page; how long it took.
    pub async fn wait_for(&mut self, condition: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if self.eval(&format!("Boolean({condition})")).await == json!(true) {
                return started.elapsed();
            }
            if started.elapsed() > within {
                let text = self.eval("document.body ? document.body.innerText : ''").await;
                panic!(
                    "not within {within:?}: {condition}\nthe page said:\n{}",
                    text.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Click the first element `selector` matches, as a mouse would: at its
    /// middle, pressed and released.
    pub async fn click(&mut self, selector: &str) {
        let script = format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        );
        let at = self.eval(&script).await;
        let (x, y) = match at.as_array() {
            Some(xy) => (xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap()),
            None => panic!("nothing on the page matches {selector}"),
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }

    /// The whole page as a PNG.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
