//! `POST /api/v1/devices/import` over real HTTP against real SQLite and Postgres:
//! counts, all or nothing with every bad row named, the same messages as the
//! single-device endpoints, tenants, and the limits.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use lorikeet_api::{ApiState, MAX_IMPORT_ROWS};
use lorikeet_lorawan::Eui64;
use lorikeet_storage::testing::TestDb;
use lorikeet_storage::{storage_test, Storage};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::oneshot;

const ADMIN: &str = "admin-secret-token";
const IMPORT: &str = "/api/v1/devices/import";
/// What the API returns in place of a key (keys are write-only).
const MASKED: &str = "********************************";

struct Server {
    base: String,
    client: reqwest::Client,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(storage: Arc<dyn Storage>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(lorikeet_api::serve(
        listener,
        ApiState::new(storage, Some(ADMIN)),
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        base,
        client: reqwest::Client::new(),
        stop,
        task,
    }
}

impl Server {
    async fn call(&self, token: &str, method: Method, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        self.call(ADMIN, method, path, body).await
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// An application and a profile of `mac_version` (EU868), created with `token`.
async fn app_and_profile(s: &Server, token: &str, mac_version: &str) -> (String, String) {
    let (st, a) = s
        .call(
            token,
            Method::POST,
            "/api/v1/applications",
            json!({"name": "meters"}),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    let (st, p) = s
        .call(
            token,
            Method::POST,
            "/api/v1/device-profiles",
            json!({
                "name": format!("eu868 {mac_version}"),
                "region": "EU868",
                "macVersion": mac_version,
                "regParamsRevision": "RP002-1.0.3",
                "supportsOtaa": true,
            }),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    (
        a["id"].as_str().unwrap().to_owned(),
        p["id"].as_str().unwrap().to_owned(),
    )
}

fn device(dev_eui: &str, app: &str, profile: &str) -> Value {
    json!({
        "devEui": dev_eui,
        "joinEui": "70B3D57ED0000000",
        "name": format!("meter {dev_eui}"),
        "applicationId": app,
        "deviceProfileId": profile,
    })
}

fn with(mut row: Value, field: &str, v: Value) -> Value {
    row[field] = v;
    row
}

fn without(mut row: Value, field: &str) -> Value {
    row.as_object_mut().unwrap().remove(field);
    row
}

fn abp() -> Value {
    json!({
        "devAddr": "26011BDA",
        "appSKey": "000102030405060708090A0B0C0D0E0F",
        "nwkSKey": "101112131415161718191A1B1C1D1E1F",
    })
}

/// The `rows` of a 400 answer as (index, error).
fn bad_rows(v: &Value) -> Vec<(u64, String)> {
    v["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows in {v}"))
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

storage_test!(
    an_import_creates_and_updates_devices_with_keys_and_activation,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        let (app, p10) = app_and_profile(&s, ADMIN, "1.0.3").await;
        let (_, p11) = app_and_profile(&s, ADMIN, "1.1.0").await;
        // One device exists, with keys.
        let (st, _) = s
            .admin(
                Method::POST,
                "/api/v1/devices",
                device("0000000000000001", &app, &p10),
            )
            .await;
        assert_eq!(st, 201);
        let (st, _) = s
            .admin(
                Method::PUT,
                "/api/v1/devices/0000000000000001/keys",
                json!({"appKey": "2B7E151628AED2A6ABF7158809CF4F3C"}),
            )
            .await;
        assert_eq!(st, 204);

        let rows = json!([
            with(
                device("0000000000000001", &app, &p10),
                "name",
                json!("renamed")
            ),
            with(
                device("0000000000000002", &app, &p10),
                "keys",
                json!({"appKey": "000102030405060708090a0b0c0d0e0f"})
            ),
            with(
                device("0000000000000003", &app, &p10),
                "activation",
                with(
                    with(abp(), "rx2Dr", json!(3)),
                    "rx2FrequencyHz",
                    json!(869_525_000)
                )
            ),
            with(
                device("0000000000000004", &app, &p11),
                "keys",
                json!({
                    "appKey": "000102030405060708090a0b0c0d0e0f",
                    "nwkKey": "0f0e0d0c0b0a09080706050403020100"
                })
            ),
        ]);
        let (st, v) = s
            .admin(Method::POST, IMPORT, json!({ "devices": rows }))
            .await;
        assert_eq!((st, v), (200, json!({"created": 3, "updated": 1})));

        let (_, d) = s.get(ADMIN, "/api/v1/devices/0000000000000001").await;
        assert_eq!(d["name"], "renamed");
        // An update replaces the provisioned fields, not the keys it did not name.
        // (Keys are write-only in the API: read them from the store.)
        let keys_of = |n: u64| {
            let storage = db.storage.clone();
            async move {
                storage
                    .get_device_keys(Eui64::from_u64(n))
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let (st, k) = s.get(ADMIN, "/api/v1/devices/0000000000000001/keys").await;
        assert_eq!((st, k["appKey"].as_str()), (200, Some(MASKED)));
        assert_eq!(
            keys_of(1).await.app_key.expose_hex(),
            "2b7e151628aed2a6abf7158809cf4f3c"
        );
        assert_eq!(
            keys_of(2).await.app_key.expose_hex(),
            "000102030405060708090a0b0c0d0e0f"
        );
        let (_, a) = s
            .get(ADMIN, "/api/v1/devices/0000000000000003/activation")
            .await;
        assert_eq!(a["devAddr"], "26011bda");
        assert_eq!(
            (a["rx2Dr"].as_u64(), a["rx1Delay"].as_u64()),
            (Some(3), Some(1))
        );
        let (_, k) = s.get(ADMIN, "/api/v1/devices/0000000000000004/keys").await;
        assert_eq!(k["nwkKey"], MASKED);
        assert_eq!(
            keys_of(4).await.nwk_key.map(|k| k.expose_hex()).as_deref(),
            Some("0f0e0d0c0b0a09080706050403020100")
        );
        let (st, _) = s
            .get(ADMIN, "/api/v1/devices/0000000000000002/activation")
            .await;
        assert_eq!(st, 404, "no activation was given");

        // The same rows again: all updates.
        let (st, v) = s
            .admin(Method::POST, IMPORT, json!({ "devices": rows }))
            .await;
        assert_eq!((st, v), (200, json!({"created": 0, "updated": 4})));
        let (st, v) = s.admin(Method::POST, IMPORT, json!({"devices": []})).await;
        assert_eq!((st, v), (200, json!({"created": 0, "updated": 0})));
        s.stop().await;
    }
);

storage_test!(
    one_bad_row_writes_nothing_and_every_bad_row_is_named,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        let (app, p10) = app_and_profile(&s, ADMIN, "1.0.3").await;
        let good = |n: u32| device(&format!("00000000000001{n:02x}"), &app, &p10);
        let rows = vec![
            good(0),                                                      // 0 fine
            with(good(1), "joinEui", json!("70B3D57E")),                  // 1
            good(0),                                                      // 2 repeated
            with(good(3), "keys", json!({"nwkKey": "00"})),               // 3
            with(good(4), "activation", with(abp(), "rx2Dr", json!(99))), // 4
            good(5),                                                      // 5 fine
            with(good(6), "applicationId", json!(uuid::Uuid::new_v4())),  // 6
            json!(17),                                                    // 7
            with(good(8), "name", json!(5)),                              // 8
            with(
                good(9),
                "activation",
                with(
                    abp(),
                    "nwkSEncKey",
                    json!("000102030405060708090a0b0c0d0e0f"),
                ),
            ), // 9
            with(good(10), "keys", json!({"appKey": "00", "nwkKey": "00"})), // 10
            without(good(11), "devEui"),                                  // 11
        ];
        let (st, v) = s
            .admin(Method::POST, IMPORT, json!({ "devices": rows.clone() }))
            .await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(
            v["error"],
            "10 of 12 devices are invalid; nothing was imported (the rows say why)"
        );
        let bad = bad_rows(&v);
        let indices: Vec<u64> = bad.iter().map(|b| b.0).collect();
        assert_eq!(indices, [1, 2, 3, 4, 6, 7, 8, 9, 10, 11], "{v}");
        let msg = |i: u64| bad.iter().find(|b| b.0 == i).unwrap().1.clone();
        assert!(msg(2).contains("already in row 0"), "{}", msg(2));
        assert!(msg(7).contains("got a number"), "{}", msg(7));
        assert!(
            msg(8).starts_with("invalid device: invalid type"),
            "{}",
            msg(8)
        );
        assert_eq!(msg(11), "devEui is required");

        // Each message is the single-device endpoint's, for the same body.
        let (_, single) = s
            .admin(Method::POST, "/api/v1/devices", rows[1].clone())
            .await;
        assert_eq!(msg(1), single["error"].as_str().unwrap());
        let (_, single) = s
            .admin(Method::POST, "/api/v1/devices", rows[6].clone())
            .await;
        assert_eq!(msg(6), single["error"].as_str().unwrap());
        assert!(msg(6).ends_with("not found"), "{}", msg(6));
        // Keys and activation: on a device created for the purpose.
        let (st, _) = s.admin(Method::POST, "/api/v1/devices", good(0)).await;
        assert_eq!(st, 201);
        let dev = "/api/v1/devices/0000000000000100";
        for (i, path, field) in [
            (3, "keys", "keys"),
            (10, "keys", "keys"),
            (4, "activate", "activation"),
            (9, "activate", "activation"),
        ] {
            let method = if path == "keys" {
                Method::PUT
            } else {
                Method::POST
            };
            let (st, single) = s
                .admin(method, &format!("{dev}/{path}"), rows[i][field].clone())
                .await;
            assert_eq!(st, 400);
            assert_eq!(
                msg(i as u64),
                format!("{field}: {}", single["error"].as_str().unwrap())
            );
        }
        let (st, _) = s.admin(Method::DELETE, dev, Value::Null).await;
        assert_eq!(st, 204);

        // Nothing was written: not even the good rows.
        for n in [0, 5] {
            let (st, _) = s
                .get(ADMIN, &format!("/api/v1/devices/00000000000001{n:02x}"))
                .await;
            assert_eq!(st, 404);
        }
        // Without the bad rows the import goes through.
        let (st, v) = s
            .admin(
                Method::POST,
                IMPORT,
                json!({"devices": [rows[0].clone(), rows[5].clone()]}),
            )
            .await;
        assert_eq!((st, v), (200, json!({"created": 2, "updated": 0})));
        s.stop().await;
    }
);

storage_test!(an_import_stays_in_its_tenant, |db: TestDb| async move {
    let s = start(db.storage.clone()).await;
    let mut tokens = Vec::new();
    let mut tenants = Vec::new();
    for name in ["A", "B"] {
        let (st, t) = s
            .admin(Method::POST, "/api/v1/tenants", json!({"name": name}))
            .await;
        assert_eq!(st, 201);
        let tenant = t["id"].as_str().unwrap().to_owned();
        let (st, k) = s
            .admin(
                Method::POST,
                "/api/v1/api-keys",
                json!({"name": name, "tenantId": tenant}),
            )
            .await;
        assert_eq!(st, 201);
        tokens.push(k["token"].as_str().unwrap().to_owned());
        tenants.push(tenant);
    }
    let (ka, kb) = (tokens[0].as_str(), tokens[1].as_str());
    let (app_a, prof_a) = app_and_profile(&s, ka, "1.0.3").await;
    let (app_b, prof_b) = app_and_profile(&s, kb, "1.0.3").await;
    let (st, _) = s
        .call(
            kb,
            Method::POST,
            "/api/v1/devices",
            device("00000000000000b1", &app_b, &prof_b),
        )
        .await;
    assert_eq!(st, 201);

    // A's key: B's application and profile do not exist for it, B's device is
    // taken (without saying by whom).
    let rows = json!({"devices": [
        device("00000000000000a1", &app_a, &prof_a),
        device("00000000000000a2", &app_b, &prof_a),
        device("00000000000000a3", &app_a, &prof_b),
        device("00000000000000b1", &app_a, &prof_a),
    ]});
    let (st, v) = s.call(ka, Method::POST, IMPORT, rows).await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        bad_rows(&v),
        vec![
            (1, format!("application {app_b} not found")),
            (2, format!("device profile {prof_b} not found")),
            (
                3,
                "device 00000000000000b1 already exists in another tenant".to_owned()
            ),
        ]
    );
    // The admin is told where it is; the device is not moved.
    let (st, v) = s
        .admin(
            Method::POST,
            IMPORT,
            json!({"devices": [device("00000000000000b1", &app_a, &prof_a)]}),
        )
        .await;
    assert_eq!(st, 400);
    let bad = bad_rows(&v);
    assert!(bad[0].1.contains(&tenants[1]), "{v}");
    let (st, d) = s.get(kb, "/api/v1/devices/00000000000000b1").await;
    assert_eq!(
        (st, d["applicationId"].as_str()),
        (200, Some(app_b.as_str()))
    );

    // A's own rows land in A's tenant without naming it.
    let (st, v) = s
        .call(
            ka,
            Method::POST,
            IMPORT,
            json!({"devices": [device("00000000000000a1", &app_a, &prof_a)]}),
        )
        .await;
    assert_eq!((st, v), (200, json!({"created": 1, "updated": 0})));
    let (st, d) = s.get(ka, "/api/v1/devices/00000000000000a1").await;
    assert_eq!(
        (st, d["tenantId"].as_str()),
        (200, Some(tenants[0].as_str()))
    );
    let (st, _) = s.get(kb, "/api/v1/devices/00000000000000a1").await;
    assert_eq!(st, 404);
    s.stop().await;
});

storage_test!(
    ten_thousand_devices_fit_and_more_are_refused,
    |db: TestDb| async move {
        let s = start(db.storage.clone()).await;
        let (app, profile) = app_and_profile(&s, ADMIN, "1.0.3").await;
        let row = |n: usize| {
            let mut r = device(&format!("{:016x}", 0x0100_0000 + n), &app, &profile);
            r["keys"] = json!({"appKey": "2B7E151628AED2A6ABF7158809CF4F3C"});
            r["activation"] = with(abp(), "devAddr", json!(format!("{:08x}", 0x2600_0000 + n)));
            r
        };
        // The most an import takes, with keys and activation: well over 1 MiB.
        let rows: Vec<Value> = (0..MAX_IMPORT_ROWS).map(row).collect();
        let body = serde_json::to_vec(&json!({ "devices": rows })).unwrap();
        assert!(
            body.len() > 2 * lorikeet_api::MAX_BODY_BYTES,
            "{}",
            body.len()
        );
        let t = std::time::Instant::now();
        let (st, v) = s
            .admin(Method::POST, IMPORT, json!({ "devices": rows }))
            .await;
        eprintln!(
            "{}: POST of {MAX_IMPORT_ROWS} devices ({} bytes) answered in {:?}",
            db.storage.backend().as_str(),
            body.len(),
            t.elapsed()
        );
        assert_eq!(
            (st, v),
            (200, json!({"created": MAX_IMPORT_ROWS, "updated": 0}))
        );
        let (_, a) = s
            .get(
                ADMIN,
                &format!("/api/v1/devices/{:016x}/activation", 0x0100_0000 + 9_999),
            )
            .await;
        assert_eq!(a["devAddr"], format!("{:08x}", 0x2600_0000 + 9_999));

        // One row more is refused, and nothing of it written.
        let over: Vec<Value> = (0..=MAX_IMPORT_ROWS).map(|n| row(n + 20_000)).collect();
        let (st, v) = s
            .admin(Method::POST, IMPORT, json!({ "devices": over }))
            .await;
        assert_eq!(st, 400);
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("at most 10000 devices, got 10001"),
            "{v}"
        );
        let (st, _) = s
            .get(
                ADMIN,
                &format!("/api/v1/devices/{:016x}", 0x0100_0000 + 20_000),
            )
            .await;
        assert_eq!(st, 404);

        // Past 16 MiB: 413 (elsewhere the limit stays 1 MiB: tests/api.rs).
        let mut big = br#"{"devices": [], "pad": ""#.to_vec();
        big.extend(std::iter::repeat_n(
            b'a',
            lorikeet_api::MAX_IMPORT_BODY_BYTES,
        ));
        big.extend(br#""}"#);
        let resp = s
            .client
            .post(format!("{}{IMPORT}", s.base))
            .bearer_auth(ADMIN)
            .body(big)
            .send()
            .await;
        // The server may answer 413 and close while the client is still writing;
        // then the client sees the refusal as a failed body write instead.
        match resp {
            Ok(r) => {
                assert_eq!(r.status().as_u16(), 413);
                let v: Value = r.json().await.unwrap();
                assert!(v["error"].as_str().unwrap().contains("16 MiB"), "{v}");
            }
            Err(e) => assert!(e.is_request() || e.is_body(), "{e:?}"),
        }

        // Not a list of devices.
        let (st, v) = s.admin(Method::POST, IMPORT, json!({"rows": []})).await;
        assert_eq!(st, 400);
        assert!(v["error"].as_str().unwrap().contains("devices"), "{v}");
        s.stop().await;
    }
);
