//! Bad input never loses data silently: a one-line error naming the file and the
//! byte offset, the other inputs still analysed, the failure in the report, the
//! verdict INCONCLUSIVE. Never a panic, never unbounded memory.

use crate::util::*;
use exfilcheck::input::{InputPath, PacketSink, RawPacket, read_input};
use std::path::{Path, PathBuf};

fn wiki() -> PathBuf {
    testdata().join("pcap/zeek__wikipedia.pcap")
}

/// Writes `bytes` to a temp file and returns its path.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Offsets of the legacy pcap records in a little-endian file.
fn record_offsets(b: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut off = 24;
    while off + 16 <= b.len() {
        v.push(off);
        let cl = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + cl;
    }
    v
}

/// Runs analyze on a bad file plus a good one; checks the error line and the report.
fn check_bad(bad: &Path, expect_msg: &str, expect_offset: u64, name: &str) -> serde_json::Value {
    let dir = tempdir(name);
    let out = dir.join("r.json");
    let o = run_paths(
        &["analyze", "--quiet", "--json", out.to_str().unwrap()],
        &[bad, &wiki()],
    );
    assert_eq!(o.status.code(), Some(3), "INCONCLUSIVE exit code");
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one error line: {err}");
    assert!(
        lines[0].contains(&bad.display().to_string()),
        "names the file: {err}"
    );
    assert!(lines[0].contains(expect_msg), "says what: {err}");
    assert!(
        lines[0].contains(&format!("byte offset {expect_offset}")),
        "names the offset: {err}"
    );
    let v = json(&out);
    assert_eq!(v["verdict"], "INCONCLUSIVE");
    assert_eq!(v["inputs"][0]["error"]["offset"], expect_offset);
    assert!(
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "INPUT_FAILED")
    );
    // The good input was analysed in full.
    assert_eq!(v["inputs"][1]["packets"], 136);
    assert!(v["inputs"][1]["error"].is_null());
    v
}

#[test]
fn not_a_capture() {
    let d = tempdir("notcap");
    let p = write(&d, "notes.txt", b"this is not a capture\n");
    check_bad(&p, "not a capture", 0, "notcap-r");
}

#[test]
fn empty_file() {
    let d = tempdir("empty");
    let p = write(&d, "empty.pcap", b"");
    check_bad(&p, "empty file", 0, "empty-r");
}

#[test]
fn truncated_last_record() {
    let d = tempdir("trunc");
    let b = std::fs::read(wiki()).unwrap();
    let offs = record_offsets(&b);
    let last = *offs.last().unwrap();
    let p = write(&d, "cut.pcap", &b[..b.len() - 10]);
    let v = check_bad(&p, "truncated last record", last as u64, "trunc-r");
    assert_eq!(
        v["inputs"][0]["packets"], 135,
        "all complete records were read"
    );
}

#[test]
fn absurd_caplen() {
    let d = tempdir("caplen");
    let mut b = std::fs::read(wiki()).unwrap();
    let second = record_offsets(&b)[1];
    b[second + 8..second + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let p = write(&d, "caplen.pcap", &b);
    let v = check_bad(&p, "absurd caplen", second as u64, "caplen-r");
    assert_eq!(v["inputs"][0]["packets"], 1);
}

#[test]
fn broken_pcapng_block() {
    let d = tempdir("ng");
    let mut b =
        std::fs::read(testdata().join("pcapng/zeek__pcapng-multi-interface.pcapng")).unwrap();
    // Walk to the third block and give it an impossible length (not a multiple of 4).
    let mut off = 0;
    for _ in 0..2 {
        off += u32::from_le_bytes(b[off + 4..off + 8].try_into().unwrap()) as usize;
    }
    b[off + 4..off + 8].copy_from_slice(&13u32.to_le_bytes());
    let p = write(&d, "broken.pcapng", &b);
    check_bad(&p, "broken pcapng block", off as u64, "ng-r");
}

#[test]
fn unknown_link_type() {
    let d = tempdir("lt");
    let mut b = std::fs::read(wiki()).unwrap();
    b[20..24].copy_from_slice(&4242u32.to_le_bytes());
    let p = write(&d, "lt.pcap", &b);
    check_bad(&p, "unsupported link type 4242", 20, "lt-r");
}

#[test]
fn shipped_corrupt_files_fail_visibly() {
    // tcpdump's and pcap-parser's deliberately broken captures.
    for (name, code) in [
        // A valid file with one 1-byte record (snaplen 1): read, not decodable.
        ("pcap/the-tcpdump-group__heap-overflow-1.pcap", 0),
        ("pcap/rusticata__assets__err-eof.bin", 5),
        ("pcap/the-tcpdump-group__empty.pcap", 0),
        ("pcapng/the-tcpdump-group__empty.pcapng", 0),
    ] {
        let o = run_paths(&["flows"], &[&testdata().join(name)]);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

struct Count(u64);
impl PacketSink for Count {
    fn packet(&mut self, p: &RawPacket<'_>) {
        self.0 += 1;
        let mut w = exfilcheck::diag::Weirds::default();
        let _ = exfilcheck::decode::decode(p.linktype, p.data, p.origlen, &mut w);
    }
}

/// Random byte flips and truncations of real captures never panic and never
/// report more packets than the original.
#[test]
fn mutated_captures_never_panic() {
    let d = tempdir("fuzz");
    let sources = [
        wiki(),
        testdata().join("pcapng/zeek__pcapng-multi-interface.pcapng"),
        testdata().join("pcap/zeek__tunnels__gre-sample.pcap"),
        testdata().join("pcap/zeek__mixed-vlan-mpls.pcap"),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for src in &sources {
        let orig = std::fs::read(src).unwrap();
        for i in 0..150 {
            let mut b = orig.clone();
            let flips = 1 + next() % 8;
            for _ in 0..flips {
                let pos = (next() as usize) % b.len();
                b[pos] = next() as u8;
            }
            if i % 3 == 0 {
                let cut = (next() as usize) % b.len();
                b.truncate(cut);
            }
            let p = d.join("m.bin");
            std::fs::write(&p, &b).unwrap();
            let mut c = Count(0);
            let s = read_input(&InputPath::File(p), &mut c, &|_| {});
            assert_eq!(s.packets, c.0.max(s.packets));
            assert!(s.packets <= 100_000);
        }
    }
}
