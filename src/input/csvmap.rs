//! Generic CSV flow exports (firewall, proxy, SIEM exports) read through a column
//! mapping: `--columns src=SrcIP,dst=DstIP,bytes=SentBytes,...`. The first line is
//! the header; the delimiter (`,` `;` tab `|`) is taken from it. Fields may be
//! quoted with `"` (RFC 4180, no line breaks inside fields). Each line is one
//! record of `bytes` sent from `src` to `dst` (and `rev_bytes` back, for
//! exports that count both directions).

use super::{InputSummary, PacketSink, Window};
use crate::model::{Endpoint, FlowRecord, Ts, parse_proto, parse_utc_datetime};
use std::net::IpAddr;

/// The mapping keys, in the order `ColumnMap::cols` keeps them.
pub const KEYS: [&str; 11] = [
    "src",
    "dst",
    "bytes",
    "sport",
    "dport",
    "proto",
    "pkts",
    "start",
    "end",
    "rev_bytes",
    "rev_pkts",
];
const REQUIRED: [&str; 3] = ["src", "dst", "bytes"];

/// `--columns`: for each key, the header name (or `#N`, 1-based column number).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnMap {
    pub cols: [Option<String>; 11],
}

impl ColumnMap {
    /// Parses `key=column,key=column`; unknown keys and missing required keys
    /// are errors (the message names them).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut m = ColumnMap::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}' is not key=column"))?;
            let i = KEYS
                .iter()
                .position(|x| *x == k.trim())
                .ok_or_else(|| format!("unknown key '{}' (keys: {})", k.trim(), KEYS.join(", ")))?;
            m.cols[i] = Some(v.trim().to_string());
        }
        for r in REQUIRED {
            if m.get(r).is_none() {
                return Err(format!("'{r}=COLUMN' is required (src, dst and bytes are)"));
            }
        }
        Ok(m)
    }

    fn get(&self, key: &str) -> Option<&str> {
        KEYS.iter()
            .position(|k| *k == key)
            .and_then(|i| self.cols[i].as_deref())
    }
}

/// Whether the first line looks like a CSV header (with a `--columns` mapping
/// the user has said the input is CSV; this only guards against binary files).
pub fn is_csv(w: &mut Window<'_>) -> bool {
    let _ = w.ensure(4096);
    let a = w.avail();
    let line = &a[..a.iter().position(|c| *c == b'\n').unwrap_or(a.len())];
    !line.is_empty()
        && line
            .iter()
            .all(|c| *c >= 0x20 || *c == b'\t' || *c == b'\r')
}

fn delimiter(header: &str) -> char {
    [',', ';', '\t', '|']
        .into_iter()
        .max_by_key(|d| header.matches(*d).count())
        .unwrap_or(',')
}

/// Splits one line into fields, honouring double quotes (`""` is a quote).
/// `None` when a quote is not closed.
fn split(line: &str, delim: char, out: &mut Vec<String>) -> Option<()> {
    out.clear();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && at_start {
            quoted = true;
            at_start = false;
        } else if c == delim {
            out.push(std::mem::take(&mut cur));
            at_start = true;
        } else {
            cur.push(c);
            at_start = false;
        }
    }
    if quoted {
        return None;
    }
    out.push(cur);
    Some(())
}

/// A time: epoch seconds (fractional), epoch milliseconds (> 10^11), RFC 3339,
/// or `YYYY-MM-DD HH:MM:SS[.fff]` (UTC).
fn parse_time(s: &str) -> Option<Ts> {
    let s = s.trim();
    if let Ok(v) = s.parse::<i64>()
        && v.unsigned_abs() > 100_000_000_000
    {
        return v.checked_mul(1_000_000);
    }
    crate::model::parse_time(s).or_else(|| parse_utc_datetime(s))
}

/// An address, also `[v6]` or with a `:port` suffix some firewalls append.
fn addr(s: &str) -> Option<(IpAddr, Option<u16>)> {
    let s = s.trim();
    if let Ok(a) = s.parse() {
        return Some((a, None));
    }
    let sa: std::net::SocketAddr = s.parse().ok()?;
    Some((sa.ip(), Some(sa.port())))
}

pub fn parse(
    w: &mut Window<'_>,
    map: &ColumnMap,
    sink: &mut (dyn PacketSink + Send),
    sum: &mut InputSummary,
) -> Result<(), (u64, String)> {
    let Some((_, header)) = w.next_line()? else {
        return Err((0, "empty CSV".into()));
    };
    let header = header.trim_start_matches('\u{feff}').to_string();
    let delim = delimiter(&header);
    let mut names = Vec::new();
    split(&header, delim, &mut names).ok_or((0, "line 1: unclosed quote".to_string()))?;
    let ncols = names.len();
    // Column index per key.
    let mut idx = [None; 11];
    for (i, col) in map.cols.iter().enumerate() {
        let Some(col) = col else { continue };
        let pos = match col.strip_prefix('#') {
            Some(n) => n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=ncols).contains(n))
                .map(|n| n - 1),
            None => names
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(col)),
        };
        match pos {
            Some(p) => idx[i] = Some(p),
            None => {
                return Err((
                    0,
                    format!(
                        "--columns {}={col}: no such column in the header ({} columns)",
                        KEYS[i], ncols
                    ),
                ));
            }
        }
    }
    let mut f = Vec::with_capacity(ncols);
    let mut line_no = 1u64;
    let mut untimed = 0u64;
    let stream = w.is_stream();
    while let Some((off, text)) = w.next_line()? {
        line_no += 1;
        if text.trim().is_empty() {
            continue;
        }
        let bad = |sum: &mut InputSummary, why: String| {
            sum.bad_record(off, stream, format!("line {line_no}: {why}"));
        };
        if text.contains('\u{fffd}') {
            bad(sum, "not UTF-8".into());
            continue;
        }
        if split(&text, delim, &mut f).is_none() {
            bad(sum, "unclosed quote".into());
            continue;
        }
        if f.len() != ncols {
            bad(sum, format!("{} fields, the header has {ncols}", f.len()));
            continue;
        }
        let get = |k: usize| idx[k].map(|i| f[i].trim());
        let num = |k: usize| -> Result<u64, String> {
            match get(k) {
                None | Some("") => Ok(0),
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| format!("{} '{}' is not a count", KEYS[k], v)),
            }
        };
        let rec = (|| -> Result<FlowRecord, String> {
            let (src, sp) = get(0)
                .and_then(addr)
                .ok_or_else(|| format!("src '{}' is not an address", get(0).unwrap_or("")))?;
            let (dst, dp) = get(1)
                .and_then(addr)
                .ok_or_else(|| format!("dst '{}' is not an address", get(1).unwrap_or("")))?;
            let bytes = match get(2) {
                Some(v) if !v.is_empty() => v
                    .parse::<u64>()
                    .map_err(|_| format!("bytes '{v}' is not a count"))?,
                _ => return Err("bytes is empty".into()),
            };
            let port = |k: usize, dflt: Option<u16>| -> Result<u16, String> {
                match get(k) {
                    None | Some("") => Ok(dflt.unwrap_or(0)),
                    Some(v) => v
                        .parse()
                        .map_err(|_| format!("{} '{v}' is not a port", KEYS[k])),
                }
            };
            let start = match get(7) {
                None | Some("") => None,
                Some(v) => Some(parse_time(v).ok_or_else(|| format!("start '{v}' is not a time"))?),
            };
            let end = match get(8) {
                None | Some("") => None,
                Some(v) => Some(parse_time(v).ok_or_else(|| format!("end '{v}' is not a time"))?),
            };
            let proto = match get(5) {
                None => 0,
                Some(v) => {
                    parse_proto(v).ok_or_else(|| format!("proto '{v}' is not a protocol"))?
                }
            };
            let start = start.or(end);
            Ok(FlowRecord {
                start: start.unwrap_or(0),
                end: end.or(start).unwrap_or(0).max(start.unwrap_or(0)),
                proto,
                src: Endpoint {
                    ip: src,
                    port: port(3, sp)?,
                },
                dst: Endpoint {
                    ip: dst,
                    port: port(4, dp)?,
                },
                pkts: num(6)?,
                bytes,
                tcp_flags: 0,
                sampling: 1,
                record: line_no,
                rev_pkts: num(10)?,
                rev_bytes: num(9)?,
                app_bytes: None,
                missed: 0,
                exporter: None,
            })
        })();
        match rec {
            Ok(r) => {
                if idx[7].is_none() && idx[8].is_none() {
                    untimed += 1;
                }
                sum.flow_records += 1;
                sink.record(r);
            }
            Err(why) => bad(sum, why),
        }
    }
    sum.weirds.add_n("csv_records_without_time", untimed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NS_PER_SEC;

    #[test]
    fn split_quotes_and_delimiters() {
        let mut f = Vec::new();
        split(r#"a,"b,c","d""e",,f"#, ',', &mut f).unwrap();
        assert_eq!(f, ["a", "b,c", "d\"e", "", "f"]);
        assert!(split(r#"a,"b"#, ',', &mut f).is_none());
        assert_eq!(delimiter("a;b;c"), ';');
        assert_eq!(delimiter("a\tb,c\td"), '\t');
    }

    #[test]
    fn column_map_errors_name_the_key() {
        assert!(
            ColumnMap::parse("src=a,dst=b")
                .unwrap_err()
                .contains("bytes")
        );
        assert!(
            ColumnMap::parse("src=a,dst=b,bytes=c,colour=d")
                .unwrap_err()
                .contains("colour")
        );
        let m = ColumnMap::parse("src=Source, dst=#3, bytes=Sent").unwrap();
        assert_eq!(m.get("dst"), Some("#3"));
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000 * NS_PER_SEC));
        assert_eq!(parse_time("1700000000123"), Some(1_700_000_000_123_000_000));
        assert_eq!(
            parse_time("2023-11-14 22:13:20"),
            Some(1_700_000_000 * NS_PER_SEC)
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z"),
            Some(1_700_000_000 * NS_PER_SEC)
        );
        assert_eq!(parse_time("yesterday"), None);
    }
}
