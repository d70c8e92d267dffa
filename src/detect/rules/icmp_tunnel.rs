//! D8 icmp_tunnel: data carried in ICMP echo payloads (ptunnel, icmptunnel, hans,
//! or plain ping with a chosen pattern).

use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::{OrderKey, Seen, order_key};
use crate::model::{Flow, IcmpStats};
use std::net::IpAddr;

/// Elastic's rule: echo requests with payloads of 256 bytes or more.
pub const LARGE: u64 = 256;
/// Splunk's rule: more than 1,000 ICMP bytes to an external address.
pub const TOTAL: u64 = 1000;

pub struct IcmpTunnel;

impl Detector for IcmpTunnel {
    fn code(&self) -> &'static str {
        "D8"
    }
    fn name(&self) -> &'static str {
        "icmp_tunnel"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
For every ICMP echo flow from an internal host to an external address it sums the request \
payload, counts requests with payloads of 256 bytes or more, distinct payload sizes and \
contents, and replies whose payload differs from their request (a real echo returns the \
request's payload). It fires when more than 1,000 payload bytes went out and either some \
requests were 256 bytes or larger or some replies did not echo their request. The request \
payload bytes are what the channel could have carried.\n\n\
## Why it matters\n\
ICMP is often allowed out and rarely inspected; ptunnel, icmptunnel and hans tunnel TCP \
through echo requests, and plain `ping -p` can smuggle bytes in its fill pattern.\n\n\
## Defaults and sources\n\
256 bytes: Elastic detection rule (ICMP echo with network.bytes >= 256). 1,000 bytes: Splunk \
'Detect Large ICMP Traffic' (bytes > 1,000). Request/reply mismatch: Juniper signature \
ICMP:EXPLOIT:DIFF-CSUM-IN-RESND and the Elastic rule's note on asymmetry. OS defaults are 32 \
bytes (Windows) and 56 bytes (Linux, macOS).\n\n\
## Known false positives\n\
Path-MTU and network diagnostics with large pings (`ping -s 1400`), monitoring systems that \
ping with big payloads. Allowlist the monitoring targets."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<State>::default()
    }
}

/// Echo flows from an internal host over the thresholds (few), with their order key.
#[derive(Default)]
struct State {
    hits: Vec<(OrderKey, IpAddr, IpAddr, IcmpStats, Seen)>,
}

impl Pass for State {
    fn observe(&mut self, _: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        let Some(s) = &f.icmp else { return };
        let Some((host, dest, _, _, host_is_orig)) = ob else {
            return;
        };
        // Requests must come from the internal host.
        if !host_is_orig || s.request_payload <= TOTAL {
            return;
        }
        let large = s.large_requests > 0;
        let mismatch = s.mismatched_replies > 0;
        if large || mismatch {
            let mut seen = Seen::default();
            seen.add(f);
            let k = order_key(f);
            self.hits.push((k, host, dest, (**s).clone(), seen));
        }
    }

    fn merge(&mut self, other: Box<dyn Pass>) {
        self.hits
            .extend(super::super::downcast::<State>(other).hits);
    }

    fn finish(mut self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        self.hits.sort_by_key(|x| x.0);
        let mut out = Vec::new();
        for (_, host, dest, s, seen) in self.hits {
            if inp.allowed(dest) {
                continue;
            }
            out.push(Finding {
                code: IcmpTunnel.code(),
                name: IcmpTunnel.name(),
                severity: Severity::Fire,
                host,
                destination: Some(dest),
                destination_names: inp.names_of(dest),
                protocol: "icmp-echo".into(),
                bytes: s.request_payload,
                first_ts: seen.first_ts,
                last_ts: seen.last_ts,
                text: format!(
                    "{host} sent {} echo requests with {} payload bytes to {dest} ({} of 256 bytes or more, {} distinct sizes, {} replies not echoing their request)",
                    s.requests,
                    s.request_payload,
                    s.large_requests,
                    s.request_sizes.len(),
                    s.mismatched_replies
                ),
                text_de: format!(
                    "{host} hat {} Echo-Anfragen mit {} Nutzdaten-Bytes an {dest} gesendet ({} mit 256 Bytes oder mehr, {} verschiedene Größen, {} Antworten ohne Echo der Anfrage)",
                    s.requests,
                    s.request_payload,
                    s.large_requests,
                    s.request_sizes.len(),
                    s.mismatched_replies
                ),
                metrics: vec![
                    Metric { name: "request_payload_bytes", value: s.request_payload as f64, threshold: Some(TOTAL as f64) },
                    Metric { name: "large_requests", value: s.large_requests as f64, threshold: Some(1.0) },
                    Metric { name: "max_request_payload", value: s.max_request_payload as f64, threshold: Some(LARGE as f64) },
                    Metric { name: "mismatched_replies", value: s.mismatched_replies as f64, threshold: Some(1.0) },
                    Metric { name: "distinct_payloads", value: s.distinct_payloads as f64, threshold: None },
                ],
                references: seen
                    .spans(host, dest, 1)
                    .into_iter()
                    .map(|mut r| {
                        let t = if host.is_ipv4() { "icmp.type==8" } else { "icmpv6.type==128" };
                        r.display_filter = format!("{} && {t}", r.display_filter);
                        r
                    })
                    .collect(),
            });
        }
        out
    }
}
