//! One row per flow, columns named as in Zeek's conn.log where the meaning
//! matches, then ours. Used by `exfilcheck flows` and by flows.csv.

use super::FlowRow;
use crate::diag::{csv_text, sanitize};
use crate::model::push_epoch;
use std::io::Write;

pub const COLUMNS: [&str; 27] = [
    "ts",
    "duration",
    "proto",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "orig_bytes",
    "resp_bytes",
    "missed_bytes",
    "local_orig",
    "local_resp",
    "orig_payload_bytes",
    "resp_payload_bytes",
    "direction",
    "tunnel_parent",
    "file",
    "first_frame",
    "last_frame",
    "uid",
    "server_name",
    "exporter",
    "sampling",
];

const TYPES: [&str; 27] = [
    "time", "interval", "enum", "addr", "port", "addr", "port", "count", "count", "count", "count",
    "count", "count", "count", "bool", "bool", "count", "count", "string", "string", "string",
    "count", "count", "string", "string", "addr", "count",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FlowFormat {
    Csv,
    Tsv,
    Json,
}

/// Formats the cells of one row straight into `out` (no per-cell strings: this
/// runs once per flow record, millions of times on flow archives). Text cells
/// are escaped: CSV cells against formula injection and quoted when they hold
/// a comma or quote (as the csv crate does), TSV cells with tabs and line breaks
/// replaced, as the Zeek log format requires.
fn cells(r: &FlowRow<'_>, csv: bool, file_cell: &[u8], out: &mut Vec<u8>) {
    let sep = if csv { b',' } else { b'\t' };
    let mut a = [0u8; 256];
    let mut l = Cells {
        out,
        a: &mut a,
        sep,
    };
    let mut n = l.epoch(0, r.ts_ns);
    n = l.epoch(n, r.duration_ns);
    n = l.text(n, r.proto.as_bytes());
    n = l.ip(n, r.orig.ip);
    n = l.num(n, u64::from(r.orig.port));
    n = l.ip(n, r.resp.ip);
    n = l.num(n, u64::from(r.resp.port));
    n = l.num(n, r.orig_stats.pkts);
    n = l.num(n, r.orig_stats.ip_bytes);
    n = l.num(n, r.resp_stats.pkts);
    n = l.num(n, r.resp_stats.ip_bytes);
    n = l.num(n, r.orig_stats.bytes);
    n = l.num(n, r.resp_stats.bytes);
    n = l.num(n, r.orig_stats.missed_bytes + r.resp_stats.missed_bytes);
    n = l.text(n, if r.local_orig { b"T" } else { b"F" });
    n = l.text(n, if r.local_resp { b"T" } else { b"F" });
    n = l.num(n, r.orig_stats.payload_bytes);
    n = l.num(n, r.resp_stats.payload_bytes);
    n = l.text(n, r.direction.as_str().as_bytes());
    n = match r.tunnel_parent {
        Some(u) => l.text(n, &u.bytes()),
        None => l.text(n, b"-"),
    };
    n = l.text(n, file_cell);
    n = l.frames(n, r.first_frame, r.last_frame);
    n = l.text(n, &r.uid.bytes());
    n = match r.server_name {
        Some(name) => {
            let mut cell = Vec::new();
            text(&mut cell, name, csv);
            l.text(n, &cell)
        }
        None => l.text(n, b"-"),
    };
    n = match r.exporter {
        Some(e) => l.ip(n, e),
        None => l.text(n, b"-"),
    };
    n = l.num(n, u64::from(r.sampling));
    l.end(n);
}

/// A row's cells gathered in a small array and appended to the output in a
/// few copies (a copy per cell, each a call, cost more than the formatting).
/// Every cell is followed by the separator; `end` turns the last into `\n`.
/// The cursor is passed in and returned (kept in a register: as a field it
/// went through memory between every two cells, a chain of loads and stores
/// that cost more than the digits).
struct Cells<'o> {
    out: &'o mut Vec<u8>,
    a: &'o mut [u8; 256],
    sep: u8,
}

impl Cells<'_> {
    /// Room for `k` more bytes after `n` in the array (written out when it
    /// lacks it); returns the cursor.
    #[inline(always)]
    fn room(&mut self, n: usize, k: usize) -> usize {
        if n + k > self.a.len() {
            self.out.extend_from_slice(&self.a[..n]);
            return 0;
        }
        n
    }

    #[inline(always)]
    fn text(&mut self, n: usize, s: &[u8]) -> usize {
        let mut n = n;
        if s.len() > 64 {
            n = self.room(n, self.a.len());
            self.out.extend_from_slice(s);
        } else {
            n = self.room(n, 65);
            self.a[n..n + s.len()].copy_from_slice(s);
            n += s.len();
        }
        self.a[n] = self.sep;
        n + 1
    }

    /// Eight bytes at `at` (the caller advances the cursor by those it keeps).
    #[inline(always)]
    fn store8(&mut self, at: usize, v: u64) {
        self.a[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// The digits of `v` < 10^8 at `n`; returns the cursor after them.
    #[inline(always)]
    fn put8(&mut self, n: usize, v: u64) -> usize {
        let d = digits8(v);
        // Leading zero digits are the low zero bytes; keep at least one.
        let lead = (d.trailing_zeros() / 8).min(7);
        self.store8(n, (d | ASCII_ZEROS) >> (8 * lead));
        n + 8 - lead as usize
    }

    /// The digits of `v` at `n`, no separator; needs 24 bytes of room.
    /// Without a branch on the digits (which vary from row to row, so
    /// branches on them would be mispredicted half the time): the leading
    /// part below 10^8, then eight digits at a time with their zeros.
    #[inline(always)]
    fn put(&mut self, n: usize, v: u64) -> usize {
        const E8: u64 = 100_000_000;
        if v < E8 {
            self.put8(n, v)
        } else if v < E8 * E8 {
            let n = self.put8(n, v / E8);
            self.store8(n, digits8(v % E8) | ASCII_ZEROS);
            n + 8
        } else {
            // At most 20 digits: the top four, then sixteen.
            let n = self.put8(n, v / (E8 * E8));
            self.store8(n, digits8(v / E8 % E8) | ASCII_ZEROS);
            self.store8(n + 8, digits8(v % E8) | ASCII_ZEROS);
            n + 16
        }
    }

    /// A count. One digit is written at once: several cells are one digit
    /// in row after row (missed bytes, sampling, a unidirectional record's
    /// other direction), a branch each call site predicts.
    #[inline(always)]
    fn num(&mut self, n: usize, v: u64) -> usize {
        let n = self.room(n, 24);
        if v < 10 {
            self.a[n] = b'0' + v as u8;
            self.a[n + 1] = self.sep;
            return n + 2;
        }
        let n = self.put(n, v);
        self.a[n] = self.sep;
        n + 1
    }

    /// The first and last frame (or record line); a flow of one export
    /// record has both the same, whose digits are then copied, not made again.
    #[inline(always)]
    fn frames(&mut self, n: usize, first: u64, last: u64) -> usize {
        let n = self.room(n, 50);
        let m = self.num(n, first);
        if first == last {
            // Through a copy of fixed size (`copy_within` is a call).
            let mut t = [0u8; 24];
            t.copy_from_slice(&self.a[n..n + 24]);
            self.a[m..m + 24].copy_from_slice(&t);
            m + (m - n)
        } else {
            self.num(m, last)
        }
    }

    /// Nanoseconds as seconds with six decimals (microseconds), as
    /// [`crate::model::push_epoch`] writes them.
    #[inline(always)]
    fn epoch(&mut self, n: usize, ts: i64) -> usize {
        let secs = ts.div_euclid(1_000_000_000);
        let us = (ts.rem_euclid(1_000_000_000) / 1000) as u64;
        if secs < 0 {
            let mut t = Vec::new();
            push_epoch(&mut t, ts);
            return self.text(n, &t);
        }
        let n = self.room(n, 32);
        let n = self.put(n, secs as u64);
        self.a[n] = b'.';
        // Six digits, leading zeros kept: the last six of eight.
        self.store8(n + 1, (digits8(us) | ASCII_ZEROS) >> 16);
        self.a[n + 7] = self.sep;
        n + 8
    }

    #[inline(always)]
    fn ip(&mut self, n: usize, a: std::net::IpAddr) -> usize {
        match a {
            std::net::IpAddr::V4(v4) => {
                let mut n = self.room(n, 16);
                // Each octet is one four-byte store of its digits from a
                // table (no branch on its length), then the dot, which the
                // next octet follows.
                for o in v4.octets() {
                    let (digits, len) = OCTETS[usize::from(o)];
                    self.a[n..n + 4].copy_from_slice(&digits.to_le_bytes());
                    n += usize::from(len);
                    self.a[n] = b'.';
                    n += 1;
                }
                self.a[n - 1] = self.sep;
                n
            }
            std::net::IpAddr::V6(_) => {
                let mut t = Vec::new();
                let _ = write!(t, "{a}");
                self.text(n, &t)
            }
        }
    }

    /// The row's end: its last separator becomes the line end. The whole
    /// array is appended and the bytes past the row cut off again: a copy of
    /// fixed size is a few moves, one of the row's size a call.
    fn end(self, n: usize) {
        self.a[n - 1] = b'\n';
        let len = self.out.len();
        self.out.extend_from_slice(&self.a[..]);
        self.out.truncate(len + n);
    }
}

const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// The eight decimal digits of `v` (< 10^8, leading zeros kept) as digit
/// values 0-9, one per byte in reading order (little-endian), computed in
/// lanes without a branch: the two four-digit halves in 32-bit lanes, each
/// split into two-digit 16-bit lanes, each into one-digit bytes (x/100 as
/// x*10486>>20 for x < 10^4, x/10 as x*103>>10 for x < 100).
#[inline(always)]
fn digits8(v: u64) -> u64 {
    let x = (v / 10_000) | ((v % 10_000) << 32);
    let y = ((x * 10_486) >> 20) & 0x0000_007f_0000_007f;
    let x = ((x - y * 100) << 16) | y;
    let y = ((x * 103) >> 10) & 0x000f_000f_000f_000f;
    ((x - y * 10) << 8) | y
}

/// Each octet's digits (ASCII, reading order, little-endian) and their count.
const OCTETS: [(u32, u8); 256] = {
    let mut t = [(0u32, 0u8); 256];
    let mut o = 0;
    while o < 256 {
        let (h, d, u) = (o as u32 / 100, o as u32 / 10 % 10, o as u32 % 10);
        t[o] = if o >= 100 {
            (
                (b'0' as u32 + h) | (b'0' as u32 + d) << 8 | (b'0' as u32 + u) << 16,
                3,
            )
        } else if o >= 10 {
            ((b'0' as u32 + d) | (b'0' as u32 + u) << 8, 2)
        } else {
            (b'0' as u32 + u, 1)
        };
        o += 1;
    }
    t
};

fn text(out: &mut Vec<u8>, s: &str, csv: bool) {
    if csv {
        let t = csv_text(s);
        if t.bytes().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
            out.push(b'"');
            for b in t.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(t.as_bytes());
        }
    } else {
        let t = sanitize(s);
        out.extend(
            t.bytes()
                .map(|b| if b == b'\t' || b == b'\n' { b' ' } else { b }),
        );
    }
}

/// Unwraps the I/O error inside a csv error, so a broken pipe stays a broken pipe.
pub fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        k => std::io::Error::other(format!("{k:?}")),
    }
}

/// The header of a flows output: the CSV column line, or Zeek's ASCII log header.
pub fn header(fmt: FlowFormat, out: &mut Vec<u8>) {
    match fmt {
        FlowFormat::Csv => {
            out.extend_from_slice(COLUMNS.join(",").as_bytes());
            out.push(b'\n');
        }
        FlowFormat::Tsv => {
            // Zeek's ASCII log header, so zeek-cut and friends read it.
            out.extend_from_slice(b"#separator \\x09\n#set_separator\t,\n");
            out.extend_from_slice(b"#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n");
            let _ = writeln!(out, "#fields\t{}", COLUMNS.join("\t"));
            let _ = writeln!(out, "#types\t{}", TYPES.join("\t"));
        }
        FlowFormat::Json => {}
    }
}

/// Formats rows; keeps the escaped file cell of the last row (rows come in
/// runs from one file, and escaping it per row would cost more than the row).
pub struct RowWriter {
    fmt: FlowFormat,
    file: String,
    file_cell: Vec<u8>,
}

impl RowWriter {
    pub fn new(fmt: FlowFormat) -> Self {
        let mut w = RowWriter {
            fmt,
            file: String::new(),
            file_cell: Vec::new(),
        };
        w.set_file("");
        w
    }

    fn set_file(&mut self, file: &str) {
        self.file = file.to_string();
        self.file_cell.clear();
        text(&mut self.file_cell, file, self.fmt == FlowFormat::Csv);
    }

    /// One row, appended to `out`.
    pub fn row(&mut self, r: &FlowRow<'_>, out: &mut Vec<u8>) {
        match self.fmt {
            FlowFormat::Csv | FlowFormat::Tsv => {
                if r.file != self.file {
                    self.set_file(r.file);
                }
                cells(r, self.fmt == FlowFormat::Csv, &self.file_cell, out);
            }
            FlowFormat::Json => {
                // Serialising plain data into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, r);
                out.push(b'\n');
            }
        }
    }
}

pub fn write<'r, R>(rows: R, fmt: FlowFormat, out: &mut dyn Write) -> std::io::Result<()>
where
    R: IntoIterator,
    R::Item: std::borrow::Borrow<FlowRow<'r>>,
{
    use std::borrow::Borrow;
    let mut buf = Vec::with_capacity(1 << 16);
    header(fmt, &mut buf);
    let mut w = RowWriter::new(fmt);
    for r in rows {
        w.row(r.borrow(), &mut buf);
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DirStats, DirectionReason, Endpoint, FlowUid};

    fn row<'a>(server_name: Option<&'a str>, file: &'a str) -> FlowRow<'a> {
        let stats = |k: u64| DirStats {
            pkts: k,
            ip_bytes: k * 1000 + 7,
            payload_bytes: k * 900,
            bytes: k * 950,
            missed_bytes: k % 3,
        };
        FlowRow {
            uid: FlowUid(0x0123_4567_89ab_cdef),
            ts: 0,
            ts_ns: 0,
            duration_ns: 0,
            proto: "tcp",
            ip_proto: 6,
            orig: Endpoint {
                ip: "10.0.0.1".parse().unwrap(),
                port: 0,
            },
            resp: Endpoint {
                ip: "255.100.9.10".parse().unwrap(),
                port: 65535,
            },
            orig_stats: stats(1),
            resp_stats: stats(u64::MAX / 1000 - 1),
            local_orig: true,
            local_resp: false,
            direction: DirectionReason::Port,
            tunnel_parent: Some(FlowUid(42)),
            file,
            first_frame: 1,
            last_frame: u64::MAX,
            server_name,
            exporter: None,
            sampling: 1,
        }
    }

    /// The same row with each cell formatted by `format!`.
    fn reference(r: &FlowRow<'_>, sep: &str, file: &str, name: &str) -> String {
        let ep = |ts: i64| {
            format!(
                "{}.{:06}",
                ts.div_euclid(1_000_000_000),
                ts.rem_euclid(1_000_000_000) / 1000
            )
        };
        let (o, p) = (&r.orig_stats, &r.resp_stats);
        let cells: Vec<String> = vec![
            ep(r.ts_ns),
            ep(r.duration_ns),
            r.proto.into(),
            r.orig.ip.to_string(),
            r.orig.port.to_string(),
            r.resp.ip.to_string(),
            r.resp.port.to_string(),
            o.pkts.to_string(),
            o.ip_bytes.to_string(),
            p.pkts.to_string(),
            p.ip_bytes.to_string(),
            o.bytes.to_string(),
            p.bytes.to_string(),
            (o.missed_bytes + p.missed_bytes).to_string(),
            if r.local_orig { "T" } else { "F" }.into(),
            if r.local_resp { "T" } else { "F" }.into(),
            o.payload_bytes.to_string(),
            p.payload_bytes.to_string(),
            r.direction.as_str().into(),
            r.tunnel_parent.map_or("-".into(), |u| u.to_string()),
            file.into(),
            r.first_frame.to_string(),
            r.last_frame.to_string(),
            r.uid.to_string(),
            name.into(),
            r.exporter.map_or("-".into(), |e| e.to_string()),
            r.sampling.to_string(),
        ];
        cells.join(sep) + "\n"
    }

    /// Numbers, epochs and IPv4 addresses as the branch-free cells write them
    /// equal their `Display` forms (`push_epoch` for times), including every
    /// digit count, powers of ten and their neighbours, and every octet.
    #[test]
    fn number_cells_equal_display() {
        let mut vals: Vec<u64> = (0..100_000).collect();
        for p in 1..20 {
            let t = 10u64.pow(p);
            vals.extend([t - 1, t, t + 1]);
        }
        vals.extend([u64::MAX, u64::MAX - 1, 99_999_999, 100_000_000]);
        let mut seed = 5u64;
        for _ in 0..200_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            vals.push(seed >> (seed % 64));
        }
        for &v in &vals {
            let out = cell_row(b',', |c| {
                let n = c.num(0, v);
                c.num(n, v)
            });
            assert_eq!(String::from_utf8(out).unwrap(), format!("{v},{v}\n"));
            let ts = (v >> 1) as i64;
            let out = cell_row(b',', |c| c.epoch(0, ts));
            let mut want = Vec::new();
            push_epoch(&mut want, ts);
            want.push(b'\n');
            assert_eq!(out, want, "{ts}");
        }
        for o in 0..=255u8 {
            let a = std::net::Ipv4Addr::new(o, 255 - o, o / 2, o % 10);
            let out = cell_row(b'\t', |c| {
                let n = c.ip(0, a.into());
                c.num(n, u64::from(o))
            });
            assert_eq!(String::from_utf8(out).unwrap(), format!("{a}\t{o}\n"));
        }
    }

    /// One row of the cells `put` writes (it returns the cursor), ended.
    fn cell_row(sep: u8, put: impl FnOnce(&mut Cells<'_>) -> usize) -> Vec<u8> {
        let (mut out, mut a) = (Vec::new(), [0; 256]);
        let mut c = Cells {
            out: &mut out,
            a: &mut a,
            sep,
        };
        let n = put(&mut c);
        c.end(n);
        out
    }

    #[test]
    fn cells_equal_formatted_values() {
        let long = "x".repeat(300);
        let cases: Vec<(Option<&str>, &str, &str, &str)> = vec![
            (None, "a.pcap", "-", "a.pcap"),
            (Some("=cmd,|x"), "dir/b.csv", "\"'=cmd,|x\"", "dir/b.csv"),
            (
                Some(long.as_str()),
                long.as_str(),
                long.as_str(),
                long.as_str(),
            ),
        ];
        for (name, file, name_cell, file_cell) in cases {
            for (ts, dur) in [
                (0, 0),
                (1_795_737_600_003_000_000, 8_241_000_000),
                (-1_500, 999),
            ] {
                let mut r = row(name, file);
                r.ts_ns = ts;
                r.duration_ns = dur;
                for (ip, port) in [("10.0.0.1", 0), ("2001:db8::1", 443), ("0.0.0.0", 9)] {
                    r.orig = Endpoint {
                        ip: ip.parse().unwrap(),
                        port,
                    };
                    r.exporter = Some(r.orig.ip).filter(|_| port == 443);
                    let mut out = Vec::new();
                    RowWriter::new(FlowFormat::Csv).row(&r, &mut out);
                    let want = reference(&r, ",", file_cell, name_cell);
                    assert_eq!(String::from_utf8(out).unwrap(), want);
                }
                // Equal first and last frames (one export record: the digits
                // are copied), every direction and protocol name.
                let dirs = [
                    DirectionReason::Syn,
                    DirectionReason::Synack,
                    DirectionReason::Port,
                    DirectionReason::First,
                ];
                let protos = ["tcp", "udp", "icmp", "unknown_transport"];
                let frames = [
                    (1, 1),
                    (9, 10),
                    (12_345_678, 12_345_678),
                    (u64::MAX, u64::MAX),
                ];
                for (k, (first, last)) in frames.into_iter().enumerate() {
                    r.first_frame = first;
                    r.last_frame = last;
                    r.direction = dirs[k];
                    r.proto = protos[k];
                    let mut out = Vec::new();
                    RowWriter::new(FlowFormat::Csv).row(&r, &mut out);
                    let want = reference(&r, ",", file_cell, name_cell);
                    assert_eq!(String::from_utf8(out).unwrap(), want);
                }
            }
        }
    }
}
