//! The web console in a real browser: headless Chromium driven through chromedriver
//! (Debian's `chromium` and `chromium-driver`, installed by `scripts/test`) against
//! the release-path binary. The first administrator is made with
//! `lorikeet user create` while the server runs; then, through the pages only: sign
//! in, create an application, a device profile and a device, watch a simulated
//! device's uplink arrive live on the device page, enqueue a downlink, and check
//! that a viewer gets no control that changes anything. Screenshots of the main
//! pages (1280 px and 390 px wide) go to `target/console-screenshots/`.
//!
//! With `LORIKEET_REQUIRE_BROWSER=1` (set by `scripts/test`) a missing browser or
//! driver fails the test instead of skipping it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::{Aes128Key, DevAddr, Eui64};
use lorikeet_sim::{RxMeta, SimDevice, SimGateway};
use lorikeet_storage::testing::{TestDb, TEST_KEK_HEX};
use serde_json::{json, Value};
use support::{binary, Api, ADMIN_TOKEN};

const ADMIN_EMAIL: &str = "ops@example.com";
const VIEWER_EMAIL: &str = "viewer@example.com";
const PASSWORD: &str = "a long enough password";
const GATEWAY: u64 = 0x00aa_bbcc_0000_0c01;
const WAIT: Duration = Duration::from_secs(20);

/// chromedriver and chromium, or `None` (with a warning) when missing and not required.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let required = std::env::var("LORIKEET_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let find = |names: &[&str]| names.iter().map(PathBuf::from).find(|p| p.is_file());
    let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let chromium = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
    match (driver, chromium) {
        (Some(d), Some(c)) => Some((d, c)),
        _ => {
            let msg = "chromium and chromedriver are not installed (apt-get install chromium \
                       chromium-driver; scripts/test does it)";
            assert!(!required, "LORIKEET_REQUIRE_BROWSER=1 but {msg}");
            eprintln!("WARNING: skipping the console browser test: {msg}");
            None
        }
    }
}

/// A running chromedriver, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(driver: &Path, dir: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(std::fs::File::create(dir.join("chromedriver.log")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let d = Driver { child, url };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(r) = reqwest::get(format!("{}/status", d.url)).await {
            if r.json::<Value>().await.unwrap_or_default()["value"]["ready"] == true {
                return d;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn open_browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.display())],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session through chromedriver")
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn wait_for(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            screenshot(c, "failure").await;
            panic!(
                "no {css} within {WAIT:?} ({e}); page: {}",
                c.source().await.unwrap_or_default()
            );
        }
    }
}

/// Waits until the element `css` shows `text`.
async fn wait_for_text(c: &Client, css: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.text().await.unwrap_or_default().contains(text) {
                return;
            }
        }
        if tokio::time::Instant::now() > deadline {
            screenshot(c, "failure").await;
            let error = match c.find(Locator::Css("[data-test=error]")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!("{css} never showed {text:?} (error banner: {error:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fills the form `form` (a `data-test` name) field by field and submits it.
async fn submit(c: &Client, form: &str, fields: &[(&str, &str)]) {
    let css = format!("[data-test={form}]");
    wait_for(c, &css).await;
    let f = c.form(Locator::Css(&css)).await.unwrap();
    for (name, value) in fields {
        f.set_by_name(name, value).await.unwrap();
    }
    f.submit().await.unwrap();
}

async fn sign_in(c: &Client, base: &str, email: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    let form = c.form(Locator::Css("form")).await.unwrap();
    form.set_by_name("email", email).await.unwrap();
    form.set_by_name("password", PASSWORD).await.unwrap();
    form.submit().await.unwrap();
    wait_for(c, "[data-test=overview]").await;
    wait_for_text(c, "[data-test=signed-in-as]", email).await;
}

/// `lorikeet user create`, the password on stdin, beside the running server.
fn create_admin_with_the_cli(dir: &Path, db: &TestDb) {
    let mut child = binary::command(
        dir,
        &["user", "create", "--admin", "--email", ADMIN_EMAIL],
        &[("LORIKEET_DATABASE_URL", db.url())],
    )
    .stdin(Stdio::piped())
    .spawn()
    .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let status = binary::wait(&mut child, WAIT);
    assert!(
        status.success(),
        "user create: {}",
        binary::read(dir, "stderr.log")
    );
}

/// The id of the item named `name` in an API list.
async fn id_named(api: &Api, path: &str, name: &str) -> (String, String) {
    let list = api.get(path).await.expect_status(200);
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
        .clone();
    (
        item["id"].as_str().unwrap().to_owned(),
        item["tenantId"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn the_console_works_in_a_browser(db: TestDb) {
    let Some((driver_bin, chromium)) = browser() else {
        return;
    };
    let served = binary::serve(
        &binary::fresh_dir("console"),
        &[
            ("LORIKEET_DATABASE_URL", db.url()),
            ("LORIKEET_SECURITY_KEK", TEST_KEK_HEX),
            ("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN),
            ("LORIKEET_ALERTS_INTERVAL_MS", "250"),
        ],
    );
    let base = served.base();
    let api = Api::at(base.clone());
    let cli_dir = binary::fresh_dir("console-cli");
    create_admin_with_the_cli(&cli_dir, &db);
    let driver = start_driver(&driver_bin, &served.dir).await;
    let c = open_browser(&driver, &chromium, &served.dir.join("chromium-admin")).await;

    // Without a session, / sends the browser to the sign-in page.
    c.goto(&base).await.unwrap();
    wait_for(&c, "form[action='/login']").await;
    assert!(c.current_url().await.unwrap().as_str().ends_with("/login"));
    // A wrong password is said on the page.
    let form = c.form(Locator::Css("form")).await.unwrap();
    form.set_by_name("email", ADMIN_EMAIL).await.unwrap();
    form.set_by_name("password", "not the password")
        .await
        .unwrap();
    form.submit().await.unwrap();
    wait_for_text(&c, "[data-test=login-error]", "wrong email or password").await;
    screenshot(&c, "login").await;

    sign_in(&c, &base, ADMIN_EMAIL).await;
    screenshot(&c, "overview").await;

    // An application, a profile and a device, through the pages.
    c.goto(&format!("{base}/#/applications")).await.unwrap();
    submit(&c, "create-application-form", &[("name", "greenhouse")]).await;
    wait_for_text(&c, "[data-test=applications-table]", "greenhouse").await;
    screenshot(&c, "applications").await;
    let (app, tenant) = id_named(&api, "/api/v1/applications", "greenhouse").await;

    c.goto(&format!("{base}/#/profiles")).await.unwrap();
    submit(&c, "create-profile-form", &[("name", "abp-sensors")]).await;
    wait_for_text(&c, "[data-test=profiles-table]", "abp-sensors").await;
    let (profile, _) = id_named(&api, "/api/v1/device-profiles", "abp-sensors").await;
    // The profile form's defaults: an OTAA 1.0.3 EU868 profile; make it ABP for the
    // simulated device (an ABP session is set through the API below).
    let dev_eui = Eui64::from_u64(0x0c0c_0000_0000_0001);
    c.goto(&format!("{base}/#/devices")).await.unwrap();
    submit(
        &c,
        "create-device-form",
        &[
            ("devEui", &dev_eui.to_string()),
            ("joinEui", "0000000000000000"),
            ("name", "soil-probe"),
            ("applicationId", &app),
            ("deviceProfileId", &profile),
        ],
    )
    .await;
    wait_for_text(&c, "[data-test=devices-table]", "soil-probe").await;
    screenshot(&c, "devices").await;

    // A simulated device behind a simulated gateway.
    api.post(
        "/api/v1/gateways",
        json!({"gatewayId": Eui64::from_u64(GATEWAY).to_string(), "name": "roof",
               "tenantId": tenant}),
    )
    .await
    .expect_status(201);
    let dev_addr = DevAddr::from_u32(0x0c0c_0001);
    let keys = SessionKeys::from_1_0(
        Aes128Key::from_bytes([0x11; 16]),
        Aes128Key::from_bytes([0x22; 16]),
    );
    api.post(
        &format!("/api/v1/devices/{dev_eui}/activate"),
        json!({"devAddr": dev_addr.to_string(), "appSKey": keys.app_s_key.expose_hex(),
               "nwkSKey": keys.f_nwk_s_int_key.expose_hex()}),
    )
    .await
    .expect_status(200);
    let gw = SimGateway::connect(Eui64::from_u64(GATEWAY), served.udp_addr)
        .await
        .unwrap();
    gw.pull_data(WAIT).await.unwrap();
    let mut device = SimDevice::abp(dev_eui, dev_addr, keys, false, 0);

    // The device page streams frames as they come.
    c.goto(&format!("{base}/#/devices/{dev_eui}"))
        .await
        .unwrap();
    wait_for(&c, "[data-test=live-frames]").await;
    // The stream is open once the page says so; an uplink then shows up live.
    wait_for_text(&c, "[data-test=live-status]", "live").await;
    let rx = RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -61,
        snr_db: 9.0,
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut sent = 0u64;
    // Uplinks until the page shows one: the EventSource may connect a moment after
    // the page draws (each uplink has a new counter, so none is refused).
    loop {
        let up = device
            .uplink(7, &[0x01, 0x67, 0x00, 0xe1], false, 5, 0)
            .unwrap();
        gw.push(&up, &rx).await.unwrap();
        sent += 1;
        let rows = c
            .find_all(Locator::Css("[data-test=live-frames] [data-type=up]"))
            .await
            .unwrap();
        if !rows.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no uplink appeared on the device page"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    screenshot(&c, "device-live").await;

    // The overview counts them (from the per-minute counters), the device and the
    // gateway, which is online; the console's overview page shows the same.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let o = api
            .get(&format!("/api/v1/overview?tenantId={tenant}"))
            .await
            .expect_status(200);
        let counted: u64 = o["uplinksPerMinute"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["n"].as_u64().unwrap())
            .sum();
        if counted == sent {
            assert_eq!(o["devices"], 1, "{o}");
            assert_eq!(o["gateways"], json!({"online": 1, "offline": 0}), "{o}");
            break;
        }
        assert!(
            counted < sent,
            "{counted} uplinks counted, {sent} sent: {o}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the overview never counted {sent} uplinks: {o}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The device's link: the newest uplink's figures and this hour's history.
    let link = api
        .get(&format!("/api/v1/devices/{dev_eui}/link"))
        .await
        .expect_status(200);
    assert_eq!(
        (&link["fCntUp"], &link["dr"], &link["rssi"], &link["snr"]),
        (&json!(sent - 1), &json!(5), &json!(-61), &json!(9.0)),
        "{link}"
    );
    assert_eq!(link["battery"], Value::Null, "no DevStatusAns yet: {link}");
    let hours = link["history"].as_array().unwrap();
    let counted: u64 = hours.iter().map(|h| h["uplinks"].as_u64().unwrap()).sum();
    assert_eq!(counted, sent, "{link}");
    assert_eq!(hours.last().unwrap()["rssi"], -61.0, "{link}");
    // Times as browsers encode them are read; bad ones and long ranges are 400s.
    for (query, status) in [
        (
            "from=2026-01-01T00%3A00%3A00Z&to=2026-01-02T00%3A00%3A00Z",
            200,
        ),
        ("from=yesterday", 400),
        ("from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", 400),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 400),
    ] {
        let r = api
            .get(&format!("/api/v1/devices/{dev_eui}/link?{query}"))
            .await;
        assert_eq!(r.status, status, "{query}: {:?}", r.body);
    }
    let r = api
        .get(&format!(
            "/api/v1/gateways/{}/stats?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z",
            Eui64::from_u64(GATEWAY)
        ))
        .await;
    assert_eq!(r.status, 400, "a range over 7 days: {:?}", r.body);
    // The gateway's minutes count the frames it forwarded (flushed every 5 s).
    let gateway_id = Eui64::from_u64(GATEWAY);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let st = api
            .get(&format!("/api/v1/gateways/{gateway_id}/stats"))
            .await
            .expect_status(200);
        let counted: u64 = st["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["uplinks"].as_u64().unwrap())
            .sum();
        if counted == sent {
            assert_eq!(st["online"], true, "{st}");
            break;
        }
        assert!(
            counted < sent,
            "{counted} frames counted, {sent} sent: {st}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway's minutes never counted {sent} uplinks: {st}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    c.goto(&format!("{base}/#/gateways/{gateway_id}"))
        .await
        .unwrap();
    wait_for(&c, "svg").await;
    screenshot(&c, "gateway").await;
    c.goto(&format!("{base}/#/overview")).await.unwrap();
    wait_for_text(&c, "[data-test=stat-devices]", "1").await;
    wait_for_text(&c, "[data-test=stat-gateways-online]", "1").await;
    screenshot(&c, "overview-traffic").await;
    c.goto(&format!("{base}/#/devices/{dev_eui}"))
        .await
        .unwrap();
    wait_for(&c, "[data-test=enqueue-form]").await;
    // Its link panel draws this hour's RSSI and SNR.
    wait_for_text(&c, "[data-test=battery]", "unknown").await;
    wait_for(&c, "svg").await;
    screenshot(&c, "device").await;

    // A downlink through the enqueue form reaches the queue.
    submit(&c, "enqueue-form", &[("fPort", "12"), ("data", "0a0b")]).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let q = api
            .get(&format!("/api/v1/devices/{dev_eui}/queue"))
            .await
            .expect_status(200);
        if q["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|d| d["fPort"] == 12 && d["data"] == "Cgs="))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the enqueued downlink is not in the queue: {q}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A silent-device alert: a rule made on the alerts page fires once the device
    // has been quiet for 3 s, shows as firing, and resolves with its next uplink
    // (the page refreshes by itself).
    c.goto(&format!("{base}/#/alerts")).await.unwrap();
    submit(
        &c,
        "create-alert-rule-form",
        &[
            ("name", "soil probe quiet"),
            ("applicationId", &app),
            ("params", r#"{"seconds": 3}"#),
        ],
    )
    .await;
    wait_for_text(&c, "[data-test=alert-rules-table]", "soil probe quiet").await;
    wait_for_text(&c, "[data-test=alerts-firing]", &dev_eui.to_string()).await;
    wait_for_text(&c, "[data-test=alerts-firing]", "no uplink for").await;
    c.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
    screenshot(&c, "alerts-firing").await;
    let up = device
        .uplink(7, &[0x01, 0x67, 0x00, 0xe1], false, 5, 0)
        .unwrap();
    gw.push(&up, &rx).await.unwrap();
    wait_for_text(&c, "[data-test=alerts-resolved]", &dev_eui.to_string()).await;
    wait_for_text(&c, "[data-test=alerts-firing]", "Nothing is firing").await;
    c.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
    screenshot(&c, "alerts").await;
    let alerts = api.get("/api/v1/alerts").await.expect_status(200);
    assert_eq!(
        alerts["items"].as_array().unwrap().len(),
        1,
        "fired once: {alerts}"
    );
    assert_eq!(alerts["items"][0]["state"], "resolved");

    // 390 px wide: the overview fits (nothing scrolls the page sideways).
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/#/overview")).await.unwrap();
    wait_for(&c, "[data-test=overview]").await;
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "page scrolls sideways by {overflow}"
    );
    screenshot(&c, "overview-390").await;
    c.goto(&format!("{base}/#/devices/{dev_eui}"))
        .await
        .unwrap();
    wait_for(&c, "[data-test=live-frames]").await;
    screenshot(&c, "device-390").await;
    c.close().await.unwrap();

    // A viewer of the tenant sees the same pages without a control that changes
    // anything (and the API refuses such changes; tests/users.rs checks every route).
    let viewer = api
        .post(
            "/api/v1/users",
            json!({"email": VIEWER_EMAIL, "password": PASSWORD,
                   "roles": [{"tenantId": tenant, "role": "viewer"}]}),
        )
        .await
        .expect_status(201);
    assert_eq!(viewer["roles"][0]["role"], "viewer");
    let c = open_browser(&driver, &chromium, &served.dir.join("chromium-viewer")).await;
    sign_in(&c, &base, VIEWER_EMAIL).await;
    for (page, shown, absent) in [
        (
            "applications",
            "applications-table",
            "create-application-form",
        ),
        ("devices", "devices-table", "create-device-form"),
        ("alerts", "alert-rules-table", "create-alert-rule-form"),
        (
            &format!("devices/{dev_eui}") as &str,
            "live-frames",
            "enqueue-form",
        ),
    ] {
        c.goto(&format!("{base}/#/{page}")).await.unwrap();
        wait_for(&c, &format!("[data-test={shown}]")).await;
        let forms = c
            .find_all(Locator::Css(&format!("[data-test={absent}]")))
            .await
            .unwrap();
        assert!(forms.is_empty(), "a viewer sees {absent} on #/{page}");
        let buttons = c
            .find_all(Locator::Css("[data-test^=delete-]"))
            .await
            .unwrap();
        assert!(
            buttons.is_empty(),
            "a viewer sees delete buttons on #/{page}"
        );
    }
    screenshot(&c, "viewer-device").await;
    // A viewer has no users page.
    let nav_users = c.find(Locator::Css("[data-test=nav-users]")).await.unwrap();
    assert!(!nav_users.is_displayed().await.unwrap());
    c.close().await.unwrap();

    // A tenant administrator manages the tenant's users: the page lists them and
    // creates one with a role in the tenant (no administrator flag offered).
    api.post(
        "/api/v1/users",
        json!({"email": "lead@example.com", "password": PASSWORD,
               "roles": [{"tenantId": tenant, "role": "admin"}]}),
    )
    .await
    .expect_status(201);
    let c = open_browser(&driver, &chromium, &served.dir.join("chromium-lead")).await;
    sign_in(&c, &base, "lead@example.com").await;
    c.goto(&format!("{base}/#/users")).await.unwrap();
    wait_for_text(&c, "[data-test=users-table]", VIEWER_EMAIL).await;
    assert!(c
        .find_all(Locator::Css("[data-test=create-user-form] [name=isAdmin]"))
        .await
        .unwrap()
        .is_empty());
    submit(
        &c,
        "create-user-form",
        &[
            ("email", "helper@example.com"),
            ("password", PASSWORD),
            ("role", "device_manager"),
        ],
    )
    .await;
    wait_for_text(&c, "[data-test=users-table]", "helper@example.com").await;
    screenshot(&c, "tenant-admin-users").await;
    c.close().await.unwrap();
    drop(driver);
    served.stop();
    binary::remove_dir(&cli_dir);
}

lorikeet_storage::storage_test!(the_console_in_a_real_browser, |db: TestDb| {
    the_console_works_in_a_browser(db)
});
