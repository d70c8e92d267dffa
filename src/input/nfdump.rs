//! `nfdump -o csv` output (nfdump 1.6 and 1.7 headers): one flow record per line,
//! `ibyt` bytes from `sa` to `da` and, for bidirectional records, `obyt` back.
//! The summary trailer nfdump prints is recognised and skipped. Timestamps are
//! read as UTC (nfdump prints the collector's local time; run it with TZ=UTC).

use super::{InputSummary, PacketSink, Window, blank};
use crate::model::{
    DateCache, Endpoint, FlowRecord, IpCache, parse_proto_bytes, parse_u64_bytes,
    parse_utc_datetime_in,
};

/// Whether the window starts with an nfdump CSV header.
pub fn is_nfdump_csv(w: &mut Window<'_>) -> bool {
    let _ = w.ensure(64);
    w.avail().starts_with(b"ts,te,td,sa,da,sp,dp,pr")
}

fn tcp_flags(b: &[u8]) -> u8 {
    // nfdump prints "...AP.SF": positions C E U A P R S F
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
    const NAMES: [&str; 13] = [
        "ts", "te", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt", "opkt", "obyt", "flg", "ra",
    ];
    let mut idx = [usize::MAX; 13];
    let Some((_, text)) = w.next_line()? else {
        return Ok(());
    };
    let cols: Vec<&str> = text.split(',').map(str::trim).collect();
    let ncols = cols.len();
    for (k, name) in NAMES.iter().enumerate() {
        idx[k] = cols.iter().position(|c| c == name).unwrap_or(usize::MAX);
    }
    drop(cols);
    let cols = Columns { ncols, idx };
    if super::parallel_worthwhile(w) {
        // `next_line` consumed the header: the records start at the window's start.
        let cols = &cols;
        return super::parallel_lines(w, 0, 1, sink, sum, &|w, first, sink, sum| {
            let mut line_no = first;
            let stop = lines(w, cols, &mut line_no, sink, sum)?;
            Ok((line_no - first, stop))
        });
    }
    let mut line_no = 1;
    lines(w, &cols, &mut line_no, sink, sum).map(|_| ())
}

/// The header's width and where the fields we read sit in it.
struct Columns {
    ncols: usize,
    idx: [usize; 13],
}

/// Reads record lines until the window ends (`Ok(false)`) or the summary
/// trailer begins (`Ok(true)`).
fn lines<S: PacketSink + Send + ?Sized>(
    w: &mut Window<'_>,
    cols: &Columns,
    line_no: &mut u64,
    sink: &mut S,
    sum: &mut InputSummary,
) -> Result<bool, (u64, String)> {
    let Columns { ncols, idx } = *cols;
    let mut fields = super::Fields::default();
    let mut days = DateCache::default();
    let mut ips = IpCache::default();
    // The exporter repeats line after line: read again only when it changes.
    let mut last_exporter: (Vec<u8>, Option<std::net::IpAddr>) = (Vec::new(), None);
    let stream = w.is_stream();
    // Lines as bytes: whether one is UTF-8 is seen in the pass that splits
    // it (a separate check cost a twentieth of the time).
    while let Some((off, text)) = w.next_line_bytes()? {
        *line_no += 1;
        let line_no = *line_no;
        if blank(text) {
            continue;
        }
        if text.starts_with(b"Summary")
            || text.starts_with(b"flows,")
            || text.starts_with(b"Time window")
        {
            // nfdump's summary trailer.
            return Ok(true);
        }
        let ascii = fields.split(text, b',');
        if !ascii && std::str::from_utf8(text).is_err() {
            sum.bad_record(off, stream, format!("line {line_no}: not UTF-8"));
            continue;
        }
        if fields.len() != ncols {
            sum.bad_record(
                off,
                stream,
                format!(
                    "line {line_no}: {} fields, the header has {ncols}",
                    fields.len()
                ),
            );
            continue;
        }
        let get = |k: usize| fields.get(text, idx[k]).map(<[u8]>::trim_ascii);
        let rec = (|| -> Option<(FlowRecord, u64, u64)> {
            let start = parse_utc_datetime_in(get(0)?, &mut days)?;
            let end = get(1)
                .and_then(|t| parse_utc_datetime_in(t, &mut days))
                .unwrap_or(start);
            let sa = ips.parse(get(2)?)?;
            let da = ips.parse(get(3)?)?;
            let port = |v: &[u8]| parse_u64_bytes(v).and_then(|p| u16::try_from(p).ok());
            let sp = port(get(4)?).unwrap_or(0);
            let dp = port(get(5)?).unwrap_or(0);
            let pr = parse_proto_bytes(get(6)?)?;
            let ipkt = parse_u64_bytes(get(7)?)?;
            let ibyt = parse_u64_bytes(get(8)?)?;
            let opkt = get(9).and_then(parse_u64_bytes).unwrap_or(0);
            let obyt = get(10).and_then(parse_u64_bytes).unwrap_or(0);
            let flags = get(11).map(tcp_flags).unwrap_or(0);
            let exporter = match get(12) {
                Some(t) if t == last_exporter.0 => last_exporter.1,
                Some(t) => {
                    let a = crate::model::parse_ip_bytes(t).filter(|a| !a.is_unspecified());
                    last_exporter.0.clear();
                    last_exporter.0.extend_from_slice(t);
                    last_exporter.1 = a;
                    a
                }
                None => None,
            };
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
    Ok(false)
}
