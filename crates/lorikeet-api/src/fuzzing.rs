//! The body of the `api_bodies` cargo-fuzz target (`fuzz/`, a separate nightly-only
//! workspace), kept here so that the stable test suite runs exactly the same code
//! over the committed seed corpus (`tests/fuzz_corpus.rs`). Not an API: it panics
//! when an invariant does not hold, which is what a fuzzer needs and nothing else
//! does, and returns whether the body was accepted (so the seed test can tell that
//! its seeds reach the invariants).
//!
//! Request bodies are checked by the same functions the handlers call, without a
//! server or a database: what needs a lookup (the application and device profile a
//! device names) is given, from a fixed set of profiles the input picks.

use lorikeet_storage::{Application, DeviceProfile, PayloadCodec};
use uuid::Uuid;
use warp::http::StatusCode;

use crate::error::ApiError;
use crate::handlers::{self, FUZZ_BODY_ROUTES};
use crate::input::{self, Query, MAC_VERSIONS, REGIONS};

/// One of the device profiles a body is checked against: every region and MAC
/// version; the upper variants also carry receive-window settings of their own.
fn profile(variant: usize, tenant_id: Uuid) -> DeviceProfile {
    let custom = variant >= 12;
    DeviceProfile {
        id: Uuid::from_u128(0xfeed),
        tenant_id,
        name: "fuzz".into(),
        description: String::new(),
        region: REGIONS[variant % REGIONS.len()].into(),
        mac_version: MAC_VERSIONS[variant % MAC_VERSIONS.len()].into(),
        reg_params_revision: "RP002-1.0.3".into(),
        supports_otaa: true,
        supports_class_c: false,
        adr_enabled: true,
        rx1_delay: if custom { variant as u8 } else { 1 },
        rx1_dr_offset: if custom { (variant % 8) as u8 } else { 0 },
        rx2_dr: custom.then(|| variant as u8 - 12),
        rx2_frequency_hz: custom.then_some(860_000_000 + variant as u32 * 5_000_000),
        payload_codec: PayloadCodec::CayenneLpp,
        mac_settings: serde_json::json!({}),
        created_at: chrono::DateTime::UNIX_EPOCH,
        updated_at: chrono::DateTime::UNIX_EPOCH,
    }
}

/// `api_bodies`: no request body makes a body check panic or answer anything but
/// 400 with a message (never a 5xx: a body is the client's mistake or fine), and
/// what is accepted keeps its invariants (see each handler's `fuzz_body`: GET output
/// PUT back is the same resource, keys match the MAC version, ABP receive windows
/// are valid for the region, accepted URLs and headers cannot be abused). The first
/// byte picks the route (modulo the routes of `FUZZ_BODY_ROUTES`) and, divided by
/// their number, the device profile; the rest is the body. Query strings (`limit`,
/// `offset`, ids) are parsed from the same bytes.
pub fn api_bodies(data: &[u8]) -> bool {
    check(data).is_ok()
}

/// [`api_bodies`], with the body's error (to tell why a seed is refused).
pub fn check(data: &[u8]) -> Result<(), ApiError> {
    let Some((&selector, body)) = data.split_first() else {
        return Err(ApiError::bad_request("no selector byte"));
    };
    let selector = usize::from(selector);
    let route = FUZZ_BODY_ROUTES[selector % FUZZ_BODY_ROUTES.len()];
    let tenant_id = Uuid::from_u128(7);
    let app = Application {
        id: Uuid::from_u128(0xa99),
        tenant_id,
        name: "fuzz".into(),
        description: String::new(),
        created_at: chrono::DateTime::UNIX_EPOCH,
        updated_at: chrono::DateTime::UNIX_EPOCH,
    };
    let profile = profile(selector / FUZZ_BODY_ROUTES.len(), tenant_id);
    let checked = handlers::fuzz_body(route, body, &app, &profile);
    if let Err(e) = &checked {
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{route:?}: {e}");
        assert!(
            !e.message.is_empty(),
            "{route:?}: an error without a message"
        );
    }
    if let Ok(raw) = std::str::from_utf8(body) {
        let q = Query::parse(raw);
        match input::page(&q) {
            Ok(p) => assert!((1..=input::MAX_PAGE as u32).contains(&p.limit), "{p:?}"),
            Err(e) => assert_eq!(e.status, StatusCode::BAD_REQUEST),
        }
        if let Err(e) = q.uuid("tenantId") {
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
        }
    }
    checked
}
