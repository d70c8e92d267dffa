//! pcap (both byte orders, µs and ns, Kuznetzov's modified format) and pcapng
//! (several sections and interfaces, if_tsresol/if_tsoffset, Interface Statistics
//! Blocks). pcapng blocks are parsed by pcap-parser after we have checked their
//! length fields, so a hostile length can neither make us allocate nor loop.

use super::{
    Compression, InputError, InputFormat, InputSummary, InterfaceInfo, MAX_BLOCK, MAX_SNAPLEN,
    PacketSink, Progress, RawPacket, ReadOptions, Window,
};
use crate::diag::Weird;
use crate::model::{NS_PER_SEC, SUPPORTED_LINKTYPES, Ts};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;

const PROGRESS_STEP: u64 = 4 << 20;

/// Parses the window as pcap or pcapng, whichever its magic says.
pub fn parse(
    w: &mut Window<'_>,
    opts: &ReadOptions,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
    comp: Compression,
    progress: Progress<'_>,
) {
    let suffix = match comp {
        Compression::None => "",
        Compression::Gzip => "+gzip",
        Compression::Zstd => "+zstd",
    };
    let decompressed = comp != Compression::None;
    let fail = |sum: &mut InputSummary, offset: u64, message: String| {
        sum.error = Some(InputError {
            record: None,
            offset,
            decompressed,
            message,
        });
    };
    match w.ensure(4) {
        Ok(true) => {}
        Ok(false) => {
            fail(
                sum,
                0,
                "too short to be a capture (fewer than 4 bytes)".into(),
            );
            return;
        }
        Err(e) => {
            fail(sum, 0, format!("read error: {e}"));
            return;
        }
    }
    let head = [w.avail()[0], w.avail()[1], w.avail()[2], w.avail()[3]];
    let magic = u32::from_le_bytes(head);
    let mut reporter = ProgressReporter::new(progress);
    let is_capture = matches!(
        magic,
        0x0a0d_0d0a
            | 0xa1b2_c3d4
            | 0xa1b2_3c4d
            | 0xd4c3_b2a1
            | 0x4d3c_b2a1
            | 0xa1b2_cd34
            | 0x34cd_b2a1
    );
    // The format: forced by --input-format, else detected from the content.
    let format = match opts.format {
        InputFormat::Auto if is_capture => InputFormat::Pcap,
        InputFormat::Auto if super::nfcapd::is_nfcapd(w) => InputFormat::Nfcapd,
        InputFormat::Auto if super::zeek::is_zeek_tsv(w) || super::zeek::is_zeek_json(w) => {
            InputFormat::Zeek
        }
        InputFormat::Auto if super::vpc::is_vpc(w) => InputFormat::Vpc,
        // With a --columns mapping, text exports other than Zeek and VPC logs
        // are read through it.
        InputFormat::Auto if opts.columns.is_some() && super::csvmap::is_csv(w) => InputFormat::Csv,
        InputFormat::Auto if super::nfdump::is_nfdump_csv(w) => InputFormat::NfdumpCsv,
        InputFormat::Auto if super::export::is_export_file(w) => InputFormat::Netflow,
        f => f,
    };
    let res = match format {
        InputFormat::Pcap if magic == 0x0a0d_0d0a => {
            sum.format = format!("pcapng{suffix}");
            parse_pcapng(w, sink, sum, &mut reporter, decompressed)
        }
        InputFormat::Pcap if is_capture => parse_legacy(w, sink, sum, magic, suffix, &mut reporter),
        InputFormat::Pcap => Err((0, "not a pcap or pcapng file (no capture magic)".into())),
        InputFormat::Zeek if super::zeek::is_zeek_json(w) => {
            sum.format = format!("zeek-conn-json{suffix}");
            super::zeek::parse(w, sink, sum, true)
        }
        InputFormat::Zeek => {
            sum.format = format!("zeek-conn-tsv{suffix}");
            super::zeek::parse(w, sink, sum, false)
        }
        InputFormat::Nfcapd => {
            sum.format = format!("nfcapd-v{}{suffix}", super::nfcapd::layout(w));
            super::nfcapd::parse(w, sink, sum)
        }
        InputFormat::Vpc => {
            sum.format = format!("aws-vpc-flow-log{suffix}");
            super::vpc::parse(w, sink, sum)
        }
        InputFormat::NfdumpCsv => {
            sum.format = format!("nfdump-csv{suffix}");
            super::nfdump::parse(w, sink, sum)
        }
        InputFormat::Netflow => {
            sum.format = format!("netflow-export{suffix}");
            super::export::parse(w, sink, sum)
        }
        InputFormat::Csv => match &opts.columns {
            Some(map) => {
                sum.format = format!("csv{suffix}");
                super::csvmap::parse(w, map, sink, sum)
            }
            None => Err((0, "--input-format csv needs --columns".into())),
        },
        InputFormat::Auto if matches!(u16::from_be_bytes([head[0], head[1]]), 5 | 9 | 10) => {
            let _ = w.ensure(1 << 16);
            let why = super::export::message_len(w.avail())
                .err()
                .unwrap_or_else(|| "implausible header".into());
            Err((
                0,
                format!(
                    "not a capture or flow export; as a NetFlow/IPFIX export file: message 1: {why}"
                ),
            ))
        }
        InputFormat::Auto => Err((
            0,
            format!(
                "not a capture or flow export: unrecognised magic {:02x} {:02x} {:02x} {:02x}",
                head[0], head[1], head[2], head[3]
            ),
        )),
    };
    reporter.finish(w.offset());
    if let Err((offset, message)) = res
        && sum.error.is_none()
    {
        fail(sum, offset, message);
    }
}

struct ProgressReporter<'p> {
    progress: Progress<'p>,
    reported: u64,
}

impl<'p> ProgressReporter<'p> {
    fn new(progress: Progress<'p>) -> Self {
        ProgressReporter {
            progress,
            reported: 0,
        }
    }
    #[inline]
    fn at(&mut self, offset: u64) {
        if offset >= self.reported + PROGRESS_STEP {
            (self.progress)(offset - self.reported);
            self.reported = offset;
        }
    }
    fn finish(&mut self, offset: u64) {
        if offset > self.reported {
            (self.progress)(offset - self.reported);
            self.reported = offset;
        }
    }
}

type ParseResult = Result<(), (u64, String)>;

fn io_err(off: u64, e: std::io::Error) -> (u64, String) {
    (off, format!("read error: {e}"))
}

fn parse_legacy(
    w: &mut Window<'_>,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
    magic: u32,
    suffix: &str,
    rep: &mut ProgressReporter<'_>,
) -> ParseResult {
    let be = matches!(magic, 0xd4c3_b2a1 | 0x4d3c_b2a1 | 0x34cd_b2a1);
    let nanos = matches!(magic, 0xa1b2_3c4d | 0x4d3c_b2a1);
    let modified = matches!(magic, 0xa1b2_cd34 | 0x34cd_b2a1);
    sum.big_endian = be;
    sum.format = format!(
        "{}{suffix}",
        if nanos {
            "pcap-ns"
        } else if modified {
            "pcap-modified"
        } else {
            "pcap"
        }
    );
    if !w.ensure(24).map_err(|e| io_err(0, e))? {
        return Err((
            0,
            format!(
                "truncated pcap file header: {} of 24 bytes",
                w.avail().len()
            ),
        ));
    }
    let rd = |b: &[u8]| -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let h = w.avail();
    let snaplen = rd(&h[16..20]);
    let linktype_raw = rd(&h[20..24]);
    // The upper bits of the link-type field carry FCS length and flags (pcap spec).
    let linktype = linktype_raw & 0x0fff_ffff;
    sum.link_types.insert(linktype);
    if !SUPPORTED_LINKTYPES.contains(&linktype) {
        return Err((
            20,
            format!("unsupported link type {linktype} in the pcap file header"),
        ));
    }
    sum.interfaces.push(InterfaceInfo {
        section: 0,
        id: 0,
        linktype,
        snaplen,
        ..Default::default()
    });
    w.consume(24);
    let hdr_len = if modified { 24 } else { 16 };
    let limit = snaplen.max(MAX_SNAPLEN).min(MAX_BLOCK as u32) as usize;
    let mut frame = 0u64;
    loop {
        let off = w.offset();
        rep.at(off);
        if !w.ensure(hdr_len).map_err(|e| io_err(off, e))? {
            let left = w.avail().len();
            if left == 0 {
                return Ok(());
            }
            return Err((
                off,
                format!("truncated record header: {left} of {hdr_len} bytes"),
            ));
        }
        let h = w.avail();
        let ts_sec = rd(&h[0..4]);
        let ts_frac = rd(&h[4..8]);
        let caplen = rd(&h[8..12]);
        let origlen = rd(&h[12..16]);
        if caplen as usize > limit {
            return Err((
                off,
                format!("absurd caplen {caplen} in record header (limit {limit}); file is corrupt"),
            ));
        }
        let total = hdr_len + caplen as usize;
        if !w.ensure(total).map_err(|e| io_err(off, e))? {
            return Err((
                off,
                format!(
                    "truncated last record: caplen {caplen}, only {} bytes left",
                    w.avail().len().saturating_sub(hdr_len)
                ),
            ));
        }
        frame += 1;
        // A fraction of a second that is not below one second is invalid (tcpdump
        // prints "invalid us"); it is clamped into its second and counted, so an
        // invalid value can move a packet by less than a second, never further.
        let frac_ns = if nanos {
            if ts_frac >= 1_000_000_000 {
                sum.weirds.add(Weird::InvalidTimestamp);
                999_999_999
            } else {
                i64::from(ts_frac)
            }
        } else if ts_frac >= 1_000_000 {
            sum.weirds.add(Weird::InvalidTimestamp);
            999_999_000
        } else {
            i64::from(ts_frac) * 1000
        };
        let ts = i64::from(ts_sec) * NS_PER_SEC + frac_ns;
        let data = &w.avail()[hdr_len..total];
        emit(
            sum,
            sink,
            &RawPacket {
                ts,
                linktype,
                caplen,
                origlen,
                frame,
                data,
            },
        );
        w.consume(total);
    }
}

/// Counts a packet in the inventory and hands it on.
#[inline]
fn emit(sum: &mut InputSummary, sink: &mut (dyn PacketSink + Send), p: &RawPacket<'_>) {
    account(sum, p.ts, p.caplen, p.origlen);
    sink.packet(p);
}

#[inline]
fn account(sum: &mut InputSummary, ts: Ts, caplen: u32, origlen: u32) {
    sum.packets += 1;
    sum.captured_bytes += u64::from(caplen);
    sum.wire_bytes += u64::from(origlen.max(caplen));
    if caplen < origlen {
        sum.truncated_packets += 1;
    }
    sum.note_ts(ts);
}

/// A pcapng timestamp in nanoseconds: `raw` units of the interface's resolution
/// plus its offset. `None` when the interface has no usable resolution or the
/// value does not fit (the caller counts an invalid_timestamp).
fn iface_ts(ifc: &Iface, raw: u64) -> Option<Ts> {
    if ifc.units == 0 {
        return None;
    }
    let ns = i128::from(ifc.offset_s) * i128::from(NS_PER_SEC)
        + i128::from(raw) * i128::from(NS_PER_SEC) / i128::from(ifc.units);
    i64::try_from(ns).ok()
}

#[derive(Clone, Copy)]
struct Iface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second.
    units: u64,
    offset_s: i64,
    index: usize,
}

fn parse_pcapng(
    w: &mut Window<'_>,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
    rep: &mut ProgressReporter<'_>,
    decompressed: bool,
) -> ParseResult {
    let mut be = false;
    let mut section: u32 = 0;
    let mut ifaces: Vec<Iface> = Vec::new();
    let mut frame = 0u64;
    let mut seen_shb = false;
    let mut last_ts: Ts = 0;
    loop {
        let off = w.offset();
        rep.at(off);
        if !w.ensure(12).map_err(|e| io_err(off, e))? {
            let left = w.avail().len();
            if left == 0 {
                return Ok(());
            }
            return Err((
                off,
                format!("truncated pcapng block header: {left} of 12 bytes"),
            ));
        }
        let h = w.avail();
        let btype_le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if btype_le == 0x0a0d_0d0a {
            // Section Header Block: the byte-order magic decides the endianness.
            let bom = [h[8], h[9], h[10], h[11]];
            be = match u32::from_le_bytes(bom) {
                0x1a2b_3c4d => false,
                0x4d3c_2b1a => true,
                _ => {
                    return Err((
                        off,
                        "broken pcapng section header: bad byte-order magic".into(),
                    ));
                }
            };
            if seen_shb {
                section += 1;
            }
            seen_shb = true;
            ifaces.clear();
            sum.big_endian = be;
        } else if !seen_shb {
            return Err((
                off,
                "pcapng file does not start with a section header".into(),
            ));
        }
        let h = w.avail();
        let rd = |b: &[u8]| -> u32 {
            let a = [b[0], b[1], b[2], b[3]];
            if be {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        let btype = rd(&h[0..4]);
        let blen = rd(&h[4..8]) as usize;
        if blen < 12 || !blen.is_multiple_of(4) {
            return Err((
                off,
                format!("broken pcapng block: type 0x{btype:08x} with length {blen}"),
            ));
        }
        if blen > MAX_BLOCK {
            return Err((
                off,
                format!("absurd pcapng block length {blen} (limit {MAX_BLOCK}); file is corrupt"),
            ));
        }
        if !w.ensure(blen).map_err(|e| io_err(off, e))? {
            return Err((
                off,
                format!(
                    "truncated last block: type 0x{btype:08x} needs {blen} bytes, only {} left",
                    w.avail().len()
                ),
            ));
        }
        let bytes = &w.avail()[..blen];
        if rd(&bytes[blen - 4..]) as usize != blen {
            return Err((
                off,
                format!("broken pcapng block: type 0x{btype:08x}, trailing length differs"),
            ));
        }
        if btype == 2 {
            // Obsolete Packet Block (pcapng draft; old Wireshark/Npcap files):
            // interface u16, drops u16, timestamp, caplen, origlen, data.
            frame += 1;
            if blen < 32 {
                return Err((off, format!("broken pcapng packet block: length {blen}")));
            }
            let if_id = if be {
                u16::from_be_bytes([bytes[8], bytes[9]])
            } else {
                u16::from_le_bytes([bytes[8], bytes[9]])
            };
            let ts_high = rd(&bytes[12..16]);
            let ts_low = rd(&bytes[16..20]);
            let caplen = rd(&bytes[20..24]);
            let origlen = rd(&bytes[24..28]);
            if 28 + caplen as usize > blen - 4 {
                return Err((
                    off,
                    format!(
                        "broken pcapng packet block: caplen {caplen} exceeds block length {blen}"
                    ),
                ));
            }
            let Some(ifc) = ifaces.get(usize::from(if_id)).copied() else {
                sum.weirds.add(Weird::UnknownInterface);
                sum.packets += 1;
                w.consume(blen);
                continue;
            };
            let raw = (u64::from(ts_high) << 32) | u64::from(ts_low);
            let ts = iface_ts(&ifc, raw).unwrap_or_else(|| {
                sum.weirds.add(Weird::InvalidTimestamp);
                last_ts
            });
            last_ts = ts;
            let data = &w.avail()[28..28 + caplen as usize];
            emit(
                sum,
                sink,
                &RawPacket {
                    ts,
                    linktype: ifc.linktype,
                    caplen,
                    origlen,
                    frame,
                    data,
                },
            );
            w.consume(blen);
            continue;
        }
        let parsed = if be {
            pcap_parser::pcapng::parse_block_be(bytes)
        } else {
            pcap_parser::pcapng::parse_block_le(bytes)
        };
        let block = match parsed {
            Ok((_, b)) => b,
            Err(e) => {
                if btype == 0x0000_0006 || btype == 0x0000_0001 || btype == 0x0a0d_0d0a {
                    return Err((
                        off,
                        format!("broken pcapng block: type 0x{btype:08x}: {e:?}")
                            .chars()
                            .take(200)
                            .collect(),
                    ));
                }
                // Unknown or optional block we cannot parse: skip it (it holds no
                // packets) and count it, so nothing is dropped unseen.
                sum.weirds.add_n("pcapng_block_skipped", 1);
                w.consume(blen);
                continue;
            }
        };
        match block {
            Block::SectionHeader(_) => {}
            Block::InterfaceDescription(idb) => {
                let linktype = idb.linktype.0 as u32;
                let units = idb.ts_resolution().unwrap_or(0);
                sum.link_types.insert(linktype);
                let name = idb.if_name().and_then(|r| r.ok()).map(str::to_string);
                if !SUPPORTED_LINKTYPES.contains(&linktype) && sum.error.is_none() {
                    // Keep reading: other interfaces may be fine. Packets of this one
                    // are counted and named as unknown_link_type weirds.
                    sum.error = Some(InputError {
                        record: None,
                        offset: off,
                        decompressed,
                        message: format!(
                            "unsupported link type {linktype} on pcapng interface {} (its packets are not decoded)",
                            ifaces.len()
                        ),
                    });
                }
                sum.interfaces.push(InterfaceInfo {
                    section,
                    id: ifaces.len() as u32,
                    linktype,
                    snaplen: idb.snaplen,
                    name,
                    ..Default::default()
                });
                ifaces.push(Iface {
                    linktype,
                    snaplen: idb.snaplen,
                    units,
                    offset_s: idb.if_tsoffset,
                    index: sum.interfaces.len() - 1,
                });
            }
            Block::EnhancedPacket(epb) => {
                frame += 1;
                let Some(ifc) = ifaces.get(epb.if_id as usize).copied() else {
                    sum.weirds.add(Weird::UnknownInterface);
                    sum.packets += 1;
                    w.consume(blen);
                    continue;
                };
                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let ts = iface_ts(&ifc, raw).unwrap_or_else(|| {
                    sum.weirds.add(Weird::InvalidTimestamp);
                    last_ts
                });
                last_ts = ts;
                let data = epb.packet_data();
                let caplen = data.len() as u32;
                let origlen = epb.origlen;
                emit(
                    sum,
                    sink,
                    &RawPacket {
                        ts,
                        linktype: ifc.linktype,
                        caplen,
                        origlen,
                        frame,
                        data,
                    },
                );
            }
            Block::SimplePacket(spb) => {
                frame += 1;
                let Some(ifc) = ifaces.first().copied() else {
                    sum.weirds.add(Weird::UnknownInterface);
                    sum.packets += 1;
                    w.consume(blen);
                    continue;
                };
                let snap = if ifc.snaplen == 0 {
                    u32::MAX
                } else {
                    ifc.snaplen
                };
                let caplen = spb.origlen.min(snap).min(spb.data.len() as u32);
                let data = &spb.data[..caplen as usize];
                // Simple Packet Blocks carry no timestamp: use the previous packet's.
                if sum.first_ts.is_none() {
                    // No timestamp seen yet: count the packet, keep it out of the timeline.
                    sum.weirds.add_n("simple_packet_without_timestamp", 1);
                    sum.packets += 1;
                    sum.captured_bytes += u64::from(caplen);
                    sum.wire_bytes += u64::from(spb.origlen.max(caplen));
                } else {
                    account(sum, last_ts, caplen, spb.origlen);
                }
                sink.packet(&RawPacket {
                    ts: last_ts,
                    linktype: ifc.linktype,
                    caplen,
                    origlen: spb.origlen,
                    frame,
                    data,
                });
            }
            Block::InterfaceStatistics(isb) => {
                if let Some(ifc) = ifaces.get(isb.if_id as usize) {
                    let info = &mut sum.interfaces[ifc.index];
                    if let Some(Ok(v)) = isb.isb_ifrecv() {
                        info.if_recv = Some(v);
                    }
                    if let Some(Ok(v)) = isb.isb_ifdrop() {
                        info.if_drop = Some(v);
                    }
                    if let Some(Ok(v)) = isb.isb_osdrop() {
                        info.os_drop = Some(v);
                    }
                }
            }
            Block::NameResolution(_)
            | Block::DecryptionSecrets(_)
            | Block::Custom(_)
            | Block::ProcessInformation(_)
            | Block::SystemdJournalExport(_) => {}
            Block::Unknown(_) => sum.weirds.add_n("pcapng_block_skipped", 1),
        }
        w.consume(blen);
    }
}
