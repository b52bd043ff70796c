//! `GET /api/v1/devices/{devEui}/link`: a device's link health from its row and
//! hourly counters (no event is read).

use chrono::TimeDelta;
use serde_json::{json, Value};

use super::Ctx;
use crate::error::ApiError;
use crate::Out;

/// The longest range one request may ask for.
const MAX_RANGE: TimeDelta = TimeDelta::days(31);

pub(super) async fn get(ctx: &Ctx<'_>) -> Result<Out, ApiError> {
    let dev_eui = ctx.eui_param("devEui")?;
    let now = lorikeet_storage::now();
    let (from, to) = ctx.query.time_range(now, MAX_RANGE)?;
    ctx.device(dev_eui).await?;
    let storage = &ctx.state.storage;
    let Some(link) = storage.device_link(dev_eui, from, to).await? else {
        return Err(ApiError::not_found(format!("device {dev_eui} not found")));
    };
    // Downlink counter and transmit power are the network server's session state.
    let session = storage.get_session(dev_eui).await?;
    let state: Option<lorikeet_ns::SessionState> = session
        .as_ref()
        .and_then(|s| serde_json::from_str(&s.ns_state).ok());
    let battery = link.status_at.map(|at| {
        json!({
            "percent": link.battery_percent,
            "externalPower": link.external_power,
            "margin": link.margin_db,
            "at": at,
        })
    });
    let history: Vec<Value> = link
        .history
        .iter()
        .map(|h| {
            json!({
                "t": h.hour,
                "uplinks": h.uplinks,
                "rssi": h.rssi_avg,
                "rssiMin": h.rssi_min,
                "rssiMax": h.rssi_max,
                "snr": h.snr_avg,
            })
        })
        .collect();
    Ok(Out::ok(json!({
        "lastSeenAt": link.last_seen_at,
        "fCntUp": link.f_cnt_up,
        "nFCntDown": session.as_ref().map(|s| s.n_f_cnt_down),
        "dr": link.dr,
        "txPowerIndex": state.as_ref().map(|s| s.mac.tx_power_index),
        "rssi": link.rssi_dbm,
        "snr": link.snr_db,
        "battery": battery,
        "history": history,
    })))
}
