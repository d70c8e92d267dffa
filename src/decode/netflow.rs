//! NetFlow v5 (Cisco), v9 (RFC 3954) and IPFIX (RFC 7011) export messages to flow
//! records. Templates and options templates are kept per (exporter, source id /
//! observation domain, template id) in a bounded cache; data sets whose template
//! has not been seen yet are held and decoded when it arrives (in this input, or,
//! at the end, from another input: `ExportState`); those still undecodable are
//! counted, never silently dropped. Enterprise fields are skipped by length,
//! except the RFC 5103 reverse counters (PEN 29305) of biflow records.
//! Delta counters (octetDeltaCount) are used as they are; total counters
//! (octetTotalCount) become deltas against the previous report of the same flow.

pub use crate::model::EXPORT_PORTS as PORTS;
use crate::model::{Endpoint, FlowRecord, NS_PER_SEC, Origin, Ts};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const MAX_TEMPLATES: usize = 4096;
const MAX_HELD: usize = 4096;
/// Flows whose last total counter is remembered (total-counter exporters).
const MAX_TOTALS: usize = 1 << 20;
/// Stands for the vendor of NetFlow v9 field types >= 32768 (no PEN in v9).
const VENDOR: u32 = u32::MAX;
/// RFC 5103 reverse information elements.
const PEN_REVERSE: u32 = 29305;
/// Largest record a template may describe: what fits in one message.
const MAX_RECORD: usize = 65_535 - 16 - 4;

/// The exporter address used for export files that carry no IP header (raw
/// NetFlow/IPFIX files): all of them share it, so their templates meet.
pub const FILE_EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[derive(Clone, Copy, Debug)]
struct Field {
    id: u16,
    /// 65535 = variable length (IPFIX).
    len: u16,
    /// Private enterprise number, 0 for IANA fields.
    pen: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Template {
    fields: Vec<Field>,
    /// Options templates: records are metadata, not flows.
    options: bool,
}

type TKey = (IpAddr, u32, u16);
/// Last sequence number and the (flow, options) record counts of that message.
type SeqState = (u32, (u32, u32));

#[derive(Clone)]
pub(crate) struct Held {
    key: TKey,
    data: Vec<u8>,
    base: Base,
    origin: Origin,
    exporter_known: bool,
}

#[derive(Clone, Copy)]
struct Base {
    /// Export time, ns.
    export_ns: Ts,
    /// v9: system uptime at export, ms.
    uptime_ms: u64,
}

/// Templates and waiting data sets of one input, handed to the merge so data
/// can be decoded with a template that arrived in another file.
#[derive(Default)]
pub struct ExportState {
    pub(crate) templates: BTreeMap<TKey, Template>,
    pub(crate) held: Vec<Held>,
    sampling: BTreeMap<(IpAddr, u32), u32>,
}

impl ExportState {
    pub fn held_sets(&self) -> usize {
        self.held.len()
    }

    /// Decodes the held sets of `self` with templates of `others` (earlier
    /// inputs first). Returns the records decoded, the sets (or records) still
    /// undecodable, and the malformed records found, with the first one.
    pub fn resolve(&mut self, others: &[&ExportState]) -> Resolved {
        let mut c = Collector::default();
        let mut out = Vec::new();
        let mut left = 0;
        for h in std::mem::take(&mut self.held) {
            let t = others.iter().find_map(|o| o.templates.get(&h.key));
            let Some(t) = t else {
                left += 1;
                continue;
            };
            c.templates.insert(h.key, t.clone());
            let samp = others
                .iter()
                .find_map(|o| o.sampling.get(&(h.key.0, h.key.1)))
                .copied();
            if let Some(s) = samp {
                c.sampling.insert((h.key.0, h.key.1), s);
            }
            c.data_set(&h, &mut out);
        }
        Resolved {
            records: out,
            undecodable: left + c.undecodable_records,
            errors: c.errors,
            first_error: c.first_error,
        }
    }
}

/// What `ExportState::resolve` decoded and could not.
pub struct Resolved {
    pub records: Vec<FlowRecord>,
    pub undecodable: u64,
    pub errors: u64,
    pub first_error: Option<(Origin, String)>,
}

/// Template state and counters of one input.
#[derive(Default)]
pub struct Collector {
    templates: BTreeMap<TKey, Template>,
    held: Vec<Held>,
    pub messages: u64,
    pub records: u64,
    pub options_records: u64,
    /// Data sets or records that could not be decoded (no template, no addresses,
    /// rejected template).
    pub undecodable_records: u64,
    /// Malformed messages, sets, templates or records; the first is described
    /// in `first_error`.
    pub errors: u64,
    pub first_error: Option<(Origin, String)>,
    /// Sequence-number gaps per (exporter, domain): (last seq, missing count).
    seq: BTreeMap<(IpAddr, u32, u16), SeqState>,
    options_in_last: u32,
    /// Export packets (v9) or records (IPFIX, v5) the sequence numbers say are missing.
    pub missing: u64,
    /// Sampling interval per (exporter, domain) from options records.
    sampling: BTreeMap<(IpAddr, u32), u32>,
    /// Whether an exporter announced deterministic (1-in-N) sampling.
    pub deterministic_sampling: bool,
    /// Templates rejected as malformed; their data is counted, not decoded.
    rejected: BTreeMap<TKey, ()>,
    /// Last total counters (bytes, packets, reverse bytes, reverse packets) per flow.
    totals: HashMap<TotalKey, [u64; 4], foldhash::fast::FixedState>,
    /// Records with total counters whose previous total could not be kept.
    pub totals_untracked: u64,
    pending_out: Vec<FlowRecord>,
}

type TotalKey = (IpAddr, u32, u8, Endpoint, Endpoint);

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}
fn be32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(i)?,
        *b.get(i + 1)?,
        *b.get(i + 2)?,
        *b.get(i + 3)?,
    ]))
}
fn uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0u64, |a, x| (a << 8) | u64::from(*x))
}

impl Collector {
    /// Whether a UDP payload looks like a NetFlow v5/v9 / IPFIX message.
    pub fn looks_like(payload: &[u8]) -> bool {
        match be16(payload, 0) {
            Some(9) => payload.len() >= 20,
            Some(10) => {
                payload.len() >= 16
                    && be16(payload, 2).is_some_and(|l| usize::from(l) <= payload.len())
            }
            // v5: 24-byte header, then `count` records of 48 bytes.
            Some(5) => be16(payload, 2).is_some_and(|c| {
                (1..=30).contains(&c) && payload.len() >= 24 + 48 * usize::from(c)
            }),
            _ => false,
        }
    }

    fn error(&mut self, origin: Origin, message: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some((origin, message));
        }
    }

    fn sampling_of(&self, exporter: IpAddr, domain: u32) -> u32 {
        self.sampling.get(&(exporter, domain)).copied().unwrap_or(1)
    }

    /// Decodes one export message from `exporter`; records go to `out`.
    /// `exporter_known`: false for export files without an IP header.
    pub fn message(
        &mut self,
        exporter: IpAddr,
        exporter_known: bool,
        payload: &[u8],
        origin: Origin,
        out: &mut Vec<FlowRecord>,
    ) {
        let Some(version) = be16(payload, 0) else {
            return;
        };
        self.messages += 1;
        if version == 5 {
            if Self::looks_like(payload) {
                self.v5(exporter, exporter_known, payload, origin, out);
            } else {
                self.error(origin, "truncated NetFlow v5 datagram".into());
            }
            return;
        }
        let (hdr, domain, base, seq, end) = match version {
            9 => {
                let (Some(up), Some(secs), Some(seq), Some(src)) = (
                    be32(payload, 4),
                    be32(payload, 8),
                    be32(payload, 12),
                    be32(payload, 16),
                ) else {
                    self.error(origin, "truncated NetFlow v9 header".into());
                    return;
                };
                (
                    20,
                    src,
                    Base {
                        export_ns: i64::from(secs) * NS_PER_SEC,
                        uptime_ms: u64::from(up),
                    },
                    seq,
                    payload.len(),
                )
            }
            10 => {
                let (Some(len), Some(secs), Some(seq), Some(dom)) = (
                    be16(payload, 2),
                    be32(payload, 4),
                    be32(payload, 8),
                    be32(payload, 12),
                ) else {
                    self.error(origin, "truncated IPFIX header".into());
                    return;
                };
                if usize::from(len) > payload.len() {
                    self.error(
                        origin,
                        format!(
                            "truncated IPFIX message: length {len}, {} bytes present",
                            payload.len()
                        ),
                    );
                }
                (
                    16,
                    dom,
                    Base {
                        export_ns: i64::from(secs) * NS_PER_SEC,
                        uptime_ms: 0,
                    },
                    seq,
                    usize::from(len).min(payload.len()),
                )
            }
            _ => return,
        };
        let mut data_records = 0u32;
        let mut pos = hdr;
        while pos + 4 <= end {
            let (Some(set_id), Some(set_len)) = (be16(payload, pos), be16(payload, pos + 2)) else {
                break;
            };
            let set_len = usize::from(set_len);
            if set_len < 4 || pos + set_len > end {
                self.error(
                    origin,
                    format!(
                        "set {set_id} at message byte {pos} has length {set_len}, {} bytes left in the message",
                        end - pos
                    ),
                );
                break;
            }
            let body = &payload[pos + 4..pos + set_len];
            match (version, set_id) {
                (9, 0) | (10, 2) => {
                    self.templates_set(exporter, domain, body, version, false, origin)
                }
                (9, 1) | (10, 3) => {
                    self.templates_set(exporter, domain, body, version, true, origin)
                }
                (_, id) if id >= 256 => {
                    let key = (exporter, domain, id);
                    let held = Held {
                        key,
                        data: body.to_vec(),
                        base,
                        origin,
                        exporter_known,
                    };
                    if self.rejected.contains_key(&key) {
                        self.undecodable_records += 1;
                    } else if self.templates.contains_key(&key) {
                        data_records += self.data_set(&held, out);
                    } else if self.held.len() < MAX_HELD {
                        self.held.push(held);
                    } else {
                        self.undecodable_records += 1;
                    }
                }
                _ => {}
            }
            pos += set_len;
        }
        // Sequence numbers: v9 counts export packets, IPFIX counts data records
        // sent before this message (RFC 7011). Some exporters (softflowd) count the
        // records of this message too and leave out options records; either
        // convention is accepted, anything else is a gap.
        let k = (exporter, domain, version);
        let this = (data_records, self.options_in_last);
        self.options_in_last = 0;
        if let Some((last, prev)) = self.seq.get(&k).copied() {
            let ok = if version == 9 {
                seq == last.wrapping_add(1) || seq == last
            } else {
                [prev.0 + prev.1, prev.0, this.0, this.0 + this.1]
                    .iter()
                    .any(|c| seq == last.wrapping_add(*c))
            };
            if !ok {
                let expected = if version == 9 {
                    last.wrapping_add(1)
                } else {
                    last.wrapping_add(prev.0 + prev.1)
                };
                let gap = seq.wrapping_sub(expected);
                if gap > 0 && gap < (1 << 30) {
                    self.missing += u64::from(gap);
                }
            }
        }
        self.seq.insert(k, (seq, this));
    }

    /// NetFlow v5: fixed records; the header carries the sampling interval and a
    /// flow sequence number (flows seen before this packet).
    fn v5(
        &mut self,
        exporter: IpAddr,
        exporter_known: bool,
        p: &[u8],
        origin: Origin,
        out: &mut Vec<FlowRecord>,
    ) {
        let (Some(count), Some(up), Some(secs), Some(nsecs), Some(seq), Some(samp)) = (
            be16(p, 2),
            be32(p, 4),
            be32(p, 8),
            be32(p, 12),
            be32(p, 16),
            be16(p, 22),
        ) else {
            self.error(origin, "truncated NetFlow v5 header".into());
            return;
        };
        let engine = u32::from(be16(p, 20).unwrap_or(0));
        let export_ns = i64::from(secs) * NS_PER_SEC + i64::from(nsecs);
        // Top two bits: sampling mode (1 = deterministic 1-in-N), then the interval.
        let interval = u32::from(samp & 0x3fff).max(1);
        if interval > 1 && samp >> 14 == 1 {
            self.deterministic_sampling = true;
        }
        let k = (exporter, engine, 5);
        if let Some((last, (last_count, _))) = self.seq.get(&k).copied() {
            let gap = seq.wrapping_sub(last.wrapping_add(last_count));
            if gap > 0 && gap < (1 << 30) {
                self.missing += u64::from(gap);
            }
        }
        self.seq.insert(k, (seq, (u32::from(count), 0)));
        for i in 0..usize::from(count) {
            let r = &p[24 + 48 * i..24 + 48 * (i + 1)];
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(r[o], r[o + 1], r[o + 2], r[o + 3]));
            let u32at = |o: usize| u32::from_be_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
            let at =
                |uptime_ms: u32| export_ns - (i64::from(up) - i64::from(uptime_ms)) * 1_000_000;
            self.records += 1;
            out.push(FlowRecord {
                start: at(u32at(24)),
                end: at(u32at(28)).max(at(u32at(24))),
                proto: r[38],
                src: Endpoint {
                    ip: ip(0),
                    port: u16::from_be_bytes([r[32], r[33]]),
                },
                dst: Endpoint {
                    ip: ip(4),
                    port: u16::from_be_bytes([r[34], r[35]]),
                },
                pkts: u64::from(u32at(16)),
                bytes: u64::from(u32at(20)),
                tcp_flags: r[37],
                sampling: interval,
                record: origin.record,
                rev_pkts: 0,
                rev_bytes: 0,
                app_bytes: None,
                missed: 0,
                exporter: exporter_known.then_some(exporter),
            });
        }
    }

    fn templates_set(
        &mut self,
        exporter: IpAddr,
        domain: u32,
        body: &[u8],
        version: u16,
        options: bool,
        origin: Origin,
    ) {
        let mut p = 0;
        while p + 4 <= body.len() {
            let (Some(tid), Some(n)) = (be16(body, p), be16(body, p + 2)) else {
                return;
            };
            if tid < 256 {
                return; // padding
            }
            let mut fields = Vec::new();
            let mut q;
            if options && version == 9 {
                // v9 options template: scope length and option length in bytes.
                let Some(opt_len) = be16(body, p + 4) else {
                    return;
                };
                let total = usize::from(n) + usize::from(opt_len);
                q = p + 6;
                for _ in 0..total / 4 {
                    let (Some(t), Some(l)) = (be16(body, q), be16(body, q + 2)) else {
                        self.error(
                            origin,
                            format!("options template {tid} longer than its set"),
                        );
                        return;
                    };
                    fields.push(Field {
                        id: t,
                        len: l,
                        pen: if t >= 0x8000 { VENDOR } else { 0 },
                    });
                    q += 4;
                }
            } else {
                q = if options { p + 6 } else { p + 4 };
                for _ in 0..n {
                    let (Some(t), Some(l)) = (be16(body, q), be16(body, q + 2)) else {
                        self.error(origin, format!("template {tid} longer than its set"));
                        return;
                    };
                    let ent = version == 10 && t & 0x8000 != 0;
                    let pen = if ent {
                        be32(body, q + 4).unwrap_or(0)
                    } else {
                        0
                    };
                    q += if ent { 8 } else { 4 };
                    if q > body.len() {
                        self.error(origin, format!("template {tid} longer than its set"));
                        return;
                    }
                    // NetFlow v9 has no enterprise bit: types of 32768 and more
                    // are vendor fields (Cisco NSEL 33000-40005), skipped by length.
                    fields.push(Field {
                        id: if version == 10 { t & 0x7fff } else { t },
                        len: l,
                        pen: if version == 9 && t >= 0x8000 {
                            VENDOR
                        } else {
                            pen
                        },
                    });
                }
            }
            p = q;
            let key = (exporter, domain, tid);
            if let Some(why) = template_problem(&fields) {
                self.error(origin, format!("template {tid} rejected: {why}"));
                self.templates.remove(&key);
                self.rejected.insert(key, ());
                // Data that waited for it cannot be decoded either.
                let before = self.held.len();
                self.held.retain(|h| h.key != key);
                self.undecodable_records += (before - self.held.len()) as u64;
                continue;
            }
            self.rejected.remove(&key);
            if fields.iter().all(|f| f.len == 0) {
                // A withdrawal (RFC 7011 8.1) or a template that describes nothing.
                self.templates.remove(&key);
                continue;
            }
            if self.templates.len() < MAX_TEMPLATES || self.templates.contains_key(&key) {
                self.templates.insert(key, Template { fields, options });
            } else {
                self.error(origin, format!("more than {MAX_TEMPLATES} templates"));
            }
            // Decode data that waited for this template.
            let (ready, rest): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
                .into_iter()
                .partition(|h| h.key == key);
            self.held = rest;
            for h in ready {
                let mut sink = Vec::new();
                self.data_set(&h, &mut sink);
                self.pending_out.extend(sink);
            }
        }
    }

    /// Records decoded from held data sets since the last call.
    pub fn take_pending(&mut self) -> Vec<FlowRecord> {
        std::mem::take(&mut self.pending_out)
    }

    fn data_set(&mut self, h: &Held, out: &mut Vec<FlowRecord>) -> u32 {
        let Some(t) = self.templates.get(&h.key).cloned() else {
            return 0;
        };
        let body = &h.data[..];
        let fixed: usize = t
            .fields
            .iter()
            .map(|f| {
                if f.len == 65535 {
                    1
                } else {
                    usize::from(f.len)
                }
            })
            .sum();
        if fixed == 0 {
            return 0;
        }
        let (exporter, domain, tid) = h.key;
        let mut n = 0;
        let mut p = 0;
        while p + fixed <= body.len() {
            let mut rec = RecFields::default();
            let mut q = p;
            let mut ok = true;
            for f in &t.fields {
                let l = if f.len == 65535 {
                    let Some(&b0) = body.get(q) else {
                        ok = false;
                        break;
                    };
                    q += 1;
                    if b0 == 255 {
                        let Some(l2) = be16(body, q) else {
                            ok = false;
                            break;
                        };
                        q += 2;
                        usize::from(l2)
                    } else {
                        usize::from(b0)
                    }
                } else {
                    usize::from(f.len)
                };
                let Some(v) = body.get(q..q + l) else {
                    ok = false;
                    break;
                };
                rec.set(f.id, f.pen, v);
                q += l;
            }
            if !ok {
                self.error(
                    h.origin,
                    format!(
                        "record {} of a set of template {tid} is longer than its set",
                        n + 1
                    ),
                );
                self.undecodable_records += 1;
                break;
            }
            p = q;
            if t.options {
                self.options_records += 1;
                self.options_in_last += 1;
                if let Some(s) = rec.sampling() {
                    let e = self.sampling.entry((exporter, domain)).or_insert(1);
                    *e = (*e).max(s);
                }
                if rec.deterministic {
                    self.deterministic_sampling = true;
                }
                continue;
            }
            n += 1;
            self.records += 1;
            let sampling = self.sampling_of(exporter, domain);
            match rec.into_record(h.base, h.origin.record, sampling) {
                Some(mut r) => {
                    r.record.exporter = h.exporter_known.then_some(exporter);
                    if r.totals {
                        self.totals_to_delta(exporter, domain, &mut r.record);
                    }
                    out.push(r.record);
                }
                None => self.undecodable_records += 1,
            }
        }
        // What is left after the last record is padding (RFC 7011: zeros); other
        // bytes are a record cut short by its set.
        if p < body.len() && body[p..].iter().any(|b| *b != 0) {
            self.error(
                h.origin,
                format!(
                    "a record of template {tid} is longer than its set ({} bytes left after record {n}, not padding)",
                    body.len() - p
                ),
            );
            self.undecodable_records += 1;
        }
        n
    }

    /// Total counters to deltas: the difference to the previous report of the
    /// same flow (the whole total the first time, or when a counter went back).
    fn totals_to_delta(&mut self, exporter: IpAddr, domain: u32, r: &mut FlowRecord) {
        let key = (exporter, domain, r.proto, r.src, r.dst);
        let now = [r.bytes, r.pkts, r.rev_bytes, r.rev_pkts];
        let prev = self.totals.get(&key).copied();
        if prev.is_none() && self.totals.len() >= MAX_TOTALS {
            self.totals_untracked += 1;
        } else {
            self.totals.insert(key, now);
        }
        if let Some(prev) = prev
            && now.iter().zip(prev).all(|(a, b)| *a >= b)
        {
            r.bytes -= prev[0];
            r.pkts -= prev[1];
            r.rev_bytes -= prev[2];
            r.rev_pkts -= prev[3];
        }
    }

    /// Hands over templates and held data for the merge across inputs; the held
    /// sets are counted as undecodable there if no input has their template.
    pub fn into_state(self) -> ExportState {
        ExportState {
            templates: self.templates,
            held: self.held,
            sampling: self.sampling,
        }
    }
}

/// Why a template cannot describe real records: a field of length 0 with a
/// type (type 0 length 0 is padding some exporters write), a known field of an
/// impossible length, or records longer than any message.
fn template_problem(fields: &[Field]) -> Option<String> {
    let mut fixed = 0usize;
    for (i, f) in fields.iter().enumerate() {
        if f.len == 0 && f.id != 0 {
            return Some(format!("field {} (type {}) has length 0", i + 1, f.id));
        }
        let bad = f.pen == 0
            && f.len != 65535
            && match f.id {
                8 | 12 | 15 => f.len != 4,
                27 | 28 | 62 => f.len != 16,
                1 | 2 | 85 | 86 => f.len > 8,
                _ => false,
            };
        if bad {
            return Some(format!(
                "field {} (type {}) has length {}",
                i + 1,
                f.id,
                f.len
            ));
        }
        fixed += if f.len == 65535 {
            1
        } else {
            usize::from(f.len)
        };
    }
    (fixed > MAX_RECORD).then(|| format!("records of {fixed} bytes do not fit in a message"))
}

#[derive(Default)]
struct RecFields {
    bytes: Option<u64>,
    pkts: Option<u64>,
    total_bytes: Option<u64>,
    total_pkts: Option<u64>,
    rev_bytes: Option<u64>,
    rev_pkts: Option<u64>,
    rev_total_bytes: Option<u64>,
    rev_total_pkts: Option<u64>,
    /// initiatorOctets/Packets and responderOctets/Packets (IEs 231, 298, 232, 299).
    initiator: (Option<u64>, Option<u64>),
    responder: (Option<u64>, Option<u64>),
    proto: Option<u8>,
    flags: u8,
    sport: u16,
    dport: u16,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    first_up: Option<u64>,
    last_up: Option<u64>,
    start_ms: Option<u64>,
    end_ms: Option<u64>,
    start_s: Option<u64>,
    end_s: Option<u64>,
    sampling: Option<u32>,
    /// samplingPacketInterval / samplingPacketSpace (PSAMP, RFC 5477).
    packet_interval: Option<u64>,
    packet_space: Option<u64>,
    deterministic: bool,
}

struct Decoded {
    record: FlowRecord,
    totals: bool,
}

impl RecFields {
    fn set(&mut self, id: u16, pen: u32, v: &[u8]) {
        if pen == PEN_REVERSE {
            match id {
                1 => self.rev_bytes = Some(uint(v)),
                2 => self.rev_pkts = Some(uint(v)),
                85 => self.rev_total_bytes = Some(uint(v)),
                86 => self.rev_total_pkts = Some(uint(v)),
                _ => {}
            }
            return;
        }
        if pen != 0 {
            return;
        }
        match id {
            1 => self.bytes = Some(uint(v)),
            2 => self.pkts = Some(uint(v)),
            85 => self.total_bytes = Some(uint(v)),
            86 => self.total_pkts = Some(uint(v)),
            // initiatorOctets / responderOctets (Cisco NSEL, biflow-like records)
            231 => self.initiator = (Some(uint(v)), self.initiator.1),
            298 => self.initiator = (self.initiator.0, Some(uint(v))),
            232 => self.responder = (Some(uint(v)), self.responder.1),
            299 => self.responder = (self.responder.0, Some(uint(v))),
            4 => self.proto = v.first().copied(),
            6 => self.flags = v.last().copied().unwrap_or(0),
            7 => self.sport = uint(v) as u16,
            11 => self.dport = uint(v) as u16,
            8 if v.len() == 4 => self.src = Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
            12 if v.len() == 4 => {
                self.dst = Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3])))
            }
            27 if v.len() == 16 => {
                self.src = Some(IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(v).unwrap_or([0; 16]),
                )))
            }
            28 if v.len() == 16 => {
                self.dst = Some(IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(v).unwrap_or([0; 16]),
                )))
            }
            22 => self.first_up = Some(uint(v)),
            21 => self.last_up = Some(uint(v)),
            152 => self.start_ms = Some(uint(v)),
            153 => self.end_ms = Some(uint(v)),
            150 => self.start_s = Some(uint(v)),
            151 => self.end_s = Some(uint(v)),
            // samplingInterval, samplerRandomInterval
            34 | 50 => self.sampling = u32::try_from(uint(v)).ok(),
            305 => self.packet_interval = Some(uint(v)),
            306 => self.packet_space = Some(uint(v)),
            // samplingAlgorithm / samplerMode: 1 = deterministic
            35 | 49 => self.deterministic |= uint(v) == 1,
            _ => {}
        }
    }

    /// The sampling interval N these fields announce (1 in N packets).
    fn sampling(&self) -> Option<u32> {
        if let (Some(i), Some(s)) = (self.packet_interval, self.packet_space)
            && i > 0
        {
            return u32::try_from((i + s) / i).ok();
        }
        self.sampling.filter(|s| *s > 0)
    }

    fn into_record(self, base: Base, record: u64, sampling: u32) -> Option<Decoded> {
        let (src, dst) = (self.src?, self.dst?);
        let abs = |ms: u64| -> Ts { (ms as i64).saturating_mul(1_000_000) };
        let from_uptime = |up: u64| -> Ts {
            base.export_ns - (base.uptime_ms as i64 - up as i64).saturating_mul(1_000_000)
        };
        let start = self
            .start_ms
            .map(abs)
            .or(self.start_s.map(|s| s as i64 * NS_PER_SEC))
            .or(self.first_up.map(from_uptime))
            .unwrap_or(base.export_ns);
        let end = self
            .end_ms
            .map(abs)
            .or(self.end_s.map(|s| s as i64 * NS_PER_SEC))
            .or(self.last_up.map(from_uptime))
            .unwrap_or(start);
        // Delta counters when present; total counters otherwise (made deltas
        // by the caller).
        let totals = self.bytes.is_none() && self.total_bytes.is_some();
        let sampling = self.sampling().unwrap_or(sampling).max(1);
        Some(Decoded {
            totals,
            record: FlowRecord {
                start,
                end: end.max(start),
                proto: self.proto.unwrap_or(0),
                src: Endpoint {
                    ip: src,
                    port: self.sport,
                },
                dst: Endpoint {
                    ip: dst,
                    port: self.dport,
                },
                pkts: self
                    .pkts
                    .or(self.total_pkts)
                    .or(self.initiator.1)
                    .unwrap_or(0),
                bytes: self
                    .bytes
                    .or(self.total_bytes)
                    .or(self.initiator.0)
                    .unwrap_or(0),
                tcp_flags: self.flags,
                sampling,
                record,
                rev_pkts: self
                    .rev_pkts
                    .or(self.rev_total_pkts)
                    .or(self.responder.1)
                    .unwrap_or(0),
                rev_bytes: self
                    .rev_bytes
                    .or(self.rev_total_bytes)
                    .or(self.responder.0)
                    .unwrap_or(0),
                app_bytes: None,
                missed: 0,
                exporter: None,
            },
        })
    }
}
