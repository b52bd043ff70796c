//! Conversions between the crates' types: gateway frames ↔ core frames, stored rows ↔
//! core devices and sessions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lorikeet_app::{DeviceClass, DeviceInfo};
use lorikeet_gateway as gw;
use lorikeet_lorawan::crypto::SessionKeys;
use lorikeet_lorawan::Eui64;
use lorikeet_ns as ns;
use lorikeet_ns::region::{Modulation, RegionHandle};
use lorikeet_region::{RegParamsRevision, RegionConfig};
use lorikeet_storage as st;

/// GPS epoch (1980-01-06) as seconds since the Unix epoch, minus nothing: `tmms` is
/// kept as the gateway reports it.
pub fn rx_frame(f: gw::UplinkFrame, uplink_id: u32, location: Option<ns::Location>) -> ns::RxFrame {
    let (modulation, code_rate) = match f.modulation {
        gw::Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
            code_rate,
        } => (
            Modulation::Lora {
                spreading_factor,
                bandwidth_hz,
            },
            code_rate.and_then(code_rate_denominator),
        ),
        gw::Modulation::Fsk { bit_rate_bps } => (Modulation::Fsk { bit_rate_bps }, None),
    };
    ns::RxFrame {
        phy_payload: Arc::from(f.phy_payload),
        tx_info: ns::TxInfo {
            frequency_hz: f.frequency_hz,
            modulation,
            code_rate,
        },
        rx_info: ns::RxInfo {
            gateway_id: f.gateway_id,
            uplink_id,
            tmst: f.tmst,
            gw_time: f.time.map(SystemTime::from),
            time_since_gps_epoch_ms: f.tmms,
            ns_time: f.received_at,
            rssi_dbm: f.rssi_dbm,
            snr_db: f.snr_db,
            channel: f.chan.unwrap_or(0).min(255) as u8,
            rf_chain: f.rfch.unwrap_or(0).min(255) as u8,
            antenna: f.antennas.first().map_or(0, |a| a.antenna.min(255) as u8),
            board: f.board.unwrap_or(0).min(255) as u8,
            location,
        },
    }
}

fn code_rate_denominator(c: gw::CodeRate) -> Option<u8> {
    Some(match c {
        gw::CodeRate::Cr45 | gw::CodeRate::Cr45Li => 5,
        gw::CodeRate::Cr46 | gw::CodeRate::Cr46Li => 6,
        gw::CodeRate::Cr47 => 7,
        gw::CodeRate::Cr48 | gw::CodeRate::Cr48Li => 8,
    })
}

/// A core downlink request as a gateway frame.
pub fn downlink_frame(r: &ns::DownlinkRequest) -> Option<gw::DownlinkFrame> {
    let modulation = match r.modulation {
        Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
        } => gw::Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
            code_rate: Some(gw::CodeRate::Cr45),
        },
        Modulation::Fsk { bit_rate_bps } => gw::Modulation::Fsk { bit_rate_bps },
        // LR-FHSS is uplink only.
        Modulation::LrFhss { .. } => return None,
    };
    Some(gw::DownlinkFrame {
        gateway_id: r.gateway_id,
        phy_payload: r.phy_payload.clone(),
        timing: match r.timing {
            ns::Timing::Delay { tmst } => gw::DownlinkTiming::Delay { tmst },
            ns::Timing::Immediately => gw::DownlinkTiming::Immediately,
        },
        frequency_hz: r.frequency_hz,
        modulation,
        tx_power_eirp_dbm: r.tx_power_eirp_dbm,
        ipol: true,
        rf_chain: 0,
    })
}

/// The core's view of a TX_ACK.
pub fn tx_result(r: Result<gw::TxAckOutcome, gw::DownlinkError>) -> ns::TxResult {
    match r {
        Ok(gw::TxAckOutcome::Sent { .. }) => ns::TxResult::Sent,
        Ok(gw::TxAckOutcome::Unacknowledged) => ns::TxResult::NoAnswer,
        Ok(gw::TxAckOutcome::Rejected(e)) => ns::TxResult::Rejected(e.to_string()),
        Err(gw::DownlinkError::Timeout { .. }) => ns::TxResult::NoAnswer,
        Err(e) => ns::TxResult::Rejected(e.to_string()),
    }
}

/// Builds (and shares) the band plans named by device profiles.
#[derive(Debug, Default)]
pub struct Regions {
    config: BTreeMap<String, RegionConfig>,
    built: BTreeMap<String, RegionHandle>,
}

impl Regions {
    /// With the operator's per-region configuration (keys are region names in any case).
    pub fn new(config: &BTreeMap<String, RegionConfig>) -> Self {
        Regions {
            config: config
                .iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v.clone()))
                .collect(),
            built: BTreeMap::new(),
        }
    }

    /// The region for a profile's region name.
    pub fn get(&mut self, name: &str) -> Result<RegionHandle, String> {
        let key = name.to_ascii_uppercase();
        if let Some(r) = self.built.get(&key) {
            return Ok(r.clone());
        }
        let cfg = self.config.get(&key).cloned().unwrap_or_default();
        let r = lorikeet_region::build_region(&key, &cfg).map_err(|e| e.to_string())?;
        self.built.insert(key, r.clone());
        Ok(r)
    }
}

/// A stored profile as the core's profile.
pub fn profile(
    p: &st::DeviceProfile,
    regions: &mut Regions,
) -> Result<Arc<ns::DeviceProfile>, String> {
    let region = regions.get(&p.region)?;
    let mac_version: ns::MacVersion = p
        .mac_version
        .parse()
        .map_err(|e: ns::device::UnknownMacVersion| e.to_string())?;
    let reg_params_revision: RegParamsRevision = p
        .reg_params_revision
        .parse()
        .unwrap_or(RegParamsRevision::Rp002V1_0_3);
    // The API validates macSettings; a row it did not write (older version, hand
    // edit) that the core cannot read runs on the network's settings, with a warning.
    let mac_settings = match serde_json::from_value(p.mac_settings.clone()) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(profile = %p.id, error = %e, "macSettings unreadable; network MAC settings used");
            ns::mac::ProfileMacSettings::default()
        }
    };
    Ok(Arc::new(ns::DeviceProfile {
        id: p.id,
        region,
        mac_version,
        reg_params_revision,
        supports_otaa: p.supports_otaa,
        supports_class_c: p.supports_class_c,
        adr_enabled: p.adr_enabled,
        rx1_delay_s: p.rx1_delay.clamp(1, 15),
        rx1_dr_offset: p.rx1_dr_offset,
        rx2_dr: p.rx2_dr,
        rx2_frequency_hz: p.rx2_frequency_hz,
        class_c_timeout_s: 5,
        mac_settings,
    }))
}

/// A stored session as the core's session. The `ns_state` JSON is the core's own;
/// a document it cannot read (written by a future version) falls back to defaults.
pub fn session(s: &st::DeviceSession) -> ns::Session {
    let state: ns::SessionState = serde_json::from_str(&s.ns_state).unwrap_or_default();
    ns::Session {
        dev_addr: s.dev_addr,
        keys: SessionKeys {
            f_nwk_s_int_key: s.f_nwk_s_int_key.clone(),
            s_nwk_s_int_key: s.s_nwk_s_int_key.clone(),
            nwk_s_enc_key: s.nwk_s_enc_key.clone(),
            app_s_key: s.app_s_key.clone(),
        },
        // Storage keeps the next expected counter; the core the last accepted one.
        f_cnt_up: s.f_cnt_up.checked_sub(1),
        n_f_cnt_down: s.n_f_cnt_down,
        a_f_cnt_down: s.a_f_cnt_down,
        conf_f_cnt: (s.conf_f_cnt != 0).then_some(s.conf_f_cnt),
        state,
    }
}

/// A core session as a stored row.
pub fn session_row(
    dev_eui: Eui64,
    mac_version: ns::MacVersion,
    s: &ns::Session,
) -> st::DeviceSession {
    st::DeviceSession {
        dev_eui,
        dev_addr: s.dev_addr,
        mac_version: mac_version.to_string(),
        f_nwk_s_int_key: s.keys.f_nwk_s_int_key.clone(),
        s_nwk_s_int_key: s.keys.s_nwk_s_int_key.clone(),
        nwk_s_enc_key: s.keys.nwk_s_enc_key.clone(),
        app_s_key: s.keys.app_s_key.clone(),
        f_cnt_up: s.f_cnt_up.map_or(0, |f| f.saturating_add(1)),
        n_f_cnt_down: s.n_f_cnt_down,
        a_f_cnt_down: s.a_f_cnt_down,
        conf_f_cnt: s.conf_f_cnt.unwrap_or(0),
        // Our own types: serialising cannot fail.
        ns_state: serde_json::to_string(&s.state).unwrap_or_default(),
        updated_at: lorikeet_storage::now(),
    }
}

/// Root keys and join state as the core holds them.
pub fn join_parts(k: &st::DeviceKeys) -> (ns::RootKeys, ns::JoinState) {
    (
        ns::RootKeys {
            app_key: k.app_key.clone(),
            nwk_key: k.nwk_key.clone(),
        },
        ns::JoinState {
            // Storage starts at 0 meaning "none used yet" only before the first join.
            last_join_nonce: (k.join_nonce > 0 || k.last_dev_nonce.is_some())
                .then_some(k.join_nonce),
            last_dev_nonce: k.last_dev_nonce,
            // The core checks the most recent ones; storage keeps a longer history.
            used_dev_nonces: k.used_dev_nonces[k
                .used_dev_nonces
                .len()
                .saturating_sub(ns::device::DEV_NONCE_MEMORY)..]
                .iter()
                .copied()
                .collect(),
        },
    )
}

/// A stored queue item as the core's.
pub fn queue_item(q: &st::QueueItem) -> ns::QueueItem {
    ns::QueueItem {
        id: q.id,
        f_port: q.f_port,
        data: q.data.clone(),
        confirmed: q.confirmed,
        expires_at: q.expires_at.map(SystemTime::from),
    }
}

/// Assembles a core device from its stored parts.
pub fn device(
    d: &st::Device,
    profile: Arc<ns::DeviceProfile>,
    keys: Option<&st::DeviceKeys>,
    session: Option<&st::DeviceSession>,
    queue: &[st::QueueItem],
) -> ns::Device {
    let (root_keys, join) = match keys {
        Some(k) => {
            let (r, j) = join_parts(k);
            (Some(r), j)
        }
        None => (None, ns::JoinState::default()),
    };
    ns::Device {
        dev_eui: d.dev_eui,
        join_eui: d.join_eui,
        profile,
        skip_f_cnt_check: d.skip_fcnt_check,
        disabled: d.disabled,
        root_keys,
        join,
        session: session.map(self::session),
        queue: queue.iter().map(queue_item).collect::<VecDeque<_>>(),
    }
}

/// `deviceInfo` of a device's events.
pub fn device_info(
    d: &st::Device,
    profile: &st::DeviceProfile,
    app: &st::Application,
    tenant: &st::Tenant,
) -> DeviceInfo {
    DeviceInfo {
        tenant_id: tenant.id,
        tenant_name: tenant.name.clone(),
        application_id: app.id,
        application_name: app.name.clone(),
        device_profile_id: profile.id,
        device_profile_name: profile.name.clone(),
        device_name: d.name.clone(),
        dev_eui: d.dev_eui,
        device_class_enabled: if profile.supports_class_c {
            DeviceClass::ClassC
        } else {
            DeviceClass::ClassA
        },
        tags: d.tags.clone(),
    }
}

/// A wall-clock time as chrono's.
pub fn utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}
