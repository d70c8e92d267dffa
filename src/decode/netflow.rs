//! NetFlow v9 (RFC 3954) and IPFIX (RFC 7011) export messages to flow records.
//! Templates and options templates are kept per (exporter, source id / observation
//! domain, template id) in a bounded cache; data sets whose template has not been
//! seen yet are held and decoded when it arrives; those still undecodable at the
//! end are counted, never silently dropped. Enterprise fields are skipped by length.

use crate::model::{Endpoint, FlowRecord, NS_PER_SEC, Ts};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Default collector ports for export datagrams.
pub const PORTS: [u16; 4] = [2055, 4739, 9995, 9996];
const MAX_TEMPLATES: usize = 4096;
const MAX_HELD: usize = 4096;

#[derive(Clone, Debug)]
struct Template {
    /// (field id, length, enterprise?) ; length 65535 = variable (IPFIX)
    fields: Vec<(u16, u16, bool)>,
    /// Options templates: records are metadata, not flows.
    options: bool,
}

type TKey = (IpAddr, u32, u16);
/// Last sequence number and the (flow, options) record counts of that message.
type SeqState = (u32, (u32, u32));

struct Held {
    key: TKey,
    version: u16,
    data: Vec<u8>,
    base: Base,
    frame: u64,
}

#[derive(Clone, Copy)]
struct Base {
    /// Export time, ns.
    export_ns: Ts,
    /// v9: system uptime at export, ms.
    uptime_ms: u64,
}

/// Template state and counters of one input.
#[derive(Default)]
pub struct Collector {
    templates: BTreeMap<TKey, Template>,
    held: Vec<Held>,
    pub messages: u64,
    pub records: u64,
    pub options_records: u64,
    pub undecodable_records: u64,
    pub malformed: u64,
    /// Sequence-number gaps per (exporter, domain): (last seq, missing count).
    seq: BTreeMap<(IpAddr, u32, u16), SeqState>,
    options_in_last: u32,
    /// Export packets (v9) or records (IPFIX) the sequence numbers say are missing.
    pub missing: u64,
    /// Sampling interval from an options template record, if any.
    pub sampling: Option<u32>,
    pending_out: Vec<FlowRecord>,
}

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
    /// Whether a UDP payload looks like a NetFlow v9 / IPFIX message.
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

    /// Decodes one export message from `exporter`; records go to `out`.
    pub fn message(
        &mut self,
        exporter: IpAddr,
        payload: &[u8],
        frame: u64,
        out: &mut Vec<FlowRecord>,
    ) {
        let Some(version) = be16(payload, 0) else {
            return;
        };
        self.messages += 1;
        if version == 5 {
            if Self::looks_like(payload) {
                self.v5(exporter, payload, frame, out);
            } else {
                self.malformed += 1;
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
                    self.malformed += 1;
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
                    self.malformed += 1;
                    return;
                };
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
                self.malformed += 1;
                break;
            }
            let body = &payload[pos + 4..pos + set_len];
            match (version, set_id) {
                (9, 0) | (10, 2) => self.templates_set(exporter, domain, body, version, false),
                (9, 1) | (10, 3) => self.templates_set(exporter, domain, body, version, true),
                (_, id) if id >= 256 => {
                    let key = (exporter, domain, id);
                    if self.templates.contains_key(&key) {
                        data_records += self.data_set(key, version, body, base, frame, out);
                    } else if self.held.len() < MAX_HELD {
                        self.held.push(Held {
                            key,
                            version,
                            data: body.to_vec(),
                            base,
                            frame,
                        });
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
    fn v5(&mut self, exporter: IpAddr, p: &[u8], frame: u64, out: &mut Vec<FlowRecord>) {
        let (Some(count), Some(up), Some(secs), Some(nsecs), Some(seq), Some(samp)) = (
            be16(p, 2),
            be32(p, 4),
            be32(p, 8),
            be32(p, 12),
            be32(p, 16),
            be16(p, 22),
        ) else {
            self.malformed += 1;
            return;
        };
        let engine = u32::from(be16(p, 20).unwrap_or(0));
        let export_ns = i64::from(secs) * NS_PER_SEC + i64::from(nsecs);
        let interval = u32::from(samp & 0x3fff).max(1);
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
                record: frame,
                rev_pkts: 0,
                rev_bytes: 0,
                app_bytes: None,
                missed: 0,
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
                        return;
                    };
                    fields.push((t, l, false));
                    q += 4;
                }
            } else {
                q = if options { p + 6 } else { p + 4 };
                for _ in 0..n {
                    let (Some(t), Some(l)) = (be16(body, q), be16(body, q + 2)) else {
                        return;
                    };
                    let ent = version == 10 && t & 0x8000 != 0;
                    q += 4;
                    if ent {
                        q += 4;
                    }
                    if q > body.len() {
                        self.malformed += 1;
                        return;
                    }
                    fields.push((t & 0x7fff, l, ent));
                }
            }
            if fields.is_empty() || fields.iter().all(|f| f.1 == 0) {
                // A withdrawal or a template that describes nothing.
                self.templates.remove(&(exporter, domain, tid));
            } else if self.templates.len() < MAX_TEMPLATES
                || self.templates.contains_key(&(exporter, domain, tid))
            {
                self.templates
                    .insert((exporter, domain, tid), Template { fields, options });
            }
            p = q;
            // Decode data that waited for this template.
            let key = (exporter, domain, tid);
            let (ready, rest): (Vec<Held>, Vec<Held>) = std::mem::take(&mut self.held)
                .into_iter()
                .partition(|h| h.key == key);
            self.held = rest;
            for h in ready {
                let mut sink = Vec::new();
                self.data_set(h.key, h.version, &h.data, h.base, h.frame, &mut sink);
                self.pending_out.extend(sink);
            }
        }
    }

    /// Records decoded from held data sets since the last call.
    pub fn take_pending(&mut self) -> Vec<FlowRecord> {
        std::mem::take(&mut self.pending_out)
    }

    fn data_set(
        &mut self,
        key: TKey,
        version: u16,
        body: &[u8],
        base: Base,
        frame: u64,
        out: &mut Vec<FlowRecord>,
    ) -> u32 {
        let Some(t) = self.templates.get(&key).cloned() else {
            return 0;
        };
        let fixed: usize = t
            .fields
            .iter()
            .map(|f| if f.1 == 65535 { 1 } else { usize::from(f.1) })
            .sum();
        if fixed == 0 {
            return 0;
        }
        let mut n = 0;
        let mut p = 0;
        while p + fixed <= body.len() {
            let mut rec = RecFields::default();
            let mut q = p;
            let mut ok = true;
            for &(id, len, ent) in &t.fields {
                let l = if len == 65535 {
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
                    usize::from(len)
                };
                let Some(v) = body.get(q..q + l) else {
                    ok = false;
                    break;
                };
                if !ent {
                    rec.set(id, v);
                }
                q += l;
            }
            if !ok {
                self.malformed += 1;
                break;
            }
            p = q;
            if t.options {
                self.options_records += 1;
                self.options_in_last += 1;
                if let Some(s) = rec.sampling {
                    self.sampling = Some(s);
                }
                continue;
            }
            n += 1;
            self.records += 1;
            if let Some(r) = rec.into_record(version, base, frame, self.sampling.unwrap_or(1)) {
                out.push(r);
            } else {
                self.undecodable_records += 1;
            }
        }
        n
    }

    /// Held data sets whose template never arrived: counted as undecodable.
    pub fn finish(&mut self) -> u64 {
        let n = self.held.len() as u64;
        self.undecodable_records += n;
        self.held.clear();
        n
    }
}

#[derive(Default)]
struct RecFields {
    bytes: Option<u64>,
    pkts: Option<u64>,
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
}

impl RecFields {
    fn set(&mut self, id: u16, v: &[u8]) {
        match id {
            1 | 85 => self.bytes = Some(self.bytes.unwrap_or(0).max(uint(v))),
            2 | 86 => self.pkts = Some(self.pkts.unwrap_or(0).max(uint(v))),
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
            34 | 305 => self.sampling = Some(uint(v) as u32),
            _ => {}
        }
    }

    fn into_record(
        self,
        version: u16,
        base: Base,
        frame: u64,
        sampling: u32,
    ) -> Option<FlowRecord> {
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
        let _ = version;
        Some(FlowRecord {
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
            pkts: self.pkts.unwrap_or(0),
            bytes: self.bytes.unwrap_or(0),
            tcp_flags: self.flags,
            sampling: self.sampling.unwrap_or(sampling).max(1),
            record: frame,
            rev_pkts: 0,
            rev_bytes: 0,
            app_bytes: None,
            missed: 0,
        })
    }
}
