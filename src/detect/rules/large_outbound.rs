//! D3 large_outbound: one flow that uploads a lot, or uploads for a long time.

use super::super::{DetectInput, Detector, Finding, Metric, Outbound, Pass, Scope, Severity};
use super::{OrderKey, Seen, mb, order_key};
use crate::model::{Flow, NS_PER_SEC};
use std::net::IpAddr;

/// MITRE ATT&CK DET0131 (T1048) DataVolumeThresholdMB example: > 50 MB in one connection.
pub const BYTES: u64 = 50_000_000;
/// RITA's long-connection base threshold: 1 hour.
pub const DURATION_NS: i64 = 3600 * NS_PER_SEC;
/// Floor for the long-connection branch, so idle keep-alive sessions do not fire.
pub const LONG_FLOOR: u64 = 1 << 20;

pub struct LargeOutbound;

impl Detector for LargeOutbound {
    fn code(&self) -> &'static str {
        "D3"
    }
    fn name(&self) -> &'static str {
        "large_outbound"
    }
    fn explain(&self) -> &'static str {
        "## What it does\n\
Fires on a single flow from an internal host to a destination not on the allowlist that \
carries at least 50 MB of application bytes outbound, or that lasts at least one hour while \
sending more than it receives (and at least 1 MiB).\n\n\
## Why it matters\n\
Bulk theft usually moves archives in long or large uploads (rclone, scp, HTTP POST).\n\n\
## Defaults and sources\n\
50 MB: MITRE ATT&CK DET0131 (T1048) mutable element DataVolumeThresholdMB \"e.g., >50MB in a \
single connection\". 1 hour: RITA's long-connection base threshold (tiers 1/4/8/12 h). The \
1 MiB floor on the long branch is ours (keep-alive sessions).\n\n\
## Known false positives\n\
Legitimate uploads to services not on the allowlist (backups, video calls, software \
publishing). Add such destinations to the allowlist with a justification."
    }
    fn start(&self) -> Box<dyn Pass> {
        Box::<State>::default()
    }
}

/// Each flow over the size or duration threshold (few), with its order key.
#[derive(Default)]
struct State {
    big: Vec<(OrderKey, IpAddr, IpAddr, u64, Seen)>,
}

impl Pass for State {
    fn observe(&mut self, _: &Scope<'_>, f: &Flow, ob: Option<Outbound>) {
        let Some((host, dest, o, i, _)) = ob else {
            return;
        };
        let dur = f.last_ts - f.first_ts;
        let big = o.bytes >= BYTES;
        let long = dur >= DURATION_NS && o.bytes > i.bytes && o.bytes >= LONG_FLOOR;
        if big || long {
            let mut seen = Seen::default();
            seen.add(f);
            let k = order_key(f);
            self.big.push((k, host, dest, o.bytes, seen));
        }
    }

    fn merge(&mut self, other: Box<dyn Pass>) {
        self.big.extend(super::super::downcast::<State>(other).big);
    }

    fn finish(mut self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding> {
        self.big.sort_by_key(|x| x.0);
        let mut out = Vec::new();
        for (_, host, dest, bytes, seen) in self.big {
            if inp.allowed(dest) {
                continue;
            }
            let dur = seen.last_ts - seen.first_ts;
            out.push(Finding {
                severity: Severity::Fire,
                protocol: seen.protocol(),
                bytes,
                text: format!(
                    "{host} uploaded {} to {dest} in one flow lasting {:.0} s",
                    mb(bytes),
                    dur as f64 / 1e9
                ),
                text_de: format!(
                    "{host} hat {} in einer Verbindung von {:.0} s an {dest} hochgeladen",
                    mb(bytes),
                    dur as f64 / 1e9
                ),
                metrics: vec![
                    Metric {
                        name: "bytes_out",
                        value: bytes as f64,
                        threshold: Some(BYTES as f64),
                    },
                    Metric {
                        name: "duration_s",
                        value: dur as f64 / 1e9,
                        threshold: Some(3600.0),
                    },
                ],
                ..Finding::for_pair(&LargeOutbound, inp, host, dest, &seen)
            });
        }
        out
    }
}
