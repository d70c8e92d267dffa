//! AWS VPC (and Transit Gateway) flow logs: space-separated records, either with a
//! header line naming the fields (custom formats) or in the default field order
//! (version 2 to 5: `version account-id interface-id srcaddr dstaddr srcport dstport
//! protocol packets bytes start end action log-status`, more fields after it for
//! newer versions). NODATA and SKIPDATA records carry no flow and are counted.
//! REJECT records are kept and counted as if their bytes left: the tool never
//! understates outbound volume (docs/formats.md).

use super::{InputSummary, PacketSink, Window};
use crate::model::{Endpoint, FlowRecord, NS_PER_SEC};

const DEFAULT: [&str; 14] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
];

/// The fields a record is built from, and their positions in `KEYS`.
const KEYS: [&str; 12] = [
    "log-status",
    "action",
    "srcaddr",
    "dstaddr",
    "start",
    "end",
    "protocol",
    "srcport",
    "dstport",
    "packets",
    "bytes",
    "tcp-flags",
];
const LOG_STATUS: usize = 0;
const ACTION: usize = 1;
const SRCADDR: usize = 2;
const DSTADDR: usize = 3;
const START: usize = 4;
const END: usize = 5;
const PROTOCOL: usize = 6;
const SRCPORT: usize = 7;
const DSTPORT: usize = 8;
const PACKETS: usize = 9;
const BYTES: usize = 10;
const TCP_FLAGS: usize = 11;

fn first_line(w: &mut Window<'_>) -> String {
    let _ = w.ensure(4096);
    let a = w.avail();
    let end = a
        .iter()
        .position(|c| *c == b'\n')
        .unwrap_or(a.len().min(4096));
    String::from_utf8_lossy(&a[..end]).to_string()
}

/// Whether the input starts like a VPC flow log (a header or a default-format record).
pub fn is_vpc(w: &mut Window<'_>) -> bool {
    let l = first_line(w);
    let t: Vec<&str> = l.split_whitespace().collect();
    if t.first() == Some(&"version") && t.contains(&"srcaddr") {
        return true;
    }
    t.len() >= 14
        && t[0].parse::<u8>().is_ok_and(|v| (2..=9).contains(&v))
        && matches!(t[13], "OK" | "NODATA" | "SKIPDATA")
}

pub fn parse(
    w: &mut Window<'_>,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
) -> Result<(), (u64, String)> {
    // Where each of KEYS sits in the current field order (the default order
    // until a header line names another).
    let index = |fields: &[&str]| KEYS.map(|k| fields.iter().position(|f| *f == k));
    let mut idx = index(&DEFAULT);
    let mut line_no = 0u64;
    // Field boundaries of the current line (reused: no allocation per line).
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let stream = w.is_stream();
    while let Some((off, text)) = w.next_line()? {
        line_no += 1;
        if text.is_empty() {
            continue;
        }
        spans.clear();
        for piece in text.split_whitespace() {
            let at = piece.as_ptr() as usize - text.as_ptr() as usize;
            spans.push((at, at + piece.len()));
        }
        let field = |i: usize| spans.get(i).map(|&(a, b)| &text[a..b]);
        let has = |name: &str| (0..spans.len()).any(|i| field(i) == Some(name));
        if field(0) == Some("version") || (has("srcaddr") && has("dstaddr")) {
            let names: Vec<&str> = (0..spans.len()).filter_map(field).collect();
            idx = index(&names);
            continue;
        }
        let get = |k: usize| idx[k].and_then(field);
        match get(LOG_STATUS) {
            Some("NODATA") => {
                sum.weirds.add_n("vpc_nodata_records", 1);
                continue;
            }
            Some("SKIPDATA") => {
                sum.weirds.add_n("vpc_skipdata_records", 1);
                continue;
            }
            _ => {}
        }
        if get(ACTION) == Some("REJECT") {
            sum.weirds.add_n("vpc_rejected_records", 1);
        }
        let rec = (|| -> Option<FlowRecord> {
            let sa = crate::model::parse_ip(get(SRCADDR)?)?;
            let da = crate::model::parse_ip(get(DSTADDR)?)?;
            let n = |k: usize| get(k).and_then(|v| v.parse::<u64>().ok());
            let start = n(START)? as i64 * NS_PER_SEC;
            let end = n(END).map_or(start, |e| e as i64 * NS_PER_SEC);
            Some(FlowRecord {
                start,
                end: end.max(start),
                proto: n(PROTOCOL).unwrap_or(0) as u8,
                src: Endpoint {
                    ip: sa,
                    port: n(SRCPORT).unwrap_or(0) as u16,
                },
                dst: Endpoint {
                    ip: da,
                    port: n(DSTPORT).unwrap_or(0) as u16,
                },
                pkts: n(PACKETS).unwrap_or(0),
                bytes: n(BYTES).unwrap_or(0),
                tcp_flags: n(TCP_FLAGS).unwrap_or(0) as u8,
                sampling: 1,
                record: line_no,
                rev_pkts: 0,
                rev_bytes: 0,
                app_bytes: None,
                missed: 0,
                exporter: None,
            })
        })();
        match rec {
            Some(r) => {
                sum.flow_records += 1;
                sink.record(r);
            }
            None => sum.bad_record(
                off,
                stream,
                format!("line {line_no}: not a VPC flow log record"),
            ),
        }
    }
    Ok(())
}
