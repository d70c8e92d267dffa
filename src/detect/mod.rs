//! Rules over flows, the ledger and the content features. No I/O and no
//! formatting: each detector returns [`Finding`]s, which are data. One detector
//! per file under `rules/`, each with a stable code (the methodology's D-number),
//! a name after the pattern it finds, and an `explain()` text
//! (`exfilcheck detectors --explain CODE`). Codes are never reused.

pub mod rules;

use crate::attribution::netscope::{AddrClass, Allowlist, Netscope};
use crate::flow::features::DnsAgg;
use crate::model::{DirStats, Flow, NameObservation, Ts};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Exfiltration-consistent transfer: contradicts the claim when the host is in scope.
    Fire,
    /// Suspicious; stated, does not decide the verdict alone.
    Flag,
}

/// One measured value next to the threshold it was compared with.
#[derive(Clone, Debug, Serialize)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub threshold: Option<f64>,
}

/// Packets behind a finding: input index, frame range, Wireshark display filter.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct FrameSpan {
    pub input: usize,
    pub first_frame: u64,
    pub last_frame: u64,
    pub display_filter: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub host: IpAddr,
    pub destination: Option<IpAddr>,
    /// Destination names (domain for DNS findings) with how each was learned.
    pub destination_names: Vec<String>,
    pub protocol: String,
    /// Bytes the finding puts at stake (outbound application bytes, or DNS/ICMP payload).
    pub bytes: u64,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub first_ts: Ts,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub last_ts: Ts,
    pub text: String,
    pub text_de: String,
    pub metrics: Vec<Metric>,
    pub references: Vec<FrameSpan>,
}

/// Indicators of compromise from the case file.
#[derive(Clone, Debug, Default)]
pub struct Iocs {
    pub nets: Vec<ipnet::IpNet>,
    pub domains: Vec<String>,
}

/// What a detector may use while flows pass by: settled before the first flow.
/// Names, allow-list decisions, DNS and the baseline are known only when all
/// flows have been seen, so they are used in [`Pass::finish`] alone; that is
/// what lets flows stream through the detectors without being held.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub netscope: &'a Netscope,
    pub iocs: &'a Iocs,
    /// Its networks can be applied as flows pass; its domains only at the end.
    pub allow: &'a Allowlist,
    pub business_hours: Option<&'a BusinessHours>,
}

impl Scope<'_> {
    /// The internal host, external destination, outbound and inbound stats of an
    /// outer flow, and whether the host is the originator; None when the flow
    /// does not cross the boundary.
    pub fn outbound(&self, f: &Flow) -> Option<Outbound> {
        if f.key.depth > 0 {
            return None;
        }
        match (
            self.netscope.class(f.orig.ip),
            self.netscope.class(f.resp.ip),
        ) {
            (AddrClass::Internal, AddrClass::External) => {
                Some((f.orig.ip, f.resp.ip, f.orig_stats, f.resp_stats, true))
            }
            (AddrClass::External, AddrClass::Internal) => {
                Some((f.resp.ip, f.orig.ip, f.resp_stats, f.orig_stats, false))
            }
            _ => None,
        }
    }
}

/// Hands every flow to a closure.
pub type Replay<'a> = dyn Fn(&mut (dyn FnMut(&Flow) + Send)) + 'a;

/// What the baseline rules keep of the baseline period's flows, folded as
/// they pass (D1 its hourly sums and span, D2 daily bytes each way, D4 the
/// destinations), so the baseline's flows are not held. Merging gives the same
/// result in any order.
#[derive(Default)]
pub struct Baseline {
    /// Flows folded.
    pub flows: u64,
    /// Earliest first and latest last time of the flows.
    pub span: Option<(Ts, Ts)>,
    pub(crate) hourly: rules::volume_anomaly::Hourly,
    /// Outbound and inbound bytes per internal host and day.
    pub(crate) daily: BTreeMap<(IpAddr, i64), (u64, u64)>,
    /// External destinations internal hosts exchanged bytes with.
    pub(crate) dests: std::collections::BTreeSet<IpAddr>,
}

impl Baseline {
    pub fn observe(&mut self, cx: &Scope<'_>, f: &Flow) {
        self.flows += 1;
        self.span = Some(self.span.map_or((f.first_ts, f.last_ts), |(a, b)| {
            (a.min(f.first_ts), b.max(f.last_ts))
        }));
        let ob = cx.outbound(f);
        self.hourly.add(f, ob, cx.allow, false);
        if let Some((host, dest, o, i, _)) = ob {
            let e = self
                .daily
                .entry((host, f.first_ts.div_euclid(rules::pcr_shift::DAY)))
                .or_default();
            e.0 += o.bytes;
            e.1 += i.bytes;
            self.dests.insert(dest);
        }
    }

    pub fn merge(&mut self, o: Baseline) {
        self.flows += o.flows;
        self.span = match (self.span, o.span) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (x, y) => x.or(y),
        };
        self.hourly.merge(o.hourly);
        rules::merge_map(&mut self.daily, o.daily, |a, b| {
            a.0 += b.0;
            a.1 += b.1;
        });
        self.dests.extend(o.dests);
    }
}

/// Everything a detector may look at when it decides (after the last flow).
pub struct DetectInput<'a> {
    /// The outbound ledger (per host and destination totals of all flows).
    pub ledger: &'a crate::attribution::Ledger,
    pub dns: &'a [((IpAddr, String), DnsAgg)],
    /// Information bound of each DNS aggregate (same order as `dns`).
    pub dns_info: &'a [u64],
    pub names: &'a BTreeMap<IpAddr, Vec<(String, &'static str)>>,
    pub netscope: &'a Netscope,
    pub allow: &'a Allowlist,
    pub iocs: &'a Iocs,
    /// What the rules keep of the baseline period's flows; None when no
    /// baseline was given.
    pub baseline: Option<&'a Baseline>,
    pub business_hours: Option<&'a BusinessHours>,
    /// Exfiltration-service domains added by the case (D5).
    pub extra_services: &'a [String],
    /// Hands every flow of the window to the closure once more, for the rare
    /// rule that needs a second look (D13's egress after fan-in). Each
    /// input's flows come in their order, but the inputs' are interleaved
    /// (they are read in parallel): what the closure gathers must not depend
    /// on the order of flows from different inputs.
    pub replay: &'a Replay<'a>,
    /// Memo of `allowed()` per address.
    pub allowed_memo:
        std::cell::RefCell<std::collections::HashMap<IpAddr, bool, foldhash::fast::FixedState>>,
}

/// Business hours of the organisation, in a fixed offset from UTC.
#[derive(Clone, Debug)]
pub struct BusinessHours {
    /// Working days, 0 = Monday .. 6 = Sunday.
    pub days: Vec<u8>,
    /// Start and end, minutes after local midnight.
    pub start_min: u32,
    pub end_min: u32,
    /// Offset of local time from UTC, seconds.
    pub utc_offset_s: i64,
}

impl BusinessHours {
    pub fn is_business(&self, ts: Ts) -> bool {
        let local = ts.div_euclid(crate::model::NS_PER_SEC) + self.utc_offset_s;
        let day = local.div_euclid(86_400);
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        let weekday = ((day + 3).rem_euclid(7)) as u8;
        let minute = (local.rem_euclid(86_400) / 60) as u32;
        self.days.contains(&weekday) && minute >= self.start_min && minute < self.end_min
    }
}

impl DetectInput<'_> {
    /// What detectors saw while the flows passed.
    pub fn scope(&self) -> Scope<'_> {
        Scope {
            netscope: self.netscope,
            iocs: self.iocs,
            allow: self.allow,
            business_hours: self.business_hours,
        }
    }

    /// [`Scope::outbound`], for rules that look at the baseline's flows.
    pub fn outbound(&self, f: &Flow) -> Option<Outbound> {
        self.scope().outbound(f)
    }

    /// Names of a destination (each once; address literals from Host headers left out).
    pub fn names_of(&self, ip: IpAddr) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (n, _) in self.names.get(&ip).into_iter().flatten() {
            if n.parse::<IpAddr>().is_err() && !out.contains(n) {
                out.push(n.clone());
            }
        }
        out
    }

    pub fn allowed(&self, ip: IpAddr) -> bool {
        if let Some(v) = self.allowed_memo.borrow().get(&ip) {
            return *v;
        }
        let v = self.allow.matches(ip, &self.names_of(ip)).is_some();
        self.allowed_memo.borrow_mut().insert(ip, v);
        v
    }
}

/// Builds the IP → names index detectors use (DNS answers, SNI, HTTP Host).
pub fn name_index(
    server_names: &crate::attribution::ServerNames,
    names: &[NameObservation],
) -> BTreeMap<IpAddr, Vec<(String, &'static str)>> {
    let mut m: BTreeMap<IpAddr, Vec<(String, &'static str)>> = BTreeMap::new();
    let mut add = |ip: IpAddr, n: &str, s: &'static str| {
        let v = m.entry(ip).or_default();
        let n = n.trim_end_matches('.').to_ascii_lowercase();
        if !v.iter().any(|(x, y)| *x == n && *y == s) && v.len() < 64 {
            v.push((n, s));
        }
    };
    for n in names {
        add(n.ip, &n.name, n.source);
    }
    for (ip, n, source) in server_names.in_order() {
        add(ip, n, source);
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

pub fn filter_for(host: IpAddr, dest: IpAddr) -> String {
    let v = |ip: IpAddr| if ip.is_ipv4() { "ip" } else { "ipv6" };
    format!("{}.addr=={host} && {}.addr=={dest}", v(host), v(dest))
}

/// A detector: code, name, documentation, rule.
pub trait Detector: Sync {
    /// Stable code, the methodology's D-number (e.g. `D7`).
    fn code(&self) -> &'static str;
    /// snake_case name after the pattern it finds.
    fn name(&self) -> &'static str;
    /// What it finds, why it matters, defaults and their sources, known false positives.
    fn explain(&self) -> &'static str;
    /// A fresh state for one run: it sees every flow once ([`Pass::observe`]), in
    /// any order, and then decides ([`Pass::finish`]).
    fn start(&self) -> Box<dyn Pass>;
}

/// The internal host, the external destination, the host's and the
/// destination's direction stats, and whether the host originated the flow.
pub type Outbound = (IpAddr, IpAddr, DirStats, DirStats, bool);

/// One detector's state during a run. What it keeps per flow is what its rule
/// needs (most keep per host or per host and destination aggregates); it never
/// holds the flows themselves.
pub trait Pass: Send + std::any::Any {
    /// `ob`: the flow as seen from its internal host ([`Scope::outbound`]),
    /// None when it does not cross the boundary.
    fn observe(&mut self, cx: &Scope<'_>, f: &Flow, ob: Option<Outbound>);
    /// Adds what another state of the same detector saw (other flows). The
    /// result does not depend on the order states are merged in.
    fn merge(&mut self, other: Box<dyn Pass>);
    fn finish(self: Box<Self>, inp: &DetectInput<'_>) -> Vec<Finding>;
}

/// All detectors, in code order.
pub fn registry() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(rules::volume_anomaly::VolumeAnomaly),
        Box::new(rules::pcr_shift::PcrShift),
        Box::new(rules::large_outbound::LargeOutbound),
        Box::new(rules::new_destination::NewDestination),
        Box::new(rules::exfil_service::ExfilService),
        Box::new(rules::alt_protocol::AltProtocol),
        Box::new(rules::dns_tunnel::DnsTunnel),
        Box::new(rules::icmp_tunnel::IcmpTunnel),
        Box::new(rules::beaconing::Beaconing),
        Box::new(rules::chunked_upload::ChunkedUpload),
        Box::new(rules::off_hours::OffHours),
        Box::new(rules::ioc_hit::IocHit),
        Box::new(rules::staging::Staging),
    ]
}

/// Every detector's state, in code order.
pub fn start_all() -> Vec<Box<dyn Pass>> {
    registry().iter().map(|d| d.start()).collect()
}

/// Merges the states of two runs over different flows (both from [`start_all`]).
pub fn merge_all(into: &mut [Box<dyn Pass>], from: Vec<Box<dyn Pass>>) {
    for (a, b) in into.iter_mut().zip(from) {
        a.merge(b);
    }
}

/// The state `p` as its concrete type (a detector's `merge` gets its own kind).
pub(crate) fn downcast<T: Pass>(p: Box<dyn Pass>) -> Box<T> {
    let any: Box<dyn std::any::Any> = p;
    match any.downcast::<T>() {
        Ok(t) => t,
        Err(_) => unreachable!("states are merged with states of the same detector"),
    }
}

/// Decides every detector's findings; sorted (severity, bytes desc, code, host).
pub fn finish_all(input: &DetectInput<'_>, passes: Vec<Box<dyn Pass>>) -> Vec<Finding> {
    let mut out: Vec<Finding> = passes.into_iter().flat_map(|p| p.finish(input)).collect();
    // D1 fires when the same host also uploads to a new destination (D4) or an
    // exfiltration service (D5) (methodology D1: "FIRE if also D4 or D5").
    let corroborated: std::collections::BTreeSet<IpAddr> = out
        .iter()
        .filter(|f| f.code == "D4" || f.code == "D5")
        .map(|f| f.host)
        .collect();
    for f in &mut out {
        if f.code == "D1" && corroborated.contains(&f.host) {
            f.severity = Severity::Fire;
        }
    }
    out.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then(b.bytes.cmp(&a.bytes))
            .then(a.code.cmp(b.code))
            .then(a.host.cmp(&b.host))
            .then(a.destination.cmp(&b.destination))
            .then(a.destination_names.cmp(&b.destination_names))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_hours_in_local_time() {
        let bh = BusinessHours {
            days: vec![0, 1, 2, 3, 4],
            start_min: 8 * 60,
            end_min: 18 * 60,
            utc_offset_s: 3600,
        };
        let t = |s: &str| crate::model::parse_time(s).unwrap();
        // Friday 2026-11-27 07:30 UTC = 08:30 local: business.
        assert!(bh.is_business(t("2026-11-27T07:30:00Z")));
        // Friday 17:30 UTC = 18:30 local: off.
        assert!(!bh.is_business(t("2026-11-27T17:30:00Z")));
        // Saturday 2026-11-28 10:41 UTC: off.
        assert!(!bh.is_business(t("2026-11-28T10:41:24Z")));
    }

    #[test]
    fn robust_stats() {
        assert_eq!(stats::median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(stats::madm(&[1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]), 1.0);
        assert_eq!(stats::bowley_score(&[60.0, 60.0, 60.0, 60.0]), 1.0);
    }
}

/// Robust statistics used by several rules.
pub mod stats {
    pub fn median(v: &mut [f64]) -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }

    /// Median absolute deviation from the median.
    pub fn madm(v: &[f64]) -> f64 {
        let mut c = v.to_vec();
        let m = median(&mut c);
        let mut d: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
        median(&mut d)
    }

    /// Quartiles Q1, Q2, Q3 (median of halves).
    pub fn quartiles(v: &[f64]) -> (f64, f64, f64) {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n == 0 {
            return (0.0, 0.0, 0.0);
        }
        let q2 = median(&mut s.clone());
        let (lo, hi) = if n.is_multiple_of(2) {
            (&s[..n / 2], &s[n / 2..])
        } else {
            (&s[..n / 2], &s[n / 2 + 1..])
        };
        let q1 = if lo.is_empty() {
            q2
        } else {
            median(&mut lo.to_vec())
        };
        let q3 = if hi.is_empty() {
            q2
        } else {
            median(&mut hi.to_vec())
        };
        (q1, q2, q3)
    }

    /// RITA's Bowley-skew score: 1 - |(Q1 + Q3 - 2 Q2) / (Q3 - Q1)| (1 when Q3 == Q1).
    pub fn bowley_score(v: &[f64]) -> f64 {
        let (q1, q2, q3) = quartiles(v);
        if (q3 - q1).abs() < f64::EPSILON || q2 == q1 || q2 == q3 {
            return 1.0;
        }
        (1.0 - ((q1 + q3 - 2.0 * q2) / (q3 - q1)).abs()).clamp(0.0, 1.0)
    }
}

/// What the covert channels of one internal host could have carried: the
/// information bound of its DNS query names (all non-allowlisted domains, not
/// only those that fire D7) and its outbound ICMP echo payload.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ChannelBound {
    pub dns_information_bytes: u64,
    pub icmp_payload_bytes: u64,
}

/// The ICMP echo payload internal hosts sent to each external destination
/// (the ICMP term of [`channel_bounds`]), gathered as flows pass.
#[derive(Default)]
pub struct IcmpChannels {
    sent: BTreeMap<(IpAddr, IpAddr), u64>,
}

impl IcmpChannels {
    pub fn observe(&mut self, f: &Flow, ob: Option<Outbound>) {
        let Some(s) = &f.icmp else { return };
        let Some((host, dest, _, _, host_is_orig)) = ob else {
            return;
        };
        *self.sent.entry((host, dest)).or_default() += if host_is_orig {
            s.request_payload
        } else {
            s.reply_payload
        };
    }

    pub fn merge(&mut self, o: IcmpChannels) {
        rules::merge_map(&mut self.sent, o.sent, |a, b| *a += b);
    }
}

/// Per internal host, the DNS and ICMP terms of the upper bound (methodology §3.3).
pub fn channel_bounds(
    inp: &DetectInput<'_>,
    icmp: &IcmpChannels,
) -> BTreeMap<IpAddr, ChannelBound> {
    let mut m: BTreeMap<IpAddr, ChannelBound> = BTreeMap::new();
    for (((client, domain), agg), info) in inp.dns.iter().zip(inp.dns_info) {
        if inp.netscope.class(*client) != AddrClass::Internal
            || inp
                .allow
                .domains
                .iter()
                .any(|d| domain == d || domain.ends_with(&format!(".{d}")))
        {
            continue;
        }
        // Queries sent straight to external servers are already observed bytes;
        // what internal resolvers relay is not.
        if agg
            .servers
            .iter()
            .any(|s| inp.netscope.class(*s) == AddrClass::Internal)
        {
            m.entry(*client).or_default().dns_information_bytes += *info;
        }
    }
    for (&(host, dest), &bytes) in &icmp.sent {
        if !inp.allowed(dest) {
            m.entry(host).or_default().icmp_payload_bytes += bytes;
        }
    }
    m
}
