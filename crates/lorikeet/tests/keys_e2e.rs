//! Keys at rest, end to end: a device joins and sends uplinks through an online
//! key rotation (SQLite and Postgres), and the real binary generates its KEK when
//! none is configured, refuses to start without the right one, and rotates it with
//! `lorikeet keys rotate`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::Duration;

use lorikeet_lorawan::Eui64;
use lorikeet_sim::{RxMeta, SimDevice, SimGateway};
use lorikeet_storage::kek::{classify, Stored};
use lorikeet_storage::testing::{TestDb, TEST_KEK_HEX};
use serde_json::json;
use support::binary;
use support::*;

const GATEWAY: u64 = 0x00aa_bbcc_0000_0020;
const NEW_KEK: &str = "6e6577206b656b20666f7220726f746174696f6e20696e2074657374732121ff";

fn rx() -> RxMeta {
    RxMeta {
        frequency_hz: 868_100_000,
        spreading_factor: 7,
        bandwidth_hz: 125_000,
        rssi_dbm: -70,
        snr_db: 8.5,
    }
}

async fn gateway(server: &lorikeet::Server) -> SimGateway {
    let gw = SimGateway::connect(Eui64::from_u64(GATEWAY), server.udp_addr)
        .await
        .unwrap();
    gw.pull_data(Duration::from_secs(2)).await.unwrap();
    gw
}

async fn join(gw: &SimGateway, dev: &mut SimDevice) {
    gw.push(&dev.join_request(), &rx()).await.unwrap();
    let dl = gw
        .recv_downlink(Duration::from_secs(7))
        .await
        .unwrap()
        .expect("a JoinAccept");
    dev.handle_join_accept(&dl.packet.phy_payload).unwrap();
    gw.tx_ack(dl.token, None).await.unwrap();
}

/// Sends an uplink and waits for its up event (the `n`-th).
async fn uplink(api: &Api, gw: &SimGateway, dev: &mut SimDevice, n: usize) {
    let up = dev.uplink(10, &[n as u8], false, 5, 0).unwrap();
    gw.push(&up, &rx()).await.unwrap();
    let ups = wait_events(api, dev.dev_eui, "up", n).await;
    assert_eq!(ups.len(), n);
}

/// Every sealed column value on disk.
async fn on_disk(db: &TestDb) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sql in [
        "SELECT app_key FROM device_keys",
        "SELECT app_s_key FROM device_sessions",
        "SELECT f_nwk_s_int_key FROM device_sessions",
        "SELECT secrets FROM integrations",
    ] {
        out.extend(db.raw_bytes(sql).await.unwrap().into_iter().flatten());
    }
    out
}

/// Join and uplinks under the test KEK; a restart with a new KEK (the old one as
/// previous); an uplink (the session under the old KEK opens); the rotation, run
/// on the live server's store while uplinks keep coming; then uplinks, a rejoin
/// (root keys under the new KEK) and a restart with the new KEK alone.
async fn rotation_scenario(db: TestDb) {
    let dev_eui = Eui64::from_u64(0x0102_0304_0506_0720);
    let server = start_server(db.url()).await;
    let shown = format!("{server:?}");
    assert!(!shown.contains(ADMIN_TOKEN), "{shown}");
    let api = Api::new(&server);
    let (mut dev, app_id) = provision_otaa(
        &api,
        dev_eui,
        Eui64::from_u64(GATEWAY),
        "1.0.3",
        json!({"type": "none"}),
    )
    .await;
    // An integration with a signing secret, sealed too.
    let hook = api
        .post(
            &format!("/api/v1/applications/{app_id}/integrations/http"),
            json!({"url": "http://127.0.0.1:9/hook", "signingSecret": "s3cret"}),
        )
        .await;
    assert!(hook.status == 200 || hook.status == 201, "{:?}", hook);
    let gw = gateway(&server).await;
    join(&gw, &mut dev).await;
    uplink(&api, &gw, &mut dev, 1).await;
    let old_id = lorikeet_storage::testing::test_keyring()
        .current_id()
        .to_owned();
    let before = on_disk(&db).await;
    assert_eq!(before.len(), 4);
    assert!(before
        .iter()
        .all(|v| classify(v) == Stored::Sealed(&old_id)));

    // Restart with the new KEK; the old one only decrypts.
    server.shutdown().await;
    let with_new = |c: &mut lorikeet::Config| {
        c.security.kek = NEW_KEK.into();
        c.security.kek_id = "k2".into();
        c.security.previous_keks = vec![TEST_KEK_HEX.into()];
    };
    let server = start_server_with(db.url(), with_new).await;
    let api = Api::new(&server);
    let gw = gateway(&server).await;
    uplink(&api, &gw, &mut dev, 2).await;

    // Online: the rotation runs on the serving store while uplinks go on.
    let storage = server.storage.clone();
    let rotation = tokio::spawn(async move { storage.rotate_keys(1).await });
    for n in 3..=5 {
        uplink(&api, &gw, &mut dev, n).await;
    }
    let report = rotation.await.unwrap().unwrap();
    assert_eq!(report.kek_id, "k2");
    assert_eq!(report.retired, vec![old_id.clone()]);
    let after = on_disk(&db).await;
    assert_eq!(after.len(), 4);
    for v in &after {
        assert_eq!(classify(v), Stored::Sealed("k2"));
        assert!(!before.contains(v));
    }
    uplink(&api, &gw, &mut dev, 6).await;
    // A rejoin derives new session keys from the root keys, now under k2.
    join(&gw, &mut dev).await;
    uplink(&api, &gw, &mut dev, 7).await;
    server.shutdown().await;

    // The new KEK alone serves; the old one alone is refused, naming the id.
    let server = start_server_with(db.url(), |c| {
        c.security.kek = NEW_KEK.into();
        c.security.kek_id = "k2".into();
    })
    .await;
    let api = Api::new(&server);
    let gw = gateway(&server).await;
    uplink(&api, &gw, &mut dev, 8).await;
    server.shutdown().await;
    let mut config = lorikeet::Config::default();
    config.database.url = db.url().to_owned();
    config.api.bind = "127.0.0.1:0".parse().unwrap();
    config.gateway.udp_bind = "127.0.0.1:0".parse().unwrap();
    config.security.kek = TEST_KEK_HEX.into();
    let err = lorikeet::start(config, None).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("the database holds keys encrypted under KEK id 'k2'"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_works_through_an_online_key_rotation_sqlite() {
    rotation_scenario(TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_works_through_an_online_key_rotation_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    rotation_scenario(db).await;
}

/// `lorikeet ARGS` in `dir` to completion (60 s at most): (exit code, stdout, stderr).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut child = binary::command(dir, args, env).spawn().unwrap();
    let status = binary::wait(&mut child, Duration::from_secs(60));
    (
        status.code(),
        binary::read(dir, "stdout.log"),
        binary::read(dir, "stderr.log"),
    )
}

async fn serve(dir: &Path, env: &[(&str, &str)]) -> binary::Served {
    let dir = dir.to_owned();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut env: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN));
        binary::serve(&dir, &env)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_generates_checks_and_rotates_its_kek() {
    let dir = binary::fresh_dir("kek");

    // Zero configuration: ./lorikeet-kek is generated, private, and the log says
    // where and that production deployments should configure their own.
    let served = serve(&dir, &[]).await;
    let kek_file = dir.join("lorikeet-kek");
    let kek = std::fs::read_to_string(&kek_file).unwrap();
    assert_eq!(kek.trim().len(), 64, "{kek}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kek_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let log = served.log();
    let path = std::fs::canonicalize(&kek_file).unwrap();
    assert!(
        log.contains(&format!(
            "generated a key-encryption key in {}",
            path.display()
        )) && log.contains("Production deployments should configure their own KEK"),
        "{log}"
    );
    assert!(!log.contains(kek.trim()), "the key itself is never logged");
    let api = Api::at(served.base());
    let (mut dev, _) = provision_otaa(
        &api,
        Eui64::from_u64(0x0102_0304_0506_0721),
        Eui64::from_u64(GATEWAY),
        "1.0.3",
        json!({"type": "none"}),
    )
    .await;
    // Write-only keys: a GET shows that the key is set, not the key.
    let keys = api
        .get(&format!("/api/v1/devices/{}/keys", dev.dev_eui))
        .await
        .expect_status(200);
    assert_eq!(
        keys,
        json!({"appKey": "********************************", "nwkKey": null})
    );
    served.terminate(1);

    // Offline rotation (SQLite: the server is stopped) to a new KEK file.
    let (code, out, err) = run(&dir, &["keys", "generate"], &[]);
    assert_eq!(code, Some(0), "{err}");
    let new_hex = out.trim().to_owned();
    assert_eq!(new_hex.len(), 64);
    std::fs::write(dir.join("new-kek"), format!("k2:{new_hex}\n")).unwrap();
    let new_file = dir.join("new-kek").display().to_string();
    let (code, out, err) = run(
        &dir,
        &["keys", "rotate", "--from", "lorikeet-kek"],
        &[("LORIKEET_SECURITY_KEK_FILE", &new_file)],
    );
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains("is encrypted under KEK 'k2'") && out.contains("no value is encrypted under"),
        "{out}"
    );
    let (code, out, err) = run(
        &dir,
        &["keys", "status"],
        &[("LORIKEET_SECURITY_KEK_FILE", &new_file)],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("values encrypted under KEK 'k2'"), "{out}");
    assert_eq!(
        out.matches("values encrypted under KEK").count(),
        1,
        "{out}"
    );

    // Without the KEK the database needs, start-up stops with a clear message, and
    // the KEK it generated for nothing is not left behind.
    std::fs::rename(&kek_file, dir.join("old-kek")).unwrap();
    let (code, _, err) = run(&dir, &["serve"], &[("LORIKEET_API_BIND", "127.0.0.1:0")]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the database holds keys encrypted under KEK id 'k2', but no configured KEK has that id"),
        "{err}"
    );
    assert!(!kek_file.exists());
    // The right id with another key: wrong.
    let (code, _, err) = run(
        &dir,
        &["serve"],
        &[
            ("LORIKEET_API_BIND", "127.0.0.1:0"),
            ("LORIKEET_SECURITY_KEK", TEST_KEK_HEX),
            ("LORIKEET_SECURITY_KEK_ID", "k2"),
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the configured KEK with that id does not decrypt them"),
        "{err}"
    );

    // With the new KEK the device's keys serve a join.
    let served = serve(&dir, &[("LORIKEET_SECURITY_KEK_FILE", &new_file)]).await;
    let gw = SimGateway::connect(Eui64::from_u64(GATEWAY), served.udp_addr)
        .await
        .unwrap();
    gw.pull_data(Duration::from_secs(2)).await.unwrap();
    gw.push(&dev.join_request(), &rx()).await.unwrap();
    let dl = gw
        .recv_downlink(Duration::from_secs(7))
        .await
        .unwrap()
        .expect("a JoinAccept");
    dev.handle_join_accept(&dl.packet.phy_payload).unwrap();
    served.stop();
}
