//! nfcapd files (nfdump's binary format) read without nfdump: every record and
//! the IP bytes of every direction equal nfdump 1.7.1's own CSV of the same file,
//! for both layouts and every block compression; hostile lengths and broken
//! files give an error with an offset, never a panic or a large allocation.

use crate::util::*;
use exfilcheck::input::pcap::parse;
use exfilcheck::input::{
    Compression, InputPath, InputSummary, PacketSink, RawPacket, ReadOptions, Window, read_input,
};
use exfilcheck::model::FlowRecord;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn nfcapd_dir() -> PathBuf {
    root().join("testdata").join("nfcapd")
}

fn public_v1() -> PathBuf {
    testdata().join("flows/nfdump/chrispassas__testdata__nfcapd-small-lzo")
}

/// One directed transfer: (source, destination, IP bytes).
type Dir = (String, String, u64);

/// nfdump's CSV (`nfdump -r FILE -o csv`): per record, `sa -> da` with `ibyt`
/// and, for bidirectional records, `da -> sa` with `obyt` (zero entries left
/// out), and the record's exporter (`ra`; `-` for 0.0.0.0).
fn nfdump_records_ra(csv: &str) -> Vec<(BTreeSet<Dir>, String)> {
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().expect("csv header").split(',').collect();
    let col = |n: &str| head.iter().position(|c| *c == n).expect(n);
    let (sa, da, ibyt, obyt) = (col("sa"), col("da"), col("ibyt"), col("obyt"));
    let ra = col("ra");
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() || line.starts_with("Summary") {
            break;
        }
        let f: Vec<&str> = line.split(',').collect();
        let mut set = BTreeSet::new();
        for (a, b, n) in [(f[sa], f[da], f[ibyt]), (f[da], f[sa], f[obyt])] {
            let n: u64 = n.trim().parse().unwrap();
            if n > 0 {
                set.insert((a.to_lowercase(), b.to_lowercase(), n));
            }
        }
        let exporter = match f[ra].trim() {
            "0.0.0.0" | "::" => "-".to_string(),
            e => e.to_lowercase(),
        };
        out.push((set, exporter));
    }
    out
}

/// Our `flows --format csv` rows by record number (`first_frame`), in the same
/// form, with the counted bytes (our volumes are scaled by the sampling interval,
/// nfdump prints the counted ones).
fn our_records(rows: &[Row]) -> BTreeMap<u64, BTreeSet<Dir>> {
    let mut out: BTreeMap<u64, BTreeSet<Dir>> = BTreeMap::new();
    for r in rows {
        assert_eq!(r["first_frame"], r["last_frame"], "one record, one flow");
        let (o, s) = (r["id.orig_h"].to_lowercase(), r["id.resp_h"].to_lowercase());
        let set = out.entry(num(r, "first_frame")).or_default();
        let n = num(r, "sampling").max(1);
        for (a, b, n) in [
            (&o, &s, num(r, "orig_ip_bytes") / n),
            (&s, &o, num(r, "resp_ip_bytes") / n),
        ] {
            if n > 0 {
                set.insert((a.clone(), b.clone(), n));
            }
        }
    }
    out
}

fn directions(recs: impl IntoIterator<Item = BTreeSet<Dir>>) -> BTreeMap<(String, String), u64> {
    let mut d = BTreeMap::new();
    for set in recs {
        for (a, b, n) in set {
            *d.entry((a, b)).or_default() += n;
        }
    }
    d
}

/// Reads `file` with the binary and compares it with nfdump's CSV of it: the
/// record count, each record (record n is CSV line n+1) and the per-direction
/// byte totals. Returns (records, IP bytes).
fn check_against_nfdump(file: &Path, csv: &str) -> (usize, u64) {
    let (rows, o) = flows(file);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let want_ra = nfdump_records_ra(csv);
    // The exporter of every record is nfdump's `ra` (from the file's exporter
    // info records).
    for r in &rows {
        let n = num(r, "first_frame") as usize;
        assert_eq!(
            r["exporter"],
            want_ra[n - 1].1,
            "{}: exporter of record {n}",
            file.display()
        );
    }
    let want: Vec<BTreeSet<Dir>> = want_ra.into_iter().map(|r| r.0).collect();
    let got = our_records(&rows);
    assert_eq!(rows.len(), want.len(), "{}: records", file.display());
    let numbers: Vec<u64> = got.keys().copied().collect();
    let expected: Vec<u64> = (1..=want.len() as u64).collect();
    assert_eq!(numbers, expected, "{}: record numbers", file.display());
    for (n, set) in &got {
        assert_eq!(
            set,
            &want[*n as usize - 1],
            "{}: record {n}",
            file.display()
        );
    }
    let (gd, wd) = (directions(got.into_values()), directions(want));
    assert_eq!(gd, wd, "{}: bytes per direction", file.display());
    (rows.len(), wd.values().sum())
}

fn analyze_json(input: &Path, args: &[&str], name: &str) -> Value {
    let out = tempdir(name).join("r.json");
    let mut a = vec!["analyze", input.to_str().unwrap()];
    a.extend_from_slice(args);
    a.extend(["--json", out.to_str().unwrap(), "--quiet"]);
    run(&a);
    json(&out)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every lab nfcapd file (nfcapd 1.7.1 behind softflowd, IPFIX and NetFlow v9)
/// equals the nfdump CSV in its directory.
#[test]
fn lab_nfcapd_files_equal_nfdump() {
    let Some(s) = shared("lab nfcapd files") else {
        return;
    };
    let base = s.join("testdata/lab/08_flows");
    let mut seen = Vec::new();
    for scen in ["01_benign", "02_bulk_upload", "03_dns_tunnel"] {
        for kind in ["ipfix", "netflow_v9"] {
            let d = base.join(scen).join(kind);
            let csv = read(&d.join("flows.csv"));
            for f in files(&d.join("nfcapd")) {
                seen.push((scen, kind, check_against_nfdump(&f, &csv)));
            }
        }
    }
    let figures: Vec<(usize, u64)> = seen.iter().map(|x| x.2).collect();
    assert_eq!(
        figures,
        [
            (78, 320_896),
            (78, 320_896),
            (82, 42_931_857),
            (82, 42_931_857),
            (100, 5_483_098),
            (100, 5_483_098)
        ]
    );
}

/// `analyze` on the lab nfcapd files gives the labels' verdict and the bytes
/// nfdump reports for the sensitive host.
#[test]
fn lab_nfcapd_files_give_the_capture_verdict() {
    let Some(s) = shared("lab nfcapd files") else {
        return;
    };
    let lab = s.join("testdata/lab");
    for scen in ["01_benign", "02_bulk_upload", "03_dns_tunnel"] {
        let src = json(&lab.join(scen).join("labels.json"));
        let mut args = Vec::new();
        for (flag, key) in [
            ("--internal", "internal_networks"),
            ("--scope", "sensitive_hosts"),
            ("--allow", "allowlist"),
        ] {
            for v in src[key].as_array().into_iter().flatten() {
                args.push(flag.to_string());
                args.push(v.as_str().unwrap().to_string());
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for kind in ["ipfix", "netflow_v9"] {
            let d = lab.join("08_flows").join(scen).join(kind);
            let want = json(&d.join("labels.json"))["flow_totals_from_nfdump_csv"]
                ["from_sensitive_to_external"]["bytes"]
                .as_u64()
                .unwrap();
            for f in files(&d.join("nfcapd")) {
                let v = analyze_json(&f, &args, "lab-nfcapd");
                assert_eq!(v["verdict"], src["expected_verdict"], "{scen}/{kind}");
                assert_eq!(v["inputs"][0]["format"], "nfcapd-v2");
                assert!(v["inputs"][0]["error"].is_null());
                let out = v["ledger"]["hosts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|h| h["host"] == "10.20.1.10")
                    .map_or(0, |h| h["out"]["ip_bytes"].as_u64().unwrap());
                assert_eq!(out, want, "{scen}/{kind}");
                // nfcapd's own sequence-failure count (2 in each IPFIX file:
                // softflowd's numbering) is shown by gate C6 as a FLAG.
                let c6 = gate(&v, "C6");
                let failures = v["inputs"][0]["weirds"]["nfcapd_sequence_failures"]
                    .as_u64()
                    .unwrap_or(0);
                let figure = c6["figure"].as_str().unwrap();
                if kind == "ipfix" {
                    assert_eq!(failures, 2, "{scen}/{kind}");
                    assert_eq!(c6["status"], "FLAG", "{scen}/{kind}");
                    assert!(
                        figure.contains("nfcapd) recorded 2 sequence failures"),
                        "{figure}"
                    );
                } else {
                    assert_eq!(failures, 0, "{scen}/{kind}");
                    assert_eq!(c6["status"], "PASS", "{scen}/{kind}");
                    assert!(!figure.contains("sequence failures"), "{figure}");
                }
            }
        }
    }
}

/// The public nfdump 1.6 (layout 1) LZO file: its 10 flow records equal nfdump's
/// CSV; the 2,405 records of type 9 that nfdump 1.7.1 skips ("Skip unknown record
/// type 9", once per record in its .err) are legacy sampler records, read for
/// the sampling interval and counted.
#[test]
fn public_layout1_lzo_file_equals_nfdump() {
    let exp = testdata().join("expected/nfdump");
    let csv = read(&exp.join("chrispassas__testdata__nfcapd-small-lzo.csv"));
    assert_eq!(check_against_nfdump(&public_v1(), &csv), (10, 87_993_000));
    let skipped_by_nfdump = read(&exp.join("chrispassas__testdata__nfcapd-small-lzo.err"))
        .lines()
        .filter(|l| l.starts_with("Skip unknown record type 9"))
        .count() as u64;
    assert_eq!(skipped_by_nfdump, 2405);
    let v = analyze_json(&public_v1(), &[], "v1");
    let i = &v["inputs"][0];
    assert_eq!(i["format"], "nfcapd-v1");
    assert!(i["error"].is_null(), "{}", i["error"]);
    assert_eq!(i["flow_records"], 10);
    assert_eq!(
        i["weirds"]["nfcapd_legacy_sampler_records"],
        skipped_by_nfdump
    );
    assert!(i["weirds"]["nfcapd_record_skipped"].is_null());
    assert_eq!(i["sampling_interval"], 3000);
    // The shipped copy is the one the shared manifest names.
    if let Some(s) = shared("public nfcapd file") {
        let orig = s.join("testdata/public/flows/nfdump/chrispassas__testdata__nfcapd-small-lzo");
        assert_eq!(
            std::fs::read(orig).unwrap(),
            std::fs::read(public_v1()).unwrap()
        );
    }
}

/// A layout 2 file rewritten so that every block is ZSTD-compressed (nfdump's
/// ZSTD_COMPRESSED = 4; Debian's nfdump 1.7.1 is built without ZSTD).
fn zstd_variant(plain: &[u8]) -> Vec<u8> {
    assert_eq!(plain[16], 0, "source blocks uncompressed");
    let appendix = u64::from_le_bytes(plain[24..32].try_into().unwrap()) as usize;
    let mut out = plain[..40].to_vec();
    out[16] = 4;
    let mut at = 40;
    while at < plain.len() {
        if at == appendix {
            // The appendix (ident and stat record) moves with the smaller blocks.
            let new = out.len() as u64;
            out[24..32].copy_from_slice(&new.to_le_bytes());
        }
        let size = u32::from_le_bytes(plain[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &plain[at + 12..at + 12 + size];
        let z =
            ruzstd::encoding::compress_to_vec(body, ruzstd::encoding::CompressionLevel::Fastest);
        out.extend_from_slice(&plain[at..at + 4]);
        out.extend_from_slice(&(z.len() as u32).to_le_bytes());
        out.extend_from_slice(&plain[at + 8..at + 12]);
        out.extend_from_slice(&z);
        at += 12 + size;
    }
    out
}

/// The same flows written by nfdump 1.7.1 with each block compression (and
/// uncompressed), by nfpcapd with IPv6 addresses, and aggregated into
/// bidirectional records, equal nfdump's CSV of them; so does a gzipped file.
#[test]
fn every_compression_equals_nfdump() {
    let d = nfcapd_dir();
    let csv = read(&d.join("bulk_upload.csv"));
    for f in [
        "bulk_upload.none",
        "bulk_upload.lzo",
        "bulk_upload.lz4",
        "bulk_upload.bz2",
    ] {
        assert_eq!(
            check_against_nfdump(&d.join(f), &csv),
            (82, 42_931_857),
            "{f}"
        );
    }
    let tmp = tempdir("nfcapd-zstd");
    let zst = tmp.join("bulk_upload.zstd-blocks");
    std::fs::write(
        &zst,
        zstd_variant(&std::fs::read(d.join("bulk_upload.none")).unwrap()),
    )
    .unwrap();
    assert_eq!(check_against_nfdump(&zst, &csv), (82, 42_931_857));

    let bidir = read(&d.join("bulk_upload-bidir.csv"));
    assert_eq!(
        check_against_nfdump(&d.join("bulk_upload-bidir.lzo"), &bidir),
        (41, 42_931_857)
    );
    let (rows, _) = flows(&d.join("bulk_upload-bidir.lzo"));
    assert!(
        rows.iter()
            .filter(|r| num(r, "orig_ip_bytes") > 0 && num(r, "resp_ip_bytes") > 0)
            .count()
            >= 30,
        "bidirectional records keep both directions"
    );

    let v6 = read(&d.join("ftp_ipv6.csv"));
    assert_eq!(
        check_against_nfdump(&d.join("ftp_ipv6.nfcapd"), &v6),
        (12, 14_575)
    );

    // gzip around an nfcapd file: read as a stream.
    let gz = tmp.join("bulk_upload.lzo.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, &std::fs::read(d.join("bulk_upload.lzo")).unwrap()).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    assert_eq!(check_against_nfdump(&gz, &csv), (82, 42_931_857));

    for (f, format) in [
        (d.join("bulk_upload.lz4"), "nfcapd-v2"),
        (zst, "nfcapd-v2"),
        (gz, "nfcapd-v2+gzip"),
    ] {
        let v = analyze_json(&f, &[], "fmt");
        assert_eq!(v["inputs"][0]["format"], format);
        assert!(v["inputs"][0]["error"].is_null());
        assert!(v["inputs"][0]["weirds"].as_object().unwrap().is_empty());
    }
}

/// nfanon's output: every record is flagged anonymised and counted as such.
#[test]
fn anonymised_records_are_counted() {
    let f = nfcapd_dir().join("bulk_upload-anon.none");
    let v = analyze_json(&f, &[], "anon");
    let i = &v["inputs"][0];
    assert_eq!(i["flow_records"], 82);
    assert_eq!(i["weirds"]["nfcapd_anonymized_records"], 82);
    assert!(i["error"].is_null());
}

/// A layout 1 file built field by field from nfdump's nfx.h: an extension map
/// with optional extensions (2-byte interfaces, out packets, out bytes, router
/// IP) and a common record using it, then a record whose map is never defined.
fn v1_file() -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x0c, 0xa5, 1, 0]); // magic, layout 1
    f.extend_from_slice(&0u32.to_le_bytes()); // flags: uncompressed
    f.extend_from_slice(&1u32.to_le_bytes()); // NumBlocks
    let mut ident = [0u8; 128];
    ident[..4].copy_from_slice(b"test");
    f.extend_from_slice(&ident);
    let mut stat = [0u8; 136];
    stat[..8].copy_from_slice(&2u64.to_le_bytes()); // numflows
    f.extend_from_slice(&stat);

    let mut recs = Vec::new();
    // Extension map 7: ids 4, 14, 16, 23, 0, padded to 4 bytes.
    recs.extend_from_slice(&2u16.to_le_bytes());
    recs.extend_from_slice(&20u16.to_le_bytes());
    recs.extend_from_slice(&7u16.to_le_bytes());
    recs.extend_from_slice(&16u16.to_le_bytes());
    for id in [4u16, 14, 16, 23, 0, 0] {
        recs.extend_from_slice(&id.to_le_bytes());
    }
    for map in [7u16, 9] {
        let mut r = Vec::new();
        r.extend_from_slice(&10u16.to_le_bytes()); // CommonRecordType
        r.extend_from_slice(&64u16.to_le_bytes());
        r.extend_from_slice(&0u16.to_le_bytes()); // flags: IPv4, 32-bit counters
        r.extend_from_slice(&map.to_le_bytes());
        r.extend_from_slice(&5u16.to_le_bytes()); // msec_first
        r.extend_from_slice(&9u16.to_le_bytes()); // msec_last
        r.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        r.extend_from_slice(&1_700_000_010u32.to_le_bytes());
        r.extend_from_slice(&[0, 0x1b, 6, 0]); // fwd_status, tcp_flags, proto, tos
        r.extend_from_slice(&50_000u16.to_le_bytes());
        r.extend_from_slice(&443u16.to_le_bytes());
        r.extend_from_slice(&1u16.to_le_bytes()); // exporter_sysid
        r.extend_from_slice(&[0, 0]); // biFlowDir, flowEndReason
        r.extend_from_slice(&u32::from(std::net::Ipv4Addr::new(10, 0, 0, 1)).to_le_bytes());
        r.extend_from_slice(&u32::from(std::net::Ipv4Addr::new(192, 0, 2, 9)).to_le_bytes());
        r.extend_from_slice(&10u32.to_le_bytes()); // packets
        r.extend_from_slice(&1000u32.to_le_bytes()); // bytes
        r.extend_from_slice(&[3, 0, 4, 0]); // ext 4: input, output
        r.extend_from_slice(&7u32.to_le_bytes()); // ext 14: out packets
        r.extend_from_slice(&7000u32.to_le_bytes()); // ext 16: out bytes
        r.extend_from_slice(&[127, 0, 0, 1]); // ext 23: router IP
        assert_eq!(r.len(), 64);
        recs.extend_from_slice(&r);
    }
    f.extend_from_slice(&3u32.to_le_bytes()); // NumRecords
    f.extend_from_slice(&(recs.len() as u32).to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes()); // DATA_BLOCK_TYPE_2
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&recs);
    f
}

#[derive(Default)]
struct Records(Vec<FlowRecord>);
impl PacketSink for Records {
    fn packet(&mut self, _p: &RawPacket<'_>) {}
    fn record(&mut self, r: FlowRecord) {
        self.0.push(r);
    }
}

fn parse_bytes(b: &[u8]) -> (InputSummary, Vec<FlowRecord>) {
    let mut sum = InputSummary::default();
    let mut sink = Records::default();
    parse(
        &mut Window::slice(b),
        &ReadOptions::default(),
        &mut sink,
        &mut sum,
        Compression::None,
        &|_| {},
    );
    (sum, sink.0)
}

#[test]
fn layout1_extensions_and_missing_maps() {
    let (sum, recs) = parse_bytes(&v1_file());
    assert_eq!(sum.format, "nfcapd-v1");
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.src.to_string(), "10.0.0.1:50000");
    assert_eq!(r.dst.to_string(), "192.0.2.9:443");
    assert_eq!((r.proto, r.tcp_flags), (6, 0x1b));
    assert_eq!(
        (r.pkts, r.bytes, r.rev_pkts, r.rev_bytes),
        (10, 1000, 7, 7000)
    );
    assert_eq!(r.start, 1_700_000_000_005_000_000);
    assert_eq!(r.end, 1_700_000_010_009_000_000);
    assert_eq!(r.record, 1);
    // The second record names map 9, which never came: unparsable, counted, the
    // input's error; the file's stat record still counts it.
    let e = sum.error.as_ref().expect("error");
    assert!(e.message.contains("flow record 2") && e.message.contains("extension map 9"));
    assert_eq!(e.offset, 276);
    assert_eq!(sum.weirds.get("flow_record_unparsable"), 1);
    assert_eq!(sum.weirds.get("nfcapd_records_missing"), 0);
}

/// Hostile or broken headers and blocks: an error naming the offset, no panic,
/// no allocation of what a length field claims.
#[test]
fn hostile_lengths_and_broken_files_fail_with_an_offset() {
    let plain = std::fs::read(nfcapd_dir().join("bulk_upload.none")).unwrap();
    let err = |b: &[u8]| {
        let (s, _) = parse_bytes(b);
        let e = s.error.expect("an error");
        (e.offset, e.message)
    };
    // A block claiming 4 GB.
    let mut b = plain.clone();
    b[44..48].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let (off, m) = err(&b);
    assert_eq!(off, 40);
    assert!(
        m.contains("claims 4294967280 bytes, more than nfdump's largest block"),
        "{m}"
    );
    // Unknown compression, encryption, layout version.
    let mut b = plain.clone();
    b[16] = 9;
    assert_eq!(
        err(&b),
        (
            16,
            "nfcapd file header names unknown block compression 9".into()
        )
    );
    let mut b = plain.clone();
    b[17] = 1;
    assert_eq!(err(&b).0, 17);
    let mut b = plain.clone();
    b[2] = 3;
    let (s, _) = parse_bytes(&b);
    assert_eq!(s.format, "nfcapd-v3");
    assert_eq!(s.error.unwrap().offset, 2);
    // Decompression bombs: a ZSTD and an LZO block of 6 MiB of zeros stop at 5 MiB.
    let zeros = vec![0u8; 6 << 20];
    for (comp, data) in [
        (
            4u8,
            ruzstd::encoding::compress_to_vec(
                &zeros[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
        ),
        (1u8, lzokay_native::compress(&zeros).unwrap()),
    ] {
        let mut b = plain[..40].to_vec();
        b[16] = comp;
        b[36..40].copy_from_slice(&1u32.to_le_bytes());
        b[18..20].copy_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&[3, 0, 0, 0]);
        b.extend_from_slice(&data);
        let (s, recs) = parse_bytes(&b);
        let e = s.error.expect("error");
        assert_eq!(e.offset, 40);
        assert!(
            e.message.contains("5242880 bytes"),
            "compression {comp}: {}",
            e.message
        );
        assert!(recs.is_empty());
        assert_eq!(s.weirds.get("nfcapd_block_undecodable"), 1);
    }
    // Every truncation of every file is an error (header, block, or blocks missing).
    let mut sources: Vec<PathBuf> = files(&nfcapd_dir())
        .into_iter()
        .filter(|p| !p.extension().is_some_and(|e| e == "csv" || e == "tsv"))
        .collect();
    sources.push(public_v1());
    for src in &sources {
        let b = std::fs::read(src).unwrap();
        for cut in (2..b.len()).step_by(5) {
            let (s, _) = parse_bytes(&b[..cut]);
            assert!(s.error.is_some(), "{} cut at {cut}", src.display());
        }
    }
}

/// Flipped bytes at every k-th position and truncations of the real files:
/// no panic; each run reports an error, flows or a counted anomaly, and never
/// more flow records than the file has records.
#[test]
fn mutated_nfcapd_files_never_panic() {
    let mut sources: Vec<(PathBuf, usize)> = files(&nfcapd_dir())
        .into_iter()
        .filter(|p| !p.extension().is_some_and(|e| e == "csv" || e == "tsv"))
        .map(|p| (p, 3))
        .collect();
    sources.push((public_v1(), 7));
    if let Some(s) = shared("lab nfcapd files") {
        let lab = s.join("testdata/lab/08_flows/03_dns_tunnel/ipfix/nfcapd");
        sources.extend(files(&lab).into_iter().map(|p| (p, 5)));
    }
    let mut runs = 0u64;
    for (src, k) in &sources {
        let orig = std::fs::read(src).unwrap();
        let (s0, r0) = parse_bytes(&orig);
        assert!(s0.error.is_none(), "{}", src.display());
        let limit = r0.len() as u64 + 2500;
        for pos in (0..orig.len()).step_by(*k) {
            for v in [orig[pos] ^ 0x01, orig[pos] ^ 0x80, 0xff, 0x00] {
                if v == orig[pos] {
                    continue;
                }
                let mut b = orig.clone();
                b[pos] = v;
                let (s, recs) = parse_bytes(&b);
                runs += 1;
                assert_eq!(s.flow_records, recs.len() as u64);
                assert!(
                    s.error.is_some() || !recs.is_empty() || !s.weirds.is_empty(),
                    "{}: byte {pos} = {v:#x}: nothing reported",
                    src.display()
                );
                assert!(recs.len() as u64 <= limit, "{}: byte {pos}", src.display());
            }
        }
    }
    assert!(runs > 20_000, "{runs}");
    // The same through the file reader (mmap path), for a few mutations.
    let d = tempdir("nfcapd-mut");
    let orig = std::fs::read(nfcapd_dir().join("bulk_upload.lzo")).unwrap();
    for pos in (40..orig.len()).step_by(97) {
        let mut b = orig.clone();
        b[pos] ^= 0x55;
        let p = d.join("m.nfcapd");
        std::fs::write(&p, &b).unwrap();
        let mut sink = Records::default();
        let s = read_input(&InputPath::File(p), &mut sink, &|_| {});
        assert!(s.error.is_some() || !sink.0.is_empty() || !s.weirds.is_empty());
    }
}

/// Our LZO1X decoder against an independent LZO1X compressor (lzokay), and on
/// garbage: equal output, or an error; never a panic, never past the cap.
#[test]
fn lzo_decoder_roundtrip_and_garbage() {
    use exfilcheck::input::nfcapd::lzo1x_decompress;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for len in [1usize, 3, 4, 17, 100, 1000, 4096, 70_000, 300_000] {
        for kind in 0..3 {
            let data: Vec<u8> = (0..len)
                .map(|i| match kind {
                    0 => next() as u8,
                    1 => (i % 251) as u8 ^ ((i / 977) as u8),
                    _ => {
                        if next() % 8 == 0 {
                            next() as u8
                        } else {
                            b"nfcapd flow record "[i % 19]
                        }
                    }
                })
                .collect();
            let z = lzokay_native::compress(&data).unwrap();
            let mut out = Vec::new();
            lzo1x_decompress(&z, &mut out, 1 << 20).unwrap();
            assert_eq!(out, data, "len {len} kind {kind}");
            // Cut or garbled streams and a too small cap: errors.
            let mut out = Vec::new();
            assert!(lzo1x_decompress(&z[..z.len() - 1], &mut out, 1 << 20).is_err());
            let mut out = Vec::new();
            assert!(lzo1x_decompress(&z, &mut out, len - 1).is_err());
            assert!(out.len() < len);
            for _ in 0..20 {
                let mut g = z.clone();
                let p = (next() as usize) % g.len();
                g[p] = next() as u8;
                let mut out = Vec::new();
                let _ = lzo1x_decompress(&g, &mut out, 1 << 20);
                assert!(out.len() <= 1 << 20);
            }
        }
    }
    let mut out = Vec::new();
    assert!(lzo1x_decompress(&[], &mut out, 4096).is_err());
    for _ in 0..2000 {
        let g: Vec<u8> = (0..(next() % 300) as usize).map(|_| next() as u8).collect();
        let mut out = Vec::new();
        let _ = lzo1x_decompress(&g, &mut out, 4096);
        assert!(out.len() <= 4096);
    }
}
