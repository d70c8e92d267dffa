//! `--csv DIR`: hosts.csv, destinations.csv, pairs.csv, flows.csv. Text cells
//! from captures are guarded against spreadsheet formula injection.

use super::Report;
use super::flows_out;
use crate::diag::csv_text;
use crate::model::fmt_rfc3339;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

fn create(dir: &Path, name: &str) -> io::Result<csv::Writer<BufWriter<File>>> {
    Ok(csv::Writer::from_writer(BufWriter::new(File::create(
        dir.join(name),
    )?)))
}

/// hosts.csv, destinations.csv and pairs.csv (flows.csv is written while the
/// flows pass, by the pipeline, with [`flows_out`]).
pub fn write(r: &Report, dir: &Path) -> io::Result<()> {
    write_tables(r, dir).map_err(|e| match e {
        CsvOrIo::Io(e) => e,
        CsvOrIo::Csv(e) => flows_out::csv_io(e),
    })
}

enum CsvOrIo {
    Io(io::Error),
    Csv(csv::Error),
}

impl From<io::Error> for CsvOrIo {
    fn from(e: io::Error) -> Self {
        CsvOrIo::Io(e)
    }
}

impl From<csv::Error> for CsvOrIo {
    fn from(e: csv::Error) -> Self {
        CsvOrIo::Csv(e)
    }
}

fn write_tables(r: &Report, dir: &Path) -> Result<(), CsvOrIo> {
    std::fs::create_dir_all(dir)?;
    let l = &r.ledger;
    let mut w = create(dir, "hosts.csv")?;
    w.write_record([
        "host",
        "out_bytes",
        "out_ip_bytes",
        "out_payload_bytes",
        "out_missed_bytes",
        "out_pkts",
        "in_bytes",
        "in_ip_bytes",
        "in_pkts",
        "out_in_ratio",
        "out_unallowed_bytes",
        "out_unallowed_ip_bytes",
        "flows",
        "destinations",
        "first_seen",
        "last_seen",
    ])?;
    for h in &l.hosts {
        let ratio = h
            .out_in_ratio
            .map_or_else(|| "-".to_string(), |r| format!("{r:.4}"));
        w.write_record([
            h.host.to_string(),
            h.out.bytes.to_string(),
            h.out.ip_bytes.to_string(),
            h.out.payload_bytes.to_string(),
            h.out.missed_bytes.to_string(),
            h.out.pkts.to_string(),
            h.inb.bytes.to_string(),
            h.inb.ip_bytes.to_string(),
            h.inb.pkts.to_string(),
            ratio,
            h.out_unallowed.bytes.to_string(),
            h.out_unallowed.ip_bytes.to_string(),
            h.flows.to_string(),
            h.destinations.to_string(),
            fmt_rfc3339(h.first_ts),
            fmt_rfc3339(h.last_ts),
        ])?;
    }
    w.flush()?;
    let mut w = create(dir, "destinations.csv")?;
    w.write_record([
        "destination",
        "names",
        "allowed_by",
        "out_bytes",
        "out_ip_bytes",
        "out_pkts",
        "in_bytes",
        "in_ip_bytes",
        "flows",
        "hosts",
        "first_seen",
        "last_seen",
    ])?;
    for d in &l.destinations {
        let names: Vec<String> = d
            .names
            .iter()
            .map(|n| format!("{}({})", n.name, n.source))
            .collect();
        w.write_record([
            d.dest.to_string(),
            csv_text(&names.join(" ")).into_owned(),
            d.allowed_by.clone().unwrap_or_default(),
            d.out.bytes.to_string(),
            d.out.ip_bytes.to_string(),
            d.out.pkts.to_string(),
            d.inb.bytes.to_string(),
            d.inb.ip_bytes.to_string(),
            d.flows.to_string(),
            d.hosts.to_string(),
            fmt_rfc3339(d.first_ts),
            fmt_rfc3339(d.last_ts),
        ])?;
    }
    w.flush()?;
    let mut w = create(dir, "pairs.csv")?;
    w.write_record([
        "host",
        "destination",
        "allowed_by",
        "out_bytes",
        "out_ip_bytes",
        "out_payload_bytes",
        "out_missed_bytes",
        "out_pkts",
        "in_bytes",
        "in_ip_bytes",
        "flows",
        "services",
        "first_seen",
        "last_seen",
        "frames",
    ])?;
    for p in &l.pairs {
        let services: Vec<String> = p
            .dest_ports
            .iter()
            .map(|(pr, port)| format!("{port}/{pr}"))
            .collect();
        let frames: Vec<String> = p
            .frames
            .iter()
            .map(|f| {
                let file = r.inputs.get(f.input).map(|s| s.path.as_str()).unwrap_or("");
                format!("{}:{}-{}", file, f.first_frame, f.last_frame)
            })
            .collect();
        w.write_record([
            p.host.to_string(),
            p.dest.to_string(),
            p.allowed_by.clone().unwrap_or_default(),
            p.out.bytes.to_string(),
            p.out.ip_bytes.to_string(),
            p.out.payload_bytes.to_string(),
            p.out.missed_bytes.to_string(),
            p.out.pkts.to_string(),
            p.inb.bytes.to_string(),
            p.inb.ip_bytes.to_string(),
            p.flows.to_string(),
            services.join(" "),
            fmt_rfc3339(p.first_ts),
            fmt_rfc3339(p.last_ts),
            csv_text(&frames.join(" ")).into_owned(),
        ])?;
    }
    w.flush()?;
    Ok(())
}
