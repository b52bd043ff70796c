//! What a real packet forwarder's just-in-time queue would say about a downlink: the
//! simulated gateways answer TX_ACK as a forwarder does (`TOO_LATE`, `COLLISION_PACKET`)
//! instead of accepting everything, so `lorikeet sim` shows the frames a real gateway
//! would have refused (issue 19).
//!
//! The time on air is computed here on its own (Semtech AN1200.13), not with the
//! server's scheduler code, so the check is independent of what it checks.

use lorikeet_gateway::wire::pull_resp::TxPacket;
use lorikeet_gateway::Modulation;

/// Silence a Semtech JIT queue requires between two transmissions: TX_START_DELAY
/// (1.5 ms) + TX_JIT_DELAY (40 ms, sx1302_hal) + TX_MARGIN_DELAY (1 ms).
pub const MIN_GAP_US: i64 = 42_500;
/// Least time before its start a timed frame must reach the queue: TX_JIT_DELAY +
/// TX_MARGIN_DELAY.
pub const MIN_LEAD_US: i64 = 41_000;

/// Time on air of a LoRa downlink (explicit header, no payload CRC, coding rate 4/5,
/// 8-symbol preamble, low data rate optimisation from 16 ms symbols), in µs.
pub fn lora_airtime_us(spreading_factor: u8, bandwidth_hz: u32, payload_len: usize) -> Option<u64> {
    if !(5..=12).contains(&spreading_factor) || bandwidth_hz == 0 {
        return None;
    }
    let sf = f64::from(spreading_factor);
    let t_sym = f64::from(1u32 << spreading_factor) / f64::from(bandwidth_hz);
    // Low data rate optimisation: on when a symbol lasts 16 ms or more.
    let low_rate_opt = t_sym >= 0.016;
    let de = if low_rate_opt { 1.0 } else { 0.0 };
    let pl = payload_len as f64;
    let num = 8.0 * pl - 4.0 * sf + 28.0;
    let den = 4.0 * (sf - 2.0 * de);
    let payload_symbols = 8.0 + ((num / den).ceil() * 5.0).max(0.0);
    let preamble = (8.0 + 4.25) * t_sym;
    Some(((preamble + payload_symbols * t_sym) * 1e6).round() as u64)
}

/// Time on air of `packet`, in µs (FSK: bits at its rate plus preamble, sync word,
/// length and CRC bytes).
pub fn airtime_us(packet: &TxPacket) -> Option<u64> {
    match packet.modulation {
        Modulation::Lora {
            spreading_factor,
            bandwidth_hz,
            ..
        } => lora_airtime_us(spreading_factor, bandwidth_hz, packet.phy_payload.len()),
        Modulation::Fsk { bit_rate_bps, .. } if bit_rate_bps > 0 => {
            let bytes = packet.phy_payload.len() as u64 + 5 + 3 + 1 + 2;
            Some(bytes * 8 * 1_000_000 / u64::from(bit_rate_bps))
        }
        _ => None,
    }
}

/// One simulated gateway's queue of accepted transmissions, on its concentrator clock.
#[derive(Debug, Default)]
pub struct JitQueue {
    /// (start, end) in concentrator µs.
    accepted: Vec<(u32, u32)>,
}

impl JitQueue {
    /// Admits a transmission of `airtime_us` starting at `start` (`None`: immediately),
    /// with the concentrator at `now`; the forwarder's error name when it would refuse.
    pub fn admit(
        &mut self,
        start: Option<u32>,
        airtime_us: u64,
        now: u32,
    ) -> Result<(), &'static str> {
        // Signed distance from now (the counter wraps every ~71.6 minutes).
        let rel = |t: u32| i64::from(t.wrapping_sub(now) as i32);
        self.accepted.retain(|&(_, end)| rel(end) > 0);
        let begin = match start {
            Some(t) => {
                if rel(t) < MIN_LEAD_US {
                    return Err("TOO_LATE");
                }
                rel(t)
            }
            None => MIN_LEAD_US,
        };
        let end = begin + i64::try_from(airtime_us).unwrap_or(i64::MAX / 2);
        for &(s, e) in &self.accepted {
            let (s, e) = (rel(s), rel(e));
            if begin < e + MIN_GAP_US && s < end + MIN_GAP_US {
                return Err("COLLISION_PACKET");
            }
        }
        let abs = |r: i64| now.wrapping_add(r as u32);
        self.accepted.push((abs(begin), abs(end)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airtime_matches_the_vectors() {
        // testdata/vectors/lora_airtime.json: independently computed figures.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/vectors/lora_airtime.json"
        );
        let vectors: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut checked = 0;
        for v in &vectors {
            if v["modulation"] != "lora"
                || v["crc"] != false
                || v["coding_rate"] != "4/5"
                || v["preamble_symbols"] != 8
            {
                continue;
            }
            let got = lora_airtime_us(
                v["spreading_factor"].as_u64().unwrap() as u8,
                v["bandwidth_hz"].as_u64().unwrap() as u32,
                v["payload_bytes"].as_u64().unwrap() as usize,
            )
            .unwrap();
            let want = v["time_on_air_us"].as_u64().unwrap();
            assert!(got.abs_diff(want) <= 1, "{v}: got {got} µs");
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} downlink-shaped vectors");
        assert_eq!(lora_airtime_us(4, 125_000, 13), None);
    }

    #[test]
    fn overlapping_or_late_frames_are_refused_like_a_forwarder_does() {
        let mut q = JitQueue::default();
        let now = u32::MAX - 500_000; // across the wrap
        let t1 = now.wrapping_add(1_000_000);
        assert_eq!(q.admit(Some(t1), 50_000, now), Ok(()));
        // Within the gap after the first one.
        assert_eq!(
            q.admit(Some(t1.wrapping_add(80_000)), 50_000, now),
            Err("COLLISION_PACKET")
        );
        // Clear of it.
        assert_eq!(q.admit(Some(t1.wrapping_add(100_000)), 50_000, now), Ok(()));
        assert_eq!(
            q.admit(Some(now.wrapping_add(10_000)), 50_000, now),
            Err("TOO_LATE")
        );
        // Immediate while nothing is on air soon: accepted.
        assert_eq!(q.admit(None, 100_000, now), Ok(()));
        // Once they are over, their time is free again.
        let later = t1.wrapping_add(2_000_000);
        assert_eq!(q.admit(None, 100_000, later), Ok(()));
    }
}
