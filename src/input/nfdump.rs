//! `nfdump -o csv` output (nfdump 1.6 and 1.7 headers): one flow record per line,
//! `ibyt` bytes from `sa` to `da` and, for bidirectional records, `obyt` back.
//! The summary trailer nfdump prints is recognised and skipped. Timestamps are
//! read as UTC (nfdump prints the collector's local time; run it with TZ=UTC).

use super::{InputSummary, PacketSink, Window};
use crate::model::{Endpoint, FlowRecord, parse_proto, parse_utc_datetime};
use std::net::IpAddr;

/// Whether the window starts with an nfdump CSV header.
pub fn is_nfdump_csv(w: &mut Window<'_>) -> bool {
    let _ = w.ensure(64);
    w.avail().starts_with(b"ts,te,td,sa,da,sp,dp,pr")
}

fn tcp_flags(s: &str) -> u8 {
    // nfdump prints "...AP.SF": positions C E U A P R S F
    let b = s.as_bytes();
    let mut f = 0u8;
    for (i, bit) in [
        (3, 0x10u8),
        (4, 0x08),
        (5, 0x04),
        (6, 0x02),
        (7, 0x01),
        (2, 0x20),
    ] {
        if b.get(i).is_some_and(|c| *c != b'.') {
            f |= bit;
        }
    }
    f
}

pub fn parse(
    w: &mut Window<'_>,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
) -> Result<(), (u64, String)> {
    let mut ncols = 0usize;
    let mut idx = [usize::MAX; 13];
    const NAMES: [&str; 13] = [
        "ts", "te", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt", "opkt", "obyt", "flg", "ra",
    ];
    let mut line_no = 0u64;
    // Field boundaries of the current line (reused: no allocation per line).
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let stream = w.is_stream();
    while let Some((off, text)) = w.next_line()? {
        line_no += 1;
        if line_no == 1 {
            let cols: Vec<&str> = text.split(',').map(str::trim).collect();
            ncols = cols.len();
            for (k, name) in NAMES.iter().enumerate() {
                idx[k] = cols.iter().position(|c| c == name).unwrap_or(usize::MAX);
            }
            continue;
        }
        if text.trim().is_empty() {
            continue;
        }
        if text.starts_with("Summary")
            || text.starts_with("flows,")
            || text.starts_with("Time window")
        {
            // nfdump's summary trailer.
            return Ok(());
        }
        if text.contains('\u{fffd}') {
            sum.bad_record(off, stream, format!("line {line_no}: not UTF-8"));
            continue;
        }
        super::split_spans(&text, b',', &mut spans);
        if spans.len() != ncols {
            sum.bad_record(
                off,
                stream,
                format!(
                    "line {line_no}: {} fields, the header has {ncols}",
                    spans.len()
                ),
            );
            continue;
        }
        let get = |k: usize| spans.get(idx[k]).map(|&(a, b)| text[a..b].trim());
        let rec = (|| -> Option<(FlowRecord, u64, u64)> {
            let start = parse_utc_datetime(get(0)?)?;
            let end = get(1).and_then(parse_utc_datetime).unwrap_or(start);
            let sa: IpAddr = get(2)?.parse().ok()?;
            let da: IpAddr = get(3)?.parse().ok()?;
            let sp: u16 = get(4)?.parse().unwrap_or(0);
            let dp: u16 = get(5)?.parse().unwrap_or(0);
            let pr = parse_proto(get(6)?)?;
            let ipkt: u64 = get(7)?.parse().ok()?;
            let ibyt: u64 = get(8)?.parse().ok()?;
            let opkt: u64 = get(9).and_then(|v| v.parse().ok()).unwrap_or(0);
            let obyt: u64 = get(10).and_then(|v| v.parse().ok()).unwrap_or(0);
            let flags = get(11).map(tcp_flags).unwrap_or(0);
            let exporter = get(12)
                .and_then(|v| v.parse::<IpAddr>().ok())
                .filter(|a| !a.is_unspecified());
            let r = FlowRecord {
                start,
                end: end.max(start),
                proto: pr,
                src: Endpoint { ip: sa, port: sp },
                dst: Endpoint { ip: da, port: dp },
                pkts: ipkt,
                bytes: ibyt,
                tcp_flags: flags,
                sampling: 1,
                record: line_no,
                rev_pkts: 0,
                rev_bytes: 0,
                app_bytes: None,
                missed: 0,
                exporter,
            };
            Some((r, opkt, obyt))
        })();
        let Some((r, opkt, obyt)) = rec else {
            sum.bad_record(
                off,
                stream,
                format!("line {line_no}: not an nfdump CSV record"),
            );
            continue;
        };
        sum.flow_records += 1;
        if obyt > 0 || opkt > 0 {
            let back = FlowRecord {
                src: r.dst,
                dst: r.src,
                pkts: opkt,
                bytes: obyt,
                ..r.clone()
            };
            sink.record(r);
            sink.record(back);
        } else {
            sink.record(r);
        }
    }
    Ok(())
}
