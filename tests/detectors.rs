//! Detectors on real traffic: the lab's exfiltration scenarios fire the right
//! detector for the right host with the right bytes; public DNS-tunnel captures
//! fire D7; benign public traces fire nothing.

use crate::util::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn analyze(input: &Path, args: &[&str]) -> Value {
    let d = tempdir("det");
    let j = d.join("r.json");
    let mut all = vec!["analyze", "--quiet", "--json", j.to_str().unwrap()];
    all.extend_from_slice(args);
    run_paths(&all, &[input]);
    json(&j)
}

fn fired<'a>(v: &'a Value, code: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code && f["severity"] == "FIRE")
        .collect()
}

const LAB_CASE: [&str; 6] = [
    "--internal",
    "10.20.0.0/16",
    "--scope",
    "10.20.1.10",
    "--allow",
    "198.51.100.50/32",
];

#[test]
fn dns_tunnel_lab_fires_d7_with_an_information_bound_above_the_file() {
    let Some(s) = shared("lab DNS tunnel") else {
        return;
    };
    let v = analyze(
        &s.join("testdata/lab/03_dns_tunnel/capture.pcap"),
        &LAB_CASE,
    );
    assert_eq!(v["verdict"], "CONTRADICTED");
    let f = fired(&v, "D7");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["host"], "10.20.1.10");
    assert_eq!(f[0]["destination_names"][0], "t1.example");
    // iodine pushed a 1,500,000-byte file; the names can carry at least that much.
    assert!(
        f[0]["bytes"].as_u64().unwrap() >= 1_500_000,
        "{}",
        f[0]["bytes"]
    );
    let unique = f[0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "unique_names")
        .unwrap();
    assert_eq!(
        unique["value"], 8381.0,
        "labels.json: 8,381 queries for the tunnel domain"
    );
}

#[test]
fn icmp_tunnels_fire_d8_with_the_payload_bytes() {
    let Some(s) = shared("lab ICMP tunnels") else {
        return;
    };
    for (scen, bytes) in [
        ("04_icmp_tunnel", 1_033_754u64),
        ("04b_icmp_ping_pattern", 64_000),
    ] {
        let v = analyze(
            &s.join("testdata/lab").join(scen).join("capture.pcap"),
            &LAB_CASE,
        );
        assert_eq!(v["verdict"], "CONTRADICTED", "{scen}");
        let f = fired(&v, "D8");
        assert_eq!(f.len(), 1, "{scen}");
        assert_eq!(f[0]["host"], "10.20.1.10");
        assert_eq!(f[0]["destination"], "203.0.113.66");
        // Equal to the labels' L4 payload of the sensitive host's ICMP (SUMMARY.md).
        assert_eq!(f[0]["bytes"].as_u64(), Some(bytes), "{scen}");
    }
}

#[test]
fn low_and_slow_fires_d10_not_only_a_beacon_flag() {
    let Some(s) = shared("lab low-and-slow") else {
        return;
    };
    let v = analyze(
        &s.join("testdata/lab/05_low_and_slow/capture.pcap"),
        &LAB_CASE,
    );
    assert_eq!(v["verdict"], "CONTRADICTED");
    let f = fired(&v, "D10");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["host"], "10.20.1.10");
    // 30 POSTs of 4,096 bytes plus HTTP headers, retransmissions counted once.
    assert_eq!(f[0]["bytes"].as_u64(), Some(127_670));
    assert!(f[0]["bytes"].as_u64().unwrap() >= 30 * 4096);
}

#[test]
fn scp_upload_fires_d6() {
    let Some(s) = shared("lab bulk upload") else {
        return;
    };
    let v = analyze(
        &s.join("testdata/lab/02_bulk_upload/capture.pcap"),
        &LAB_CASE,
    );
    let f = fired(&v, "D6");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["protocol"], "ssh/sftp/scp");
    // scp of 20,971,520 bytes plus SSH framing.
    assert!(f[0]["bytes"].as_u64().unwrap() > 20_971_520);
}

#[test]
fn benign_lab_scenarios_fire_nothing() {
    let Some(s) = shared("lab benign scenarios") else {
        return;
    };
    for scen in ["01_benign", "06_allowed_backup"] {
        let v = analyze(
            &s.join("testdata/lab").join(scen).join("capture.pcap"),
            &LAB_CASE,
        );
        assert_eq!(v["verdict"], "SUPPORTED", "{scen}");
        for f in v["findings"].as_array().unwrap() {
            assert_ne!(f["severity"], "FIRE", "{scen}: {f}");
        }
    }
}

#[test]
fn public_dns_tunnel_captures_fire_d7() {
    let Some(s) = shared("public DNS tunnel captures (licence does not allow copying)") else {
        return;
    };
    for (name, domain) in [
        ("dmachard__iodine.pcap", "biillpi.com"),
        ("dmachard__dns2tcp.pcap", "hsc.fr"),
    ] {
        let v = analyze(&s.join("testdata/public/pcap").join(name), &[]);
        let f = fired(&v, "D7");
        assert_eq!(f.len(), 1, "{name}");
        assert_eq!(f[0]["destination_names"][0], domain);
    }
}

#[test]
fn benign_public_traces_fire_nothing() {
    for sub in ["pcap", "pcapng"] {
        for p in files(&testdata().join(sub)) {
            let v = analyze(&p, &[]);
            for f in v["findings"].as_array().unwrap() {
                assert_ne!(f["severity"], "FIRE", "{}: {f}", p.display());
            }
        }
    }
}

#[test]
fn ioc_from_the_command_line_fires_d12() {
    let v = analyze(
        &testdata().join("pcap/zeek__wikipedia.pcap"),
        &["--internal", "141.142.0.0/16", "--ioc", "wikimedia.org"],
    );
    assert_eq!(v["verdict"], "CONTRADICTED");
    let f = fired(&v, "D12");
    assert!(!f.is_empty());
    assert!(f.iter().all(|x| x["host"] == "141.142.220.118"));
}

#[test]
fn every_detector_is_explained() {
    let o = run(&["detectors"]);
    assert!(o.status.success());
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    let codes: Vec<String> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert!(codes.len() >= 8, "{list}");
    for c in &codes {
        let o = run(&["detectors", "--explain", c]);
        assert!(o.status.success());
        let t = String::from_utf8_lossy(&o.stdout);
        for h in [
            "## What it does",
            "## Why it matters",
            "## Defaults and sources",
            "## Known false positives",
        ] {
            assert!(t.contains(h), "{c} lacks {h}");
        }
    }
    assert_eq!(
        run(&["detectors", "--explain", "D99"]).status.code(),
        Some(2)
    );
}

/// Baseline detectors with the benign scenario as the normal period: the bulk
/// upload is an hourly volume anomaly (D1) of the DB host; the backup transfer
/// (without its allowlist entry) goes to a destination nobody used before (D4),
/// which makes the D1 anomaly fire.
#[test]
fn baseline_detectors_on_lab_traffic() {
    let Some(s) = shared("lab baseline detectors") else {
        return;
    };
    let lab = s.join("testdata/lab");
    let base = lab.join("01_benign/capture.pcap");
    let base = base.to_str().unwrap();
    let v = analyze(
        &lab.join("02_bulk_upload/capture.pcap"),
        &[
            "--internal",
            "10.20.0.0/16",
            "--scope",
            "10.20.1.10",
            "--baseline-input",
            base,
        ],
    );
    let d1: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "D1")
        .collect();
    assert_eq!(d1.len(), 1, "{:#}", v["findings"]);
    assert_eq!(d1[0]["host"], "10.20.1.10");
    assert_eq!(
        d1[0]["severity"], "FLAG",
        "203.0.113.66 is not new: the workstation used it in the baseline"
    );
    assert!(fired(&v, "D4").is_empty());
    assert_eq!(v["baseline_inputs"][0]["packets"], 601);

    let v = analyze(
        &lab.join("06_allowed_backup/capture.pcap"),
        &[
            "--internal",
            "10.20.0.0/16",
            "--scope",
            "10.20.1.10",
            "--baseline-input",
            base,
        ],
    );
    let d4: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "D4")
        .collect();
    assert_eq!(d4.len(), 1, "{:#}", v["findings"]);
    assert_eq!(d4[0]["destination"], "198.51.100.50");
    assert_eq!(
        d4[0]["severity"], "FLAG",
        "about 20 MB, below the 50 MB fire level"
    );
    assert_eq!(fired(&v, "D1").len(), 1, "D1 is corroborated by D4");
    assert_eq!(v["verdict"], "CONTRADICTED");
}

/// A baseline given as files is folded as it is read; the same baseline on
/// standard input is held and folded at the end: the same findings.
#[test]
fn baseline_files_streamed_equal_baseline_held() {
    let Some(s) = shared("lab baseline as flow exports") else {
        return;
    };
    let lab = s.join("testdata/lab");
    let base = lab.join("08_flows/01_benign/netflow_v9/flows.csv");
    let window = lab.join("08_flows/02_bulk_upload/netflow_v9/flows.csv");
    let args = ["--internal", "10.20.0.0/16", "--scope", "10.20.1.10"];
    let mut streamed = args.to_vec();
    streamed.extend(["--baseline-input", base.to_str().unwrap()]);
    let a = analyze(&window, &streamed);
    let d = tempdir("det-stdin");
    let j = d.join("r.json");
    let mut held = vec!["analyze", "--quiet", "--json", j.to_str().unwrap()];
    held.extend_from_slice(&args);
    held.extend(["--baseline-input", "-", window.to_str().unwrap()]);
    run_stdin(&held, &base);
    let b = json(&j);
    assert!(a["baseline_flows"].as_u64().unwrap() > 0);
    assert_eq!(a["baseline_flows"], b["baseline_flows"]);
    assert_eq!(a["findings"], b["findings"]);
    assert_eq!(a["verdict"], b["verdict"]);
    assert!(
        a["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "D1" || f["code"] == "D4"),
        "a baseline detector has something to say: {:#}",
        a["findings"]
    );
}

#[test]
fn baseline_window_within_the_inputs() {
    let Some(s) = shared("lab baseline window") else {
        return;
    };
    let lab = s.join("testdata/lab");
    let l: Value = json(&lab.join("05_low_and_slow/labels.json"));
    // The first 10 s of the capture (workstation background only) are the baseline.
    let t0 = l["capture"]["first_epoch"].as_f64().unwrap();
    let w = format!("{}..{}", t0 - 1.0, t0 + 10.0);
    let v = analyze(
        &lab.join("05_low_and_slow/capture.pcap"),
        &[
            "--internal",
            "10.20.0.0/16",
            "--scope",
            "10.20.1.10",
            "--baseline",
            &w,
        ],
    );
    assert!(v["baseline_flows"].as_u64().unwrap() > 0);
    assert_eq!(v["verdict"], "CONTRADICTED");
}

/// D13 reads the inputs a second time, in parallel, each input's flows in
/// order but the inputs' interleaved: the same staging findings from one
/// conn.log and from the same lines in three files, with one thread or two.
/// Data: the benchmark generator (bench/gen_flows.py, deterministic per seed),
/// whose network has file servers that collect internally and send out.
#[test]
fn staging_second_read_is_order_free() {
    if !have("python3") {
        eprintln!("NOTICE: python3 not found: skipping the D13 multi-input test");
        return;
    }
    let d = tempdir("staging");
    let made = Command::new("python3")
        .arg(root().join("bench/gen_flows.py"))
        .args(["--out", d.to_str().unwrap(), "--connections", "40000"])
        .args(["--seed", "5", "--no-ipfix", "--jobs", "1"])
        .output()
        .expect("run gen_flows.py");
    assert!(made.status.success(), "{made:?}");
    let whole = d.join("conn.log");
    let text = std::fs::read_to_string(&whole).unwrap();
    let (head, body): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| l.starts_with('#'));
    let head: Vec<&str> = head
        .into_iter()
        .filter(|l| !l.starts_with("#close"))
        .collect();
    let parts: Vec<std::path::PathBuf> = body
        .chunks(body.len().div_ceil(3))
        .enumerate()
        .map(|(k, lines)| {
            let p = d.join(format!("part{k}.log"));
            std::fs::write(&p, format!("{}\n{}\n", head.join("\n"), lines.join("\n"))).unwrap();
            p
        })
        .collect();
    let staging = |v: &Value| -> Vec<(String, u64, String)> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "D13")
            .map(|f| {
                let host = f["host"].as_str().unwrap().to_string();
                (host, f["bytes"].as_u64().unwrap(), f["text"].to_string())
            })
            .collect()
    };
    let args = ["--internal", "10.0.0.0/8", "--internal", "192.168.0.0/16"];
    let one = staging(&analyze(&whole, &args));
    assert_eq!(one.len(), 5, "{one:?}");
    let mut reports = Vec::new();
    for j in ["1", "2"] {
        let out = d.join(format!("j{j}.json"));
        let mut a = vec![
            "analyze",
            "--quiet",
            "-j",
            j,
            "--json",
            out.to_str().unwrap(),
        ];
        a.extend_from_slice(&args);
        let parts: Vec<&Path> = parts.iter().map(|p| p.as_path()).collect();
        let o = run_paths(&a, &parts);
        assert!(o.status.code().is_some(), "{o:?}");
        reports.push(std::fs::read(&out).unwrap());
        assert_eq!(staging(&json(&out)), one, "-j{j}");
    }
    assert_eq!(reports[0], reports[1], "-j1 and -j2 reports differ");
}
