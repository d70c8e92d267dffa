//! Reads evidence files from disk (or stdin) and yields their packets. Knows file
//! formats and compression, not protocols.
//!
//! Plain files are memory-mapped and parsed in place; `.gz`/`.zst` files and stdin
//! are decompressed as a stream through a bounded window, so memory does not grow
//! with the file. The format is detected by content (magic bytes), never by name.
//! A broken file stops at the first unrecoverable record with an [`InputError`]
//! that names the byte offset; every packet before it has already been handed on.

pub mod csvmap;
pub mod export;
pub mod nfcapd;
pub mod nfdump;
pub mod pcap;
pub mod timehint;
pub mod vpc;
pub mod zeek;

use crate::diag::Weirds;
use crate::model::RecordTally;
use crate::model::Ts;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Largest record or block we accept. A length field above it is treated as
/// corruption instead of a reason to allocate.
pub const MAX_BLOCK: usize = 64 << 20;
/// Largest captured length accepted for a legacy pcap record when the file's
/// snaplen is smaller (libpcap's own MAXIMUM_SNAPLEN).
pub const MAX_SNAPLEN: u32 = 262_144;

/// One packet as stored in a capture file.
pub struct RawPacket<'a> {
    pub ts: Ts,
    pub linktype: u32,
    pub caplen: u32,
    pub origlen: u32,
    /// 1-based frame number within the file, as Wireshark numbers it.
    pub frame: u64,
    pub data: &'a [u8],
}

/// Receives the packets (or flow records) of one input, in file order.
pub trait PacketSink {
    fn packet(&mut self, p: &RawPacket<'_>);
    /// A flow record from a text flow export (nfdump CSV).
    fn record(&mut self, _r: crate::model::FlowRecord) {}
    /// One NetFlow/IPFIX message from an export file (no capture framing).
    fn export(&mut self, _payload: &[u8], _origin: crate::model::Origin) {}
    /// Whether this sink wants the output of each record made where the
    /// record is read (the parallel pieces of a text export), and by what:
    /// each thread reading pieces makes itself one with the factory.
    fn piece_output(&self) -> Option<PieceOutput> {
        None
    }
    /// What a piece's records made, in file order (instead of the records),
    /// and their tally.
    fn piece_done(&mut self, _out: &mut Vec<u8>, _tally: &RecordTally) {}
}

/// Makes one record's output (its row) into the buffer, tallying the
/// record; its line number is already absolute.
pub type RecordOutput =
    Box<dyn FnMut(crate::model::FlowRecord, &mut Vec<u8>, &mut RecordTally) + Send>;

/// Makes a [`RecordOutput`] for a thread reading pieces.
pub type PieceOutput = std::sync::Arc<dyn Fn() -> RecordOutput + Send + Sync>;

/// What could not be read, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InputError {
    /// Byte offset in the file (or in the decompressed stream, see `decompressed`).
    pub offset: u64,
    pub decompressed: bool,
    pub message: String,
    /// The frame (captures) or message number (export files) the error is in,
    /// when the byte offset alone does not say it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<u64>,
}

/// Per-interface facts of a pcapng capture (pcap files have one implicit interface).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InterfaceInfo {
    pub section: u32,
    pub id: u32,
    pub linktype: u32,
    pub snaplen: u32,
    pub name: Option<String>,
    /// Last Interface Statistics Block values (cumulative counters).
    pub if_recv: Option<u64>,
    pub if_drop: Option<u64>,
    pub os_drop: Option<u64>,
}

/// The inventory line of one input file.
#[derive(Clone, Debug, Default, Serialize)]
pub struct InputSummary {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// `pcap`, `pcap-ns`, `pcap-modified`, `pcapng` (with `+gzip`/`+zstd`), or `unknown`.
    pub format: String,
    pub big_endian: bool,
    pub link_types: BTreeSet<u32>,
    pub packets: u64,
    pub captured_bytes: u64,
    pub wire_bytes: u64,
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub first_ts: Option<Ts>,
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub last_ts: Option<Ts>,
    pub truncated_packets: u64,
    pub interfaces: Vec<InterfaceInfo>,
    /// Flow records read (nfdump CSV rows, or records inside NetFlow v9/IPFIX
    /// export datagrams in a capture).
    pub flow_records: u64,
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub records_first_ts: Option<Ts>,
    #[serde(serialize_with = "crate::model::ser_ts_opt")]
    pub records_last_ts: Option<Ts>,
    /// Export messages (v9) or records (IPFIX) missing by their sequence numbers.
    pub export_missing: u64,
    /// Records whose template never arrived, or that lack addresses.
    pub undecodable_records: u64,
    /// Largest packet sampling interval announced by an exporter (1 = unsampled).
    pub sampling_interval: u32,
    /// An exporter announced deterministic (1-in-N) rather than random sampling.
    pub deterministic_sampling: bool,
    /// Malformed export messages, templates or records (NetFlow/IPFIX).
    pub export_errors: u64,
    /// The longest silences between consecutive packets (start, end), longest first.
    #[serde(skip)]
    pub silences: Vec<(Ts, Ts)>,
    /// Inter-packet gaps: log2 histogram of microseconds (bucket i holds gaps < 2^i µs).
    #[serde(skip)]
    pub gap_hist: Vec<u64>,
    pub weirds: Weirds,
    pub error: Option<InputError>,
    /// Not read: its name or header shows it lies wholly outside the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl InputSummary {
    /// Packets the capturing system reported dropped (sum of pcapng ISB if_drop
    /// and os_drop over interfaces), `None` when the file carries no such counter.
    pub fn drops(&self) -> Option<u64> {
        let mut any = false;
        let mut sum = 0u64;
        for i in &self.interfaces {
            for v in [i.if_drop, i.os_drop].into_iter().flatten() {
                any = true;
                sum = sum.saturating_add(v);
            }
        }
        any.then_some(sum)
    }

    /// A record of a text flow export that cannot be read: counted, and the first
    /// one becomes the input's error (reading goes on).
    pub(crate) fn bad_record(&mut self, offset: u64, decompressed: bool, message: String) {
        self.weirds.add_n("flow_record_unparsable", 1);
        if self.error.is_none() {
            self.error = Some(InputError {
                record: None,
                offset,
                decompressed,
                message,
            });
        }
    }

    pub(crate) fn note_ts(&mut self, ts: Ts) {
        if let Some(last) = self.last_ts {
            if ts > last {
                self.note_gap(last, ts);
            } else if self.gap_hist.is_empty() {
                self.gap_hist = vec![0; 64];
                self.gap_hist[0] += 1;
            } else {
                self.gap_hist[0] += 1;
            }
        }
        self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
    }

    fn note_gap(&mut self, a: Ts, b: Ts) {
        if self.gap_hist.is_empty() {
            self.gap_hist = vec![0; 64];
        }
        let us = ((b - a) / 1000).max(0) as u64;
        let bucket = (64 - us.leading_zeros()) as usize;
        self.gap_hist[bucket.min(63)] += 1;
        const KEEP: usize = 32;
        let g = b - a;
        if self.silences.len() < KEEP || g > self.silences.last().map_or(0, |x| x.1 - x.0) {
            let pos = self.silences.partition_point(|x| x.1 - x.0 >= g);
            self.silences.insert(pos, (a, b));
            self.silences.truncate(KEEP);
        }
    }

    /// Upper bound of the 99th percentile of inter-packet gaps, in ns.
    pub fn gap_p99_ns(&self) -> Option<i64> {
        let n: u64 = self.gap_hist.iter().sum();
        if n < 20 {
            return None;
        }
        let target = n - n / 100;
        let mut acc = 0;
        for (i, c) in self.gap_hist.iter().enumerate() {
            acc += c;
            if acc >= target {
                return Some((1i64 << i.min(62)) * 1000);
            }
        }
        None
    }
}

/// An input path as given: a file, a directory (expanded recursively, sorted) or `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputPath {
    File(PathBuf),
    Stdin,
}

impl InputPath {
    pub fn display(&self) -> String {
        match self {
            InputPath::File(p) => p.display().to_string(),
            InputPath::Stdin => "-".to_string(),
        }
    }
}

/// Expands directories recursively (sorted by path) and keeps files and `-`.
/// A path that does not exist is returned as a file so that it fails, visibly, later.
pub fn expand(paths: &[PathBuf]) -> Vec<InputPath> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(InputPath::Stdin);
        } else if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files);
            files.sort();
            out.extend(files.into_iter().map(InputPath::File));
        } else {
            out.push(InputPath::File(p.clone()));
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        out.push(dir.to_path_buf());
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            Ok(t) if t.is_symlink() && p.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// Input formats; `Auto` detects them by content (magic numbers, header lines),
/// never by file name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    #[default]
    Auto,
    /// pcap or pcapng (by their magic)
    Pcap,
    /// Zeek conn.log, TSV or JSON lines
    Zeek,
    /// `nfdump -o csv` output
    NfdumpCsv,
    /// AWS VPC / Transit Gateway flow logs
    Vpc,
    /// NetFlow v5/v9 datagrams or IPFIX messages stored one after another (RFC 5655 files)
    Netflow,
    /// nfdump's binary nfcapd files (nfdump 1.6 and 1.7 layouts)
    Nfcapd,
    /// CSV with a `--columns` mapping
    Csv,
}

/// How inputs are read (the same for every input of a run).
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    pub format: InputFormat,
    /// Column mapping for generic CSV (`--columns`).
    pub columns: Option<csvmap::ColumnMap>,
}

/// Compression wrapper detected from the first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

pub fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A text line and the offset it starts at.
pub type Line<'l> = (u64, Cow<'l, str>);
/// A line as bytes and the offset it starts at.
pub type ByteLine<'a> = (u64, &'a [u8]);

/// A view of the input bytes: the whole mapped file, or a bounded sliding
/// buffer over a stream. Offsets are absolute from the start of the (decompressed)
/// data.
pub enum Window<'a> {
    Slice {
        data: &'a [u8],
        pos: usize,
    },
    Stream {
        r: Box<dyn Read + 'a>,
        buf: Vec<u8>,
        start: usize,
        end: usize,
        eof: bool,
        base: u64,
    },
}

const STREAM_CHUNK: usize = 1 << 20;

impl<'a> Window<'a> {
    pub fn slice(data: &'a [u8]) -> Self {
        Window::Slice { data, pos: 0 }
    }
    pub fn stream(r: Box<dyn Read + 'a>) -> Self {
        Window::Stream {
            r,
            buf: vec![0; STREAM_CHUNK],
            start: 0,
            end: 0,
            eof: false,
            base: 0,
        }
    }

    /// Bytes available now (at least what the last successful `ensure` asked for).
    #[inline]
    pub fn avail(&self) -> &[u8] {
        match self {
            Window::Slice { data, pos } => &data[*pos..],
            Window::Stream {
                buf, start, end, ..
            } => &buf[*start..*end],
        }
    }

    /// Absolute offset of `avail()[0]`.
    pub fn offset(&self) -> u64 {
        match self {
            Window::Slice { pos, .. } => *pos as u64,
            Window::Stream { base, start, .. } => base + *start as u64,
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, Window::Stream { .. })
    }

    /// Makes at least `n` bytes available. Returns `Ok(false)` when the input ends
    /// first (the caller decides whether that is a clean end or a truncation).
    /// `n` must not exceed [`MAX_BLOCK`] plus a header.
    pub fn ensure(&mut self, n: usize) -> io::Result<bool> {
        match self {
            Window::Slice { data, pos } => Ok(data.len() - *pos >= n),
            Window::Stream {
                r,
                buf,
                start,
                end,
                eof,
                base,
            } => {
                if *end - *start >= n {
                    return Ok(true);
                }
                if *start > 0 {
                    buf.copy_within(*start..*end, 0);
                    *end -= *start;
                    *base += *start as u64;
                    *start = 0;
                }
                if buf.len() < n {
                    buf.resize(n.max(STREAM_CHUNK), 0);
                }
                while *end < n && !*eof {
                    if *end == buf.len() {
                        break;
                    }
                    match r.read(&mut buf[*end..]) {
                        Ok(0) => *eof = true,
                        Ok(k) => *end += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(*end - *start >= n)
            }
        }
    }

    /// The next text line (without `\n` / `\r\n`) and the offset it starts at;
    /// `Ok(None)` at the end. A line longer than 64 KiB is an error at its offset.
    /// Valid UTF-8 is borrowed; other bytes become U+FFFD (the callers report
    /// such a line as not UTF-8).
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, (u64, String)> {
        Ok(self.next_line_bytes()?.map(|(off, line)| {
            (
                off,
                match std::str::from_utf8(line) {
                    Ok(s) => Cow::Borrowed(s),
                    Err(_) => Cow::Owned(String::from_utf8_lossy(line).into_owned()),
                },
            )
        }))
    }

    /// [`Window::next_line`] as bytes, not checked for UTF-8 (record lines
    /// of flow exports are checked in the pass that splits them, see
    /// [`Fields::split`]).
    pub fn next_line_bytes(&mut self) -> Result<Option<ByteLine<'_>>, (u64, String)> {
        const MAX_LINE: usize = 1 << 16;
        let off = self.offset();
        if !matches!(self, Window::Slice { .. }) {
            let _ = self.ensure(MAX_LINE);
        }
        let avail = self.avail();
        if avail.is_empty() {
            return Ok(None);
        }
        let (mut len, used) = match memchr::memchr(b'\n', avail) {
            Some(p) => (p, p + 1),
            None if avail.len() < MAX_LINE => (avail.len(), avail.len()),
            None => return Err((off, format!("line longer than {MAX_LINE} bytes"))),
        };
        self.consume(used);
        let line = self.consumed(used);
        while len > 0 && line[len - 1] == b'\r' {
            len -= 1;
        }
        Ok(Some((off, &line[..len])))
    }

    /// The `n` bytes just consumed (still in the buffer until the next `ensure`).
    fn consumed(&self, n: usize) -> &[u8] {
        match self {
            Window::Slice { data, pos } => &data[*pos - n..*pos],
            Window::Stream { buf, start, .. } => &buf[*start - n..*start],
        }
    }

    #[inline]
    pub fn consume(&mut self, n: usize) {
        match self {
            Window::Slice { pos, .. } => *pos += n,
            Window::Stream { start, .. } => *start += n,
        }
    }
}

/// Whether a line is empty or white space only (`str::trim`'s judgement;
/// a line starting with a visible ASCII character is decided at once, one
/// that is not UTF-8 is not blank).
#[inline]
pub(crate) fn blank(line: &[u8]) -> bool {
    !line.first().is_some_and(u8::is_ascii_graphic)
        && std::str::from_utf8(line).is_ok_and(|t| t.trim().is_empty())
}

/// Where the `sep`-separated fields of a line end: `split` records the index
/// of every separator (and the line's length) in an array reused line after
/// line (no allocation per line; it grows to the longest line once).
/// Flow-export fields are a few bytes long, too short for a search per field:
/// the separators are found sixteen bytes at a time (SSE2 on x86-64, eight
/// bytes in a word elsewhere) and written by index, not pushed.
#[derive(Default)]
pub(crate) struct Fields {
    ends: Vec<u32>,
    n: usize,
}

impl Fields {
    /// Splits the line `b` at every `sep`; `len()` is then the number of fields.
    /// Returns whether every byte is ASCII (found in the same pass; a line
    /// that is not may still be UTF-8, for the caller to check).
    #[inline]
    pub(crate) fn split(&mut self, b: &[u8], sep: u8) -> bool {
        // Every separator and the end fit: the loops below index without a
        // capacity check, and a line is at most 64 KiB (`next_line`).
        if self.ends.len() <= b.len() {
            self.ends.resize(b.len() + 1, 0);
        }
        let (n, ascii) = split_ends(b, sep, &mut self.ends);
        self.ends[n] = b.len() as u32;
        self.n = n + 1;
        ascii
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// Field `k` of the line last split (`None` past the last field).
    #[inline]
    pub(crate) fn get<'l>(&self, line: &'l [u8], k: usize) -> Option<&'l [u8]> {
        if k >= self.n {
            return None;
        }
        let a = if k == 0 {
            0
        } else {
            self.ends[k - 1] as usize + 1
        };
        line.get(a..self.ends[k] as usize)
    }
}

/// Writes the index of each `sep` in `b` to `ends` (at least `b.len()` long)
/// and returns how many there are, and whether every byte is ASCII.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(unsafe_code)]
fn split_ends(b: &[u8], sep: u8, ends: &mut [u32]) -> (usize, bool) {
    // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 processor has
    // it, so the target-feature function can always be called.
    unsafe { sse2::split_ends(b, sep, ends) }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn split_ends(b: &[u8], sep: u8, ends: &mut [u32]) -> (usize, bool) {
    split_ends_swar(b, sep, ends)
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8,
    };

    /// The positions of bytes equal to `sep` in 16 bytes, as bits; and
    /// those of bytes with the high bit set (not ASCII).
    #[target_feature(enable = "sse2")]
    #[inline]
    fn mask(c: &[u8; 16], sep: __m128i) -> (u32, u32) {
        let (lo, hi) = c.split_at(8);
        let lo = u64::from_le_bytes(lo.try_into().unwrap_or_default());
        let hi = u64::from_le_bytes(hi.try_into().unwrap_or_default());
        let v = _mm_set_epi64x(hi as i64, lo as i64);
        (
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, sep)) as u32,
            _mm_movemask_epi8(v) as u32,
        )
    }

    #[target_feature(enable = "sse2")]
    pub(super) fn split_ends(b: &[u8], sep: u8, ends: &mut [u32]) -> (usize, bool) {
        let s = _mm_set1_epi8(sep as i8);
        let mut n = 0;
        let mut emit = |mut m: u32, at: usize| {
            while m != 0 {
                ends[n] = (at + m.trailing_zeros() as usize) as u32;
                n += 1;
                m &= m - 1;
            }
        };
        let mut chunks = b.chunks_exact(32);
        let mut at = 0;
        let mut high = 0;
        let mut both = |c: &[u8]| {
            let (lo, hi) = c.split_at(16);
            let (m0, h0) = mask(lo.try_into().unwrap_or(&[0; 16]), s);
            let (m1, h1) = mask(hi.try_into().unwrap_or(&[0; 16]), s);
            high |= h0 | h1;
            m0 | m1 << 16
        };
        for c in chunks.by_ref() {
            emit(both(c), at);
            at += 32;
        }
        // The rest, padded with ASCII bytes that are not the separator.
        let rest = chunks.remainder();
        let mut pad = [if sep == b'x' { b'y' } else { b'x' }; 32];
        pad[..rest.len()].copy_from_slice(rest);
        emit(both(&pad), at);
        (n, high == 0)
    }
}

/// `split_ends` eight bytes at a time in a word (SWAR), for targets without
/// SSE2; also tested on x86-64.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn split_ends_swar(b: &[u8], sep: u8, ends: &mut [u32]) -> (usize, bool) {
    let rep = u64::from_ne_bytes([sep; 8]);
    let mut n = 0;
    let mut chunks = b.chunks_exact(8);
    let mut i = 0;
    let mut high = 0;
    for c in chunks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        high |= u64::from_ne_bytes(w);
        let mut m = sep_mask(c, rep);
        while m != 0 {
            ends[n] = (i + (m.trailing_zeros() / 8) as usize) as u32;
            n += 1;
            m &= m - 1;
        }
        i += 8;
    }
    for (k, &c) in chunks.remainder().iter().enumerate() {
        high |= u64::from(c);
        if c == sep {
            ends[n] = (i + k) as u32;
            n += 1;
        }
    }
    (n, high & 0x8080_8080_8080_8080 == 0)
}

/// The high bit of each byte of `c` that equals the byte repeated in `rep`
/// (exact: no carries between bytes).
#[inline(always)]
fn sep_mask(c: &[u8], rep: u64) -> u64 {
    const LO: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut w = [0u8; 8];
    w.copy_from_slice(c);
    let x = u64::from_le_bytes(w) ^ rep;
    !(((x & LO).wrapping_add(LO) | x) & HI) & HI
}

/// Reads one piece of a text export: a window over the piece, the number of
/// the line before it, and a sink and summary of its own. Returns the lines
/// read and whether the rest of the file is to be ignored (a trailer).
pub(crate) type PieceFn<'f> = dyn Fn(&mut Window<'_>, u64, &mut Collect, &mut InputSummary) -> Result<(u64, bool), (u64, String)>
    + Sync
    + 'f;

/// Bytes per piece when a text export is read in parallel.
const PIECE: usize = 8 << 20;

/// Whether a text export is read in parallel pieces: a mapped (not streamed)
/// file of at least two pieces, and more than one thread.
pub(crate) fn parallel_worthwhile(w: &Window<'_>) -> bool {
    matches!(w, Window::Slice { .. })
        && w.avail().len() >= 2 * PIECE
        && rayon::current_num_threads() > 1
}

/// The records of one piece, before they get their line numbers (or, with a
/// piece output, what they made).
struct Piece {
    start: usize,
    records: Vec<crate::model::FlowRecord>,
    out: Vec<u8>,
    stats: RecordTally,
    sum: InputSummary,
    lines: u64,
    stop: bool,
    err: Option<(u64, String)>,
}

/// The records of one piece (a concrete sink: the parsers are generic over
/// theirs, so a record is written straight into the vector), or their
/// output made at once, each record numbered from `base`.
pub(crate) struct Collect {
    records: Vec<crate::model::FlowRecord>,
    output: Option<(RecordOutput, u64)>,
    out: Vec<u8>,
    stats: RecordTally,
}

impl PacketSink for Collect {
    fn packet(&mut self, _p: &RawPacket<'_>) {}
    #[inline]
    fn record(&mut self, mut r: crate::model::FlowRecord) {
        match &mut self.output {
            Some((make, base)) => {
                r.record += *base;
                make(r, &mut self.out, &mut self.stats);
            }
            None => self.records.push(r),
        }
    }
}

/// Vectors of pieces already fed, emptied, for the next pieces.
struct Spare<T>(Mutex<Vec<Vec<T>>>);

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Spare(Mutex::new(Vec::new()))
    }
}

impl<T> Spare<T> {
    /// A kept vector (or a new one) with room for `n` more.
    fn take(&self, n: usize) -> Vec<T> {
        let mut v = self
            .0
            .lock()
            .ok()
            .and_then(|mut s| s.pop())
            .unwrap_or_default();
        v.reserve(n);
        v
    }

    /// Keeps `v`, emptied, unless it never had room.
    fn give(&self, mut v: Vec<T>) {
        if v.capacity() > 0
            && let Ok(mut s) = self.0.lock()
        {
            v.clear();
            s.push(v);
        }
    }
}

/// "line N: ..." of a piece as "line N+base: ...".
fn shift_line(message: String, base: u64) -> String {
    let Some(rest) = message.strip_prefix("line ") else {
        return message;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    match rest[..digits].parse::<u64>() {
        Ok(n) => format!("line {}{}", n + base, &rest[digits..]),
        Err(_) => message,
    }
}

/// Reads the lines of a mapped text export from `start` (relative to the
/// window) in pieces of about 8 MiB that end at line ends, several at a time
/// in parallel, while the records of the previous pieces go to the sink in
/// file order. Line numbers, error offsets and messages are made absolute, so
/// the result equals reading the lines one after another (`first_line` lines
/// were read before `start`).
pub(crate) fn parallel_lines(
    w: &mut Window<'_>,
    start: usize,
    first_line: u64,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
    f: &PieceFn<'_>,
) -> Result<(), (u64, String)> {
    use rayon::prelude::*;
    let Window::Slice { data, pos } = w else {
        return Err((0, "internal: parallel read of a stream".into()));
    };
    let all: &[u8] = data;
    let mut bounds = Vec::new();
    let mut a = *pos + start;
    while a < all.len() {
        let mut b = (a + PIECE).min(all.len());
        if b < all.len() {
            b = memchr::memchr(b'\n', &all[b..]).map_or(all.len(), |p| b + p + 1);
        }
        bounds.push(a..b);
        a = b;
    }
    *pos = all.len();
    // With a piece output each record's output is made in its piece, where
    // it was read (the thread handing the pieces on in order only passes on
    // what they made): each piece then needs the number of its first line,
    // counted beforehand (a line end search, a small part of the parse).
    let output = sink.piece_output();
    let bases: Vec<u64> = if output.is_some() {
        let ends: Vec<u64> = bounds
            .par_iter()
            .map(|r| memchr::memchr_iter(b'\n', &all[r.clone()]).count() as u64)
            .collect();
        ends.iter()
            .scan(first_line, |b, n| {
                let here = *b;
                *b += n;
                Some(here)
            })
            .collect()
    } else {
        Vec::new()
    };
    // Record and output vectors of pieces already fed, kept for the next
    // pieces (fresh ones of megabytes each were new pages the kernel had to
    // clear).
    let spare = Spare::<crate::model::FlowRecord>::default();
    let spare_out = Spare::<u8>::default();
    let run = |(k, r): (usize, &std::ops::Range<usize>)| {
        let mut pw = Window::slice(&all[r.clone()]);
        let mut psink = Collect {
            records: Vec::new(),
            output: output.as_ref().map(|make| (make(), bases[k])),
            out: Vec::new(),
            stats: RecordTally::default(),
        };
        // Room for a record per 96 bytes (conn.log lines are about 128,
        // nfdump CSV lines 350), or for its output: growing the vector by
        // doubling copied each piece's records twice over. Untouched room
        // costs no memory.
        if psink.output.is_some() {
            psink.out = spare_out.take(r.len() * 2);
        } else {
            psink.records = spare.take(r.len() / 96);
        }
        let mut psum = InputSummary::default();
        let (lines, stop, err) = match f(&mut pw, 0, &mut psink, &mut psum) {
            Ok((lines, stop)) => (lines, stop, None),
            Err(e) => (0, true, Some(e)),
        };
        Piece {
            start: r.start,
            records: psink.records,
            out: psink.out,
            stats: psink.stats,
            sum: psum,
            lines,
            stop,
            err,
        }
    };
    let mut line_base = first_line;
    let mut feed = |pieces: Vec<Piece>| -> Result<(), (u64, String)> {
        for mut p in pieces {
            for mut r in p.records.drain(..) {
                r.record += line_base;
                sink.record(r);
            }
            if p.out.capacity() > 0 {
                sink.piece_done(&mut p.out, &p.stats);
            }
            spare.give(p.records);
            spare_out.give(p.out);
            sum.flow_records += p.sum.flow_records;
            sum.weirds.merge(&p.sum.weirds);
            if sum.error.is_none()
                && let Some(mut e) = p.sum.error
            {
                e.offset += p.start as u64;
                e.message = shift_line(e.message, line_base);
                sum.error = Some(e);
            }
            if let Some((off, m)) = p.err {
                return Err((off + p.start as u64, shift_line(m, line_base)));
            }
            line_base += p.lines;
        }
        Ok(())
    };
    // The pieces' records (or rows) go to the sink on a thread of their own
    // while this one and the pool parse the next pieces: the sink's work
    // (making flows or passing rows on, in order) then never leaves a core
    // idle while the last pieces of a group are parsed. Groups wait in a
    // channel of one (memory stays bounded); nothing the feeding thread does
    // waits for the pool.
    let batch = 2 * rayon::current_num_threads();
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|ts| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Piece>>(1);
        let failed = &failed;
        let feeder = ts.spawn(move || {
            for pieces in rx {
                if let Err(e) = feed(pieces) {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e);
                }
            }
            Ok(())
        });
        for (g, group) in bounds.chunks(batch).enumerate() {
            if failed.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let mut parsed = group
                .par_iter()
                .enumerate()
                .map(|(k, r)| run((g * batch + k, r)))
                .collect::<Vec<Piece>>();
            // A trailer or an error ends the file: later pieces are not records.
            let stop = parsed.iter().position(|p| p.stop);
            if let Some(k) = stop {
                parsed.truncate(k + 1);
            }
            if tx.send(parsed).is_err() || stop.is_some() {
                break;
            }
        }
        drop(tx);
        feeder
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// SHA-256 as lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A reader that hashes and counts what passes through (for stdin).
pub struct HashingReader<R> {
    inner: R,
    pub hasher: Sha256,
    pub count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Reports bytes read, for the progress bar.
pub type Progress<'p> = &'p (dyn Fn(u64) + Sync);

/// Reads one input completely, handing every packet to `sink`. Never panics on
/// bad data; failures end up in `InputSummary::error`.
pub fn read_input(
    path: &InputPath,
    sink: &mut (dyn PacketSink + Send),
    progress: Progress<'_>,
) -> InputSummary {
    read_input_with(path, &ReadOptions::default(), sink, progress)
}

/// `read_input` with a forced format or a CSV column mapping.
pub fn read_input_with(
    path: &InputPath,
    opts: &ReadOptions,
    sink: &mut (dyn PacketSink + Send),
    progress: Progress<'_>,
) -> InputSummary {
    let mut sum = InputSummary {
        path: path.display(),
        format: "unknown".into(),
        ..Default::default()
    };
    match path {
        InputPath::Stdin => {
            let stdin = io::stdin();
            let lock = stdin.lock();
            let mut hr = HashingReader::new(lock);
            // Sniff compression from the first bytes without losing them.
            let mut head = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                match hr.read(&mut head[got..]) {
                    Ok(0) => break,
                    Ok(k) => got += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        sum.error = Some(InputError {
                            record: None,
                            offset: 0,
                            decompressed: false,
                            message: format!("cannot read stdin: {e}"),
                        });
                        return sum;
                    }
                }
            }
            let comp = detect_compression(&head[..got]);
            let chained = io::Cursor::new(head[..got].to_vec()).chain(&mut hr);
            let reader: Box<dyn Read + '_> = match comp {
                Compression::None => Box::new(chained),
                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(chained)),
                Compression::Zstd => match MultiZstd::new(chained) {
                    Ok(d) => Box::new(d),
                    Err(e) => {
                        sum.error = Some(InputError {
                            record: None,
                            offset: 0,
                            decompressed: false,
                            message: e.to_string(),
                        });
                        return sum;
                    }
                },
            };
            let mut w = Window::stream(reader);
            pcap::parse(&mut w, opts, sink, &mut sum, comp, progress);
            drop(w);
            sum.size = hr.count;
            sum.sha256 = hex(&hr.hasher.finalize());
        }
        InputPath::File(p) => {
            let file = match File::open(p) {
                Ok(f) => f,
                Err(e) => {
                    sum.error = Some(InputError {
                        record: None,
                        offset: 0,
                        decompressed: false,
                        message: format!("cannot open: {e}"),
                    });
                    return sum;
                }
            };
            let meta_len = file.metadata().map(|m| m.len()).unwrap_or(0);
            sum.size = meta_len;
            if meta_len == 0 {
                sum.error = Some(InputError {
                    record: None,
                    offset: 0,
                    decompressed: false,
                    message: "empty file: not a capture".into(),
                });
                return sum;
            }
            let map = match map_file(&file) {
                Ok(m) => m,
                Err(e) => {
                    sum.error = Some(InputError {
                        record: None,
                        offset: 0,
                        decompressed: false,
                        message: format!("cannot map: {e}"),
                    });
                    return sum;
                }
            };
            let data: &[u8] = &map;
            let comp = detect_compression(data);
            // The SHA-256 of plain files is computed by `hash_file`, concurrently
            // with this parse (see app.rs), so hashing costs no wall time on 2+ cores.
            match comp {
                Compression::None => {
                    let mut w = Window::slice(data);
                    pcap::parse(&mut w, opts, sink, &mut sum, comp, progress);
                }
                Compression::Gzip => {
                    let mut w = Window::stream(Box::new(flate2::read::MultiGzDecoder::new(data)));
                    pcap::parse(&mut w, opts, sink, &mut sum, comp, progress);
                }
                Compression::Zstd => match MultiZstd::new(data) {
                    Ok(d) => {
                        let mut w = Window::stream(Box::new(d));
                        pcap::parse(&mut w, opts, sink, &mut sum, comp, progress);
                    }
                    Err(e) => {
                        sum.error = Some(InputError {
                            record: None,
                            offset: 0,
                            decompressed: false,
                            message: e.to_string(),
                        });
                    }
                },
            }
        }
    }
    sum
}

/// SHA-256 of an input file as stored on disk (compressed files as they are).
/// `None` for stdin, which `read_input` hashes as it reads.
pub fn hash_file(path: &InputPath) -> Option<String> {
    let InputPath::File(p) = path else {
        return None;
    };
    let file = File::open(p).ok()?;
    if file.metadata().ok()?.len() == 0 {
        return Some(sha256_hex(&[]));
    }
    let map = map_file(&file).ok()?;
    Some(sha256_hex(&map))
}

/// A zstd stream of one or more concatenated frames (`zstd` CLI output of
/// concatenated files, `pzstd`, rotated logs). ruzstd's streaming decoder reads
/// one frame; this starts a new decoder while input remains.
pub struct MultiZstd<R: Read> {
    dec: Option<
        ruzstd::decoding::StreamingDecoder<io::BufReader<R>, ruzstd::decoding::FrameDecoder>,
    >,
}

impl<R: Read> MultiZstd<R> {
    pub fn new(r: R) -> io::Result<Self> {
        let d = ruzstd::decoding::StreamingDecoder::new(io::BufReader::with_capacity(1 << 16, r))
            .map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad zstd stream: {e}"))
        })?;
        Ok(MultiZstd { dec: Some(d) })
    }
}

impl<R: Read> Read for MultiZstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use io::BufRead;
        loop {
            let Some(d) = self.dec.as_mut() else {
                return Ok(0);
            };
            let n = d.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // End of a frame: another one follows if input remains.
            let (mut src, fd) = self.dec.take().expect("present").into_parts();
            if src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let d = ruzstd::decoding::StreamingDecoder::new_with_decoder(src, fd).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad zstd frame: {e}"))
            })?;
            self.dec = Some(d);
        }
    }
}

/// Memory-maps an evidence file read-only. Evidence files are not modified while
/// we read them; a file truncated by another process during the run would be
/// undefined behaviour for any mmap reader, which docs/formats.md states.
#[allow(unsafe_code)]
fn map_file(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and private to this process; evidence
    // files are not expected to change while being analysed (documented).
    let m = unsafe { memmap2::Mmap::map(file)? };
    #[cfg(unix)]
    let _ = m.advise(memmap2::Advice::Sequential);
    Ok(m)
}

#[cfg(test)]
mod split_tests {
    use super::Fields;

    #[test]
    fn fields_equal_str_split() {
        let mut f = Fields::default();
        let mut ends = vec![0u32; 1001];
        let mut seed = 7u64;
        for len in (0..200).chain([511, 512, 513, 999, 1000]) {
            // Odd lengths may hold characters beyond ASCII, even ones not.
            let kinds = if len % 2 == 0 { 6 } else { 8 };
            let line: String = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    [',', '\t', 'a', '1', '.', ' ', '\u{e9}', '\u{2c2c}']
                        [(seed >> 33) as usize % kinds]
                })
                .collect();
            for sep in [b',', b'\t'] {
                let ascii = f.split(line.as_bytes(), sep);
                assert_eq!(ascii, line.is_ascii(), "{line:?}");
                let got: Vec<&str> = (0..f.len())
                    .map(|k| std::str::from_utf8(f.get(line.as_bytes(), k).unwrap()).unwrap())
                    .collect();
                let want: Vec<&str> = line.split(sep as char).collect();
                assert_eq!(got, want, "{line:?}");
                assert_eq!(f.get(line.as_bytes(), f.len()), None);
                // The portable version finds the same separators.
                let (n, swar_ascii) = super::split_ends_swar(line.as_bytes(), sep, &mut ends);
                assert_eq!(swar_ascii, ascii);
                assert_eq!(n + 1, f.len());
                assert_eq!(ends[..n], f.ends[..n]);
            }
        }
    }
}
