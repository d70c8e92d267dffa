//! Findings become evidence and a verdict on the claim "no customer data left
//! the network". Deterministic and rule-based (docs/verdict.md has the table):
//!
//! 1. CONTRADICTED when a host in scope sent more than the threshold of
//!    application bytes to destinations not on the allowlist within the window.
//! 2. Otherwise INCONCLUSIVE when any coverage condition fails: an input could not
//!    be read completely, the captures do not cover the window, a host in scope
//!    never appears, the capture reports dropped packets, or it is one-sided.
//! 3. Otherwise SUPPORTED, always worded as "no evidence found in the examined
//!    captures", with the observed outbound bytes stated.

use crate::attribution::netscope::Allowlist;
use crate::attribution::{FrameRef, Ledger};
use crate::detect::{Finding, Severity};
use crate::input::InputSummary;
use crate::model::{Flow, Ts, fmt_rfc3339};
use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Supported,
    Contradicted,
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Supported => "SUPPORTED",
            Verdict::Contradicted => "CONTRADICTED",
            Verdict::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// What a reason does to the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Shows exfiltration-consistent transfer from a host in scope.
    Contradicts,
    /// A coverage failure: the evidence cannot support the claim.
    Inconclusive,
    /// Stated for the reader; does not change the verdict.
    Note,
}

/// Where the packets behind a reason are, and how to see them in Wireshark.
#[derive(Clone, Debug, Serialize)]
pub struct Reference {
    pub input: usize,
    pub file: String,
    pub first_frame: u64,
    pub last_frame: u64,
    pub display_filter: String,
}

/// One reason for (or note on) the verdict. Data only; writers render it.
#[derive(Clone, Debug, Serialize)]
pub struct Reason {
    /// Stable code, e.g. `OUTBOUND_ABOVE_THRESHOLD`, `INPUT_FAILED`, `DETECTOR_FIRED`.
    pub code: &'static str,
    /// For detector reasons: the detector's code and name, e.g. `D7 dns_tunnel`.
    pub detector: Option<String>,
    pub effect: Effect,
    pub host: Option<IpAddr>,
    pub destination: Option<IpAddr>,
    pub bytes: Option<u64>,
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub first_ts: Option<Ts>,
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub last_ts: Option<Ts>,
    /// Plain-language statement (English).
    pub text: String,
    /// The same in German.
    pub text_de: String,
    pub references: Vec<Reference>,
}

impl Reason {
    fn new(code: &'static str, effect: Effect, text: String, text_de: String) -> Self {
        Reason {
            code,
            detector: None,
            effect,
            host: None,
            destination: None,
            bytes: None,
            first_ts: None,
            last_ts: None,
            text,
            text_de,
            references: Vec::new(),
        }
    }
    fn with_host(mut self, h: IpAddr) -> Self {
        self.host = Some(h);
        self
    }
    fn with_host_opt(mut self, h: Option<IpAddr>) -> Self {
        self.host = h;
        self
    }
    fn with_destination(mut self, d: IpAddr) -> Self {
        self.destination = Some(d);
        self
    }
    fn with_destination_opt(mut self, d: Option<IpAddr>) -> Self {
        self.destination = d;
        self
    }
    fn with_bytes(mut self, b: u64) -> Self {
        self.bytes = Some(b);
        self
    }
    fn with_bytes_opt(mut self, b: Option<u64>) -> Self {
        self.bytes = b;
        self
    }
    fn with_first_ts(mut self, t: Ts) -> Self {
        self.first_ts = Some(t);
        self
    }
    fn with_first_ts_opt(mut self, t: Option<Ts>) -> Self {
        self.first_ts = t;
        self
    }
    fn with_last_ts(mut self, t: Ts) -> Self {
        self.last_ts = Some(t);
        self
    }
    fn with_last_ts_opt(mut self, t: Option<Ts>) -> Self {
        self.last_ts = t;
        self
    }
    fn with_references(mut self, r: Vec<Reference>) -> Self {
        self.references = r;
        self
    }
}

/// Settings the verdict depends on.
#[derive(Clone, Debug)]
pub struct VerdictInputs<'a> {
    pub scope: &'a [IpNet],
    pub scope_given: bool,
    pub threshold: u64,
    pub window: Option<(Ts, Ts)>,
    pub window_given: bool,
    /// Largest silence between capture files tolerated inside the window.
    pub max_gap: Ts,
    /// Materiality M: the smallest volume that would matter (methodology §3.3).
    pub materiality: u64,
    pub materiality_source: &'static str,
    /// Declared egress points and how each is observed (input path part or interface name).
    pub egress: &'a [(String, String)],
    /// Link capacity in bytes per second, if the case states it.
    pub capacity: Option<u64>,
    /// DNS and ICMP channel terms per internal host.
    pub channels: &'a std::collections::BTreeMap<IpAddr, crate::detect::ChannelBound>,
    /// Baseline inputs that could not be read completely: (path, message).
    pub baseline_failures: &'a [(String, String)],
    /// Internal transfers: (sender, receiver) → (application bytes, first start).
    pub internal_transfers: &'a std::collections::BTreeMap<(IpAddr, IpAddr), (u64, Ts)>,
}

/// The largest flow (in packets) that leaves no sample with probability at
/// least 5 % at 1-in-N sampling: the largest k with (1 - 1/N)^k >= 0.05
/// (about 3N, methodology 3.3).
pub fn zero_sample_packets(n: u32) -> u64 {
    if n <= 1 {
        return 0;
    }
    let p = 1.0 - 1.0 / f64::from(n);
    (0.05f64.ln() / p.ln()).floor() as u64
}

/// One-sided 95 % normal quantile for the sampling term.
const Z95: f64 = 1.645;

/// A coverage gate (methodology §3.1) with its figure.
#[derive(Clone, Debug, Serialize)]
pub struct GateResult {
    pub id: &'static str,
    pub name: &'static str,
    /// PASS, FLAG, FAIL or N/A.
    pub status: &'static str,
    pub figure: String,
}

/// U(H,W): the most that host H could have sent to non-allowlisted destinations
/// within the window, term by term (methodology §3.3). `total` is None when
/// unbounded (a declared egress point was not observed).
#[derive(Clone, Debug, Serialize)]
pub struct UpperBound {
    pub host: IpAddr,
    /// Observed application bytes (TCP sequence span, so capture gaps inside flows count).
    pub observed: u64,
    /// Sampling term z·sqrt(Var) (one-sided 95 %, z = 1.645) of the
    /// Horvitz-Thompson estimate in `observed`; 0 for unsampled data.
    pub sampling: u64,
    /// Largest sampling interval among the host's flow records (1 = unsampled).
    pub sampling_interval: u32,
    /// Rate × unobserved time of the window.
    pub gap: u64,
    /// Packets the capturing system dropped × 1,500 bytes.
    pub loss: u64,
    pub dns_information: u64,
    pub icmp_payload: u64,
    pub total: Option<u64>,
    /// Bytes to allowlisted multi-tenant services, stated beside the bound.
    pub multi_tenant: u64,
    pub rate_bytes_per_s: f64,
    pub rate_source: &'static str,
}

/// An interval of the window without observed packets.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Gap {
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub start: Ts,
    #[serde(serialize_with = "crate::model::ser_ts")]
    pub end: Ts,
    pub seconds: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Coverage {
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub window_start: Option<Ts>,
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub window_end: Option<Ts>,
    pub window_source: &'static str,
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub first_packet: Option<Ts>,
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub last_packet: Option<Ts>,
    /// Nanoseconds of the window in which packets were observed (window minus gaps).
    pub covered_ns: i64,
    pub window_ns: i64,
    /// Unobserved intervals inside the window.
    pub gaps: Vec<Gap>,
    pub inputs_total: usize,
    pub inputs_failed: usize,
    pub dropped_packets: Option<u64>,
    pub truncated_packets: u64,
    pub one_sided_tcp_flows: u64,
    pub two_sided_tcp_flows: u64,
    pub scope_hosts_unseen: Vec<String>,
    pub gates: Vec<GateResult>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Assessment {
    pub verdict: Verdict,
    pub headline: String,
    pub headline_de: String,
    pub reasons: Vec<Reason>,
    pub coverage: Coverage,
    /// Application bytes hosts in scope sent to non-allowlisted external destinations.
    pub observed_out_unallowed: u64,
    /// The same in IP bytes (headers and retransmissions included).
    pub observed_out_unallowed_ip: u64,
    pub materiality_bytes: u64,
    pub materiality_source: &'static str,
    /// U(H,W) per host in scope.
    pub upper_bounds: Vec<UpperBound>,
}

/// Rate assumed for unobserved time when the case states no link capacity: 1 Gbit/s.
pub const DEFAULT_RATE: f64 = 125_000_000.0;

/// Shortest intra-file silence that can count as a gap.
pub const MIN_SILENCE: Ts = 5 * crate::model::NS_PER_SEC;
/// A silence counts when it exceeds this multiple of the file's p99 inter-packet gap.
pub const SILENCE_FACTOR: i64 = 8;
/// ... or when it is this many times longer than every shorter silence of the file
/// (short captures, where a p99 is not yet meaningful).
pub const STANDOUT_FACTOR: i64 = 4;

pub fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", U[i])
}

fn in_scope(ip: IpAddr, v: &VerdictInputs<'_>, internal_seen: bool) -> bool {
    if v.scope_given {
        v.scope.iter().any(|n| n.contains(&ip))
    } else {
        internal_seen
    }
}

fn is_local_only(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local(),
        IpAddr::V6(a) => a.is_loopback() || (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

fn display_filter(host: IpAddr, dest: IpAddr) -> String {
    let f = |ip: IpAddr| match ip {
        IpAddr::V4(_) => "ip",
        IpAddr::V6(_) => "ipv6",
    };
    format!("{}.src=={host} && {}.dst=={dest}", f(host), f(dest))
}

/// Encrypted service ports (C5: bytes whose content cannot be inspected).
const OPAQUE_PORTS: [u16; 11] = [443, 22, 853, 500, 4500, 1194, 51820, 8443, 993, 995, 465];

/// What the verdict needs from the flows, gathered as they pass (mergeable).
#[derive(Clone, Debug, Default)]
pub struct FlowFacts {
    /// Per scope network (in the order given): whether an outer flow touched it.
    scope_seen: Vec<bool>,
    /// TCP flows of two or more packets with packets in one direction / in both.
    one_sided: u64,
    two_sided: u64,
    /// Fastest outer flow: application bytes of its larger direction per second.
    peak_rate: f64,
    /// TCP sequence-space bytes and the part never captured (outer flows).
    seq_bytes: u64,
    missed_bytes: u64,
    /// Per (originator, responder) on an encrypted service port: originator bytes.
    opaque: std::collections::HashMap<(IpAddr, IpAddr), u64, foldhash::fast::FixedState>,
    /// IP bytes of outer flows, and of those whose originator is only the first packet.
    first_only_ip_bytes: u64,
    outer_ip_bytes: u64,
}

impl FlowFacts {
    pub fn new(scope: &[IpNet]) -> Self {
        FlowFacts {
            scope_seen: vec![false; scope.len()],
            ..Default::default()
        }
    }

    pub fn observe(&mut self, scope: &[IpNet], f: &Flow) {
        if f.key.depth != 0 {
            return;
        }
        for (seen, net) in self.scope_seen.iter_mut().zip(scope) {
            *seen |= net.contains(&f.orig.ip) || net.contains(&f.resp.ip);
        }
        if f.tcp_state.is_some() {
            if f.orig_stats.pkts + f.resp_stats.pkts >= 2 {
                if f.orig_stats.pkts == 0 || f.resp_stats.pkts == 0 {
                    self.one_sided += 1;
                } else {
                    self.two_sided += 1;
                }
            }
            self.seq_bytes += f.orig_stats.bytes + f.resp_stats.bytes;
            self.missed_bytes += f.orig_stats.missed_bytes + f.resp_stats.missed_bytes;
        }
        let d = ((f.last_ts - f.first_ts) as f64 / 1e9).max(1.0);
        let rate = f.orig_stats.bytes.max(f.resp_stats.bytes) as f64 / d;
        self.peak_rate = self.peak_rate.max(rate);
        if OPAQUE_PORTS.contains(&f.resp.port) {
            *self.opaque.entry((f.orig.ip, f.resp.ip)).or_default() += f.orig_stats.bytes;
        }
        let ip = f.orig_stats.ip_bytes + f.resp_stats.ip_bytes;
        self.outer_ip_bytes += ip;
        if f.direction == crate::model::DirectionReason::First {
            self.first_only_ip_bytes += ip;
        }
    }

    // Order-free: sums, maxima and ORs.
    #[allow(clippy::iter_over_hash_type)]
    pub fn merge(&mut self, o: FlowFacts) {
        for (a, b) in self.scope_seen.iter_mut().zip(o.scope_seen) {
            *a |= b;
        }
        self.one_sided += o.one_sided;
        self.two_sided += o.two_sided;
        self.peak_rate = self.peak_rate.max(o.peak_rate);
        self.seq_bytes += o.seq_bytes;
        self.missed_bytes += o.missed_bytes;
        for (k, b) in o.opaque {
            *self.opaque.entry(k).or_default() += b;
        }
        self.first_only_ip_bytes += o.first_only_ip_bytes;
        self.outer_ip_bytes += o.outer_ip_bytes;
    }
}

/// What the inputs are, as the verdict's sentences name them: captures, flow
/// records, or both (English; German nominative and dative plural).
struct Evidence {
    en: &'static str,
    de_nom: &'static str,
    de_dat: &'static str,
    /// "Nothing covers this time" (English, German), with two `{}` for the times.
    gap_en: &'static str,
    gap_de: &'static str,
    /// "The data was recorded elsewhere" (English, German).
    elsewhere_en: &'static str,
    elsewhere_de: &'static str,
}

impl Evidence {
    fn of(inputs: &[InputSummary]) -> Self {
        let flows = inputs.iter().any(|s| s.flow_records > 0);
        let captures = inputs.iter().any(|s| s.flow_records == 0 && s.packets > 0);
        match (captures, flows) {
            (false, true) => Evidence {
                en: "flow records",
                de_nom: "Flow-Datensätze",
                de_dat: "Flow-Datensätzen",
                gap_en: "no flow record covers",
                gap_de: "Kein Flow-Datensatz deckt",
                elsewhere_en: "the flow records are from elsewhere",
                elsewhere_de: "die Flow-Datensätze stammen von anderswo",
            },
            (true, true) => Evidence {
                en: "captures and flow records",
                de_nom: "Mitschnitte und Flow-Datensätze",
                de_dat: "Mitschnitten und Flow-Datensätzen",
                gap_en: "no packet or flow record covers",
                gap_de: "Weder Mitschnitt noch Flow-Datensatz deckt",
                elsewhere_en: "the data is from elsewhere",
                elsewhere_de: "die Daten stammen von anderswo",
            },
            _ => Evidence {
                en: "captures",
                de_nom: "Mitschnitte",
                de_dat: "Mitschnitten",
                gap_en: "no packet was captured from",
                gap_de: "Kein Mitschnitt deckt",
                elsewhere_en: "the capture is from elsewhere",
                elsewhere_de: "der Mitschnitt stammt von anderswo",
            },
        }
    }
}

/// Decides the verdict.
pub fn assess(
    v: &VerdictInputs<'_>,
    inputs: &[InputSummary],
    ledger: &Ledger,
    facts: &FlowFacts,
    findings: &[Finding],
    allow: &Allowlist,
) -> Assessment {
    let mut reasons = Vec::new();
    let file = |i: usize| inputs.get(i).map(|s| s.path.clone()).unwrap_or_default();
    let ev = Evidence::of(inputs);

    // --- Outbound from hosts in scope -----------------------------------------
    let mut observed = 0u64;
    let mut observed_ip = 0u64;
    // Each host's non-allowlisted outbound pairs, in ledger order (grouped once:
    // many hosts over the threshold must not each scan every pair).
    let mut pairs_of: std::collections::HashMap<IpAddr, Vec<&crate::attribution::PairRow>> =
        std::collections::HashMap::new();
    for p in &ledger.pairs {
        if p.allowed_by.is_none() && p.out.bytes > 0 {
            pairs_of.entry(p.host).or_default().push(p);
        }
    }
    for h in &ledger.hosts {
        if !in_scope(h.host, v, true) {
            continue;
        }
        observed += h.out_unallowed.bytes;
        observed_ip += h.out_unallowed.ip_bytes;
        if h.out_unallowed.bytes > v.threshold {
            let pairs: &[&crate::attribution::PairRow] =
                pairs_of.get(&h.host).map_or(&[], |v| v.as_slice());
            let top = pairs.first().map(|p| p.dest);
            let dests: Vec<String> = pairs
                .iter()
                .take(3)
                .map(|p| format!("{} ({})", p.dest, human(p.out.bytes)))
                .collect();
            let references = pairs
                .iter()
                .take(5)
                .flat_map(|p| {
                    p.frames.iter().map(
                        move |FrameRef {
                                  input,
                                  first_frame,
                                  last_frame,
                              }| Reference {
                            input: *input,
                            file: file(*input),
                            first_frame: *first_frame,
                            last_frame: *last_frame,
                            display_filter: display_filter(p.host, p.dest),
                        },
                    )
                })
                .collect();
            reasons.push(
                Reason::new("OUTBOUND_ABOVE_THRESHOLD", Effect::Contradicts, format!(
                    "host {} sent {} ({} bytes) to destinations not on the allowlist, above the threshold of {}: {}",
                    h.host,
                    human(h.out_unallowed.bytes),
                    h.out_unallowed.bytes,
                    human(v.threshold),
                    dests.join(", ")
                ), format!(
                    "Host {} hat {} ({} Bytes) an nicht freigegebene Ziele gesendet, mehr als der Schwellenwert von {}: {}",
                    h.host,
                    human(h.out_unallowed.bytes),
                    h.out_unallowed.bytes,
                    human(v.threshold),
                    dests.join(", ")
                ))
                    .with_host(h.host)
                    .with_destination_opt(top)
                    .with_bytes(h.out_unallowed.bytes)
                    .with_first_ts(h.first_ts)
                    .with_last_ts(h.last_ts)
                    .with_references(references),
            );
        } else if h.out_unallowed.bytes > 0 {
            reasons.push(
                Reason::new("OUTBOUND_BELOW_THRESHOLD", Effect::Note, format!(
                    "host {} sent {} bytes to destinations not on the allowlist, at or below the threshold of {}",
                    h.host,
                    h.out_unallowed.bytes,
                    human(v.threshold)
                ), format!(
                    "Host {} hat {} Bytes an nicht freigegebene Ziele gesendet, höchstens der Schwellenwert von {}",
                    h.host,
                    h.out_unallowed.bytes,
                    human(v.threshold)
                ))
                    .with_host(h.host)
                    .with_bytes(h.out_unallowed.bytes)
                    .with_first_ts(h.first_ts)
                    .with_last_ts(h.last_ts),
            );
        }
    }

    // --- Allowlisted shared services -------------------------------------------
    // Uploads to a multi-tenant allowlist entry (cloud storage, SaaS) cannot be told
    // apart from uploads to an attacker's tenant of the same service (methodology C9).
    for p in &ledger.pairs {
        let Some(entry) = &p.allowed_by else { continue };
        if !allow.multi_tenant.contains(entry)
            || !in_scope(p.host, v, true)
            || p.out.bytes <= v.threshold
        {
            continue;
        }
        reasons.push(
            Reason::new("MULTI_TENANT_UPLOAD", Effect::Inconclusive, format!(
                "host {} sent {} to {} ({entry}), an allowlisted shared service: network data cannot tell the organisation's tenant from an attacker's",
                p.host,
                human(p.out.bytes),
                p.dest
            ), format!(
                "Host {} hat {} an {} ({entry}) gesendet, einen freigegebenen, von vielen Kunden genutzten Dienst: Netzwerkdaten können den eigenen Mandanten nicht von dem eines Angreifers unterscheiden",
                p.host,
                human(p.out.bytes),
                p.dest
            ))
                .with_host(p.host)
                .with_destination(p.dest)
                .with_bytes(p.out.bytes)
                .with_first_ts(p.first_ts)
                .with_last_ts(p.last_ts)
                .with_references(p
                .frames
                .iter()
                .map(|f| Reference {
                    input: f.input,
                    file: file(f.input),
                    first_frame: f.first_frame,
                    last_frame: f.last_frame,
                    display_filter: display_filter(p.host, p.dest),
                })
                .collect()),
        );
    }

    // --- Detector findings ------------------------------------------------------
    for f in findings {
        // A host outside the scope that received data from a host in scope before
        // it fired is a staging host feeding the exfiltration (methodology §3.2).
        let feeder = if in_scope(f.host, v, true) {
            None
        } else {
            v.internal_transfers
                .iter()
                .filter(|((from, to), (b, t))| {
                    *to == f.host
                        && in_scope(*from, v, true)
                        && *b >= crate::detect::rules::staging::SOURCE_BYTES
                        && *t <= f.last_ts
                })
                .map(|((from, _), (b, _))| (*from, *b))
                .max_by_key(|x| x.1)
        };
        let scoped =
            in_scope(f.host, v, true) || (f.severity == Severity::Fire && feeder.is_some());
        let (code, effect) = match (f.severity, scoped) {
            (Severity::Fire, true) => ("DETECTOR_FIRED", Effect::Contradicts),
            (Severity::Fire, false) => ("EXFIL_PATTERN_OUT_OF_SCOPE", Effect::Inconclusive),
            (Severity::Flag, _) => ("DETECTOR_FLAGGED", Effect::Note),
        };
        let (text, text_de) = if let (true, Some((from, b))) = (scoped, feeder) {
            (
                format!("staging host fed by {from} ({b} bytes): {}", f.text),
                format!(
                    "Zwischenlager, gespeist von {from} ({b} Bytes): {}",
                    f.text_de
                ),
            )
        } else if scoped || f.severity == Severity::Flag {
            (f.text.clone(), f.text_de.clone())
        } else {
            (
                format!(
                    "exfiltration-consistent activity from a host outside the scope: {}",
                    f.text
                ),
                format!(
                    "Auf Datenabfluss hindeutende Aktivität eines Hosts außerhalb des Untersuchungsumfangs: {}",
                    f.text_de
                ),
            )
        };
        reasons.push(Reason {
            code,
            detector: Some(format!("{} {}", f.code, f.name)),
            effect,
            host: Some(f.host),
            destination: f.destination,
            bytes: Some(f.bytes),
            first_ts: Some(f.first_ts),
            last_ts: Some(f.last_ts),
            text,
            text_de,
            references: f
                .references
                .iter()
                .map(|r| Reference {
                    input: r.input,
                    file: file(r.input),
                    first_frame: r.first_frame,
                    last_frame: r.last_frame,
                    display_filter: r.display_filter.clone(),
                })
                .collect(),
        });
    }

    // --- Coverage ---------------------------------------------------------------
    let failed: Vec<&InputSummary> = inputs.iter().filter(|s| s.error.is_some()).collect();
    for s in &failed {
        let e = s.error.as_ref().expect("filtered");
        reasons.push(
            Reason::new("INPUT_FAILED", Effect::Inconclusive, format!(
                "input {} could not be read completely: {} at {}byte offset {}; {} packets before it were analysed",
                s.path,
                e.message,
                if e.decompressed { "decompressed " } else { "" },
                e.offset,
                s.packets
            ), format!(
                "Eingabe {} konnte nicht vollständig gelesen werden: {} bei {}Byte-Offset {}; {} Pakete davor wurden ausgewertet",
                s.path,
                e.message,
                if e.decompressed { "dekomprimiertem " } else { "" },
                e.offset,
                s.packets
            )),
        );
    }
    // An input's observed span: its flow records' span when it carries flow
    // records (export datagrams are sent after the flows they describe), else
    // its packets' span.
    let span_of = |s: &InputSummary| -> Option<(Ts, Ts)> {
        if s.flow_records > 0 {
            Some((s.records_first_ts?, s.records_last_ts?))
        } else {
            Some((s.first_ts?, s.last_ts?))
        }
    };
    for (path, msg) in v.baseline_failures {
        reasons.push(Reason::new(
            "BASELINE_INPUT_FAILED",
            Effect::Inconclusive,
            format!("baseline input {path} could not be read completely ({msg}): the baseline detectors compare against an incomplete normal period"),
            format!("Vergleichs-Eingabe {path} konnte nicht vollständig gelesen werden ({msg}): die Vergleichsdetektoren vergleichen mit einem unvollständigen Normalzeitraum"),
        ));
    }
    let first_packet = inputs.iter().filter_map(|s| span_of(s).map(|x| x.0)).min();
    let last_packet = inputs.iter().filter_map(|s| span_of(s).map(|x| x.1)).max();
    let (ws, we, wsrc) = match (v.window, first_packet, last_packet) {
        (Some((s, e)), _, _) => (
            Some(s),
            Some(e),
            if v.window_given { "given" } else { "case" },
        ),
        (None, Some(a), Some(b)) => (Some(a), Some(b), "inputs"),
        _ => (None, None, "none"),
    };
    // Union of per-file spans, clipped to the window; silences longer than max_gap are gaps.
    let mut spans: Vec<(Ts, Ts)> = inputs.iter().filter_map(span_of).collect();
    spans.sort();
    let mut gaps = Vec::new();
    let mut covered = 0i64;
    let mut window_ns = 0i64;
    if let (Some(ws), Some(we)) = (ws, we) {
        window_ns = we - ws;
        let mut cursor = ws;
        for (a, b) in &spans {
            let (a, b) = ((*a).max(ws), (*b).min(we));
            if b < a {
                continue;
            }
            if a > cursor {
                if a - cursor > v.max_gap {
                    gaps.push((cursor, a));
                } else {
                    covered += a - cursor;
                }
            }
            if b > cursor {
                covered += b - a.max(cursor);
                cursor = b;
            }
        }
        if we > cursor {
            if we - cursor > v.max_gap {
                gaps.push((cursor, we));
            } else {
                covered += we - cursor;
            }
        }
        if spans.is_empty() {
            gaps = vec![(ws, we)];
            covered = 0;
        }
    }
    // Silences inside a capture file: a gap counts when it is longer than five
    // minutes (methodology C2), or at least 5 s and more than 8 times the file's
    // 99th-percentile inter-packet gap (a hole in otherwise continuous traffic).
    if let (Some(ws), Some(we)) = (ws, we) {
        for s in inputs.iter().filter(|s| s.flow_records == 0) {
            let p99 = s.gap_p99_ns();
            // Silences longest first: the longest ones stand out when each is at least
            // STANDOUT_FACTOR times the next longer-than-usual one below the cut.
            let lens: Vec<Ts> = s.silences.iter().map(|(a, b)| b - a).collect();
            let mut standout = 0;
            for j in 0..lens.len().saturating_sub(1) {
                if lens[j] < MIN_SILENCE {
                    break;
                }
                if lens[j] >= STANDOUT_FACTOR * lens[j + 1] {
                    standout = j + 1;
                }
            }
            for (i, &(a, b)) in s.silences.iter().enumerate() {
                let g = b - a;
                let relative = g >= MIN_SILENCE
                    && (p99.is_some_and(|p| g > SILENCE_FACTOR * p) || i < standout);
                if (g > v.max_gap || relative) && b > ws && a < we {
                    let (a, b) = (a.max(ws), b.min(we));
                    if !gaps.iter().any(|&(x, y): &(Ts, Ts)| a < y && b > x) {
                        gaps.push((a, b));
                        covered -= b - a;
                    }
                }
            }
        }
        gaps.sort();
    }
    for (a, b) in &gaps {
        reasons.push(
            Reason::new(
                "WINDOW_NOT_COVERED",
                Effect::Inconclusive,
                format!(
                    "{} {} to {} ({:.1} s of the window)",
                    ev.gap_en,
                    fmt_rfc3339(*a),
                    fmt_rfc3339(*b),
                    (*b - *a) as f64 / 1e9
                ),
                format!(
                    "{} {} bis {} ab ({:.1} s des Zeitfensters)",
                    ev.gap_de,
                    fmt_rfc3339(*a),
                    fmt_rfc3339(*b),
                    (*b - *a) as f64 / 1e9
                ),
            )
            .with_first_ts(*a)
            .with_last_ts(*b),
        );
    }
    let total_packets: u64 = inputs.iter().map(|s| s.packets + s.flow_records).sum();
    if total_packets == 0 {
        reasons.push(Reason::new(
            "NO_PACKETS",
            Effect::Inconclusive,
            "the inputs contain no packets".into(),
            "Die Eingaben enthalten keine Pakete".into(),
        ));
    }
    // Hosts in scope that never appear.
    let mut unseen = Vec::new();
    if v.scope_given {
        for (k, net) in v.scope.iter().enumerate() {
            let seen = ledger.internal_hosts_seen.iter().any(|ip| net.contains(ip))
                || facts.scope_seen.get(k).copied().unwrap_or(false);
            if !seen {
                let s = if net.prefix_len() == net.max_prefix_len() {
                    net.addr().to_string()
                } else {
                    net.to_string()
                };
                unseen.push(s);
            }
        }
    } else if total_packets > 0
        && !ledger
            .internal_hosts_seen
            .iter()
            .any(|ip| !is_local_only(*ip))
    {
        // Link-local and loopback addresses are internal by default but never
        // reach the internet: without any other internal host, the internal
        // networks do not describe this capture.
        unseen.push(
            "(any internal host other than link-local or loopback: check --internal)".to_string(),
        );
    }
    for u in &unseen {
        reasons.push(
            Reason::new("SCOPE_HOST_UNSEEN", Effect::Inconclusive, format!("host in scope {u} never appears in the {}: its traffic was not observed", ev.en), format!("Host {u} aus dem Untersuchungsumfang kommt in den {} nicht vor: sein Verkehr wurde nicht beobachtet", ev.de_dat))
                .with_host_opt(u.parse().ok()),
        );
    }
    // Drops reported by the capturing system.
    let mut dropped: Option<u64> = None;
    for s in inputs {
        if let Some(d) = s.drops() {
            dropped = Some(dropped.unwrap_or(0) + d);
            if d > 0 {
                reasons.push(
                    Reason::new("PACKETS_DROPPED", Effect::Inconclusive, format!("capture {} reports {d} packets dropped by the capturing system (pcapng interface statistics)", s.path), format!("Mitschnitt {} meldet {d} vom Aufzeichnungssystem verworfene Pakete (pcapng-Schnittstellenstatistik)", s.path))
                        .with_first_ts_opt(s.first_ts)
                        .with_last_ts_opt(s.last_ts),
                );
            }
        }
    }
    // One-sided capture: TCP flows with packets in only one direction.
    let (one, two) = (facts.one_sided, facts.two_sided);
    if one > 0 && one >= two {
        reasons.push(
            Reason::new("ONE_SIDED_CAPTURE", Effect::Inconclusive, format!("the capture looks one-sided: {one} of {} TCP flows show packets in one direction only", one + two), format!("Der Mitschnitt wirkt einseitig: {one} von {} TCP-Verbindungen zeigen Pakete nur in einer Richtung", one + two)),
        );
    }
    let missing_exports: u64 = inputs.iter().map(|s| s.export_missing).sum();
    let undecodable: u64 = inputs.iter().map(|s| s.undecodable_records).sum();
    if undecodable > 0 {
        reasons.push(Reason::new(
            "FLOW_RECORDS_UNDECODABLE",
            Effect::Inconclusive,
            format!("{undecodable} flow-export data sets or records could not be decoded (their template never arrived, was malformed, or they lack addresses): the bytes they describe are unknown"),
            format!("{undecodable} Datensätze aus Flow-Exporten konnten nicht dekodiert werden (Template fehlt oder ist fehlerhaft, oder Adressen fehlen): die beschriebenen Bytes sind unbekannt"),
        ));
    }
    if missing_exports > 0 {
        reasons.push(
            Reason::new("FLOW_EXPORT_LOSS", Effect::Inconclusive, format!("the exporters' sequence numbers show {missing_exports} missing export messages or records: flows were lost before they reached the collector"), format!("Die Sequenznummern der Exporter zeigen {missing_exports} fehlende Exportnachrichten oder Datensätze: Flows gingen vor dem Kollektor verloren")),
        );
    }
    let all_ip = ledger.total_out.ip_bytes
        + ledger.total_in.ip_bytes
        + ledger.internal_bytes
        + ledger.external_only_bytes;
    if all_ip > 0 && ledger.external_only_bytes * 2 > all_ip {
        reasons.push(
            Reason::new("MOSTLY_EXTERNAL_TRAFFIC", Effect::Inconclusive, format!(
                "{:.0} % of the IP bytes flow between addresses outside the internal networks: {} or --internal is incomplete, so outbound bytes cannot be attributed",
                100.0 * ledger.external_only_bytes as f64 / all_ip as f64,
                ev.elsewhere_en
            ), format!(
                "{:.0} % der IP-Bytes fließen zwischen Adressen außerhalb der internen Netze: {} oder --internal ist unvollständig, ausgehende Bytes lassen sich nicht zuordnen",
                100.0 * ledger.external_only_bytes as f64 / all_ip as f64,
                ev.elsewhere_de
            ))
                .with_bytes(ledger.external_only_bytes),
        );
    }
    let truncated: u64 = inputs.iter().map(|s| s.truncated_packets).sum();
    if truncated > 0 {
        reasons.push(
            Reason::new("SNAPLEN_TRUNCATED", Effect::Note, format!("{truncated} packets were cut by the snapshot length; volumes still come from the IP headers, but names (SNI, DNS, HTTP Host) may be missing"), format!("{truncated} Pakete wurden durch die Snapshot-Länge gekürzt; Volumina stammen weiter aus den IP-Headern, Namen (SNI, DNS, HTTP-Host) können fehlen")),
        );
    }

    // --- Egress points (C3) -------------------------------------------------------
    let mut unobserved_egress = Vec::new();
    for (name, by) in v.egress {
        let seen = inputs.iter().any(|s| {
            s.packets + s.flow_records > 0
                && (s.path.contains(by.as_str())
                    || s.interfaces
                        .iter()
                        .any(|i| i.name.as_deref() == Some(by.as_str())))
        });
        if !seen {
            unobserved_egress.push(name.clone());
            reasons.push(
                Reason::new("EGRESS_UNOBSERVED", Effect::Inconclusive, format!("declared egress point {name} ({by}) is not in the examined {}: what left through it is unbounded", ev.en), format!("Der angegebene Ausgangspunkt {name} ({by}) ist in den untersuchten {} nicht enthalten: was darüber abfloss, ist unbegrenzt", ev.de_dat)),
            );
        }
    }

    // --- Upper bound U(H,W) ---------------------------------------------------------
    let gap_ns: i64 = gaps.iter().map(|(a, b)| b - a).sum();
    let dropped_total: u64 = inputs.iter().filter_map(InputSummary::drops).sum();
    // Rate cap for gap terms: the stated link capacity, else the fastest outbound
    // flow observed (bytes over duration, at least one second).
    let observed_peak = facts.peak_rate;
    let (rate, rate_source) = match v.capacity {
        Some(c) => (c as f64, "link capacity from the case file"),
        // Without a stated capacity, assume a 1 Gbit/s link (or the fastest flow seen,
        // if faster): a gap can hide a transfer the captures never show, so the rate
        // seen elsewhere in them is no bound.
        None => (
            observed_peak.max(DEFAULT_RATE),
            "assumed 1 Gbit/s link (no link_capacity in the case file)",
        ),
    };
    let scope_hosts: Vec<IpAddr> = {
        // Hosts that sent something out, and single-address scope entries; not every
        // internal address seen (a broadcast address is not a host).
        let mut hs: std::collections::BTreeSet<IpAddr> = ledger
            .hosts
            .iter()
            .map(|h| h.host)
            .filter(|h| in_scope(*h, v, true))
            .collect();
        if v.scope_given {
            hs.extend(
                v.scope
                    .iter()
                    .filter(|n| n.prefix_len() == n.max_prefix_len())
                    .map(|n| n.addr())
                    .filter(|a| ledger.internal_hosts_seen.contains(a)),
            );
        }
        hs.extend(v.channels.keys().copied().filter(|h| in_scope(*h, v, true)));
        hs.into_iter().collect()
    };
    let mut upper_bounds = Vec::new();
    let host_rows: std::collections::BTreeMap<IpAddr, &crate::attribution::HostRow> =
        ledger.hosts.iter().map(|r| (r.host, r)).collect();
    let mut mt_bytes: std::collections::BTreeMap<IpAddr, u64> = std::collections::BTreeMap::new();
    for p in &ledger.pairs {
        if p.allowed_by
            .as_ref()
            .is_some_and(|e| allow.multi_tenant.contains(e))
        {
            *mt_bytes.entry(p.host).or_insert(0) += p.out.bytes;
        }
    }
    for h in scope_hosts {
        let row = host_rows.get(&h);
        let observed = row.map_or(0, |r| r.out_unallowed.bytes);
        let multi_tenant: u64 = mt_bytes.get(&h).copied().into_iter().sum();
        let ch = v.channels.get(&h).copied().unwrap_or_default();
        let sampling = row.map_or(0, |r| (Z95 * r.out_unallowed_variance.sqrt()).ceil() as u64);
        let gap = (rate * gap_ns as f64 / 1e9).ceil() as u64;
        let loss = dropped_total.saturating_mul(1500);
        let total = if unobserved_egress.is_empty() {
            // ICMP payload to external hosts is already part of `observed`; the DNS
            // term counts only names relayed by internal resolvers (queries sent
            // straight out are observed bytes too).
            Some(observed + sampling + gap + loss + ch.dns_information_bytes)
        } else {
            None
        };
        upper_bounds.push(UpperBound {
            host: h,
            observed,
            sampling,
            sampling_interval: row.map_or(1, |r| r.max_sampling),
            gap,
            loss,
            dns_information: ch.dns_information_bytes,
            icmp_payload: ch.icmp_payload_bytes,
            total,
            multi_tenant,
            rate_bytes_per_s: rate,
            rate_source,
        });
    }
    upper_bounds.sort_by(|a, b| {
        b.total
            .unwrap_or(u64::MAX)
            .cmp(&a.total.unwrap_or(u64::MAX))
            .then(a.host.cmp(&b.host))
    });
    for u in &upper_bounds {
        if u.total.is_none_or(|t| t >= v.materiality && t > 0) {
            let t = u.total.map_or_else(
                || "unbounded".to_string(),
                |t| format!("{} ({t} bytes)", human(t)),
            );
            reasons.push(
                Reason::new("UPPER_BOUND_NOT_BELOW_MATERIALITY", Effect::Inconclusive, format!(
                    "within the examined evidence host {} could have sent up to {t} to non-allowlisted destinations (observed {}, unobserved time {}, drops {}, DNS {}, ICMP {}), not below the materiality of {}",
                    u.host, u.observed, u.gap, u.loss, u.dns_information, u.icmp_payload, human(v.materiality)
                ), format!(
                    "Nach den untersuchten Daten könnte Host {} bis zu {t} an nicht freigegebene Ziele gesendet haben (beobachtet {}, unbeobachtete Zeit {}, verworfene Pakete {}, DNS {}, ICMP {}), nicht unter der Wesentlichkeitsschwelle von {}",
                    u.host, u.observed, u.gap, u.loss, u.dns_information, u.icmp_payload, human(v.materiality)
                ))
                    .with_host(u.host)
                    .with_bytes_opt(u.total),
            );
        }
    }

    // --- Coverage gates C1-C10 (methodology §3.1) ------------------------------------
    let (seq_bytes, missed) = (facts.seq_bytes, facts.missed_bytes);
    let loss_share = if seq_bytes > 0 {
        missed as f64 / seq_bytes as f64
    } else {
        0.0
    };
    if loss_share > 0.10 {
        reasons.push(
            Reason::new("CAPTURE_LOSS", Effect::Inconclusive, format!(
                "{:.1} % of the TCP bytes were acknowledged or spanned but never captured ({missed} bytes): the sensor lost packets",
                loss_share * 100.0
            ), format!(
                "{:.1} % der TCP-Bytes wurden bestätigt oder überspannt, aber nie mitgeschnitten ({missed} Bytes): der Sensor hat Pakete verloren",
                loss_share * 100.0
            ))
                .with_bytes(missed),
        );
    }
    // Per originator and responder: bytes a host in scope sent on an encrypted
    // service port to a destination not on the allowlist.
    let allowed_dest: std::collections::BTreeSet<IpAddr> = ledger
        .destinations
        .iter()
        .filter(|d| d.allowed_by.is_some())
        .map(|d| d.dest)
        .collect();
    let mut opaque: u64 = 0;
    #[allow(clippy::iter_over_hash_type)] // a sum
    for (&(orig, resp), &b) in &facts.opaque {
        if in_scope(orig, v, ledger.internal_hosts_seen.contains(&orig))
            && !ledger.internal_hosts_seen.contains(&resp)
            && !allowed_dest.contains(&resp)
        {
            opaque += b;
        }
    }
    let first_only = facts.first_only_ip_bytes;
    let all_outer = facts.outer_ip_bytes;
    let invalid_ts: u64 = inputs
        .iter()
        .map(|s| s.weirds.get("invalid_timestamp"))
        .sum();
    let failed_n = inputs.iter().filter(|s| s.error.is_some()).count();
    let pct = |a: f64| format!("{:.1} %", a * 100.0);
    let gates = vec![
        GateResult {
            id: "C1",
            name: "input integrity",
            status: if failed_n > 0 || inputs.is_empty() {
                "FAIL"
            } else {
                "PASS"
            },
            figure: format!(
                "{} of {} inputs read completely; SHA-256 of each in the inventory",
                inputs.len() - failed_n,
                inputs.len()
            ),
        },
        GateResult {
            id: "C2",
            name: "time coverage",
            status: if gaps.is_empty() && window_ns >= 0 && total_packets > 0 {
                "PASS"
            } else {
                "FAIL"
            },
            figure: if total_packets == 0 {
                "no packets or flow records".to_string()
            } else {
                format!(
                    "{} of the window observed, {} gap(s)",
                    if window_ns > 0 {
                        pct(covered as f64 / window_ns as f64)
                    } else {
                        "100.0 %".into()
                    },
                    gaps.len()
                )
            },
        },
        GateResult {
            id: "C3",
            name: "egress points",
            status: if v.egress.is_empty() {
                "FLAG"
            } else if unobserved_egress.is_empty() {
                "PASS"
            } else {
                "FAIL"
            },
            figure: if v.egress.is_empty() {
                "no egress inventory declared in the case file: unobserved egress paths cannot be named".into()
            } else {
                format!(
                    "{} of {} declared egress points observed",
                    v.egress.len() - unobserved_egress.len(),
                    v.egress.len()
                )
            },
        },
        GateResult {
            id: "C4",
            name: "capture loss",
            status: if dropped.unwrap_or(0) > 0 || loss_share > 0.10 {
                "FAIL"
            } else if loss_share > 0.001 {
                "FLAG"
            } else {
                "PASS"
            },
            figure: format!(
                "{} packets dropped per capture statistics ({}); {} of TCP bytes never captured (ACK-above-gap)",
                dropped.unwrap_or(0),
                if dropped.is_some() {
                    "pcapng ISB"
                } else {
                    "not recorded in these files"
                },
                pct(loss_share)
            ),
        },
        GateResult {
            id: "C5",
            name: "snaplen truncation",
            status: if truncated > 0 { "FLAG" } else { "PASS" },
            figure: format!(
                "{truncated} packets cut by the snapshot length; volumes from IP headers stay valid, names may be missing"
            ),
        },
        {
            let recs: u64 = inputs.iter().map(|s| s.flow_records).sum();
            let missing: u64 = inputs.iter().map(|s| s.export_missing).sum();
            let undecodable: u64 = inputs.iter().map(|s| s.undecodable_records).sum();
            let csv_only = inputs
                .iter()
                .any(|s| s.flow_records > 0 && s.format.starts_with("nfdump-csv"));
            // nfcapd's own count of export packets it found missing by sequence
            // number (its judgement, not ours: see formats.md).
            let nfcapd_failures: u64 = inputs
                .iter()
                .map(|s| s.weirds.get("nfcapd_sequence_failures"))
                .sum();
            GateResult {
                id: "C6",
                name: "flow-export loss",
                status: if recs == 0 && undecodable == 0 && missing == 0 {
                    "N/A"
                } else if missing > 0 || undecodable > 0 {
                    "FAIL"
                } else if csv_only || nfcapd_failures > 0 {
                    "FLAG"
                } else {
                    "PASS"
                },
                figure: if recs == 0 && undecodable == 0 && missing == 0 {
                    "no flow exports among the inputs".into()
                } else {
                    format!(
                        "{recs} flow records; {missing} export messages/records missing by sequence number; {undecodable} undecodable (template never seen){}{}",
                        if csv_only {
                            "; CSV exports carry no sequence numbers, loss cannot be measured"
                        } else {
                            ""
                        },
                        if nfcapd_failures > 0 {
                            format!(
                                "; the collector (nfcapd) recorded {nfcapd_failures} sequence failures in its files: export packets may have been lost before they were stored (nfcapd also counts some exporters' IPFIX numbering as failures without loss)"
                            )
                        } else {
                            String::new()
                        }
                    )
                },
            }
        },
        {
            let sampling = inputs
                .iter()
                .map(|s| s.sampling_interval)
                .max()
                .unwrap_or(1);
            GateResult {
                id: "C7",
                name: "sampling",
                status: if sampling > 1 { "FLAG" } else { "PASS" },
                figure: if sampling > 1 {
                    let deterministic = inputs.iter().any(|s| s.deterministic_sampling);
                    let k = zero_sample_packets(sampling);
                    format!(
                        "flow exports sampled 1 in {sampling}{}: volumes are N x counted (Horvitz-Thompson) with a 95 % term in the bound; a flow of up to {k} packets (about {} at 1,500 bytes per packet) can leave no record at all (95 %){}",
                        if deterministic {
                            " (deterministic)"
                        } else {
                            ""
                        },
                        human(k.saturating_mul(1500)),
                        if deterministic {
                            "; deterministic 1-in-N sampling breaks the independence the confidence term assumes"
                        } else {
                            ""
                        }
                    )
                } else {
                    "unsampled".into()
                },
            }
        },
        GateResult {
            id: "C8",
            name: "direction ambiguity",
            status: if all_outer > 0 && first_only * 100 > all_outer {
                "FLAG"
            } else {
                "PASS"
            },
            figure: format!(
                "{} of IP bytes in flows whose originator is only the first packet seen",
                pct(if all_outer > 0 {
                    first_only as f64 / all_outer as f64
                } else {
                    0.0
                })
            ),
        },
        GateResult {
            id: "C9",
            name: "opaque channels",
            status: if opaque > 0 || upper_bounds.iter().any(|u| u.multi_tenant > 0) {
                "FLAG"
            } else {
                "PASS"
            },
            figure: format!(
                "{opaque} bytes from hosts in scope over encrypted services (TLS/SSH/VPN/DoT ports) to non-allowlisted destinations; {} to multi-tenant allowlisted services",
                upper_bounds.iter().map(|u| u.multi_tenant).sum::<u64>()
            ),
        },
        GateResult {
            id: "C10",
            name: "time base",
            status: if invalid_ts > 0 { "FLAG" } else { "PASS" },
            figure: format!(
                "{invalid_ts} invalid timestamps; clock offsets of the sensors are not recorded in the files"
            ),
        },
    ];

    let verdict = if reasons.iter().any(|r| r.effect == Effect::Contradicts) {
        Verdict::Contradicted
    } else if reasons.iter().any(|r| r.effect == Effect::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Supported
    };
    let (headline, headline_de) = match verdict {
        Verdict::Contradicted => {
            let n = reasons
                .iter()
                .filter(|r| r.effect == Effect::Contradicts)
                .count();
            (
                format!(
                    "The examined {} show outbound transfers consistent with exfiltration from hosts in scope ({n} finding(s); {} sent to destinations not on the allowlist). What was sent is not determined.",
                    ev.en,
                    human(observed)
                ),
                format!(
                    "Die untersuchten {} zeigen ausgehende Übertragungen von Hosts im Untersuchungsumfang, die auf einen Datenabfluss hindeuten ({n} Befund(e); {} an nicht freigegebene Ziele). Welche Daten übertragen wurden, ist damit nicht bestimmt.",
                    ev.de_nom,
                    human(observed)
                ),
            )
        }
        Verdict::Supported => {
            let u = upper_bounds
                .iter()
                .filter_map(|u| u.total)
                .max()
                .unwrap_or(0);
            (
                format!(
                    "No evidence of exfiltration was found in the examined {}; within their coverage at most {} ({u} bytes) could have left from hosts in scope, below the materiality of {}. Observed: {} ({observed} bytes) to destinations not on the allowlist.",
                    ev.en,
                    human(u),
                    human(v.materiality),
                    human(observed)
                ),
                format!(
                    "In den untersuchten {} wurden keine Hinweise auf einen Datenabfluss gefunden; im abgedeckten Bereich könnten höchstens {} ({u} Bytes) von Hosts im Untersuchungsumfang abgeflossen sein, unter der Wesentlichkeitsschwelle von {}. Beobachtet: {} ({observed} Bytes) an nicht freigegebene Ziele.",
                    ev.de_dat,
                    human(u),
                    human(v.materiality),
                    human(observed)
                ),
            )
        }
        Verdict::Inconclusive => (
            format!(
                "The examined {} can neither confirm nor rule out data exfiltration; the reasons are listed below.",
                ev.en
            ),
            format!(
                "Die untersuchten {} können einen Datenabfluss weder bestätigen noch ausschließen; die Gründe sind unten aufgeführt.",
                ev.de_nom
            ),
        ),
    };
    reasons.sort_by_key(|r| r.effect);
    Assessment {
        verdict,
        headline,
        headline_de,
        reasons,
        coverage: Coverage {
            window_start: ws,
            window_end: we,
            window_source: wsrc,
            first_packet,
            last_packet,
            covered_ns: covered,
            window_ns,
            gaps: gaps
                .iter()
                .map(|&(start, end)| Gap {
                    start,
                    end,
                    seconds: (end - start) as f64 / 1e9,
                })
                .collect(),
            inputs_total: inputs.len(),
            inputs_failed: failed.len(),
            dropped_packets: dropped,
            truncated_packets: truncated,
            one_sided_tcp_flows: one,
            two_sided_tcp_flows: two,
            scope_hosts_unseen: unseen,
            gates,
        },
        observed_out_unallowed: observed,
        observed_out_unallowed_ip: observed_ip,
        materiality_bytes: v.materiality,
        materiality_source: v.materiality_source,
        upper_bounds,
    }
}
