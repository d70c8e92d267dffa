//! One row per flow, columns named as in Zeek's conn.log where the meaning
//! matches, then ours. Used by `exfilcheck flows` and by flows.csv.

use super::FlowRow;
use crate::diag::{csv_text, sanitize};
use crate::model::{fmt_epoch, fmt_secs};
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

fn cells(r: &FlowRow, csv: bool) -> [String; 27] {
    let b = |v: bool| if v { "T" } else { "F" }.to_string();
    let text = |s: &str| {
        if csv {
            csv_text(s).into_owned()
        } else {
            sanitize(s).replace(['\t', '\n'], " ")
        }
    };
    [
        fmt_epoch(r.ts_ns),
        fmt_secs(r.duration_ns),
        r.proto.to_string(),
        r.orig.ip.to_string(),
        r.orig.port.to_string(),
        r.resp.ip.to_string(),
        r.resp.port.to_string(),
        r.orig_stats.pkts.to_string(),
        r.orig_stats.ip_bytes.to_string(),
        r.resp_stats.pkts.to_string(),
        r.resp_stats.ip_bytes.to_string(),
        r.orig_stats.bytes.to_string(),
        r.resp_stats.bytes.to_string(),
        (r.orig_stats.missed_bytes + r.resp_stats.missed_bytes).to_string(),
        b(r.local_orig),
        b(r.local_resp),
        r.orig_stats.payload_bytes.to_string(),
        r.resp_stats.payload_bytes.to_string(),
        r.direction.as_str().to_string(),
        r.tunnel_parent.clone().unwrap_or_else(|| "-".into()),
        text(&r.file),
        r.first_frame.to_string(),
        r.last_frame.to_string(),
        r.uid.clone(),
        r.server_name.as_deref().map_or_else(|| "-".into(), text),
        r.exporter.map_or_else(|| "-".into(), |e| e.to_string()),
        r.sampling.to_string(),
    ]
}

/// Unwraps the I/O error inside a csv error, so a broken pipe stays a broken pipe.
pub fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        k => std::io::Error::other(format!("{k:?}")),
    }
}

pub fn write<'r, R>(rows: R, fmt: FlowFormat, out: &mut dyn Write) -> std::io::Result<()>
where
    R: IntoIterator,
    R::Item: std::borrow::Borrow<FlowRow> + 'r,
{
    use std::borrow::Borrow;
    match fmt {
        FlowFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record(COLUMNS).map_err(csv_io)?;
            for r in rows {
                w.write_record(cells(r.borrow(), true)).map_err(csv_io)?;
            }
            w.flush()?;
        }
        FlowFormat::Tsv => {
            // Zeek's ASCII log header, so zeek-cut and friends read it.
            writeln!(out, "#separator \\x09")?;
            writeln!(out, "#set_separator\t,")?;
            writeln!(out, "#empty_field\t(empty)")?;
            writeln!(out, "#unset_field\t-")?;
            writeln!(out, "#path\tconn")?;
            writeln!(out, "#fields\t{}", COLUMNS.join("\t"))?;
            writeln!(out, "#types\t{}", TYPES.join("\t"))?;
            for r in rows {
                writeln!(out, "{}", cells(r.borrow(), false).join("\t"))?;
            }
        }
        FlowFormat::Json => {
            for r in rows {
                serde_json::to_writer(&mut *out, r.borrow()).map_err(|e| {
                    match e.io_error_kind() {
                        Some(kind) => std::io::Error::new(kind, e),
                        None => std::io::Error::other(e),
                    }
                })?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()
}
