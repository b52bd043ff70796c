//! What a simulation measured, as a table for people and JSON for tools.

use std::fmt;

use serde::Serialize;

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// How many samples.
    pub count: usize,
    /// Smallest.
    pub min_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Percentiles {
    /// From samples in microseconds (sorted in place).
    pub fn from_micros(samples: &mut [i64]) -> Self {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[i.min(samples.len() - 1)] as f64 / 1000.0
        };
        Percentiles {
            count: samples.len(),
            min_ms: at(0.0),
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Wall-clock seconds of the measured phase.
    pub duration_s: f64,
    /// Simulated gateways.
    pub gateways: usize,
    /// Simulated devices.
    pub devices: usize,
    /// JoinRequests sent (including retries).
    pub joins_sent: u64,
    /// Devices that joined.
    pub joins_accepted: u64,
    /// Uplinks sent (one per transmission, however many gateways heard it).
    pub uplinks_sent: u64,
    /// PUSH_DATA datagrams sent (copies).
    pub copies_sent: u64,
    /// `up` events the webhook received for our uplinks (each uplink counted once).
    pub uplinks_delivered: u64,
    /// Uplinks sent in the measured phase whose event never arrived.
    pub uplinks_lost: u64,
    /// The same uplink delivered more than once (at-least-once retries).
    pub duplicate_deliveries: u64,
    /// Delivered uplinks per second over the measured phase.
    pub throughput_per_s: f64,
    /// The uplink's main gateway copy sent → webhook received.
    pub latency: Percentiles,
    /// Downlinks received by the gateways.
    pub downlinks: u64,
    /// Time left before the receive window when the gateway got the downlink.
    pub downlink_lead: Percentiles,
    /// Downlinks that arrived after their window opened.
    pub downlinks_late: u64,
    /// Confirmed uplinks sent.
    pub confirmed_sent: u64,
    /// Confirmed uplinks the device saw acknowledged.
    pub confirmed_acked: u64,
    /// Downlinks the devices refused (bad MIC, counter…).
    pub downlinks_refused: u64,
    /// Frames the simulated gateways refused as a forwarder's JIT queue would
    /// (`COLLISION_PACKET`, `TOO_LATE`), by error.
    pub refused_by_gateways: std::collections::BTreeMap<String, u64>,
    /// Windows the server's scheduler did not use on the simulated gateways, by reason
    /// (`collision`, `duty_cycle`, `too_late`, `dwell_time`, `tx_freq`), read from its
    /// `/metrics` at the end; empty when it could not be read.
    pub refused_by_scheduler: std::collections::BTreeMap<String, u64>,
    /// Events of other types received by the webhook, by type.
    pub other_events: std::collections::BTreeMap<String, u64>,
    /// The server's resident memory at the end, when known.
    pub server_rss_mib: Option<f64>,
    /// Latency by the second the uplinks were sent in (from the first one sent).
    pub timeline: Vec<Second>,
    /// The run had rate phases (the table then shows the timeline).
    #[serde(skip)]
    pub phased: bool,
    /// The integrations added with `--integration`: how long each took to deliver
    /// the run's events.
    pub integrations: Vec<IntegrationRun>,
}

/// One `--integration` of a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntegrationRun {
    /// The kind (`amqp`, `kafka`, …).
    pub kind: String,
    /// Events it had to deliver (what the run's webhook received: every event of
    /// the application goes to each of its integrations).
    pub events: u64,
    /// Seconds from the first uplink until its backlog was empty; `None` if it did
    /// not empty within the wait.
    pub drained_after_s: Option<f64>,
    /// `events / drained_after_s`.
    pub events_per_s: Option<f64>,
    /// Its `lastError` at the end.
    pub last_error: Option<String>,
}

/// Delivered uplinks sent within one second of the run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Second {
    /// Seconds from the first uplink sent.
    pub second: u64,
    /// Uplinks sent in that second and delivered.
    pub delivered: usize,
    /// Their median latency.
    pub p50_ms: f64,
    /// Their 99th-percentile latency.
    pub p99_ms: f64,
}

/// Groups deliveries (send time, latency in µs) by the second they were sent in.
pub fn timeline(deliveries: &[(std::time::Instant, i64)]) -> Vec<Second> {
    let Some(first) = deliveries.iter().map(|(t, _)| *t).min() else {
        return Vec::new();
    };
    let mut by_second: std::collections::BTreeMap<u64, Vec<i64>> = Default::default();
    for (t, l) in deliveries {
        by_second
            .entry(t.duration_since(first).as_secs())
            .or_default()
            .push(*l);
    }
    by_second
        .into_iter()
        .map(|(second, mut l)| {
            let p = Percentiles::from_micros(&mut l);
            Second {
                second,
                delivered: p.count,
                p50_ms: p.p50_ms,
                p99_ms: p.p99_ms,
            }
        })
        .collect()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "  {k:<32} {v}");
        writeln!(
            f,
            "lorikeet sim: {} gateways, {} devices, {:.1} s",
            self.gateways, self.devices, self.duration_s
        )?;
        row(
            f,
            "joins accepted / sent",
            format!("{} / {}", self.joins_accepted, self.joins_sent),
        )?;
        row(
            f,
            "uplinks sent (copies)",
            format!("{} ({})", self.uplinks_sent, self.copies_sent),
        )?;
        row(f, "uplinks delivered", self.uplinks_delivered.to_string())?;
        row(f, "uplinks lost", self.uplinks_lost.to_string())?;
        row(
            f,
            "duplicate deliveries",
            self.duplicate_deliveries.to_string(),
        )?;
        row(
            f,
            "throughput",
            format!("{:.0} uplinks/s", self.throughput_per_s),
        )?;
        let p = |p: &Percentiles| {
            format!(
                "min {:.1} ms, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (n={})",
                p.min_ms, p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms, p.count
            )
        };
        row(f, "latency copy → webhook", p(&self.latency))?;
        row(
            f,
            "downlinks (late)",
            format!("{} ({})", self.downlinks, self.downlinks_late),
        )?;
        row(f, "downlink lead before window", p(&self.downlink_lead))?;
        row(
            f,
            "confirmed uplinks acked / sent",
            format!("{} / {}", self.confirmed_acked, self.confirmed_sent),
        )?;
        row(
            f,
            "downlinks refused by devices",
            self.downlinks_refused.to_string(),
        )?;
        let by_reason = |m: &std::collections::BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_owned()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        row(
            f,
            "transmissions refused by gateways",
            by_reason(&self.refused_by_gateways),
        )?;
        row(
            f,
            "windows skipped by the scheduler",
            by_reason(&self.refused_by_scheduler),
        )?;
        for (k, v) in &self.other_events {
            row(f, &format!("{k} events"), v.to_string())?;
        }
        for i in &self.integrations {
            let how = match (i.drained_after_s, i.events_per_s) {
                (Some(t), Some(r)) => format!("{} events in {t:.1} s: {r:.0}/s", i.events),
                _ => format!(
                    "backlog not empty at the end{}",
                    i.last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                ),
            };
            row(f, &format!("{} integration", i.kind), how)?;
        }
        if let Some(rss) = self.server_rss_mib {
            row(f, "server RSS", format!("{rss:.1} MiB"))?;
        }
        if self.phased {
            writeln!(f, "  latency by second sent:")?;
            for s in &self.timeline {
                writeln!(
                    f,
                    "    {:>4} s  {:>7} delivered  p50 {:>8.1} ms  p99 {:>8.1} ms",
                    s.second, s.delivered, s.p50_ms, s.p99_ms
                )?;
            }
        }
        Ok(())
    }
}

/// Resident memory of a process, from `/proc/<pid>/status` (Linux).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() {
        let mut v: Vec<i64> = (1..=100).map(|ms| ms * 1000).collect();
        let p = Percentiles::from_micros(&mut v);
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_ms, 51.0);
        assert_eq!(p.p99_ms, 99.0);
        assert_eq!(p.max_ms, 100.0);
        assert_eq!(Percentiles::from_micros(&mut []), Percentiles::default());
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_mib(std::process::id()).unwrap_or(0.0) > 0.0);
    }
}
