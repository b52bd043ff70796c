//! Property tests of the HTTP API by schemathesis (PyPI), run against the OpenAPI
//! document the release binary serves, over SQLite and Postgres:
//!
//! - with the admin token, with a tenant API key and with no token: no 5xx, every
//!   response's status, content type and body match the document;
//! - without a token every operation that needs one answers 401;
//! - a tenant key never sees another tenant's data: no response of its run names
//!   the other tenant's tenant, application, profile, device or gateway, and those
//!   are unchanged afterwards.
//!
//! `scripts/test` installs schemathesis in a virtualenv and points
//! `LORIKEET_SCHEMATHESIS` at its `st`; with `LORIKEET_REQUIRE_SCHEMATHESIS=1` (set
//! there too) a missing `st` fails the test instead of skipping it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use lorikeet_storage::testing::{TestDb, TEST_KEK_HEX};
use serde_json::{json, Value};
use support::binary;
use support::{call, ADMIN_TOKEN};

/// The `st` executable, or `None` (with a warning) when it is not installed and
/// not required.
fn schemathesis() -> Option<PathBuf> {
    let required = std::env::var("LORIKEET_REQUIRE_SCHEMATHESIS").is_ok_and(|v| v == "1");
    let candidate = std::env::var_os("LORIKEET_SCHEMATHESIS").map(PathBuf::from);
    match candidate {
        Some(p) if p.is_file() => Some(p),
        other => {
            let msg = format!(
                "schemathesis not found (LORIKEET_SCHEMATHESIS={other:?}); scripts/test \
                 installs it"
            );
            assert!(!required, "LORIKEET_REQUIRE_SCHEMATHESIS=1 but {msg}");
            eprintln!("WARNING: skipping the API property tests: {msg}");
            None
        }
    }
}

async fn created(base: &str, token: &str, path: &str, body: Value) -> Value {
    let (status, v) = call(base, token, reqwest::Method::POST, path, Some(body)).await;
    assert_eq!(status, 201, "POST {path}: {v}");
    v
}

/// What one tenant owns: the strings that must never show up in another tenant's
/// answers, and the paths whose answers must not change.
struct Owned {
    names: Vec<String>,
    paths: Vec<String>,
}

/// A tenant with an application (and a webhook), a profile, an OTAA device with
/// keys, and a gateway, made with the admin token; `n` makes ids unique.
async fn tenant(base: &str, n: u8) -> (String, Owned) {
    let t = created(
        base,
        ADMIN_TOKEN,
        "/api/v1/tenants",
        json!({"name": format!("tenant-{n}")}),
    )
    .await;
    let tid = t["id"].as_str().unwrap().to_owned();
    let key = created(
        base,
        ADMIN_TOKEN,
        "/api/v1/api-keys",
        json!({"name": format!("key-{n}"), "tenantId": tid}),
    )
    .await;
    let token = key["token"].as_str().unwrap().to_owned();
    let app = created(
        base,
        ADMIN_TOKEN,
        "/api/v1/applications",
        json!({"name": format!("application-of-{n}"), "tenantId": tid}),
    )
    .await;
    let app_id = app["id"].as_str().unwrap().to_owned();
    created(
        base,
        ADMIN_TOKEN,
        &format!("/api/v1/applications/{app_id}/integrations/http"),
        json!({"url": format!("https://hooks-{n}.example.com/in"),
               "headers": {"Authorization": format!("Bearer hook-secret-{n}")}}),
    )
    .await;
    let profile = created(
        base,
        ADMIN_TOKEN,
        "/api/v1/device-profiles",
        json!({"name": format!("profile-of-{n}"), "tenantId": tid, "region": "EU868",
               "macVersion": "1.0.3", "regParamsRevision": "RP002-1.0.3",
               "supportsOtaa": true, "payloadCodec": {"type": "none"}}),
    )
    .await;
    let profile_id = profile["id"].as_str().unwrap().to_owned();
    let dev_eui = format!("a1b2c3d4e5f600{n:02x}");
    created(
        base,
        ADMIN_TOKEN,
        "/api/v1/devices",
        json!({"devEui": dev_eui, "joinEui": "70b3d57ed0000000",
               "name": format!("device-of-{n}"), "applicationId": app_id,
               "deviceProfileId": profile_id}),
    )
    .await;
    let (status, v) = call(
        base,
        ADMIN_TOKEN,
        reqwest::Method::PUT,
        &format!("/api/v1/devices/{dev_eui}/keys"),
        Some(json!({"appKey": format!("{n:02x}").repeat(16)})),
    )
    .await;
    assert!(status == 200 || status == 204, "keys: {status} {v}");
    let gateway = format!("b1b2b3b4b5b6b7{n:02x}");
    created(
        base,
        ADMIN_TOKEN,
        "/api/v1/gateways",
        json!({"gatewayId": gateway, "name": format!("gateway-of-{n}"), "tenantId": tid}),
    )
    .await;
    let owned = Owned {
        names: vec![
            tid.clone(),
            app_id.clone(),
            profile_id.clone(),
            dev_eui.clone(),
            gateway.clone(),
            format!("application-of-{n}"),
            format!("device-of-{n}"),
            format!("gateway-of-{n}"),
            format!("hooks-{n}.example.com"),
        ],
        paths: vec![
            format!("/api/v1/tenants/{tid}"),
            format!("/api/v1/applications/{app_id}"),
            format!("/api/v1/applications/{app_id}/integrations/http"),
            format!("/api/v1/device-profiles/{profile_id}"),
            format!("/api/v1/devices/{dev_eui}"),
            format!("/api/v1/devices/{dev_eui}/keys"),
            format!("/api/v1/gateways/{gateway}"),
        ],
    };
    (token, owned)
}

/// What the admin token reads at each of `paths`.
async fn snapshot(base: &str, paths: &[String]) -> Vec<(String, u16, Value)> {
    let mut out = Vec::new();
    for p in paths {
        let (status, v) = call(base, ADMIN_TOKEN, reqwest::Method::GET, p, None).await;
        out.push((p.clone(), status, v));
    }
    out
}

/// One schemathesis run against the served document; returns the HAR entries of
/// every request it made. Panics with schemathesis' report when a check failed.
fn run(st: &Path, base: &str, token: Option<&str>, checks: &str, dir: &Path) -> Vec<Value> {
    let har = dir.join("run.har");
    let mut cmd = Command::new(st);
    cmd.arg("run")
        .arg(format!("{base}/api/v1/openapi.json"))
        .args(["--url", base])
        .args(["--checks", checks])
        // One worker: hypothesis, under schemathesis, is not thread-safe in every
        // version (internal "Runtime Error"s with two).
        // Event streams never end by design.
        .args(["--exclude-path-regex", "/stream$"])
        .args(["--max-examples", "25"])
        .args(["--seed", "20261207"])
        .args(["--workers", "1"])
        .args(["--request-timeout", "20"])
        .args(["--generation-database", "none"])
        .args(["--report", "har"])
        .arg("--report-har-path")
        .arg(&har)
        .args(["--no-color", "--output-truncate", "false"])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir);
    if let Some(t) = token {
        cmd.args(["--header", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.output().expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems (token: {}):\n{stdout}\n{}",
        token.map_or("none", |t| if t == ADMIN_TOKEN {
            "admin"
        } else {
            "tenant key"
        }),
        String::from_utf8_lossy(&out.stderr)
    );
    let har: Value = serde_json::from_slice(&std::fs::read(&har).unwrap()).unwrap();
    let entries = har["log"]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        entries.len() > 100,
        "schemathesis made only {} requests:\n{stdout}",
        entries.len()
    );
    entries
}

fn path_of(entry: &Value) -> String {
    let url = entry["request"]["url"].as_str().unwrap_or_default();
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    path.split('?').next().unwrap_or(path).to_owned()
}

async fn the_api_keeps_its_contract(db: TestDb) {
    let Some(st) = schemathesis() else { return };
    let served = binary::serve(
        &binary::fresh_dir("props"),
        &[
            ("LORIKEET_DATABASE_URL", db.url()),
            ("LORIKEET_SECURITY_KEK", TEST_KEK_HEX),
            ("LORIKEET_API_ADMIN_TOKEN", ADMIN_TOKEN),
            ("LORIKEET_LOG_LEVEL", "warn"),
        ],
    );
    let base = served.base();
    let (key_a, _) = tenant(&base, 0xa).await;
    let (_, b) = tenant(&base, 0xb).await;
    let before = snapshot(&base, &b.paths).await;
    let dir = served.dir.clone();

    // Tenant A's key: within the contract, and nothing of B in any answer.
    let checks = "not_a_server_error,status_code_conformance,content_type_conformance,\
                  response_schema_conformance";
    let entries = tokio::task::block_in_place(|| {
        let d = dir.join("tenant");
        std::fs::create_dir_all(&d).unwrap();
        run(&st, &base, Some(&key_a), checks, &d)
    });
    for e in &entries {
        let text = e["response"]["content"]["text"]
            .as_str()
            .unwrap_or_default();
        for name in &b.names {
            assert!(
                !text
                    .to_ascii_lowercase()
                    .contains(&name.to_ascii_lowercase()),
                "tenant A's key saw tenant B's {name} in {} {}: {text}",
                e["request"]["method"],
                e["request"]["url"]
            );
        }
    }
    assert_eq!(
        snapshot(&base, &b.paths).await,
        before,
        "tenant A's run changed tenant B's resources"
    );

    // The admin token: every tenant, same contract.
    tokio::task::block_in_place(|| {
        let d = dir.join("admin");
        std::fs::create_dir_all(&d).unwrap();
        run(&st, &base, Some(ADMIN_TOKEN), checks, &d)
    });

    // No token: 401 everywhere a token is needed, i.e. on every operation the
    // document does not mark `security: []` (health, metrics, the document itself,
    // signing in and out).
    let doc: Value = reqwest::get(format!("{base}/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, ops)| {
            ops.as_object()
                .unwrap()
                .values()
                .any(|op| op.get("security") == Some(&json!([])))
        })
        .map(|(path, _)| path.clone())
        .collect();
    assert!(public.iter().any(|p| p == "/api/v1/login"), "{public:?}");
    let entries = tokio::task::block_in_place(|| {
        let d = dir.join("anonymous");
        std::fs::create_dir_all(&d).unwrap();
        run(&st, &base, None, "not_a_server_error", &d)
    });
    for e in &entries {
        let path = path_of(e);
        let status = e["response"]["status"].as_u64().unwrap_or_default();
        if public.contains(&path) {
            continue;
        }
        assert!(
            status == 401 || status == 404 || status == 405,
            "{} {path} without a token answered {status}",
            e["request"]["method"]
        );
        if path.starts_with("/api/v1/") && status != 405 {
            // Known routes refuse before they look anything up.
            assert_eq!(status, 401, "{} {path}", e["request"]["method"]);
        }
    }
    served.stop();
}

lorikeet_storage::storage_test!(
    the_api_keeps_its_contract_under_schemathesis,
    |db: TestDb| { the_api_keeps_its_contract(db) }
);
