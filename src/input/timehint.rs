//! When a file of an archive can hold data: from its name (nfcapd
//! `nfcapd.YYYYMMDDhhmm`, Zeek rotated `conn.hh:mm:ss-hh:mm:ss.log.gz` in a
//! `YYYY-MM-DD` directory, AWS S3 flow-log objects `..._YYYYMMDDThhmmZ_...`) or
//! its first bytes (Zeek `#open`/`#close`, the first pcap record). Each span is
//! widened by a margin that covers the format's own slack (rotation interval,
//! aggregation interval, delivery delay), so a file is only skipped when it
//! cannot hold anything inside the window.

use super::{Compression, InputPath, MultiZstd, detect_compression};
use crate::model::{NS_PER_SEC, Ts, parse_time};
use std::io::Read;
use std::path::Path;

const HOUR: Ts = 3600 * NS_PER_SEC;
const DAY: Ts = 24 * HOUR;

/// The span `path` can hold data in, and what it was read from; `None` when
/// neither name nor header says.
pub fn span(path: &InputPath) -> Option<((Ts, Ts), &'static str)> {
    let InputPath::File(p) = path else {
        return None;
    };
    from_name(p).or_else(|| from_header(p))
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// `YYYYMMDDhhmm[ss]` as a time.
fn compact(s: &str) -> Option<Ts> {
    if !digits(s) || !(s.len() == 12 || s.len() == 14) {
        return None;
    }
    let sec = if s.len() == 14 { &s[12..14] } else { "00" };
    parse_time(&format!(
        "{}-{}-{}T{}:{}:{sec}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12]
    ))
}

fn from_name(p: &Path) -> Option<((Ts, Ts), &'static str)> {
    let name = p.file_name()?.to_str()?;
    // nfcapd.202611281000 (the start of its rotation interval; nfcapd rotates
    // every 5 minutes by default, flows may have started a day before).
    if let Some(rest) = name.strip_prefix("nfcapd.")
        && let Some(t) = compact(rest)
    {
        return Some(((t - DAY, t + DAY), "file name (nfcapd)"));
    }
    // 123456789012_vpcflowlogs_eu-central-1_fl-0abc_20261128T1005Z_1a2b3c4d.log.gz:
    // delivered at the end of a 5-minute batch of up to 10-minute aggregations.
    if name.contains("_vpcflowlogs_") || name.contains("_transitgatewayflowlogs_") {
        for part in name.split('_') {
            if part.len() == 14 && part.ends_with('Z') && part.as_bytes()[8] == b'T' {
                let t = compact(&format!("{}{}", &part[..8], &part[9..13]))?;
                return Some(((t - DAY, t + HOUR), "file name (AWS flow log)"));
            }
        }
    }
    // Zeek's rotated logs: 2026-11-28/conn.10:00:00-11:00:00.log.gz
    if let Some(rest) = name.strip_prefix("conn.")
        && let Some((a, b)) = rest.get(..17).and_then(|x| x.split_once('-'))
        && a.len() == 8
        && b.len() == 8
    {
        let day = p.parent()?.file_name()?.to_str()?;
        let s = parse_time(&format!("{day}T{a}Z"))?;
        let mut e = parse_time(&format!("{day}T{b}Z"))?;
        if e <= s {
            e += DAY; // rotated over midnight
        }
        // Connections are logged when they end: long ones started earlier.
        return Some(((s - DAY, e + HOUR), "file name (Zeek rotated log)"));
    }
    None
}

fn from_header(p: &Path) -> Option<((Ts, Ts), &'static str)> {
    let f = std::fs::File::open(p).ok()?;
    let mut head = [0u8; 4];
    let mut f = std::io::BufReader::new(f);
    let mut buf = Vec::with_capacity(8192);
    {
        let raw = f.get_mut();
        raw.read_exact(&mut head).ok()?;
    }
    let chained = std::io::Cursor::new(head.to_vec()).chain(f);
    let mut r: Box<dyn Read> = match detect_compression(&head) {
        Compression::None => Box::new(chained),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(chained)),
        Compression::Zstd => Box::new(MultiZstd::new(chained).ok()?),
    };
    r.by_ref().take(8192).read_to_end(&mut buf).ok()?;
    // Zeek: "#open\t2026-11-28-10-00-00" (and "#close" at the end of the file,
    // not read here: the span ends a day after the open).
    let text = String::from_utf8_lossy(&buf);
    if text.starts_with("#separator") {
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("#open\t") {
                let v = v.trim();
                if v.len() >= 19 {
                    let t = parse_time(&format!(
                        "{}T{}:{}:{}Z",
                        &v[..10],
                        &v[11..13],
                        &v[14..16],
                        &v[17..19]
                    ))?;
                    return Some(((t - DAY, Ts::MAX), "header (Zeek #open)"));
                }
            }
        }
        return None;
    }
    // pcap: the first record's time; nothing before it (a capture is written
    // in time order give or take reordering, allowed for by an hour).
    if buf.len() >= 24 + 16 {
        let magic = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let (le, nanos) = match magic {
            0xa1b2_c3d4 => (true, false),
            0xa1b2_3c4d => (true, true),
            0xd4c3_b2a1 => (false, false),
            0x4d3c_b2a1 => (false, true),
            _ => return None,
        };
        let rd = |o: usize| {
            let b = [buf[o], buf[o + 1], buf[o + 2], buf[o + 3]];
            if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            }
        };
        let secs = i64::from(rd(24));
        let frac = i64::from(rd(28));
        let t = secs * NS_PER_SEC + if nanos { frac } else { frac * 1000 };
        return Some(((t - HOUR, Ts::MAX), "header (first pcap record)"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn t(s: &str) -> Ts {
        parse_time(s).unwrap()
    }

    #[test]
    fn names() {
        let n = from_name(&PathBuf::from("/a/2026/11/28/nfcapd.202611281000")).unwrap();
        assert_eq!(n.0, (t("2026-11-27T10:00:00Z"), t("2026-11-29T10:00:00Z")));
        let v = from_name(&PathBuf::from(
            "123456789012_vpcflowlogs_eu-central-1_fl-0abc_20261128T1005Z_1a2b3c4d.log.gz",
        ))
        .unwrap();
        assert_eq!(v.0.1, t("2026-11-28T11:05:00Z"));
        let z = from_name(&PathBuf::from(
            "logs/2026-11-28/conn.23:00:00-00:00:00.log.gz",
        ))
        .unwrap();
        assert_eq!(z.0, (t("2026-11-27T23:00:00Z"), t("2026-11-29T01:00:00Z")));
        assert!(from_name(&PathBuf::from("capture.pcap")).is_none());
        assert!(from_name(&PathBuf::from("nfcapd.current.1234")).is_none());
    }
}
