//! Packets become bidirectional 5-tuple flows.
//!
//! The originator is taken from the SYN (or SYN-ACK), else from well-known
//! service ports (ICMP: request/reply types), else from the first packet, and
//! the reason is kept. TCP FIN/RST close a flow and a new SYN on a closed
//! 5-tuple opens a new one; idle timeouts (Zeek's defaults: TCP 5 min, others
//! 1 min) end flows. Long flows are never split by an active timeout.
//! Fragments: the first fragment gives the ports, later ones join its flow by IP
//! ID; a fragment whose first fragment never appears still counts, in a flow
//! with port 0. Tunnelled packets are recorded twice: the outer packet in its own
//! flow (the one the ledger counts) and the inner packet in an inner flow that
//! names its outer flow.

pub mod dedup;
pub mod features;
pub mod tcp;

use crate::decode::app::{self, Sni};
use crate::decode::netflow::{Collector, ExportState, FILE_EXPORTER, PORTS};
use crate::decode::{Decoded, Frag, IpPkt, L4, tcpflags};
use crate::diag::{Weird, Weirds};
use crate::model::FlowExtra;
use crate::model::Origin;
use crate::model::{
    DirStats, DirectionReason, Endpoint, Flow, FlowKey, NS_PER_SEC, NameObservation, SourceSpan,
    TcpSummary, Ts, proto,
};
use crate::model::{ExportInfo, FlowRecord, RecordTally};
use features::{DnsAgg, IcmpStats, registered_domain};
use foldhash::fast::FixedState;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use tcp::SeqSpace;

/// Zeek's `tcp_inactivity_timeout`.
pub const TCP_IDLE: Ts = 5 * 60 * NS_PER_SEC;
/// Zeek's `udp_inactivity_timeout` / `icmp_inactivity_timeout`.
pub const OTHER_IDLE: Ts = 60 * NS_PER_SEC;
/// How many client bytes are buffered per flow to find a TLS SNI or HTTP Host.
const APP_BUF_MAX: usize = 16 * 1024;
/// Bound on fragments waiting for their first fragment.
const MAX_PENDING_FRAGS: usize = 65_536;

/// Ports that a server uses (a packet *from* such a port is likely a response).
pub fn is_service_port(p: u16) -> bool {
    matches!(
        p,
        20 | 21
            | 22
            | 23
            | 25
            | 53
            | 67
            | 68
            | 69
            | 80
            | 88
            | 110
            | 111
            | 119
            | 123
            | 135
            | 137
            | 138
            | 139
            | 143
            | 161
            | 162
            | 179
            | 389
            | 443
            | 445
            | 465
            | 500
            | 514
            | 515
            | 554
            | 587
            | 631
            | 636
            | 853
            | 873
            | 989
            | 990
            | 993
            | 995
            | 1080
            | 1194
            | 1433
            | 1521
            | 1701
            | 1723
            | 1812
            | 1813
            | 1883
            | 1900
            | 2049
            | 2055
            | 2152
            | 3128
            | 3268
            | 3306
            | 3389
            | 3544
            | 4500
            | 4739
            | 4789
            | 5060
            | 5061
            | 5222
            | 5353
            | 5355
            | 5432
            | 5671
            | 5672
            | 5900
            | 5938
            | 6081
            | 6379
            | 6443
            | 6667
            | 8000
            | 8008
            | 8080
            | 8081
            | 8443
            | 8888
            | 9000
            | 9200
            | 9995
            | 9996
            | 11211
            | 27017
    )
}

/// ICMP request types and their reply types (v4, v6).
fn icmp_pair(v6: bool, t: u8) -> Option<(bool, u8)> {
    // (is_request, counterpart)
    let pairs: &[(u8, u8)] = if v6 {
        &[(128, 129), (133, 134), (135, 136), (130, 131), (139, 140)]
    } else {
        &[(8, 0), (13, 14), (15, 16), (17, 18), (10, 9)]
    };
    for &(req, rep) in pairs {
        if t == req {
            return Some((true, rep));
        }
        if t == rep {
            return Some((false, req));
        }
    }
    None
}

#[derive(Clone, Debug)]
enum AppState {
    /// Waiting for the first client payload.
    Start,
    /// Buffering a ClientHello or HTTP request head; `next` is the expected relative seq.
    Buffering {
        buf: Vec<u8>,
        next: u32,
    },
    Done,
}

#[derive(Clone, Debug)]
struct FlowState {
    key: FlowKey,
    orig: Endpoint,
    resp: Endpoint,
    reason: DirectionReason,
    first_ts: Ts,
    last_ts: Ts,
    first_frame: u64,
    last_frame: u64,
    stats: [DirStats; 2],
    seq: Option<Box<[SeqSpace; 2]>>,
    tcp: TcpSummary,
    parent: Option<usize>,
    app: AppState,
    sni: Option<String>,
    http_host: Option<String>,
    icmp: Option<Box<IcmpStats>>,
    app_proto: Option<&'static str>,
    /// Every packet so far was a NetFlow/IPFIX export datagram (the collector feed).
    export_only: Option<bool>,
}

impl FlowState {
    fn closed(&self) -> bool {
        self.tcp.rst || (self.tcp.orig_fin && self.tcp.resp_fin)
    }
}

type FragKey = (IpAddr, IpAddr, u8, u32, u8);

struct PendingFrag {
    ts: Ts,
    frame: u64,
    src: IpAddr,
    ip_len: u64,
    payload_len: u64,
    offset: u32,
}

/// Where a fragmented TCP segment's bytes go in sequence space: the first
/// fragment's sequence number and TCP header length.
#[derive(Clone, Copy)]
struct FragTarget {
    idx: usize,
    tcp: Option<(u32, u32)>,
}

/// The flows of one input, built packet by packet.
pub struct FlowTable {
    input: usize,
    map: HashMap<FlowKey, usize, FixedState>,
    flows: Vec<FlowState>,
    frags: HashMap<FragKey, FragTarget, FixedState>,
    pending: HashMap<FragKey, Vec<PendingFrag>, FixedState>,
    pending_count: usize,
    names: BTreeMap<(IpAddr, String, &'static str), (Ts, u64)>,
    dns: HashMap<(IpAddr, String), DnsAgg, FixedState>,
    collector: Collector,
    /// UDP ports whose datagrams are decoded as NetFlow/IPFIX exports.
    export_ports: Vec<u16>,
    default_sampling: u32,
    /// Flows made from export records as they arrive (one per record).
    record_flows: Vec<Flow>,
    /// Full blocks of `record_flows` (a vector that doubles would need up to
    /// twice the memory of millions of record flows; blocks are joined once,
    /// into a vector of the exact size).
    record_blocks: Vec<Vec<Flow>>,
    /// The records' number, time span and largest sampling interval.
    tally: RecordTally,
    pub weirds: Weirds,
}

/// Everything the flow stage learned from one input.
/// Record flows per block (about 6 MiB).
const RECORD_BLOCK: usize = 16_384;

pub struct FlowOutput {
    pub flows: Vec<Flow>,
    pub names: Vec<NameObservation>,
    /// DNS query statistics per (client, registered domain), sorted by key.
    pub dns: Vec<((IpAddr, String), DnsAgg)>,
    /// Flow records seen (exports), their time span, and export counters.
    pub records: u64,
    pub records_span: Option<(Ts, Ts)>,
    pub export_missing: u64,
    pub undecodable_records: u64,
    pub sampling: u32,
    /// An exporter announced deterministic 1-in-N sampling.
    pub deterministic_sampling: bool,
    /// Malformed export messages/templates/records and the first one's description.
    pub export_errors: u64,
    pub export_first_error: Option<(Origin, String)>,
    /// Templates and data still waiting for a template, for the merge.
    pub export: ExportState,
    pub weirds: Weirds,
}

impl FlowTable {
    pub fn new(input: usize) -> Self {
        FlowTable {
            input,
            map: HashMap::with_hasher(FixedState::default()),
            flows: Vec::new(),
            frags: HashMap::with_hasher(FixedState::default()),
            pending: HashMap::with_hasher(FixedState::default()),
            pending_count: 0,
            names: BTreeMap::new(),
            dns: HashMap::with_hasher(FixedState::default()),
            collector: Collector::default(),
            export_ports: PORTS.to_vec(),
            default_sampling: 1,
            record_flows: Vec::new(),
            record_blocks: Vec::new(),
            tally: RecordTally::default(),
            weirds: Weirds::default(),
        }
    }

    /// A flow record from an export (nfdump CSV, or decoded from NetFlow/IPFIX).
    /// An export record becomes its flow at once: the record itself is not kept.
    pub fn record(&mut self, r: FlowRecord) {
        let f = make_record_flow(r, self.default_sampling, self.input);
        self.tally.add(&f);
        if self.record_flows.len() == RECORD_BLOCK {
            let full = std::mem::replace(&mut self.record_flows, Vec::with_capacity(RECORD_BLOCK));
            self.record_blocks.push(full);
        }
        self.record_flows.push(f);
    }

    /// What turns a record into its flow as [`FlowTable::record`] does, for
    /// flows made elsewhere (rows made where the records are read); their
    /// records are then counted with [`FlowTable::add_records`].
    pub fn record_maker(&self) -> RecordMaker {
        RecordMaker {
            default_sampling: self.default_sampling,
            input: self.input,
        }
    }

    /// Counts records made into flows elsewhere (tallied as they were made).
    pub fn add_records(&mut self, t: &RecordTally) {
        self.tally.merge(t);
    }

    /// Flows made from export records so far (`flows` takes them as they come).
    #[inline]
    pub fn record_flows_len(&self) -> usize {
        self.record_flows.len()
    }

    pub fn record_flows_mut(&mut self) -> &mut Vec<Flow> {
        &mut self.record_flows
    }

    /// UDP ports whose datagrams are NetFlow/IPFIX exports (default: `PORTS`),
    /// and the sampling interval of records that announce none (`--sampling`).
    pub fn set_export_options(&mut self, ports: &[u16], default_sampling: u32) {
        self.export_ports = ports.to_vec();
        self.default_sampling = default_sampling.max(1);
    }

    /// One export message from an export file (no IP header: the exporter is
    /// unknown). Returns the records it (and held data it completes) decoded;
    /// the caller routes them like text flow records.
    pub fn export_message(&mut self, payload: &[u8], origin: Origin) -> Vec<FlowRecord> {
        let mut recs = Vec::new();
        self.collector
            .message(FILE_EXPORTER, false, payload, origin, &mut recs);
        recs.extend(self.collector.take_pending());
        recs
    }

    /// Adds one decoded packet.
    pub fn packet(&mut self, d: &Decoded<'_>, ts: Ts, frame: u64) {
        let outer = self.update(&d.outer, 0, None, ts, frame);
        if let (Some(inner), Some(parent)) = (&d.inner, outer) {
            self.update(inner, 1, Some(parent), ts, frame);
        }
    }

    fn ports(&mut self, p: &IpPkt<'_>) -> (u16, u16) {
        match p.l4 {
            L4::Tcp(t) => (t.sport, t.dport),
            L4::Udp { sport, dport, .. } | L4::PortsOnly { sport, dport, .. } => (sport, dport),
            L4::Icmp { v6, typ, code, .. } => match icmp_pair(v6, typ) {
                Some((true, rep)) => (u16::from(typ), u16::from(rep)),
                Some((false, req)) => (u16::from(typ), u16::from(req)),
                None => (u16::from(typ), u16::from(code)),
            },
            L4::None { .. } => (0, 0),
        }
    }

    /// Updates (or creates) the flow of packet `p`; returns its index.
    fn update(
        &mut self,
        p: &IpPkt<'_>,
        depth: u8,
        parent: Option<usize>,
        ts: Ts,
        frame: u64,
    ) -> Option<usize> {
        // Later fragments join the flow of their first fragment.
        if let Frag::Later { id, offset } = p.frag {
            let fk: FragKey = (p.src, p.dst, p.proto, id, depth);
            if let Some(&t) = self.frags.get(&fk) {
                let dir = usize::from(self.flows[t.idx].orig.ip != p.src);
                self.count(t.idx, dir, p, ts, frame);
                self.frag_seq(t, dir, offset, p.l4.payload_len());
                return Some(t.idx);
            }
            if self.pending_count >= MAX_PENDING_FRAGS {
                self.flush_pending();
            }
            self.pending.entry(fk).or_default().push(PendingFrag {
                ts,
                frame,
                src: p.src,
                ip_len: p.ip_len,
                payload_len: p.l4.payload_len(),
                offset,
            });
            self.pending_count += 1;
            return None;
        }
        let (sport, dport) = self.ports(p);
        let src = Endpoint {
            ip: p.src,
            port: sport,
        };
        let dst = Endpoint {
            ip: p.dst,
            port: dport,
        };
        let (key, _) = FlowKey::new(p.proto, depth, src, dst);
        let tcp = match p.l4 {
            L4::Tcp(t) => Some(t),
            _ => None,
        };
        let idle = if p.proto == proto::TCP {
            TCP_IDLE
        } else {
            OTHER_IDLE
        };
        let existing = self.map.get(&key).copied().filter(|&i| {
            let f = &self.flows[i];
            if ts - f.last_ts > idle {
                return false;
            }
            if let Some(t) = tcp {
                let syn_only = t.flags & (tcpflags::SYN | tcpflags::ACK) == tcpflags::SYN;
                if syn_only && f.closed() {
                    return false;
                }
            }
            true
        });
        let idx = match existing {
            Some(i) => i,
            None => {
                let (orig, resp, reason) = originator(p, src, dst);
                let idx = self.flows.len();
                self.flows.push(FlowState {
                    key,
                    orig,
                    resp,
                    reason,
                    first_ts: ts,
                    last_ts: ts,
                    first_frame: frame,
                    last_frame: frame,
                    stats: [DirStats::default(); 2],
                    seq: if p.proto == proto::TCP && tcp.is_some() {
                        Some(Box::default())
                    } else {
                        None
                    },
                    tcp: TcpSummary::default(),
                    parent,
                    app: if p.proto == proto::TCP {
                        AppState::Start
                    } else {
                        AppState::Done
                    },
                    sni: None,
                    http_host: None,
                    icmp: None,
                    app_proto: None,
                    export_only: None,
                });
                self.map.insert(key, idx);
                idx
            }
        };
        let dir = usize::from(self.flows[idx].orig != src);
        self.count(idx, dir, p, ts, frame);
        if let Some(t) = tcp {
            self.tcp_update(idx, dir, &t);
        }
        if self.flows[idx].export_only == Some(true) {
            let is_export =
                matches!(p.l4, L4::Udp { payload, .. } if Collector::looks_like(payload));
            if !is_export {
                self.flows[idx].export_only = Some(false);
            }
        }
        match p.l4 {
            L4::Udp {
                sport,
                dport,
                payload,
                ..
            } if depth == 0
                && (self.export_ports.contains(&dport) || self.export_ports.contains(&sport))
                && Collector::looks_like(payload) =>
            {
                let mut recs = Vec::new();
                let origin = Origin {
                    record: frame,
                    offset: None,
                };
                self.collector
                    .message(p.src, true, payload, origin, &mut recs);
                recs.extend(self.collector.take_pending());
                for r in recs {
                    self.record(r);
                }
                let f = &mut self.flows[idx];
                f.export_only = Some(f.export_only.unwrap_or(true));
            }
            L4::Udp {
                sport,
                dport,
                payload,
                ..
            } if sport == 53 || dport == 53 || sport == 5353 || dport == 5353 => {
                self.dns_packet(p, payload, sport == 53 || dport == 53, ts, frame);
            }
            L4::Icmp {
                v6,
                typ,
                id,
                seq,
                payload_len,
                payload,
                ..
            } => {
                let echo = if v6 { (128, 129) } else { (8, 0) };
                if typ == echo.0 || typ == echo.1 {
                    let f = &mut self.flows[idx];
                    f.icmp.get_or_insert_with(Box::default).echo(
                        typ == echo.0,
                        id,
                        seq,
                        payload_len,
                        payload,
                    );
                }
            }
            _ => {}
        }
        if let Frag::First { id } = p.frag {
            let fk: FragKey = (p.src, p.dst, p.proto, id, depth);
            let target = FragTarget {
                idx,
                // Data of a SYN segment starts one after its sequence number.
                tcp: tcp.map(|t| {
                    let syn = u32::from(t.flags & tcpflags::SYN != 0);
                    (t.seq.wrapping_add(syn), u32::from(t.hdr_len))
                }),
            };
            if self.frags.len() >= MAX_PENDING_FRAGS {
                self.frags.clear();
            }
            self.frags.insert(fk, target);
            if let Some(list) = self.pending.remove(&fk) {
                self.pending_count -= list.len();
                for pf in list {
                    let dir = usize::from(self.flows[idx].orig.ip != pf.src);
                    self.count_raw(idx, dir, pf.ip_len, pf.payload_len, pf.ts, pf.frame);
                    self.frag_seq(target, dir, pf.offset, pf.payload_len);
                }
            }
        }
        Some(idx)
    }

    /// Adds the data of a later fragment to its TCP segment's sequence range.
    fn frag_seq(&mut self, t: FragTarget, dir: usize, offset: u32, len: u64) {
        let Some((seq, hdr)) = t.tcp else { return };
        if let Some(s) = self.flows[t.idx].seq.as_mut() {
            let start = seq.wrapping_add(offset.wrapping_sub(hdr));
            s[dir].segment(start, len, false, false);
        }
    }

    fn dns_packet(&mut self, p: &IpPkt<'_>, payload: &[u8], unicast_dns: bool, ts: Ts, frame: u64) {
        let Some(m) = app::dns_message(payload) else {
            return;
        };
        for (ip, name) in m.answers {
            self.names.entry((ip, name, "dns")).or_insert((ts, frame));
        }
        if !unicast_dns {
            return;
        }
        if m.response {
            if let Some((q, _)) = m.questions.first() {
                let key = (p.dst, registered_domain(&q.to_ascii_lowercase()));
                let agg = self.dns.entry(key).or_default();
                agg.responses += 1;
                if m.nxdomain {
                    agg.nxdomain += 1;
                }
            }
        } else {
            for (q, qtype) in &m.questions {
                let lname = q.to_ascii_lowercase();
                let regdom = registered_domain(&lname);
                let agg = self.dns.entry((p.src, regdom.clone())).or_default();
                agg.query(
                    &lname, &regdom, *qtype, ts, self.input, frame, p.dst, p.ip_len,
                );
            }
        }
    }

    fn count(&mut self, idx: usize, dir: usize, p: &IpPkt<'_>, ts: Ts, frame: u64) {
        self.count_raw(idx, dir, p.ip_len, p.l4.payload_len(), ts, frame);
    }

    fn count_raw(
        &mut self,
        idx: usize,
        dir: usize,
        ip_len: u64,
        payload_len: u64,
        ts: Ts,
        frame: u64,
    ) {
        let f = &mut self.flows[idx];
        let s = &mut f.stats[dir];
        s.pkts += 1;
        s.ip_bytes += ip_len;
        s.payload_bytes += payload_len;
        if ts < f.first_ts {
            f.first_ts = ts;
        }
        if ts > f.last_ts {
            f.last_ts = ts;
        }
        f.first_frame = f.first_frame.min(frame);
        f.last_frame = f.last_frame.max(frame);
    }

    fn tcp_update(&mut self, idx: usize, dir: usize, t: &crate::decode::Tcp<'_>) {
        let syn = t.flags & tcpflags::SYN != 0;
        let fin = t.flags & tcpflags::FIN != 0;
        let ack = t.flags & tcpflags::ACK != 0;
        let f = &mut self.flows[idx];
        if let Some(seq) = f.seq.as_mut() {
            seq[dir].segment(t.seq, t.payload_len, syn, fin);
            if ack {
                seq[1 - dir].ack(t.ack);
            }
            if seq[dir].ranges.capped {
                seq[dir].ranges.capped = false;
                self.weirds.add(Weird::TcpSeqRangesCapped);
            }
        }
        if syn && !ack && dir == 0 {
            f.tcp.syn = true;
        }
        if syn && ack && dir == 1 {
            f.tcp.synack = true;
        }
        if fin {
            if dir == 0 {
                f.tcp.orig_fin = true;
            } else {
                f.tcp.resp_fin = true;
            }
        }
        if t.flags & tcpflags::RST != 0 {
            f.tcp.rst = true;
        }
        if dir == 0 && t.payload_len > 0 && !matches!(f.app, AppState::Done) {
            app_update(f, t);
        }
    }

    fn flush_pending(&mut self) {
        let mut keys: Vec<FragKey> = self.pending.keys().copied().collect();
        keys.sort();
        for fk in keys {
            let list = self.pending.remove(&fk).unwrap_or_default();
            for pf in list {
                self.weirds.add(Weird::FragmentWithoutFirst);
                let (src, dst) = if pf.src == fk.0 {
                    (fk.0, fk.1)
                } else {
                    (fk.1, fk.0)
                };
                let s = Endpoint { ip: src, port: 0 };
                let d = Endpoint { ip: dst, port: 0 };
                let (key, _) = FlowKey::new(fk.2, fk.4, s, d);
                let idx = match self.map.get(&key) {
                    Some(&i) => i,
                    None => {
                        let idx = self.flows.len();
                        self.flows.push(FlowState {
                            key,
                            orig: s,
                            resp: d,
                            reason: DirectionReason::First,
                            first_ts: pf.ts,
                            last_ts: pf.ts,
                            first_frame: pf.frame,
                            last_frame: pf.frame,
                            stats: [DirStats::default(); 2],
                            seq: None,
                            tcp: TcpSummary::default(),
                            parent: None,
                            app: AppState::Done,
                            sni: None,
                            http_host: None,
                            icmp: None,
                            app_proto: None,
                            export_only: None,
                        });
                        self.map.insert(key, idx);
                        idx
                    }
                };
                let dir = usize::from(self.flows[idx].orig.ip != pf.src);
                self.count_raw(idx, dir, pf.ip_len, pf.payload_len, pf.ts, pf.frame);
            }
        }
        self.pending_count = 0;
    }

    /// Finishes the table: flows in a deterministic order (start time, first frame, key).
    pub fn finish(mut self) -> FlowOutput {
        self.flush_pending();
        let parents: Vec<(FlowKey, Ts)> = self.flows.iter().map(|f| (f.key, f.first_ts)).collect();
        // The collector feed itself (flows made only of export datagrams) is not
        // traffic of the observed network; its records are.
        let carriers = self
            .flows
            .iter()
            .filter(|f| f.export_only == Some(true))
            .count() as u64;
        self.weirds.add_n("flow_export_feed_flows", carriers);
        self.flows.retain(|f| f.export_only != Some(true));
        let mut flows: Vec<Flow> = self
            .flows
            .into_iter()
            .map(|f| {
                let mut orig_stats = f.stats[0];
                let mut resp_stats = f.stats[1];
                match &f.seq {
                    Some(seq) => {
                        orig_stats.bytes = seq[0].size();
                        orig_stats.missed_bytes = seq[0].missed();
                        resp_stats.bytes = seq[1].size();
                        resp_stats.missed_bytes = seq[1].missed();
                    }
                    None => {
                        orig_stats.bytes = orig_stats.payload_bytes;
                        resp_stats.bytes = resp_stats.payload_bytes;
                    }
                }
                Flow {
                    key: f.key,
                    first_ts: f.first_ts,
                    last_ts: f.last_ts,
                    orig: f.orig,
                    resp: f.resp,
                    direction: f.reason,
                    orig_stats,
                    resp_stats,
                    span: SourceSpan {
                        input: self.input,
                        first_frame: f.first_frame,
                        last_frame: f.last_frame,
                    },
                    extra: FlowExtra {
                        tunnel_parent: f.parent.map(|i| parents[i]),
                        sni: f.sni,
                        http_host: f.http_host,
                    }
                    .boxed(),
                    tcp_state: f.seq.is_some().then_some(f.tcp),
                    icmp: f.icmp,
                    app_proto: f.app_proto,
                    export: None,
                }
            })
            .collect();
        let input = self.input;
        let names = self
            .names
            .into_iter()
            .map(|((ip, name, source), (ts, frame))| NameObservation {
                ip,
                name,
                source,
                first_ts: ts,
                input,
                frame,
            })
            .collect();
        let RecordTally {
            count: records,
            span: records_span,
            max_sampling: sampling,
        } = self.tally;
        let total = flows.len()
            + self.record_flows.len()
            + self.record_blocks.iter().map(Vec::len).sum::<usize>();
        flows.reserve_exact(total - flows.len());
        for mut b in self.record_blocks.drain(..) {
            flows.append(&mut b);
        }
        flows.append(&mut self.record_flows);
        flows.sort_unstable_by_key(Flow::order_key);
        let mut dns: Vec<((IpAddr, String), DnsAgg)> = self.dns.into_iter().collect();
        dns.sort_by(|a, b| a.0.cmp(&b.0));
        FlowOutput {
            flows,
            names,
            dns,
            records,
            records_span,
            export_missing: self.collector.missing,
            undecodable_records: self.collector.undecodable_records,
            sampling,
            deterministic_sampling: self.collector.deterministic_sampling,
            export_errors: self.collector.errors,
            export_first_error: self.collector.first_error.take(),
            export: self.collector.into_state(),
            weirds: self.weirds,
        }
    }
}

/// Flow records become flows, one per record: a record is what the exporter
/// saw of one direction, and keeping it whole keeps its record number for the
/// evidence. The flow is oriented towards the service port when one side has
/// it (the other direction's record of the same connection is a flow of its
/// own). Exporters count IP bytes, so `bytes` is the IP count (the application
/// bytes are not known) and payload bytes are 0.
pub fn records_to_flows(mut recs: Vec<FlowRecord>, input: usize) -> Vec<Flow> {
    recs.sort_by_key(|a| (a.start, a.record, a.src, a.dst));
    recs.into_iter().map(|r| record_to_flow(r, input)).collect()
}

/// Turns records into flows as a table does ([`FlowTable::record_maker`]).
#[derive(Clone, Copy, Debug)]
pub struct RecordMaker {
    default_sampling: u32,
    input: usize,
}

impl RecordMaker {
    #[inline(always)]
    pub fn flow(&self, r: FlowRecord) -> Flow {
        make_record_flow(r, self.default_sampling, self.input)
    }
}

/// A record's flow, records that announce no sampling taking the table's
/// default (`--sampling`).
#[inline(always)]
fn make_record_flow(mut r: FlowRecord, default_sampling: u32, input: usize) -> Flow {
    if r.sampling <= 1 {
        r.sampling = default_sampling;
    }
    record_to_flow(r, input)
}

/// One export record as a flow (see `records_to_flows`). Inlined: the flow
/// is then written straight into the caller's vector, not copied there.
#[inline(always)]
fn record_to_flow(r: FlowRecord, input: usize) -> Flow {
    let (key, _) = FlowKey::new(r.proto, 0, r.src, r.dst);
    let stats = DirStats {
        pkts: r.pkts,
        ip_bytes: r.bytes,
        payload_bytes: r.app_bytes.map_or(0, |a| a.0),
        bytes: r.app_bytes.map_or(r.bytes, |a| a.0),
        missed_bytes: r.missed,
    };
    let (s, d) = (is_service_port(r.src.port), is_service_port(r.dst.port));
    let bidirectional = r.rev_pkts > 0 || r.rev_bytes > 0 || r.app_bytes.is_some();
    let (orig, resp, reason, orig_stats, resp_stats) = if bidirectional {
        // The record names its originator (Zeek's decision): keep it.
        let back = DirStats {
            pkts: r.rev_pkts,
            ip_bytes: r.rev_bytes,
            payload_bytes: r.app_bytes.map_or(0, |a| a.1),
            bytes: r.app_bytes.map_or(r.rev_bytes, |a| a.1),
            missed_bytes: 0,
        };
        (r.src, r.dst, DirectionReason::First, stats, back)
    } else if s && !d {
        (
            r.dst,
            r.src,
            DirectionReason::Port,
            DirStats::default(),
            stats,
        )
    } else if d && !s {
        (
            r.src,
            r.dst,
            DirectionReason::Port,
            stats,
            DirStats::default(),
        )
    } else {
        (
            r.src,
            r.dst,
            DirectionReason::First,
            stats,
            DirStats::default(),
        )
    };
    let n = u64::from(r.sampling.max(1));
    let export = ExportInfo {
        exporter: r.exporter,
        sampling: r.sampling.max(1),
        counted_bytes: [orig_stats.ip_bytes, resp_stats.ip_bytes],
        counted_pkts: [orig_stats.pkts, resp_stats.pkts],
    };
    let scale = |d: DirStats| DirStats {
        pkts: d.pkts.saturating_mul(n),
        ip_bytes: d.ip_bytes.saturating_mul(n),
        payload_bytes: d.payload_bytes.saturating_mul(n),
        bytes: d.bytes.saturating_mul(n),
        missed_bytes: d.missed_bytes,
    };
    let (orig_stats, resp_stats) = (scale(orig_stats), scale(resp_stats));
    Flow {
        key,
        first_ts: r.start,
        last_ts: r.end,
        orig,
        resp,
        direction: reason,
        orig_stats,
        resp_stats,
        span: SourceSpan {
            input,
            first_frame: r.record,
            last_frame: r.record,
        },
        extra: None,
        tcp_state: None,
        icmp: None,
        app_proto: None,
        export: Some(export),
    }
}

/// Picks the originator of a new flow from its first packet.
fn originator(
    p: &IpPkt<'_>,
    src: Endpoint,
    dst: Endpoint,
) -> (Endpoint, Endpoint, DirectionReason) {
    match p.l4 {
        L4::Tcp(t) => {
            let syn = t.flags & tcpflags::SYN != 0;
            let ack = t.flags & tcpflags::ACK != 0;
            if syn && !ack {
                return (src, dst, DirectionReason::Syn);
            }
            if syn && ack {
                return (dst, src, DirectionReason::Synack);
            }
        }
        L4::Icmp { v6, typ, .. } => {
            return match icmp_pair(v6, typ) {
                Some((true, _)) => (src, dst, DirectionReason::Port),
                Some((false, _)) => (dst, src, DirectionReason::Port),
                None => (src, dst, DirectionReason::First),
            };
        }
        _ => {}
    }
    if !matches!(p.l4, L4::None { .. }) {
        let (s, d) = (is_service_port(src.port), is_service_port(dst.port));
        if s && !d {
            return (dst, src, DirectionReason::Port);
        }
        if d && !s {
            return (src, dst, DirectionReason::Port);
        }
        if !s && !d && src.port < 1024 && dst.port >= 1024 {
            return (dst, src, DirectionReason::Port);
        }
        if !s && !d && dst.port < 1024 && src.port >= 1024 {
            return (src, dst, DirectionReason::Port);
        }
    }
    (src, dst, DirectionReason::First)
}

/// Buffers the first client bytes of a TCP flow to find a TLS SNI or HTTP Host.
fn app_update(f: &mut FlowState, t: &crate::decode::Tcp<'_>) {
    let payload = t.payload;
    if payload.is_empty() {
        return;
    }
    match &mut f.app {
        AppState::Start => {
            if payload.starts_with(b"SSH-") {
                f.app_proto = Some("ssh");
                f.app = AppState::Done;
                return;
            }
            if payload[0] == 0x16 || app::is_http_request(payload) {
                f.app_proto = Some(if payload[0] == 0x16 { "tls" } else { "http" });
                let mut buf = Vec::with_capacity(payload.len().min(APP_BUF_MAX));
                buf.extend_from_slice(&payload[..payload.len().min(APP_BUF_MAX)]);
                let next = t.seq.wrapping_add(payload.len() as u32);
                f.app = AppState::Buffering { buf, next };
            } else {
                f.app = AppState::Done;
                return;
            }
        }
        AppState::Buffering { buf, next } => {
            if t.seq != *next {
                // Out of order or retransmitted: only contiguous bytes are used.
                return;
            }
            let room = APP_BUF_MAX - buf.len();
            buf.extend_from_slice(&payload[..payload.len().min(room)]);
            *next = t.seq.wrapping_add(payload.len() as u32);
        }
        AppState::Done => return,
    }
    let AppState::Buffering { buf, .. } = &f.app else {
        return;
    };
    let full = buf.len() >= APP_BUF_MAX;
    if buf[0] == 0x16 {
        match app::tls_sni(buf) {
            Sni::Name(n) => {
                f.sni = Some(n);
                f.app = AppState::Done;
            }
            Sni::NeedMore if !full => {}
            _ => f.app = AppState::Done,
        }
    } else {
        match app::http_host(buf) {
            Ok(h) => {
                f.http_host = h;
                f.app = AppState::Done;
            }
            Err(()) if !full => {}
            Err(()) => f.app = AppState::Done,
        }
    }
}
