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
    let gates = v["coverage"]["gates"].as_array().unwrap();
    let c6 = gates.iter().find(|g| g["id"] == "C6").unwrap();
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
