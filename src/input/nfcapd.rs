//! nfdump's binary nfcapd files, read without nfdump: layout 1 (nfdump 1.6,
//! `LAYOUT_VERSION_1`) and layout 2 (nfdump 1.7, `LAYOUT_VERSION_2`), blocks
//! uncompressed or LZO, BZ2, LZ4 or ZSTD compressed.
//!
//! The layouts follow nfdump's own definitions (nffile.h, nffileV2.h, nfx.h,
//! nfxV3.h, exporter.h; the V1 record conversion of nffile_compat.c). All
//! integers are little-endian, as nfcapd writes them on the hosts it runs on.
//!
//! ```text
//! layout 1: file header (140) | stat record (136) | block | block | ...
//! layout 2: file header (40)  | block | ... | appendix block(s) (ident, stat)
//! block:    NumRecords u32 | size u32 | type u16 | flags u16 | size bytes
//! record:   type u16 | size u16 (whole record) | ...
//! ```
//!
//! Flow records are the V3 record of nfdump 1.7 (type 11: a header and typed
//! elements) and the common record of nfdump 1.6 (type 10: fixed fields, then
//! the extensions its extension map lists). A block's length field is checked
//! against nfdump's own buffer size before anything is read or allocated, and
//! decompression stops at that size, so a hostile length can neither make us
//! allocate nor loop.

use super::{InputError, InputSummary, PacketSink, Window};
use crate::model::{Endpoint, FlowRecord, Ts};
use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// nfdump's `BUFFSIZE` (5 MiB): no data block, compressed or decompressed, is
/// larger, and nfdump itself refuses a block that claims more.
pub const MAX_BLOCK: usize = 5 << 20;
const BLOCK_HEADER: usize = 12;
/// fileHeaderV1_t (magic, version, flags, NumBlocks, ident[128]) + stat_recordV1_t.
const HEADER_V1: usize = 140 + 136;
/// fileHeaderV2_t.
const HEADER_V2: usize = 40;

// Record types (nfdump nffileV2.h / nfx.h / nfxV3.h / exporter.h).
const EXTENSION_MAP: u16 = 2;
const EXPORTER_INFO: u16 = 7;
const EXPORTER_STAT: u16 = 8;
const SAMPLER_LEGACY: u16 = 9;
const COMMON_RECORD: u16 = 10;
const V3_RECORD: u16 = 11;
const SAMPLER: u16 = 15;
const TYPE_IDENT: u16 = 0x8001;
const TYPE_STAT: u16 = 0x8002;

// V3 elements read (nfxV3.h).
const EX_GENERIC_FLOW: u16 = 1;
const EX_IPV4_FLOW: u16 = 2;
const EX_IPV6_FLOW: u16 = 3;
const EX_CNT_FLOW: u16 = 5;
const V3_FLAG_ANON: u8 = 4;

// V1 common record flags (nfx.h).
const FLAG_IPV6_ADDR: u16 = 1;
const FLAG_PKG_64: u16 = 2;
const FLAG_BYTES_64: u16 = 4;

/// Block compression, as the file header names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockCompression {
    None,
    Lzo,
    Bz2,
    Lz4,
    Zstd,
}

impl BlockCompression {
    fn name(self) -> &'static str {
        match self {
            BlockCompression::None => "none",
            BlockCompression::Lzo => "LZO",
            BlockCompression::Bz2 => "BZ2",
            BlockCompression::Lz4 => "LZ4",
            BlockCompression::Zstd => "ZSTD",
        }
    }
}

/// Whether the window starts with nfdump's file magic 0xA50C (little-endian).
pub fn is_nfcapd(w: &mut Window<'_>) -> bool {
    let _ = w.ensure(2);
    w.avail().starts_with(&[0x0c, 0xa5])
}

/// The layout version after the magic (1: nfdump 1.6, 2: nfdump 1.7), 0 when
/// the file is shorter than that.
pub fn layout(w: &mut Window<'_>) -> u16 {
    let _ = w.ensure(4);
    let a = w.avail();
    if a.len() < 4 { 0 } else { le16(a, 2) }
}

#[inline]
fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
#[inline]
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// An IPv6 address as nfdump stores it: two host-order 64-bit halves, the high
/// half first.
fn ipv6(b: &[u8], at: usize) -> IpAddr {
    let hi = u128::from(le64(b, at));
    let lo = u128::from(le64(b, at + 8));
    IpAddr::V6(Ipv6Addr::from((hi << 64) | lo))
}

fn ipv4(b: &[u8], at: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(le32(b, at)))
}

fn ms_to_ns(ms: u64) -> Option<Ts> {
    i64::try_from(ms).ok()?.checked_mul(1_000_000)
}

/// What the file header says.
struct Header {
    compression: BlockCompression,
    /// Blocks the header announces (layout 2: data plus appendix blocks).
    blocks: u64,
    anonymized: bool,
}

/// The file's own summary (layout 1 header, layout 2 appendix).
#[derive(Clone, Copy)]
struct Stat {
    flows: u64,
    sequence_failures: u64,
}

fn read_header(w: &mut Window<'_>, version: u16) -> Result<(Header, Option<Stat>), (u64, String)> {
    let need = if version == 1 { HEADER_V1 } else { HEADER_V2 };
    if !w
        .ensure(need)
        .map_err(|e| (0, format!("read error: {e}")))?
    {
        return Err((
            0,
            format!(
                "truncated nfcapd file header: {} of {need} bytes",
                w.avail().len()
            ),
        ));
    }
    let h = &w.avail()[..need];
    let res = if version == 1 {
        let flags = le32(h, 4);
        // FILEV1_COMPRESSION: LZO, then BZ2, then LZ4.
        let compression = if flags & 0x1 != 0 {
            BlockCompression::Lzo
        } else if flags & 0x8 != 0 {
            BlockCompression::Bz2
        } else if flags & 0x10 != 0 {
            BlockCompression::Lz4
        } else {
            BlockCompression::None
        };
        let stat = Stat {
            flows: le64(h, 140),
            sequence_failures: u64::from(le32(h, 140 + 132)),
        };
        (
            Header {
                compression,
                blocks: u64::from(le32(h, 8)),
                anonymized: flags & 0x2 != 0,
            },
            Some(stat),
        )
    } else {
        let compression = match h[16] {
            0 => BlockCompression::None,
            1 => BlockCompression::Lzo,
            2 => BlockCompression::Bz2,
            3 => BlockCompression::Lz4,
            4 => BlockCompression::Zstd,
            c => {
                return Err((
                    16,
                    format!("nfcapd file header names unknown block compression {c}"),
                ));
            }
        };
        if h[17] != 0 {
            return Err((
                17,
                format!(
                    "encrypted nfcapd file (encryption {}): not supported",
                    h[17]
                ),
            ));
        }
        (
            Header {
                compression,
                blocks: u64::from(le32(h, 36)) + u64::from(le16(h, 18)),
                anonymized: false,
            },
            None,
        )
    };
    w.consume(need);
    Ok(res)
}

/// Reads an nfcapd file (the magic has been seen) and hands on its flow records.
pub fn parse(
    w: &mut Window<'_>,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
) -> Result<(), (u64, String)> {
    let version = layout(w);
    if version != 1 && version != 2 {
        return Err((
            2,
            format!("nfcapd layout version {version} not supported (1: nfdump 1.6, 2: nfdump 1.7)"),
        ));
    }
    let (header, stat) = read_header(w, version)?;
    let mut rd = Reader {
        anonymized_file: header.anonymized,
        stat,
        stream: w.is_stream(),
        ..Reader::default()
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut blocks = 0u64;
    loop {
        let off = w.offset();
        if !w
            .ensure(BLOCK_HEADER)
            .map_err(|e| (off, format!("read error: {e}")))?
        {
            if w.avail().is_empty() {
                break;
            }
            return Err((
                off,
                format!(
                    "truncated block header: {} of {BLOCK_HEADER} bytes",
                    w.avail().len()
                ),
            ));
        }
        blocks += 1;
        let h = w.avail();
        let (num, size, typ) = (le32(h, 0), le32(h, 4) as usize, le16(h, 8));
        if size > MAX_BLOCK - BLOCK_HEADER {
            return Err((
                off,
                format!(
                    "block {blocks} claims {size} bytes, more than nfdump's largest block ({} bytes): corrupt file",
                    MAX_BLOCK - BLOCK_HEADER
                ),
            ));
        }
        if size == 0 || num == 0 {
            return Err((
                off,
                format!("block {blocks} is empty ({num} records, {size} bytes): corrupt file"),
            ));
        }
        if !w
            .ensure(BLOCK_HEADER + size)
            .map_err(|e| (off, format!("read error: {e}")))?
        {
            return Err((
                off,
                format!(
                    "block {blocks} truncated: {} of {size} bytes",
                    w.avail().len().saturating_sub(BLOCK_HEADER)
                ),
            ));
        }
        if typ == 2 || typ == 3 {
            let body = &w.avail()[BLOCK_HEADER..BLOCK_HEADER + size];
            let data = if header.compression == BlockCompression::None {
                Ok(body)
            } else {
                decompress(header.compression, body, &mut buf).map(|n| &buf[..n])
            };
            match data {
                Ok(data) => rd.block(data, num, off, sink, sum),
                Err(m) => rd.block_error(
                    sum,
                    off,
                    format!(
                        "block {blocks}: {} data cannot be decompressed: {m}",
                        header.compression.name()
                    ),
                ),
            }
        } else {
            // Type 1 (nfdump 1.5) and array blocks: nfdump skips them too.
            sum.weirds.add_n("nfcapd_block_skipped", 1);
        }
        w.consume(BLOCK_HEADER + size);
    }
    if blocks < header.blocks {
        return Err((
            w.offset(),
            format!(
                "file ends after {blocks} of the {} blocks its header announces: truncated",
                header.blocks
            ),
        ));
    }
    sum.weirds
        .add_n("nfcapd_unlisted_blocks", blocks - header.blocks);
    sum.weirds.add_n("nfcapd_record_skipped", rd.skipped);
    sum.weirds
        .add_n("nfcapd_legacy_sampler_records", rd.legacy_samplers);
    sum.weirds.add_n("nfcapd_anonymized_records", rd.anonymized);
    if let Some(s) = rd.stat {
        sum.weirds
            .add_n("nfcapd_records_missing", s.flows.saturating_sub(rd.flows));
        sum.weirds
            .add_n("nfcapd_sequence_failures", s.sequence_failures);
    }
    Ok(())
}

/// Decompresses one block into `buf` (at most [`MAX_BLOCK`] bytes); returns the length.
fn decompress(c: BlockCompression, src: &[u8], buf: &mut Vec<u8>) -> Result<usize, String> {
    match c {
        BlockCompression::None => {
            buf.clear();
            buf.extend_from_slice(src);
            Ok(src.len())
        }
        BlockCompression::Lzo => {
            buf.clear();
            lzo1x_decompress(src, buf, MAX_BLOCK)?;
            Ok(buf.len())
        }
        BlockCompression::Lz4 => {
            if buf.len() < MAX_BLOCK {
                buf.resize(MAX_BLOCK, 0);
            }
            lz4_flex::block::decompress_into(src, &mut buf[..MAX_BLOCK]).map_err(|e| e.to_string())
        }
        BlockCompression::Bz2 => {
            buf.clear();
            read_capped(bzip2::read::BzDecoder::new(src), buf)
        }
        BlockCompression::Zstd => {
            buf.clear();
            let d = ruzstd::decoding::StreamingDecoder::new(src).map_err(|e| e.to_string())?;
            read_capped(d, buf)
        }
    }
}

/// Reads a decoder to its end, but never more than [`MAX_BLOCK`] bytes.
fn read_capped(r: impl Read, buf: &mut Vec<u8>) -> Result<usize, String> {
    let n = r
        .take(MAX_BLOCK as u64 + 1)
        .read_to_end(buf)
        .map_err(|e| e.to_string())?;
    if n > MAX_BLOCK {
        return Err(format!("decompresses to more than {MAX_BLOCK} bytes"));
    }
    Ok(n)
}

/// Reading state carried across blocks.
#[derive(Default)]
struct Reader {
    /// nfdump 1.6 extension maps by id; `None` for a map that is not valid.
    maps: HashMap<u16, Option<Vec<u16>>>,
    /// Largest sampling interval announced per exporter (sysid).
    sampling: HashMap<u16, u32>,
    /// Exporter addresses by sysid, from the exporter info records.
    exporters: HashMap<u16, IpAddr>,
    /// Flow records met so far (numbered from 1, in file order).
    flows: u64,
    stat: Option<Stat>,
    skipped: u64,
    legacy_samplers: u64,
    anonymized: u64,
    anonymized_file: bool,
    stream: bool,
}

impl Reader {
    fn block_error(&self, sum: &mut InputSummary, off: u64, message: String) {
        sum.weirds.add_n("nfcapd_block_undecodable", 1);
        if sum.error.is_none() {
            sum.error = Some(InputError {
                record: None,
                offset: off,
                decompressed: self.stream,
                message,
            });
        }
    }

    /// The records of one (decompressed) data block.
    fn block(
        &mut self,
        data: &[u8],
        num: u32,
        off: u64,
        sink: &mut (dyn PacketSink + Send),
        sum: &mut InputSummary,
    ) {
        let mut pos = 0usize;
        for i in 0..num {
            let rest = &data[pos..];
            if rest.len() < 4 {
                self.block_error(
                    sum,
                    off,
                    format!("block at offset {off}: {num} records announced, data ends after {i}"),
                );
                return;
            }
            let (typ, size) = (le16(rest, 0), le16(rest, 2) as usize);
            if size < 4 || size > rest.len() {
                self.block_error(
                    sum,
                    off,
                    format!(
                        "block at offset {off}: record {} has size {size}, {} bytes left: corrupt block",
                        i + 1,
                        rest.len()
                    ),
                );
                return;
            }
            let rec = &rest[..size];
            match typ {
                V3_RECORD | COMMON_RECORD => {
                    self.flows += 1;
                    let n = self.flows;
                    let got = if typ == V3_RECORD {
                        self.v3_record(rec)
                    } else {
                        self.v1_record(rec)
                    };
                    match got {
                        Ok(r) => {
                            sum.flow_records += 1;
                            sink.record(r);
                        }
                        Err(m) => sum.bad_record(
                            off,
                            self.stream,
                            format!("flow record {n} (block at offset {off}): {m}"),
                        ),
                    }
                }
                EXTENSION_MAP => self.extension_map(rec),
                SAMPLER_LEGACY => {
                    // samplerV0_record_t: id i32, interval u32, algorithm u16, exporter u16.
                    self.legacy_samplers += 1;
                    if rec.len() >= 16 {
                        self.sampler(le16(rec, 14), le32(rec, 8));
                    }
                }
                SAMPLER => {
                    // sampler_record_t: exporter u16, algorithm u16, id i64,
                    // packetInterval u32, spaceInterval u32.
                    if rec.len() >= 24 {
                        let (pkt, space) = (le32(rec, 16).max(1), le32(rec, 20));
                        let n = (u64::from(pkt) + u64::from(space)) / u64::from(pkt);
                        self.sampler(le16(rec, 4), u32::try_from(n).unwrap_or(u32::MAX));
                    }
                }
                TYPE_STAT => {
                    // Appendix stat_record_t: 18 x u64, numflows first,
                    // sequence_failure last.
                    if rec.len() >= 4 + 18 * 8 {
                        self.stat = Some(Stat {
                            flows: le64(rec, 4),
                            sequence_failures: le64(rec, 4 + 17 * 8),
                        });
                    }
                }
                EXPORTER_INFO => self.exporter_info(rec),
                EXPORTER_STAT | TYPE_IDENT => {}
                _ => self.skipped += 1,
            }
            pos += size;
        }
    }

    /// exporter_info_record_t: header, version u32, ip_addr_t (16 bytes: IPv4
    /// as a host-order u32 at byte 8 of it, IPv6 as two host-order u64 halves),
    /// sa_family u16, sysid u16, id u32.
    fn exporter_info(&mut self, rec: &[u8]) {
        if rec.len() < 32 {
            return;
        }
        let family = le16(rec, 24);
        let ip = match family {
            2 => ipv4(rec, 16),
            // AF_INET6 on Linux, the BSDs and macOS.
            10 | 24 | 28 | 30 => ipv6(rec, 8),
            _ => return,
        };
        self.exporters.insert(le16(rec, 26), ip);
    }

    fn sampler(&mut self, exporter: u16, interval: u32) {
        let e = self.sampling.entry(exporter).or_insert(1);
        *e = (*e).max(interval).max(1);
    }

    fn record_base(&mut self, anon: bool, exporter: u16) -> u32 {
        if anon || self.anonymized_file {
            self.anonymized += 1;
        }
        self.sampling.get(&exporter).copied().unwrap_or(1)
    }

    /// An nfdump 1.6 extension map: id, size of the optional extensions, then
    /// the extension ids, 0-terminated.
    fn extension_map(&mut self, rec: &[u8]) {
        if rec.len() < 8 {
            self.skipped += 1;
            return;
        }
        let id = le16(rec, 4);
        let mut ids = Vec::new();
        let mut valid = false;
        let mut at = 8;
        while at + 2 <= rec.len() {
            let x = le16(rec, at);
            if x == 0 {
                valid = true;
                break;
            }
            ids.push(x);
            at += 2;
        }
        valid &= ids.iter().all(|x| v1_extension_size(*x).is_some());
        self.maps.insert(id, valid.then_some(ids));
    }

    /// nfdump 1.7 V3 record: a 12-byte header, then `numElements` elements,
    /// each `type u16, length u16` (the length includes these 4 bytes).
    fn v3_record(&mut self, rec: &[u8]) -> Result<FlowRecord, String> {
        if rec.len() < 12 {
            return Err(format!(
                "V3 record of {} bytes, shorter than its header",
                rec.len()
            ));
        }
        let elements = le16(rec, 4);
        let exporter = le16(rec, 8);
        let flags = rec[10];
        let mut generic: Option<&[u8]> = None;
        let mut addrs: Option<(IpAddr, IpAddr)> = None;
        let mut out = (0u64, 0u64);
        let mut at = 12usize;
        for e in 0..elements {
            if at + 4 > rec.len() {
                return Err(format!(
                    "{elements} elements announced, record ends after {e}"
                ));
            }
            let (typ, len) = (le16(rec, at), le16(rec, at + 2) as usize);
            if len < 4 || at + len > rec.len() {
                return Err(format!(
                    "element {} (type {typ}) has length {len}, {} bytes left",
                    e + 1,
                    rec.len() - at
                ));
            }
            let el = &rec[at + 4..at + len];
            match typ {
                EX_GENERIC_FLOW if el.len() >= 48 => generic = Some(el),
                EX_IPV4_FLOW if el.len() >= 8 => addrs = Some((ipv4(el, 0), ipv4(el, 4))),
                EX_IPV6_FLOW if el.len() >= 32 => addrs = Some((ipv6(el, 0), ipv6(el, 16))),
                EX_CNT_FLOW if el.len() >= 24 => out = (le64(el, 8), le64(el, 16)),
                EX_GENERIC_FLOW | EX_IPV4_FLOW | EX_IPV6_FLOW | EX_CNT_FLOW => {
                    return Err(format!("element type {typ} too short ({len} bytes)"));
                }
                _ => {}
            }
            at += len;
        }
        let g = generic.ok_or("no generic flow element (times, counters, ports)")?;
        let (sa, da) = addrs.ok_or("no IPv4 or IPv6 address element")?;
        let start = ms_to_ns(le64(g, 0)).ok_or("start time out of range")?;
        let end = ms_to_ns(le64(g, 8)).ok_or("end time out of range")?;
        let sampling = self.record_base(flags & V3_FLAG_ANON != 0, exporter);
        Ok(FlowRecord {
            start,
            end: end.max(start),
            proto: g[44],
            src: Endpoint {
                ip: sa,
                port: le16(g, 40),
            },
            dst: Endpoint {
                ip: da,
                port: le16(g, 42),
            },
            pkts: le64(g, 24),
            bytes: le64(g, 32),
            tcp_flags: g[45],
            sampling,
            record: self.flows,
            rev_pkts: out.0,
            rev_bytes: out.1,
            app_bytes: None,
            missed: 0,
            exporter: self.exporters.get(&exporter).copied(),
        })
    }

    /// nfdump 1.6 common record (type 10): 32 bytes of fixed fields, the
    /// addresses, packets and bytes (sizes by flag), then the optional
    /// extensions its extension map lists, in that order.
    fn v1_record(&mut self, rec: &[u8]) -> Result<FlowRecord, String> {
        if rec.len() < 32 {
            return Err(format!(
                "common record of {} bytes, shorter than its 32-byte head",
                rec.len()
            ));
        }
        let flags = le16(rec, 4);
        let map_id = le16(rec, 6);
        let ms = |s: usize, m: usize| u64::from(le32(rec, s)) * 1000 + u64::from(le16(rec, m));
        let (first, last) = (ms(12, 8), ms(16, 10));
        let exporter = le16(rec, 28);
        let ids = match self.maps.get(&map_id) {
            Some(Some(ids)) => ids.clone(),
            Some(None) => return Err(format!("extension map {map_id} is not valid")),
            None => return Err(format!("extension map {map_id} never defined")),
        };
        let mut at = 32usize;
        let take = |at: &mut usize, n: usize| -> Result<usize, String> {
            let a = *at;
            if a + n > rec.len() {
                return Err(format!(
                    "record of {} bytes ends inside its fields (map {map_id})",
                    rec.len()
                ));
            }
            *at += n;
            Ok(a)
        };
        let (sa, da) = if flags & FLAG_IPV6_ADDR != 0 {
            let a = take(&mut at, 32)?;
            (ipv6(rec, a), ipv6(rec, a + 16))
        } else {
            let a = take(&mut at, 8)?;
            (ipv4(rec, a), ipv4(rec, a + 4))
        };
        let counter = |at: &mut usize, wide: bool| -> Result<u64, String> {
            Ok(if wide {
                le64(rec, take(at, 8)?)
            } else {
                u64::from(le32(rec, take(at, 4)?))
            })
        };
        let pkts = counter(&mut at, flags & FLAG_PKG_64 != 0)?;
        let bytes = counter(&mut at, flags & FLAG_BYTES_64 != 0)?;
        let (mut opkts, mut obytes) = (0u64, 0u64);
        for id in ids {
            let n = v1_extension_size(id).unwrap_or(0);
            let a = take(&mut at, n)?;
            match id {
                14 => opkts = u64::from(le32(rec, a)),
                15 => opkts = le64(rec, a),
                16 => obytes = u64::from(le32(rec, a)),
                17 => obytes = le64(rec, a),
                _ => {}
            }
        }
        let start = ms_to_ns(first).ok_or("start time out of range")?;
        let end = ms_to_ns(last).ok_or("end time out of range")?;
        let sampling = self.record_base(false, exporter);
        Ok(FlowRecord {
            start,
            end: end.max(start),
            proto: rec[22],
            src: Endpoint {
                ip: sa,
                port: le16(rec, 24),
            },
            dst: Endpoint {
                ip: da,
                port: le16(rec, 26),
            },
            pkts,
            bytes,
            tcp_flags: rec[21],
            sampling,
            record: self.flows,
            rev_pkts: opkts,
            rev_bytes: obytes,
            app_bytes: None,
            missed: 0,
            exporter: self.exporters.get(&exporter).copied(),
        })
    }
}

/// Bytes of an nfdump 1.6 optional extension (nfx.c `extension_descriptor`,
/// sizes as nffile_compat.c steps over them); `None` for an id nfdump rejects.
/// Ids 1-3 (the required extensions) take no room in the optional part.
fn v1_extension_size(id: u16) -> Option<usize> {
    Some(match id {
        1..=3 => 0,
        4 | 6 | 8 | 9 | 11 | 13 | 14 | 16 | 18 | 23 | 25 | 38 => 4,
        5 | 7 | 15 | 17 | 19 | 26 | 27 | 39 | 47 | 48 => 8,
        10 | 12 | 20 | 21 | 24 => 16,
        22 => 40,
        37 => 20,
        40 => 32,
        41 | 42 | 45 => 24,
        43 => 72,
        46 => 12,
        28..=36 | 44 | 49 => 0,
        _ => return None,
    })
}

/// LZO1X decompression (the format of lzo1x_decompress_safe, which nfdump
/// uses): every input read and every back-reference is bounds-checked, and the
/// output never grows past `cap`. Errors instead of panicking on any input.
pub fn lzo1x_decompress(src: &[u8], out: &mut Vec<u8>, cap: usize) -> Result<(), String> {
    struct In<'a> {
        s: &'a [u8],
        p: usize,
    }
    impl In<'_> {
        fn byte(&mut self) -> Result<usize, String> {
            let b = *self.s.get(self.p).ok_or("input overrun")?;
            self.p += 1;
            Ok(usize::from(b))
        }
        fn le16(&mut self) -> Result<usize, String> {
            Ok(self.byte()? | (self.byte()? << 8))
        }
        /// A run length continued by zero bytes (255 each) and a final byte.
        fn long(&mut self, base: usize) -> Result<usize, String> {
            let mut n = base;
            loop {
                let b = self.byte()?;
                if b != 0 {
                    return Ok(n + b);
                }
                n += 255;
            }
        }
        fn literals(&mut self, out: &mut Vec<u8>, n: usize, cap: usize) -> Result<(), String> {
            let lit = self.s.get(self.p..self.p + n).ok_or("input overrun")?;
            if out.len() + n > cap {
                return Err(format!("output larger than {cap} bytes"));
            }
            out.extend_from_slice(lit);
            self.p += n;
            Ok(())
        }
    }
    let mut i = In { s: src, p: 0 };
    let mut state = 0usize;
    let first = *src.first().ok_or("empty input")?;
    if first >= 22 {
        i.p = 1;
        i.literals(out, usize::from(first) - 17, cap)?;
        state = 4;
    } else if first >= 18 {
        i.p = 1;
        state = usize::from(first) - 17;
        i.literals(out, state, cap)?;
    }
    loop {
        let inst = i.byte()?;
        let (dist, len, next);
        if inst >= 64 {
            // M2: 3-8 bytes from within 2 KiB.
            let h = i.byte()?;
            dist = (h << 3) + ((inst >> 2) & 7) + 1;
            len = (inst >> 5) + 1;
            next = inst & 3;
        } else if inst >= 32 {
            // M3: within 16 KiB.
            let mut l = inst & 31;
            if l == 0 {
                l = i.long(31)?;
            }
            len = l + 2;
            let d = i.le16()?;
            dist = (d >> 2) + 1;
            next = d & 3;
        } else if inst >= 16 {
            // M4: 16-48 KiB back, or the end-of-stream marker.
            let mut l = inst & 7;
            if l == 0 {
                l = i.long(7)?;
            }
            len = l + 2;
            let d = i.le16()?;
            let far = ((inst & 8) << 11) + (d >> 2);
            if far == 0 {
                if len != 3 {
                    return Err("bad end-of-stream marker".into());
                }
                if i.p != src.len() {
                    return Err(format!(
                        "{} bytes after the end-of-stream marker",
                        src.len() - i.p
                    ));
                }
                return Ok(());
            }
            dist = far + 16384;
            next = d & 3;
        } else if state == 0 {
            // A literal run of 4 or more bytes.
            let l = if inst == 0 { i.long(15)? } else { inst };
            i.literals(out, l + 3, cap)?;
            state = 4;
            continue;
        } else if state < 4 {
            // M1: 2 bytes from within 1 KiB.
            let h = i.byte()?;
            dist = (inst >> 2) + (h << 2) + 1;
            len = 2;
            next = inst & 3;
        } else {
            // M1 after a literal run: 3 bytes from 2-3 KiB back.
            let h = i.byte()?;
            dist = (inst >> 2) + (h << 2) + 2049;
            len = 3;
            next = inst & 3;
        }
        if dist > out.len() {
            return Err("back-reference before the start of the output".into());
        }
        if out.len() + len > cap {
            return Err(format!("output larger than {cap} bytes"));
        }
        let from = out.len() - dist;
        for k in 0..len {
            let b = out[from + k];
            out.push(b);
        }
        i.literals(out, next, cap)?;
        state = next;
    }
}
