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
    let mut int = itoa::Buffer::new();
    let mut num = |out: &mut Vec<u8>, v: u64| {
        out.extend_from_slice(int.format(v).as_bytes());
        out.push(sep);
    };
    push_epoch(out, r.ts_ns);
    out.push(sep);
    push_epoch(out, r.duration_ns);
    out.push(sep);
    out.extend_from_slice(r.proto.as_bytes());
    out.push(sep);
    ip(out, r.orig.ip);
    out.push(sep);
    num(out, u64::from(r.orig.port));
    ip(out, r.resp.ip);
    out.push(sep);
    num(out, u64::from(r.resp.port));
    num(out, r.orig_stats.pkts);
    num(out, r.orig_stats.ip_bytes);
    num(out, r.resp_stats.pkts);
    num(out, r.resp_stats.ip_bytes);
    num(out, r.orig_stats.bytes);
    num(out, r.resp_stats.bytes);
    num(out, r.orig_stats.missed_bytes + r.resp_stats.missed_bytes);
    for v in [r.local_orig, r.local_resp] {
        out.push(if v { b'T' } else { b'F' });
        out.push(sep);
    }
    num(out, r.orig_stats.payload_bytes);
    num(out, r.resp_stats.payload_bytes);
    out.extend_from_slice(r.direction.as_str().as_bytes());
    out.push(sep);
    match r.tunnel_parent {
        Some(u) => out.extend_from_slice(&u.bytes()),
        None => out.push(b'-'),
    }
    out.push(sep);
    out.extend_from_slice(file_cell);
    out.push(sep);
    num(out, r.first_frame);
    num(out, r.last_frame);
    out.extend_from_slice(&r.uid.bytes());
    out.push(sep);
    match r.server_name {
        Some(n) => text(out, n, csv),
        None => out.push(b'-'),
    }
    out.push(sep);
    match r.exporter {
        Some(e) => ip(out, e),
        None => out.push(b'-'),
    }
    out.push(sep);
    out.extend_from_slice(int.format(r.sampling).as_bytes());
    out.push(b'\n');
}

fn ip(out: &mut Vec<u8>, a: std::net::IpAddr) {
    match a {
        std::net::IpAddr::V4(v4) => {
            let mut b = [0u8; 15];
            let mut n = 0;
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    b[n] = b'.';
                    n += 1;
                }
                if o >= 100 {
                    b[n] = b'0' + o / 100;
                    n += 1;
                }
                if o >= 10 {
                    b[n] = b'0' + o / 10 % 10;
                    n += 1;
                }
                b[n] = b'0' + o % 10;
                n += 1;
            }
            out.extend_from_slice(&b[..n]);
        }
        std::net::IpAddr::V6(_) => {
            let _ = write!(out, "{a}");
        }
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
