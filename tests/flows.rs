//! Flow exports (issue #4): NetFlow/IPFIX export files against tshark's decode of
//! the same messages, templates across files, generic CSV, sampling, exporter
//! de-duplication, and bad flow input.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn nf(name: &str) -> PathBuf {
    testdata()
        .join("flows/netflow")
        .join(format!("logstash-plugins__spec__codecs__{name}.dat"))
}

/// The messages of an export file, framed independently of exfilcheck: v5 by
/// its record count, IPFIX by its length field, v9 by walking flow sets up to
/// the next header (set id 9 is reserved) or the end.
fn messages(b: &[u8]) -> Vec<&[u8]> {
    let be16 = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]) as usize;
    let mut v = Vec::new();
    let mut o = 0;
    while o + 4 <= b.len() {
        let len = match be16(o) {
            5 => 24 + 48 * be16(o + 2),
            10 => be16(o + 2),
            9 => {
                let mut p = o + 20;
                while p + 4 <= b.len() && be16(p) != 9 {
                    p += be16(p + 2);
                }
                p - o
            }
            v => panic!("version {v}"),
        };
        v.push(&b[o..o + len]);
        o += len;
    }
    v
}

/// Each message as one UDP datagram (10.1.1.1 -> 10.2.2.2, port 4739 for IPFIX,
/// 2055 otherwise) in an Ethernet pcap, in the order of `files`.
fn wrap(files: &[PathBuf], out: &Path) {
    let mut p = Vec::new();
    p.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    p.extend_from_slice(&[
        2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ]);
    let mut n = 0u32;
    for f in files {
        let b = std::fs::read(f).unwrap();
        for m in messages(&b) {
            n += 1;
            let port: u16 = if m[1] == 10 { 4739 } else { 2055 };
            let mut udp = Vec::new();
            udp.extend_from_slice(&port.to_be_bytes());
            udp.extend_from_slice(&port.to_be_bytes());
            udp.extend_from_slice(&((8 + m.len()) as u16).to_be_bytes());
            udp.extend_from_slice(&[0, 0]);
            udp.extend_from_slice(m);
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&((20 + udp.len()) as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 1, 1, 10, 2, 2, 2]);
            ip.extend_from_slice(&udp);
            let mut eth = vec![0u8; 12];
            eth.extend_from_slice(&[8, 0]);
            eth.extend_from_slice(&ip);
            for x in [n, 0, eth.len() as u32, eth.len() as u32] {
                p.extend_from_slice(&x.to_le_bytes());
            }
            p.extend_from_slice(&eth);
        }
    }
    std::fs::write(out, p).unwrap();
}

/// tshark's record count and byte sum (octetDeltaCount, octetTotalCount /
/// NSEL permanent octets, initiator/responder octets) of a pcap.
fn tshark_totals(pcap: &Path) -> (u64, u64) {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-E", "separator=;"])
        .args(["-e", "cflow.srcaddr", "-e", "cflow.srcaddrv6"])
        .args(["-e", "cflow.octets", "-e", "cflow.permanent_octets"])
        .args([
            "-e",
            "cflow.initiator_octets",
            "-e",
            "cflow.responder_octets",
        ])
        .output()
        .expect("tshark");
    let (mut recs, mut bytes) = (0, 0);
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        for (i, col) in line.split(';').enumerate() {
            let items = col.split(',').filter(|s| !s.is_empty());
            if i < 2 {
                recs += items.count() as u64;
            } else {
                bytes += items.map(|v| v.parse::<u64>().unwrap()).sum::<u64>();
            }
        }
    }
    (recs, bytes)
}

fn ours(paths: &[PathBuf]) -> (u64, u64, std::process::Output) {
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let o = run_paths(&["flows", "--quiet", "--format", "csv"], &refs);
    let rows = parse_csv(&o.stdout);
    // Counted bytes: the flows' volumes are scaled by the sampling interval.
    let bytes = rows
        .iter()
        .map(|r| (num(r, "orig_ip_bytes") + num(r, "resp_ip_bytes")) / num(r, "sampling").max(1))
        .sum();
    (rows.len() as u64, bytes, o)
}

/// Every export file (templates and data in separate files where the vendor
/// sample is split) decodes to tshark's records and bytes; data given before
/// its templates still decodes; the raw files and the same messages in a
/// capture give identical totals.
#[test]
fn export_files_equal_tshark() {
    // (files: data first, then templates), records and counted bytes as tshark
    // decodes them (recorded here so the test also runs without tshark).
    let sets: [(&[&str], u64, u64); 10] = [
        (&["netflow5"], 30, 18_684),
        (&["netflow5_test_juniper_mx80"], 29, 3_989),
        (&["netflow9_test_valid01"], 7, 1_128),
        (&["netflow9_test_0length_fields_tpl_data"], 10, 64),
        (
            &[
                "netflow9_test_cisco_asa_1_data",
                "netflow9_test_cisco_asa_1_tpl",
            ],
            14,
            888,
        ),
        (
            &[
                "netflow9_test_paloalto_panos_data",
                "netflow9_test_paloalto_panos_tpl",
            ],
            8,
            617,
        ),
        (&["ipfix"], 12, 13_279),
        (
            &["ipfix_test_mikrotik_data258", "ipfix_test_mikrotik_tpl"],
            28,
            95_010,
        ),
        (
            &[
                "ipfix_test_openbsd_pflow_data",
                "ipfix_test_openbsd_pflow_tpl",
            ],
            26,
            99_323,
        ),
        (
            &["ipfix_test_vmware_vds_data264", "ipfix_test_vmware_vds_tpl"],
            1,
            100,
        ),
    ];
    let dir = tempdir("nf-dat");
    let tshark = have("tshark");
    if !tshark {
        eprintln!(
            "NOTICE: tshark not installed: checking against the recorded tshark figures only"
        );
    }
    for (names, want_recs, want_bytes) in sets {
        let files: Vec<PathBuf> = names.iter().map(|n| nf(n)).collect();
        let (recs, bytes, o) = ours(&files);
        assert!(
            o.status.success(),
            "{names:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!((recs, bytes), (want_recs, want_bytes), "{names:?}");
        // tshark needs the templates first.
        let mut ordered = files.clone();
        ordered.reverse();
        let pcap = dir.join(format!("{}.pcap", names[0]));
        wrap(&ordered, &pcap);
        let (r2, b2, _) = ours(std::slice::from_ref(&pcap));
        assert_eq!((r2, b2), (recs, bytes), "{names:?} as a capture");
        if tshark {
            assert_eq!(tshark_totals(&pcap), (recs, bytes), "{names:?} vs tshark");
        }
    }
}

/// YAF's data set refers to a template the template file does not hold: the set
/// is counted as undecodable and the input marked, not silently dropped.
#[test]
fn data_without_its_template_is_counted() {
    let dir = tempdir("nf-yaf");
    let out = dir.join("r.json");
    let o = run_paths(
        &["analyze", "--quiet", "--json", out.to_str().unwrap()],
        &[
            &nf("ipfix_test_yaf_data45841"),
            &nf("ipfix_test_yaf_tpls_option_tpl"),
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&out);
    assert_eq!(v["inputs"][0]["undecodable_records"], 1);
    assert_eq!(v["inputs"][0]["format"], "netflow-export");
    assert_eq!(v["inputs"][1]["flow_records"], 0);
    let c6 = gate(&v, "C6");
    assert_eq!(c6["status"], "FAIL", "{c6:#}");
    assert!(
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "FLOW_RECORDS_UNDECODABLE"),
        "{:#}",
        v["reasons"]
    );
}

fn lab_flows(scen: &str, kind: &str) -> Option<PathBuf> {
    shared("lab flow exports").map(|s| s.join("testdata/lab/08_flows").join(scen).join(kind))
}

/// Bytes per direction (src, dst) of `flows` output rows.
fn directions(rows: &[Row]) -> std::collections::BTreeMap<(String, String), u64> {
    let mut d = std::collections::BTreeMap::new();
    for r in rows {
        let (o, s) = (r["id.orig_h"].clone(), r["id.resp_h"].clone());
        *d.entry((o.clone(), s.clone())).or_insert(0) += num(r, "orig_ip_bytes");
        *d.entry((s, o)).or_insert(0) += num(r, "resp_ip_bytes");
    }
    d.retain(|_, v| *v > 0);
    d
}

/// A firewall-style CSV read through `--columns` gives the same per-direction
/// bytes as the dedicated nfdump CSV reader on the same real file.
#[test]
fn generic_csv_with_a_column_mapping() {
    let Some(d) = lab_flows("02_bulk_upload", "netflow_v9") else {
        return;
    };
    let (want, o) = flows(&d.join("flows.csv"));
    assert!(o.status.success());
    // The records without nfdump's summary trailer (a generic CSV reader
    // reports such lines as unreadable).
    let text = std::fs::read_to_string(d.join("flows.csv")).unwrap();
    let body = &text[..text.find("Summary\n").unwrap()];
    let csv = tempdir("csvmap").join("firewall.csv");
    std::fs::write(&csv, body).unwrap();
    let map = "src=sa,dst=da,bytes=ibyt,pkts=ipkt,sport=sp,dport=dp,proto=pr,start=ts,end=te,rev_bytes=obyt,rev_pkts=opkt";
    let o = run_paths(
        &[
            "flows",
            "--quiet",
            "--input-format",
            "csv",
            "--columns",
            map,
        ],
        &[&csv],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = parse_csv(&o.stdout);
    assert_eq!(directions(&got), directions(&want));
    // nfdump's own summary line of the file: 82 flows, 42,931,857 bytes.
    assert_eq!(directions(&got).values().sum::<u64>(), 42_931_857);
    // A mapping naming a column the header lacks is a clear error.
    let o = run_paths(
        &[
            "flows",
            "--quiet",
            "--columns",
            "src=sa,dst=da,bytes=octets",
        ],
        &[&csv],
    );
    assert_eq!(o.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bytes=octets: no such column"));
}

/// `--sampling N`: volumes are N times the counted bytes, the bound carries the
/// 95 % sampling term, and C7 states the flow size that can go unseen.
#[test]
fn sampled_exports_are_scaled_and_bounded() {
    let Some(d) = lab_flows("02_bulk_upload", "netflow_v9") else {
        return;
    };
    let dir = tempdir("sampled");
    let out = dir.join("r.json");
    let o = run_paths(
        &[
            "analyze",
            "--quiet",
            "--internal",
            "10.20.0.0/16",
            "--scope",
            "10.20.1.10",
            "--sampling",
            "100",
            "--json",
            out.to_str().unwrap(),
        ],
        &[&d.join("export_packets.pcap")],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&out);
    let ub = v["upper_bounds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["host"] == "10.20.1.10")
        .unwrap();
    assert_eq!(ub["observed"].as_u64().unwrap() % 100, 0);
    assert_eq!(ub["sampling_interval"], 100);
    let host = v["ledger"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "10.20.1.10")
        .unwrap();
    assert_eq!(host["out"]["ip_bytes"], 100 * 42_509_354u64);
    // Two records of 42.5 MB: sqrt(100*99*b*m) per record, m = b/pkts.
    let s = ub["sampling"].as_u64().unwrap();
    assert!(s > 0 && s < ub["observed"].as_u64().unwrap(), "{ub:#}");
    let c7 = gate(&v, "C7");
    assert_eq!(c7["status"], "FLAG");
    // (1 - 1/100)^k >= 0.05 up to k = 298.
    assert!(
        c7["figure"].as_str().unwrap().contains("up to 298 packets"),
        "{c7:#}"
    );
}

/// The same export datagrams from two exporter addresses: each flow is counted
/// once, the preferred exporter's records are kept, the other's are reported as
/// de-duplicated.
#[test]
fn duplicate_exporters_are_counted_once() {
    let Some(d) = lab_flows("02_bulk_upload", "ipfix") else {
        return;
    };
    let dir = tempdir("dedup");
    let orig = std::fs::read(d.join("export_packets.pcap")).unwrap();
    // Rewrite the exporter address 127.0.0.1 -> 127.0.0.2 in every IPv4 header.
    let mut copy = orig.clone();
    let pat = [127u8, 0, 0, 1, 127, 0, 0, 1];
    let mut i = 0;
    let mut n = 0;
    while i + 8 <= copy.len() {
        if copy[i..i + 8] == pat {
            copy[i + 3] = 2;
            n += 1;
            i += 8;
        } else {
            i += 1;
        }
    }
    assert!(n > 0);
    let second = dir.join("second_exporter.pcap");
    std::fs::write(&second, copy).unwrap();
    let first = d.join("export_packets.pcap");
    let single = dir.join("single.json");
    let both = dir.join("both.json");
    let pref = dir.join("pref.json");
    let args = ["analyze", "--quiet", "--internal", "10.20.0.0/16", "--json"];
    let run1 = |out: &Path, paths: &[&Path], extra: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.push(out.to_str().unwrap());
        a.extend_from_slice(extra);
        run_paths(&a, paths)
    };
    run1(&single, &[&first], &[]);
    run1(&both, &[&first, &second], &[]);
    run1(
        &pref,
        &[&first, &second],
        &["--exporter-priority", "127.0.0.2"],
    );
    let (s, b, p) = (json(&single), json(&both), json(&pref));
    assert_eq!(b["ledger"]["hosts"], s["ledger"]["hosts"]);
    assert_eq!(p["ledger"]["hosts"], s["ledger"]["hosts"]);
    let ex = b["exporters"].as_array().unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0]["exporter"], "127.0.0.1");
    assert_eq!(ex[0]["duplicate_records"], 0);
    assert_eq!(ex[1]["duplicate_records"], ex[1]["records"]);
    assert_eq!(ex[1]["duplicate_ip_bytes"], ex[0]["ip_bytes"]);
    let ex = p["exporters"].as_array().unwrap();
    assert_eq!(ex[0]["duplicate_records"], ex[0]["records"]);
    assert_eq!(ex[1]["duplicate_records"], 0);
    // Files are de-duplicated as they stream past (a read to find the
    // duplicates, one to fold without them); standard input is held and
    // de-duplicated in memory. The same datagrams both ways give the same.
    let mut joined = orig.clone();
    joined.extend_from_slice(&std::fs::read(&second).unwrap()[24..]);
    let joined_path = dir.join("joined.pcap");
    std::fs::write(&joined_path, &joined).unwrap();
    let held = dir.join("held.json");
    let held_json = held.to_str().unwrap();
    run_stdin(
        &[
            "analyze",
            "--quiet",
            "--internal",
            "10.20.0.0/16",
            "--json",
            held_json,
            "-",
        ],
        &joined_path,
    );
    let h = json(&held);
    assert_eq!(h["exporters"], b["exporters"]);
    assert_eq!(h["ledger"]["hosts"], b["ledger"]["hosts"]);
    assert_eq!(h["verdict"], b["verdict"]);
}

/// Analyses a bad flow input next to a good capture: exit 3 (INCONCLUSIVE), one
/// stderr line naming the file and `msg` (and `at`, the byte offset or line),
/// the error in the report, the good input analysed. Returns the report.
fn check_bad_flow(bad: &Path, msg: &str, at: &str) -> serde_json::Value {
    let out = bad.with_extension("json");
    let good = testdata().join("pcap/zeek__wikipedia.pcap");
    let o = run_paths(
        &["analyze", "--quiet", "--json", out.to_str().unwrap()],
        &[bad, &good],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(lines[0].contains(&bad.display().to_string()), "{err}");
    assert!(lines[0].contains(msg), "{err}");
    assert!(lines[0].contains(at), "{err}");
    let v = json(&out);
    assert_eq!(v["verdict"], "INCONCLUSIVE");
    assert!(
        v["inputs"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains(msg)
    );
    assert!(v["inputs"][1]["packets"].as_u64().unwrap() > 0);
    v
}

/// The byte offset of field `type_id` in template `tid` of an IPFIX template
/// message (the field's type, its length follows).
fn ipfix_field(b: &[u8], tid: u16, type_id: u16) -> usize {
    let be16 = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
    let mut p = 16;
    while p + 4 <= b.len() {
        let (set, len) = (be16(p), be16(p + 2) as usize);
        if set == 2 {
            let mut q = p + 4;
            while q + 4 <= p + len {
                let (t, n) = (be16(q), be16(q + 2));
                for i in 0..n as usize {
                    let f = q + 4 + 4 * i;
                    if t == tid && be16(f) & 0x7fff == type_id {
                        return f;
                    }
                }
                q += 4 + 4 * n as usize;
            }
        }
        p += len;
    }
    panic!("field {type_id} of template {tid} not found");
}

/// Issue #4, bad input: a truncated export file, templates with a zero-length
/// or oversize field, a record longer than its set.
#[test]
fn bad_export_files() {
    let dir = tempdir("bad-exports");
    // Messages at 0, 120, 336, 552, 768, 888 ...: cut inside the sixth.
    let b = std::fs::read(nf("netflow5")).unwrap();
    let cut = dir.join("truncated.dat");
    std::fs::write(&cut, &b[..1000]).unwrap();
    let v = check_bad_flow(
        &cut,
        "message 6: truncated NetFlow v5 datagram",
        "byte offset 888",
    );
    assert_eq!(v["inputs"][0]["flow_records"], 16);

    let tpl = std::fs::read(nf("ipfix_test_mikrotik_tpl")).unwrap();
    let data = nf("ipfix_test_mikrotik_data258");
    for (name, field, len, msg) in [
        (
            "zero",
            2u16,
            0u16,
            "template 258 rejected: field 4 (type 2) has length 0",
        ),
        (
            "oversize",
            8,
            200,
            "template 258 rejected: field 12 (type 8) has length 200",
        ),
    ] {
        let mut t = tpl.clone();
        let f = ipfix_field(&t, 258, field);
        t[f + 2..f + 4].copy_from_slice(&len.to_be_bytes());
        let bad = dir.join(format!("{name}_tpl.dat"));
        std::fs::write(&bad, t).unwrap();
        let out = dir.join(format!("{name}.json"));
        let o = run_paths(
            &["analyze", "--quiet", "--json", out.to_str().unwrap()],
            &[&bad, &data],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(err.contains(msg) && err.contains("message 1"), "{err}");
        let v = json(&out);
        // Template 259's records still decode; 258's data sets are counted.
        let undecodable: u64 = v["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["undecodable_records"].as_u64().unwrap())
            .sum();
        assert!(undecodable > 0, "{name}");
    }

    // The last set of IPFIX message 1 shortened by 4 bytes (set and message
    // lengths adjusted): its last record runs past the set.
    let b = std::fs::read(nf("ipfix")).unwrap();
    let be16 = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]) as usize;
    let mlen = be16(2);
    let mut p = 16;
    let mut last = 16;
    while p < mlen {
        last = p;
        p += be16(p + 2);
    }
    assert!(be16(last) >= 256, "last set is a data set");
    let mut m = b[..mlen - 4].to_vec();
    m[2..4].copy_from_slice(&((mlen - 4) as u16).to_be_bytes());
    let sl = (be16(last + 2) - 4) as u16;
    m[last + 2..last + 4].copy_from_slice(&sl.to_be_bytes());
    m.extend_from_slice(&b[mlen..]);
    let bad = dir.join("short_set.dat");
    std::fs::write(&bad, m).unwrap();
    check_bad_flow(&bad, "is longer than its set", "message 1");

    // The same damage in a data file whose template arrives in another file:
    // found when the held set is decoded after all inputs, and still reported.
    let b = std::fs::read(nf("ipfix_test_mikrotik_data258")).unwrap();
    let be16 = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]) as usize;
    let mlen = be16(2);
    assert_eq!(mlen, b.len(), "one message");
    assert_eq!(be16(16), 258, "one data set");
    let mut m = b[..mlen - 4].to_vec();
    m[2..4].copy_from_slice(&((mlen - 4) as u16).to_be_bytes());
    m[18..20].copy_from_slice(&((be16(18) - 4) as u16).to_be_bytes());
    let bad = dir.join("short_data258.dat");
    std::fs::write(&bad, m).unwrap();
    let o = run_paths(
        &["flows", "--quiet"],
        &[&bad, &nf("ipfix_test_mikrotik_tpl")],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(
        err.contains("message 1: a record of template 258 is longer than its set"),
        "{err}"
    );
    // The records before the damaged one are kept.
    assert_eq!(parse_csv(&o.stdout).len(), 27);
}

/// Issue #4, bad input: CSV with missing or extra columns and a non-UTF-8 line,
/// a conn.log with a field set that is not conn.log's.
#[test]
fn bad_text_flow_exports() {
    let Some(d) = lab_flows("01_benign", "netflow_v9") else {
        return;
    };
    let dir = tempdir("bad-text");
    let text = std::fs::read(d.join("flows.csv")).unwrap();
    let mut lines: Vec<Vec<u8>> = text.split(|c| *c == b'\n').map(|l| l.to_vec()).collect();
    // line 3 loses its last field, line 5 gets one more, line 7 an invalid byte.
    let l3 = lines[2].clone();
    lines[2] = l3[..l3.iter().rposition(|c| *c == b',').unwrap()].to_vec();
    lines[4].extend_from_slice(b",extra");
    lines[6].insert(20, 0xff);
    let bad = dir.join("flows.csv");
    std::fs::write(&bad, lines.join(&b'\n')).unwrap();
    let v = check_bad_flow(&bad, "line 3: 47 fields, the header has 48", "byte offset");
    assert_eq!(v["inputs"][0]["weirds"]["flow_record_unparsable"], 3);
    // The other records are read: nfdump's summary says 78, 3 are unreadable.
    assert_eq!(v["inputs"][0]["flow_records"], 75);
    // The invalid byte alone (lines are read as bytes; whether one is UTF-8
    // is seen while it is split).
    let mut lines: Vec<Vec<u8>> = text.split(|c| *c == b'\n').map(|l| l.to_vec()).collect();
    lines[3].insert(30, 0xff);
    std::fs::write(&bad, lines.join(&b'\n')).unwrap();
    let v = check_bad_flow(&bad, "line 4: not UTF-8", "byte offset");
    assert_eq!(v["inputs"][0]["weirds"]["flow_record_unparsable"], 1);
    assert_eq!(v["inputs"][0]["flow_records"], 77);

    let Some(s) = shared("conn.log bad input") else {
        return;
    };
    let log = std::fs::read_to_string(
        s.join("testdata/public/flows/zeek/activecm__test_data__proxy__conn.log"),
    )
    .unwrap();
    let bad = dir.join("conn.log");
    std::fs::write(&bad, log.replacen("\tid.orig_h\t", "\tid.src_h\t", 1)).unwrap();
    let v = check_bad_flow(&bad, "not a conn.log field set", "byte offset");
    assert_eq!(v["inputs"][0]["flow_records"], 0);
    // Line 9 (the first record) with a byte that is not UTF-8 in its uid is
    // an error; line 10 with a character beyond ASCII there is a record like
    // any other (of 463).
    let mut lines: Vec<Vec<u8>> = log
        .as_bytes()
        .split(|c| *c == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let uid_at = |l: &[u8]| l.iter().position(|c| *c == b'\t').unwrap() + 1;
    let at = uid_at(&lines[8]);
    lines[8].insert(at, 0xff);
    let at = uid_at(&lines[9]);
    lines[9].splice(at..at, "\u{e9}".bytes());
    std::fs::write(&bad, lines.join(&b'\n')).unwrap();
    let v = check_bad_flow(&bad, "line 9: not UTF-8", "byte offset");
    assert_eq!(v["inputs"][0]["weirds"]["flow_record_unparsable"], 1);
    assert_eq!(v["inputs"][0]["flow_records"], 462);
}

/// Batch over archives: files whose name (nfcapd.YYYYMMDDhhmm) or header (the
/// first pcap record) shows they lie wholly outside --window are not read and
/// are listed as skipped, not as failed.
#[test]
fn archive_files_outside_the_window_are_skipped() {
    let Some(s) = shared("archive window skipping") else {
        return;
    };
    let lab = s.join("testdata/lab");
    let dir = tempdir("skip");
    let out = dir.join("r.json");
    let nfcapd_dir = lab.join("08_flows/01_benign/ipfix/nfcapd");
    let args = |w: &str| {
        vec![
            "analyze".to_string(),
            "--quiet".into(),
            "--internal".into(),
            "10.20.0.0/16".into(),
            "--window".into(),
            w.into(),
            "--json".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let a = args("2025-11-28T10:00:00Z..2025-11-28T11:00:00Z");
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    let o = run_paths(&a, &[&lab.join("01_benign/capture.pcap"), &nfcapd_dir]);
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&out);
    let inputs = v["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 2);
    for i in inputs {
        assert!(
            i["skipped"]
                .as_str()
                .unwrap()
                .starts_with("outside the window by its ")
        );
        assert!(i["error"].is_null());
        assert_eq!(i["packets"], 0);
    }
    assert!(
        inputs[1]["skipped"]
            .as_str()
            .unwrap()
            .contains("file name (nfcapd)")
    );
    assert_eq!(v["coverage"]["inputs_failed"], 0);
    // Inside the window the capture is read.
    let a = args("2026-11-28T09:00:00Z..2026-11-28T11:00:00Z");
    let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    run_paths(&a, &[&lab.join("01_benign/capture.pcap")]);
    let v = json(&out);
    assert!(v["inputs"][0]["skipped"].is_null());
    assert_eq!(v["inputs"][0]["packets"], 601);
}

/// Builds a text export over the parallel threshold (16 MiB): `head`, then
/// the record lines repeated with a malformed line after about 14 MiB (in a
/// later piece), then `tail`. Returns the path and the malformed line's number.
fn big_text(dir: &Path, name: &str, head: &str, records: &[&str], tail: &str) -> (PathBuf, usize) {
    let mut s = String::from(head);
    let mut line = head.lines().count();
    let mut bad_at = 0;
    while s.len() < 24 << 20 {
        for r in records {
            s.push_str(r);
            s.push('\n');
            line += 1;
        }
        if bad_at == 0 && s.len() > 14 << 20 {
            s.push_str("this,is\tnot a record\n");
            line += 1;
            bad_at = line;
        }
    }
    s.push_str(tail);
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    (p, bad_at)
}

/// A large nfdump CSV and a large conn.log read in parallel pieces (several
/// threads) give the same rows, record numbers, error line and exit code as
/// one thread reading line after line; the nfdump summary trailer still ends
/// the records.
#[test]
fn large_text_exports_read_in_parallel_equal_a_sequential_read() {
    let d = tempdir("parallel-text");
    let csv = std::fs::read_to_string(root().join("testdata/nfcapd/bulk_upload.csv")).unwrap();
    let (csv_head, csv_body) = csv.split_once('\n').unwrap();
    let (csv_records, trailer) = csv_body.split_once("Summary\n").unwrap();
    let csv_records: Vec<&str> = csv_records.lines().collect();
    let conn = std::fs::read_to_string(
        testdata().join("expected/zeek/core.tcp.large-file-reassembly__conn.log"),
    )
    .unwrap();
    let conn_head: String = conn
        .lines()
        .skip(1)
        .filter(|l| l.starts_with('#') && !l.starts_with("#close"))
        .map(|l| format!("{l}\n"))
        .collect();
    // The baseline masks its timestamps; give each line a real one.
    let conn_records: Vec<String> = conn
        .lines()
        .filter(|l| !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| l.replacen("XXXXXXXXXX.XXXXXX", &format!("1700000{i:03}.123456"), 1))
        .collect();
    let conn_records: Vec<&str> = conn_records.iter().map(String::as_str).collect();
    for (name, head, records, tail, per_copy) in [
        (
            "big.csv",
            format!("{csv_head}\n"),
            csv_records.clone(),
            format!("Summary\n{trailer}"),
            // nfdump CSV: a bidirectional record is two rows.
            flows(&root().join("testdata/nfcapd/bulk_upload.csv"))
                .0
                .len(),
        ),
        (
            "big_conn.log",
            conn_head,
            conn_records.clone(),
            "#close\t2023-11-14-22-13-20\n".to_string(),
            conn_records.len(),
        ),
    ] {
        let (p, bad_at) = big_text(&d, name, &head, &records, &tail);
        let one = run_paths(&["flows", "-q", "-j1"], &[&p]);
        let four = run_paths(&["flows", "-q", "-j4"], &[&p]);
        assert_eq!(
            one.status.code(),
            Some(5),
            "{name}: the bad line is an input error"
        );
        assert_eq!(four.status.code(), Some(5), "{name}");
        assert!(
            one.stdout == four.stdout,
            "{name}: rows differ between -j1 and -j4"
        );
        let err = String::from_utf8_lossy(&four.stderr);
        assert_eq!(err, String::from_utf8_lossy(&one.stderr), "{name}");
        assert!(err.contains(&format!("line {bad_at}:")), "{name}: {err}");
        let rows = parse_csv(&four.stdout);
        let copies = rows.len() / per_copy;
        assert_eq!(rows.len(), copies * per_copy, "{name}: whole copies only");
        assert!(rows.len() > 50_000, "{name}: {} rows", rows.len());
        // Record numbers are line numbers of the file: the last row's is the
        // line before the trailer.
        let last_line = head.lines().count() + copies * records.len() + 1;
        assert_eq!(
            rows.last().unwrap()["first_frame"],
            last_line.to_string(),
            "{name}"
        );
        // Damage anywhere (line breaks, commas, tabs, bytes that are not
        // UTF-8, '#' lines): still the same result with one thread and four.
        let clean = std::fs::read(&p).unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..3 {
            let mut b = clean.clone();
            for _ in 0..40 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % b.len() as u64) as usize;
                b[at] = [b'\n', b',', b'\t', 0xff, b'#', b'9'][(seed >> 40) as usize % 6];
            }
            let q = d.join(format!("damaged-{round}-{name}"));
            std::fs::write(&q, &b).unwrap();
            let one = run_paths(&["flows", "-q", "-j1"], &[&q]);
            let four = run_paths(&["flows", "-q", "-j4"], &[&q]);
            assert_eq!(
                one.status.code(),
                four.status.code(),
                "{name} round {round}"
            );
            assert!(
                one.stdout == four.stdout,
                "{name} round {round}: rows differ"
            );
            assert_eq!(one.stderr, four.stderr, "{name} round {round}");
        }
    }
}

/// A host that reaches one destination on 300 services, each several times and
/// in no order (a port scan): the pair's services are listed once each,
/// sorted, and its frames (record lines) span the whole file.
#[test]
fn pair_services_are_unique_and_sorted_for_many_ports() {
    let d = tempdir("many-ports");
    let csv = std::fs::read_to_string(root().join("testdata/nfcapd/bulk_upload.csv")).unwrap();
    let (head, body) = csv.split_once('\n').unwrap();
    // An outbound TCP record of the real file, as a template.
    let tpl = body
        .lines()
        .find(|l| l.contains(",10.20.2.20,203.0.113.66,"))
        .unwrap();
    let f: Vec<&str> = tpl.split(',').collect();
    let mut out = format!("{head}\n");
    let mut ports = std::collections::BTreeSet::new();
    for i in 0..1500u32 {
        let port = 1000 + (i * 7919) % 300;
        ports.insert(port);
        let mut g = f.clone();
        let p = port.to_string();
        g[6] = &p;
        out.push_str(&g.join(","));
        out.push('\n');
    }
    std::fs::write(d.join("scan.csv"), out).unwrap();
    let o = run_paths(
        &["analyze", "-q", "--csv", d.join("out").to_str().unwrap()],
        &[&d.join("scan.csv")],
    );
    assert!(o.status.code().is_some(), "{o:?}");
    let pairs = parse_csv(&std::fs::read(d.join("out/pairs.csv")).unwrap());
    let p = pairs
        .iter()
        .find(|r| r["host"] == "10.20.2.20" && r["destination"] == "203.0.113.66")
        .expect("the pair");
    let want: Vec<String> = ports.iter().map(|p| format!("{p}/tcp")).collect();
    assert_eq!(p["services"], want.join(" "));
    assert_eq!(p["flows"], "1500");
    assert!(p["frames"].ends_with(":2-1501"), "{}", p["frames"]);
}

/// `analyze` folds flows as they pass and merges what each input (and each
/// worker) gathered: an export split into two files gives the same ledger,
/// findings and verdict as the whole file, with one thread or two.
#[test]
fn a_split_export_gives_the_same_analysis() {
    let Some(d) = lab_flows("02_bulk_upload", "netflow_v9") else {
        return;
    };
    let text = std::fs::read_to_string(d.join("flows.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    let trailer = lines.iter().position(|l| l.starts_with("Summary")).unwrap();
    let records = &lines[..trailer];
    assert_eq!(records.len(), 82);
    let dir = tempdir("split-export");
    let (a, b) = records.split_at(40);
    let part = |name: &str, rows: &[&str]| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
        p
    };
    let (p1, p2) = (part("a.csv", a), part("b.csv", b));
    let case = [
        "--internal",
        "10.20.0.0/16",
        "--scope",
        "10.20.1.10",
        "--allow",
        "198.51.100.50/32",
        "--quiet",
    ];
    let analyse = |paths: &[&Path], threads: &str| -> serde_json::Value {
        let json = dir.join(format!("r{}-{threads}.json", paths.len()));
        let mut args = vec!["analyze", "-j", threads, "--json", json.to_str().unwrap()];
        args.extend(case);
        let o = run_paths(&args, paths);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap()
    };
    // What must not depend on how the records were split: bytes per host and
    // per host and destination, findings, the verdict and its bound.
    let view = |r: &serde_json::Value| {
        let pairs: Vec<_> = r["ledger"]["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["host"].clone(),
                    p["dest"].clone(),
                    p["out"].clone(),
                    p["in"].clone(),
                    p["flows"].clone(),
                    p["dest_ports"].clone(),
                )
            })
            .map(|t| format!("{t:?}"))
            .collect();
        let findings: Vec<_> = r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {} {} {}",
                    f["code"], f["host"], f["destination"], f["bytes"], f["first_ts"], f["last_ts"]
                )
            })
            .collect();
        (
            r["verdict"].clone(),
            r["totals"].clone(),
            r["ledger"]["hosts"].as_array().unwrap().len(),
            pairs,
            findings,
        )
    };
    let whole = analyse(&[&d.join("flows.csv")], "1");
    assert_eq!(whole["verdict"], "CONTRADICTED");
    // The headline names what was examined.
    assert!(
        whole["headline"]
            .as_str()
            .unwrap()
            .starts_with("The examined flow records show outbound transfers"),
        "{}",
        whole["headline"]
    );
    assert!(
        whole["headline_de"]
            .as_str()
            .unwrap()
            .starts_with("Die untersuchten Flow-Datensätze zeigen")
    );
    assert!(!whole["findings"].as_array().unwrap().is_empty());
    for threads in ["1", "2"] {
        let split = analyse(&[&p1, &p2], threads);
        assert_eq!(view(&split), view(&whole), "split in two, -j {threads}");
        assert_eq!(split["totals"]["outer_flows"], 82);
    }
}
