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
    let mut l = Cells::new(out, sep);
    l.epoch(r.ts_ns);
    l.epoch(r.duration_ns);
    l.text(r.proto.as_bytes());
    l.ip(r.orig.ip);
    l.num(u64::from(r.orig.port));
    l.ip(r.resp.ip);
    l.num(u64::from(r.resp.port));
    l.num(r.orig_stats.pkts);
    l.num(r.orig_stats.ip_bytes);
    l.num(r.resp_stats.pkts);
    l.num(r.resp_stats.ip_bytes);
    l.num(r.orig_stats.bytes);
    l.num(r.resp_stats.bytes);
    l.num(r.orig_stats.missed_bytes + r.resp_stats.missed_bytes);
    l.text(if r.local_orig { b"T" } else { b"F" });
    l.text(if r.local_resp { b"T" } else { b"F" });
    l.num(r.orig_stats.payload_bytes);
    l.num(r.resp_stats.payload_bytes);
    l.text(r.direction.as_str().as_bytes());
    match r.tunnel_parent {
        Some(u) => l.text(&u.bytes()),
        None => l.text(b"-"),
    }
    l.text(file_cell);
    l.num(r.first_frame);
    l.num(r.last_frame);
    l.text(&r.uid.bytes());
    match r.server_name {
        Some(n) => {
            let mut cell = Vec::new();
            text(&mut cell, n, csv);
            l.text(&cell);
        }
        None => l.text(b"-"),
    }
    match r.exporter {
        Some(e) => l.ip(e),
        None => l.text(b"-"),
    }
    l.num(u64::from(r.sampling));
    l.end();
}

/// A row's cells gathered in a small array and appended to the output in a
/// few copies (a copy per cell, each a call, cost more than the formatting).
/// Every cell is followed by the separator; `end` turns the last into `\n`.
struct Cells<'o> {
    out: &'o mut Vec<u8>,
    a: [u8; 256],
    n: usize,
    sep: u8,
}

impl<'o> Cells<'o> {
    fn new(out: &'o mut Vec<u8>, sep: u8) -> Self {
        Cells {
            out,
            a: [0; 256],
            n: 0,
            sep,
        }
    }

    /// Room for `k` more bytes in the array (written out when it lacks it).
    #[inline(always)]
    fn room(&mut self, k: usize) {
        if self.n + k > self.a.len() {
            self.out.extend_from_slice(&self.a[..self.n]);
            self.n = 0;
        }
    }

    #[inline(always)]
    fn text(&mut self, s: &[u8]) {
        if s.len() > 64 {
            self.room(self.a.len());
            self.out.extend_from_slice(s);
        } else {
            self.room(65);
            self.a[self.n..self.n + s.len()].copy_from_slice(s);
            self.n += s.len();
        }
        self.a[self.n] = self.sep;
        self.n += 1;
    }

    /// Decimal digits of `v` ending just before `end` (two at a time).
    #[inline(always)]
    fn digits(&mut self, mut v: u64, end: usize) {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
            2021222324252627282930313233343536373839\
            4041424344454647484950515253545556575859\
            6061626364656667686970717273747576777879\
            8081828384858687888990919293949596979899";
        let mut i = end;
        while v >= 100 {
            let d = (v % 100) as usize * 2;
            v /= 100;
            i -= 2;
            self.a[i] = PAIRS[d];
            self.a[i + 1] = PAIRS[d + 1];
        }
        if v >= 10 {
            let d = v as usize * 2;
            self.a[i - 2] = PAIRS[d];
            self.a[i - 1] = PAIRS[d + 1];
        } else {
            self.a[i - 1] = b'0' + v as u8;
        }
    }

    #[inline(always)]
    fn num(&mut self, v: u64) {
        self.room(21);
        let end = self.n + v.checked_ilog10().map_or(1, |l| l as usize + 1);
        self.digits(v, end);
        self.a[end] = self.sep;
        self.n = end + 1;
    }

    /// Nanoseconds as seconds with six decimals (microseconds), as
    /// [`crate::model::push_epoch`] writes them.
    #[inline(always)]
    fn epoch(&mut self, ts: i64) {
        let secs = ts.div_euclid(1_000_000_000);
        let us = (ts.rem_euclid(1_000_000_000) / 1000) as u64;
        if secs < 0 {
            let mut t = Vec::new();
            push_epoch(&mut t, ts);
            self.text(&t);
            return;
        }
        self.room(29);
        let end = self.n + (secs as u64).checked_ilog10().map_or(1, |l| l as usize + 1);
        self.digits(secs as u64, end);
        // Six digits, leading zeros kept: "1dddddd" with the 1 overwritten.
        self.digits(us + 1_000_000, end + 7);
        self.a[end] = b'.';
        self.a[end + 7] = self.sep;
        self.n = end + 8;
    }

    #[inline(always)]
    fn ip(&mut self, a: std::net::IpAddr) {
        match a {
            std::net::IpAddr::V4(v4) => {
                self.room(16);
                // The cursor in a local: stores to the array would make the
                // compiler reload a field after each byte.
                let (a, mut n) = (&mut self.a, self.n);
                for (i, o) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        a[n] = b'.';
                        n += 1;
                    }
                    if o >= 100 {
                        a[n] = b'0' + o / 100;
                        n += 1;
                    }
                    if o >= 10 {
                        a[n] = b'0' + o / 10 % 10;
                        n += 1;
                    }
                    a[n] = b'0' + o % 10;
                    n += 1;
                }
                a[n] = self.sep;
                self.n = n + 1;
            }
            std::net::IpAddr::V6(_) => {
                let mut t = Vec::new();
                let _ = write!(t, "{a}");
                self.text(&t);
            }
        }
    }

    /// The row's end: its last separator becomes the line end.
    fn end(mut self) {
        self.a[self.n - 1] = b'\n';
        self.out.extend_from_slice(&self.a[..self.n]);
        self.n = 0;
    }
}

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
            }
        }
    }
}
