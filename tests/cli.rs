//! The command line: help, init/case files, flags, exit codes, output hygiene.

use crate::util::*;

#[test]
fn help_and_version() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    for w in ["analyze", "flows", "init", "Exit codes"] {
        assert!(s.contains(w), "help mentions {w}");
    }
    assert!(run(&["--version"]).status.success());
    assert_eq!(
        run(&["analyze"]).status.code(),
        Some(2),
        "missing input is a usage error"
    );
    assert_eq!(
        run(&["analyze", "x.pcap", "--window", "yesterday"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn init_writes_a_case_file_that_analyze_reads() {
    let d = tempdir("init");
    let case = d.join("case.toml");
    let o = run(&["init", "-o", case.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(
        run(&["init", "-o", case.to_str().unwrap()]).status.code(),
        Some(2),
        "no overwrite"
    );
    let text = std::fs::read_to_string(&case).unwrap();
    // Fill in the commented template as an analyst would.
    let filled = text
        .replace(
            "# internal = [\"10.0.0.0/8\", \"192.168.0.0/16\"]",
            "internal = [\"141.142.0.0/16\"]",
        )
        .replace(
            "# hosts = [\"10.20.1.10\"]",
            "hosts = [\"141.142.220.118\"]",
        )
        .replace("# threshold = \"1MiB\"", "threshold = \"4KiB\"");
    std::fs::write(&case, filled).unwrap();
    let j = d.join("r.json");
    let o = run_paths(
        &[
            "analyze",
            "--quiet",
            "--case",
            case.to_str().unwrap(),
            "--json",
            j.to_str().unwrap(),
        ],
        &[&testdata().join("pcap/zeek__wikipedia.pcap")],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(&j);
    assert_eq!(v["verdict"], "CONTRADICTED");
    assert_eq!(v["case"]["threshold_bytes"], 4096);
    assert_eq!(v["case"]["threshold_source"], "case file");
    assert_eq!(v["reasons"][0]["host"], "141.142.220.118");
    // A flag wins over the case file.
    let o = run_paths(
        &[
            "analyze",
            "--quiet",
            "--case",
            case.to_str().unwrap(),
            "--threshold",
            "1MiB",
        ],
        &[&testdata().join("pcap/zeek__wikipedia.pcap")],
    );
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn report_lists_names_and_inputs() {
    let d = tempdir("names");
    let j = d.join("r.json");
    let o = run_paths(
        &[
            "analyze",
            "--quiet",
            "--internal",
            "141.142.0.0/16",
            "--json",
            j.to_str().unwrap(),
        ],
        &[&testdata().join("pcap/zeek__wikipedia.pcap")],
    );
    assert_eq!(o.status.code(), Some(0));
    let v = json(&j);
    assert_eq!(v["schema_version"], "1.0");
    assert_eq!(v["verdict"], "SUPPORTED");
    let inp = &v["inputs"][0];
    assert_eq!(
        inp["sha256"],
        "11d2ce14fcb893f3ca6d77a02344fdb1d087b1546b53fffb64b836943a1113b6"
    );
    assert_eq!(inp["packets"], 136);
    assert_eq!(inp["format"], "pcap");
    // Names learned from DNS answers and HTTP Host headers in the capture.
    let dests = v["ledger"]["destinations"].as_array().unwrap();
    let names: Vec<String> = dests
        .iter()
        .flat_map(|d| {
            d["names"].as_array().unwrap().iter().map(|n| {
                format!(
                    "{}:{}",
                    n["source"].as_str().unwrap(),
                    n["name"].as_str().unwrap()
                )
            })
        })
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("dns:") && n.contains("wikimedia.org")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("http_host:")),
        "{names:?}"
    );
    // Totals: outbound equals the sum over hosts.
    let hosts = v["ledger"]["hosts"].as_array().unwrap();
    let sum: u64 = hosts
        .iter()
        .map(|h| h["out"]["ip_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(v["totals"]["outbound"]["ip_bytes"].as_u64().unwrap(), sum);
}

#[test]
fn terminal_summary_leads_with_the_verdict_and_escapes_strings() {
    let o = run_paths(
        &["analyze", "--internal", "141.142.0.0/16", "--lang", "de"],
        &[&testdata().join("pcap/zeek__wikipedia.pcap")],
    );
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.starts_with("VERDICT: SUPPORTED\n"), "{s}");
    assert!(s.contains("keine Hinweise auf einen Datenabfluss"));
    assert!(!s.contains('\u{1b}'), "no raw escape characters");
}

#[test]
fn flows_formats() {
    let p = testdata().join("pcap/zeek__wikipedia.pcap");
    let tsv = run_paths(&["flows", "--format", "tsv"], &[&p]);
    let t = String::from_utf8_lossy(&tsv.stdout);
    assert!(t.starts_with("#separator \\x09\n"));
    assert!(t.contains("#fields\tts\tduration\tproto\tid.orig_h"));
    let js = run_paths(&["flows", "--format", "json"], &[&p]);
    let n = String::from_utf8_lossy(&js.stdout).lines().count();
    let (rows, _) = flows(&p);
    assert_eq!(n, rows.len());
    assert_eq!(
        rows.len(),
        34,
        "the Zeek opt.basic baseline has 34 connections too"
    );
    for r in &rows {
        assert!(["syn", "synack", "port", "first"].contains(&r["direction"].as_str()));
        assert!(num(r, "first_frame") >= 1 && num(r, "last_frame") >= num(r, "first_frame"));
    }
}

#[test]
fn broken_pipe_is_success() {
    use std::io::Read;
    let p = testdata().join("pcap/zeek__wikipedia.pcap");
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("flows");
    for _ in 0..300 {
        cmd.arg(&p);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 256];
    let n = out.read(&mut buf).unwrap();
    assert!(n > 0);
    drop(out); // the reader goes away, like `| head -1`
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a closed pipe is not an error");
}

#[test]
fn internal_networks_that_do_not_fit_the_capture_are_inconclusive() {
    // Zeek's trace uses public addresses (141.142.0.0/16); with the default internal
    // networks only link-local IPv6 hosts are internal.
    let d = tempdir("wrongnet");
    let j = d.join("r.json");
    let o = run_paths(
        &["analyze", "--quiet", "--json", j.to_str().unwrap()],
        &[&testdata().join("pcap/zeek__wikipedia.pcap")],
    );
    assert_eq!(o.status.code(), Some(3));
    let v = json(&j);
    let codes: Vec<&str> = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"SCOPE_HOST_UNSEEN"), "{codes:?}");
    assert!(codes.contains(&"MOSTLY_EXTERNAL_TRAFFIC"), "{codes:?}");
    // The JSON has exactly one top-level verdict key.
    let text = std::fs::read_to_string(&j).unwrap();
    assert_eq!(text.matches("\n  \"verdict\":").count(), 1);
}
