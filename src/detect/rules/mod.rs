//! One detector per file. Adding one: a new file with a struct implementing
//! [`super::Detector`], a new code never used before, an entry in
//! [`super::registry`], docs/detectors.md, and a test on real traffic.

pub mod alt_protocol;
pub mod beaconing;
pub mod chunked_upload;
pub mod dns_tunnel;
pub mod exfil_service;
pub mod icmp_tunnel;
pub mod ioc_hit;
pub mod large_outbound;
pub mod new_destination;
pub mod off_hours;
pub mod pcr_shift;
pub mod staging;
pub mod volume_anomaly;

use super::{FrameSpan, filter_for};
use crate::model::Flow;
use std::net::IpAddr;

/// Frame spans of flows (one per input, merged), capped at `max`.
pub(crate) fn spans<'a>(
    flows: impl Iterator<Item = &'a Flow>,
    host: IpAddr,
    dest: IpAddr,
    max: usize,
) -> Vec<FrameSpan> {
    let mut by_input: std::collections::BTreeMap<usize, (u64, u64)> =
        std::collections::BTreeMap::new();
    for f in flows {
        let e = by_input
            .entry(f.span.input)
            .or_insert((f.span.first_frame, f.span.last_frame));
        e.0 = e.0.min(f.span.first_frame);
        e.1 = e.1.max(f.span.last_frame);
    }
    by_input
        .into_iter()
        .take(max)
        .map(|(input, (a, b))| FrameSpan {
            input,
            first_frame: a,
            last_frame: b,
            display_filter: filter_for(host, dest),
        })
        .collect()
}

impl super::Finding {
    /// The parts of a finding about a host and a destination that follow from
    /// its flows: names, time range and frame references. Detectors fill in
    /// severity, protocol, bytes, texts and metrics.
    pub(crate) fn for_pair(
        det: &dyn super::Detector,
        inp: &super::DetectInput<'_>,
        host: IpAddr,
        dest: IpAddr,
        flows: &[&Flow],
    ) -> super::Finding {
        super::Finding {
            code: det.code(),
            name: det.name(),
            severity: super::Severity::Fire,
            host,
            destination: Some(dest),
            destination_names: inp.names_of(dest),
            protocol: String::new(),
            bytes: 0,
            first_ts: flows.iter().map(|f| f.first_ts).min().unwrap_or(0),
            last_ts: flows.iter().map(|f| f.last_ts).max().unwrap_or(0),
            text: String::new(),
            text_de: String::new(),
            metrics: Vec::new(),
            references: spans(flows.iter().copied(), host, dest, 4),
        }
    }
}

/// Application bytes `host` sent in the flows (whichever side of each it is).
pub(crate) fn sent_by(flows: &[&Flow], host: IpAddr) -> u64 {
    flows
        .iter()
        .map(|f| {
            if f.orig.ip == host {
                f.orig_stats.bytes
            } else {
                f.resp_stats.bytes
            }
        })
        .sum()
}

pub(crate) fn mb(n: u64) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}
