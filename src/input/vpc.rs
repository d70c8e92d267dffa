//! AWS VPC (and Transit Gateway) flow logs: space-separated records, either with a
//! header line naming the fields (custom formats) or in the default field order
//! (version 2 to 5: `version account-id interface-id srcaddr dstaddr srcport dstport
//! protocol packets bytes start end action log-status`, more fields after it for
//! newer versions). NODATA and SKIPDATA records carry no flow and are counted.
//! REJECT records are kept and counted as if their bytes left: the tool never
//! understates outbound volume (docs/formats.md).

use super::{InputSummary, PacketSink, Window};
use crate::model::{Endpoint, FlowRecord, NS_PER_SEC};
use std::net::IpAddr;

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
    let mut fields: Vec<String> = DEFAULT.iter().map(|s| s.to_string()).collect();
    let mut line_no = 0u64;
    let stream = w.is_stream();
    while let Some((off, text)) = w.next_line()? {
        line_no += 1;
        if text.is_empty() {
            continue;
        }
        let t: Vec<&str> = text.split_whitespace().collect();
        if t.first() == Some(&"version") || (t.contains(&"srcaddr") && t.contains(&"dstaddr")) {
            fields = t.iter().map(|s| s.to_string()).collect();
            continue;
        }
        let get = |k: &str| {
            fields
                .iter()
                .position(|f| f == k)
                .and_then(|i| t.get(i))
                .copied()
        };
        match get("log-status") {
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
        if get("action") == Some("REJECT") {
            sum.weirds.add_n("vpc_rejected_records", 1);
        }
        let rec = (|| -> Option<FlowRecord> {
            let sa: IpAddr = get("srcaddr")?.parse().ok()?;
            let da: IpAddr = get("dstaddr")?.parse().ok()?;
            let n = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
            let start = n("start")? as i64 * NS_PER_SEC;
            let end = n("end").map_or(start, |e| e as i64 * NS_PER_SEC);
            Some(FlowRecord {
                start,
                end: end.max(start),
                proto: n("protocol").unwrap_or(0) as u8,
                src: Endpoint {
                    ip: sa,
                    port: n("srcport").unwrap_or(0) as u16,
                },
                dst: Endpoint {
                    ip: da,
                    port: n("dstport").unwrap_or(0) as u16,
                },
                pkts: n("packets").unwrap_or(0),
                bytes: n("bytes").unwrap_or(0),
                tcp_flags: n("tcp-flags").unwrap_or(0) as u8,
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
