//! Labelled lab captures of real traffic (../shared/testdata/lab, made by real
//! tools: curl, scp, dnsmasq, ping...). The verdict and the attributed bytes must
//! match the labels.

use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn labels(dir: &Path) -> Value {
    json(&dir.join("labels.json"))
}

fn case_args(l: &Value) -> Vec<String> {
    let mut a = Vec::new();
    for (flag, key) in [
        ("--internal", "internal_networks"),
        ("--scope", "sensitive_hosts"),
        ("--allow", "allowlist"),
    ] {
        for v in l[key].as_array().into_iter().flatten() {
            a.push(flag.to_string());
            a.push(v.as_str().unwrap().to_string());
        }
    }
    a
}

fn analyze(input: &Path, args: &[String], name: &str) -> Value {
    let dir = tempdir(name);
    let out = dir.join("r.json");
    let mut all: Vec<String> = vec!["analyze".into(), input.display().to_string()];
    all.extend(args.iter().cloned());
    all.extend(["--json".into(), out.display().to_string(), "--quiet".into()]);
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let o = run(&refs);
    let v = json(&out);
    let code = o.status.code();
    let want = match v["verdict"].as_str() {
        Some("SUPPORTED") => 0,
        Some("CONTRADICTED") => 1,
        _ => 3,
    };
    assert_eq!(code, Some(want), "exit code matches the verdict");
    v
}

fn lab() -> Option<PathBuf> {
    shared("lab scenarios").map(|s| s.join("testdata").join("lab"))
}

fn host_row<'a>(v: &'a Value, host: &str) -> Option<&'a Value> {
    v["ledger"]["hosts"]
        .as_array()?
        .iter()
        .find(|h| h["host"] == host)
}

#[test]
fn benign_is_supported() {
    let Some(lab) = lab() else { return };
    let d = lab.join("01_benign");
    let l = labels(&d);
    let v = analyze(&d.join("capture.pcap"), &case_args(&l), "01");
    assert_eq!(v["verdict"], "SUPPORTED", "{:#}", v["reasons"]);
    assert_eq!(v["observed_out_unallowed"], 0);
    // The workstation's outbound bytes equal the labels' tshark figures (IP and L4 payload).
    let ws = host_row(&v, "10.20.2.20").expect("workstation in ledger");
    let conv = l["tshark_conversations_ip"].as_array().unwrap();
    let ip: u64 = conv
        .iter()
        .filter(|c| c["a"] == "10.20.2.20" && c["b"] != "10.20.1.10")
        .map(|c| c["ip_bytes_a_to_b"].as_u64().unwrap())
        .sum();
    let payload: u64 = conv
        .iter()
        .filter(|c| c["a"] == "10.20.2.20" && c["b"] != "10.20.1.10")
        .map(|c| c["l4_payload_a_to_b"].as_u64().unwrap())
        .sum();
    assert_eq!(ws["out"]["ip_bytes"].as_u64().unwrap(), ip);
    assert_eq!(ws["out"]["payload_bytes"].as_u64().unwrap(), payload);
}

#[test]
fn bulk_upload_is_contradicted_with_the_right_bytes() {
    let Some(lab) = lab() else { return };
    let d = lab.join("02_bulk_upload");
    let l = labels(&d);
    let v = analyze(&d.join("capture.pcap"), &case_args(&l), "02");
    assert_eq!(v["verdict"], "CONTRADICTED");
    let t = &l["outbound_from_sensitive_totals"]["to_non_allowlisted_external"];
    let db = host_row(&v, "10.20.1.10").expect("db host");
    assert_eq!(db["out_unallowed"]["ip_bytes"], t["ip_bytes"]);
    assert_eq!(db["out_unallowed"]["payload_bytes"], t["l4_payload_bytes"]);
    // Ground truth: 20,000,000 B by HTTP POST + 20,971,520 B by scp, plus protocol
    // overhead; retransmissions are counted once in `bytes`.
    let app = db["out_unallowed"]["bytes"].as_u64().unwrap();
    assert!(
        app >= l["ground_truth"]["exfiltrated_bytes"]
            .as_u64()
            .unwrap_or(40_971_520)
    );
    let r = &v["reasons"][0];
    assert_eq!(r["code"], "OUTBOUND_ABOVE_THRESHOLD");
    assert_eq!(r["host"], "10.20.1.10");
    assert_eq!(r["destination"], "203.0.113.66");
    let rf = &r["references"][0];
    assert!(rf["first_frame"].as_u64().unwrap() >= 1);
    assert_eq!(
        rf["display_filter"],
        "ip.src==10.20.1.10 && ip.dst==203.0.113.66"
    );
}

#[test]
fn allowed_backup_is_supported_only_with_the_allowlist() {
    let Some(lab) = lab() else { return };
    let d = lab.join("06_allowed_backup");
    let l = labels(&d);
    let v = analyze(&d.join("capture.pcap"), &case_args(&l), "06");
    assert_eq!(v["verdict"], "SUPPORTED", "{:#}", v["reasons"]);
    let allowed = &l["outbound_from_sensitive_totals"]["to_allowlisted_external"];
    let db = host_row(&v, "10.20.1.10").expect("db host");
    assert_eq!(db["out"]["ip_bytes"], allowed["ip_bytes"]);
    assert_eq!(db["out_unallowed"]["ip_bytes"], 0);
    // Without the allowlist the same transfer contradicts the claim.
    let args: Vec<String> = case_args(&l)
        .into_iter()
        .filter(|a| !a.contains("198.51.100.50") && a != "--allow")
        .collect();
    let v = analyze(&d.join("capture.pcap"), &args, "06b");
    assert_eq!(v["verdict"], "CONTRADICTED");
}

#[test]
fn coverage_gap_scenarios() {
    let Some(lab) = lab() else { return };
    let d = lab.join("07_coverage_gap");
    let l = labels(&d.join("total"));
    for cap in ["capture.pcap", "capture.pcapng"] {
        let v = analyze(&d.join("total").join(cap), &case_args(&l), "07t");
        assert_eq!(v["verdict"], "INCONCLUSIVE", "{cap}");
        assert!(
            v["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["code"] == "WINDOW_NOT_COVERED")
        );
    }
    let l = labels(&d.join("partial"));
    let v = analyze(
        &d.join("partial").join("capture.pcap"),
        &case_args(&l),
        "07p",
    );
    assert_eq!(v["verdict"], "CONTRADICTED");
}

#[test]
fn window_flag_limits_the_analysis() {
    let Some(lab) = lab() else { return };
    let d = lab.join("02_bulk_upload");
    let l = labels(&d);
    // A window that ends before the uploads start sees no exfiltration.
    let first = l["capture"]["first_packet"].as_str().unwrap();
    let mut args = case_args(&l);
    args.push("--window".into());
    args.push(format!(
        "{first}..{}",
        l["capture"]["first_epoch"].as_f64().unwrap() + 0.5
    ));
    let v = analyze(&d.join("capture.pcap"), &args, "02w");
    assert_ne!(v["verdict"], "CONTRADICTED");
    assert_eq!(v["coverage"]["window_source"], "given");
}

#[test]
fn multi_tenant_allowlist_entries_cannot_clear_an_upload() {
    let Some(lab) = lab() else { return };
    let d = lab.join("06_allowed_backup");
    let dir = tempdir("mt");
    let case = dir.join("case.toml");
    std::fs::write(
        &case,
        "[network]\ninternal = [\"10.20.0.0/16\"]\n[scope]\nhosts = [\"10.20.1.10\"]\n\
         [[allow]]\ndestination = \"198.51.100.50/32\"\njustification = \"backup provider, shared object storage\"\nmulti_tenant = true\n",
    )
    .unwrap();
    let v = analyze(
        &d.join("capture.pcap"),
        &["--case".into(), case.display().to_string()],
        "06mt",
    );
    assert_eq!(v["verdict"], "INCONCLUSIVE");
    assert!(
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "MULTI_TENANT_UPLOAD")
    );
    assert_eq!(
        v["case"]["allowlist_entries"][0]["justification"],
        "backup provider, shared object storage"
    );
}

#[test]
fn scope_outside_the_internal_networks_still_counts() {
    let Some(lab) = lab() else { return };
    let d = lab.join("02_bulk_upload");
    let args: Vec<String> = ["--internal", "10.99.0.0/16", "--scope", "10.20.1.10"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let v = analyze(&d.join("capture.pcap"), &args, "02scope");
    assert_eq!(v["verdict"], "CONTRADICTED");
    assert!(
        v["case"]["internal_networks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("from --scope"))
    );
}

#[test]
fn upper_bound_terms() {
    let Some(lab) = lab() else { return };
    // DNS tunnel straight to the attacker's name server: the queries are observed
    // bytes (>= the 1.5 MB file), not counted a second time as a DNS term.
    let d = lab.join("03_dns_tunnel");
    let v = analyze(&d.join("capture.pcap"), &case_args(&labels(&d)), "u03");
    let u = &v["upper_bounds"][0];
    assert_eq!(u["host"], "10.20.1.10");
    assert!(u["observed"].as_u64().unwrap() >= 1_500_000);
    assert_eq!(u["dns_information"], 0);
    let sum: u64 = ["observed", "sampling", "gap", "loss", "dns_information"]
        .iter()
        .map(|k| u[*k].as_u64().unwrap())
        .sum();
    assert_eq!(u["total"].as_u64().unwrap(), sum);
    // ICMP tunnel: the payload is stated but already inside `observed`.
    let d = lab.join("04_icmp_tunnel");
    let v = analyze(&d.join("capture.pcap"), &case_args(&labels(&d)), "u04");
    let u = &v["upper_bounds"][0];
    assert_eq!(u["icmp_payload"], 1_033_754);
    assert_eq!(u["total"], u["observed"]);
    // Coverage hole: 12 s unobserved at an assumed 1 Gbit/s bound far more than the
    // 40,971,520 bytes that left in it.
    let d = lab.join("07_coverage_gap/total");
    let v = analyze(&d.join("capture.pcap"), &case_args(&labels(&d)), "u07");
    assert!(v["upper_bounds"][0]["gap"].as_u64().unwrap() > 40_971_520);
    let c2 = gate(&v, "C2");
    assert_eq!(c2["status"], "FAIL");
    // Benign: SUPPORTED with a bound of zero for the DB host.
    let d = lab.join("01_benign");
    let v = analyze(&d.join("capture.pcap"), &case_args(&labels(&d)), "u01");
    assert_eq!(v["verdict"], "SUPPORTED");
    assert_eq!(v["upper_bounds"][0]["total"], 0);
    assert!(v["headline"].as_str().unwrap().contains("at most 0 B"));
}

#[test]
fn an_unobserved_egress_point_makes_the_bound_infinite() {
    let Some(lab) = lab() else { return };
    let d = lab.join("01_benign");
    let dir = tempdir("egress");
    let case = dir.join("case.toml");
    std::fs::write(
        &case,
        "[network]\ninternal = [\"10.20.0.0/16\"]\n[scope]\nhosts = [\"10.20.1.10\"]\n\
         [[coverage.egress]]\nname = \"ISP uplink\"\nobserved_by = \"01_benign\"\n\
         [[coverage.egress]]\nname = \"LTE backup\"\nobserved_by = \"lte-backup\"\n",
    )
    .unwrap();
    let v = analyze(
        &d.join("capture.pcap"),
        &["--case".into(), case.display().to_string()],
        "egress",
    );
    assert_eq!(v["verdict"], "INCONCLUSIVE");
    assert!(v["upper_bounds"][0]["total"].is_null(), "unbounded");
    let c3 = gate(&v, "C3");
    assert_eq!(c3["status"], "FAIL");
    assert!(
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "EGRESS_UNOBSERVED"
                && r["text"].as_str().unwrap().contains("LTE backup"))
    );
}

/// The lab's flow exports (softflowd -> nfcapd: NetFlow v9 and IPFIX datagrams as
/// captured, and the nfdump CSV of the same records) give the same verdict as the
/// captures they were made from, with the outbound bytes nfdump reports.
#[test]
fn flow_exports_give_the_capture_verdict() {
    let Some(lab) = lab() else { return };
    let mut checked = 0;
    for scen in ["01_benign", "02_bulk_upload", "03_dns_tunnel"] {
        let src = labels(&lab.join(scen));
        for kind in ["ipfix", "netflow_v9"] {
            let d = lab.join("08_flows").join(scen).join(kind);
            let fl = labels(&d);
            let want_bytes =
                fl["flow_totals_from_nfdump_csv"]["from_sensitive_to_external"]["bytes"]
                    .as_u64()
                    .unwrap();
            for file in ["export_packets.pcap", "flows.csv"] {
                let v = analyze(&d.join(file), &case_args(&src), "flows");
                assert_eq!(
                    v["verdict"], src["expected_verdict"],
                    "{scen}/{kind}/{file}: {:#}",
                    v["reasons"]
                );
                let db = host_row(&v, "10.20.1.10");
                let got = db.map_or(0, |h| h["out"]["ip_bytes"].as_u64().unwrap());
                assert_eq!(got, want_bytes, "{scen}/{kind}/{file}");
                assert!(v["inputs"][0]["flow_records"].as_u64().unwrap() > 0);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 12);
}

/// Every case-file setting also has a flag.
#[test]
fn case_settings_as_flags() {
    let Some(lab) = lab() else { return };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let base = ["--internal", "10.20.0.0/16", "--scope", "10.20.1.10"];
    // --multi-tenant: an allowlisted shared service cannot clear an upload.
    let mut a = s(&base);
    a.extend(s(&["--multi-tenant", "198.51.100.50/32"]));
    let v = analyze(&lab.join("06_allowed_backup/capture.pcap"), &a, "f-mt");
    assert_eq!(v["verdict"], "INCONCLUSIVE");
    assert_eq!(v["case"]["allowlist_entries"][0]["multi_tenant"], true);
    // --egress: an egress point missing from the evidence makes U unbounded.
    let mut a = s(&base);
    a.extend(s(&[
        "--egress",
        "uplink=01_benign",
        "--egress",
        "lte=lte-backup",
    ]));
    let v = analyze(&lab.join("01_benign/capture.pcap"), &a, "f-eg");
    assert_eq!(v["verdict"], "INCONCLUSIVE");
    assert!(v["upper_bounds"][0]["total"].is_null());
    // --link-capacity: the rate for unobserved time.
    let mut a = s(&base);
    a.extend(s(&["--link-capacity", "8Mbit"]));
    let v = analyze(&lab.join("07_coverage_gap/total/capture.pcap"), &a, "f-lc");
    assert_eq!(v["upper_bounds"][0]["rate_bytes_per_s"], 1_000_000.0);
    // --exfil-service: a case-listed service name makes D5 fire on the upload.
    let mut a = s(&base);
    a.extend(s(&["--exfil-service", "news-portal.example"]));
    let v = analyze(&lab.join("02_bulk_upload/capture.pcap"), &a, "f-es");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "D5" && f["severity"] == "FIRE" && f["host"] == "10.20.1.10"),
        "{:#}",
        v["findings"]
    );
    // --business-hours: the lab ran on a Saturday; 40 MB is below D11's 100 MB.
    let mut a = s(&base);
    a.extend(s(&["--business-hours", "Mon-Fri 08:00-18:00 +01:00"]));
    let v = analyze(&lab.join("02_bulk_upload/capture.pcap"), &a, "f-bh");
    assert!(
        !v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "D11")
    );
}

/// Zeek conn.log (TSV and JSON lines) read as flow records: the IP-byte totals
/// equal the logs' own orig_ip_bytes + resp_ip_bytes.
#[test]
fn zeek_conn_logs_as_input() {
    let Some(s) = shared("Zeek conn.log inputs") else {
        return;
    };
    let dir = s.join("testdata/public/flows/zeek");
    let mut checked = 0;
    for p in files(&dir) {
        let text = std::fs::read_to_string(&p).unwrap();
        let mut want = 0u64;
        let mut fields: Vec<String> = Vec::new();
        for line in text.lines() {
            if let Some(f) = line.strip_prefix("#fields\t") {
                fields = f.split('\t').map(String::from).collect();
            } else if line.starts_with('{') {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                want += v["orig_ip_bytes"].as_u64().unwrap_or(0)
                    + v["resp_ip_bytes"].as_u64().unwrap_or(0);
            } else if !line.starts_with('#') && !fields.is_empty() {
                let vals: Vec<&str> = line.split('\t').collect();
                for k in ["orig_ip_bytes", "resp_ip_bytes"] {
                    if let Some(i) = fields.iter().position(|f| f == k) {
                        want += vals.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                    }
                }
            }
        }
        let (rows, _) = flows(&p);
        let got: u64 = rows
            .iter()
            .map(|r| num(r, "orig_ip_bytes") + num(r, "resp_ip_bytes"))
            .sum();
        assert_eq!(got, want, "{}", p.display());
        assert!(!rows.is_empty());
        checked += 1;
    }
    assert!(checked >= 3);
}

/// AWS VPC flow logs (default v2 field order and v5 with more fields): every OK
/// record is a flow with its bytes; NODATA/SKIPDATA lines are counted, not flows.
#[test]
fn vpc_flow_logs_as_input() {
    let Some(s) = shared("AWS VPC flow logs") else {
        return;
    };
    for p in files(&s.join("testdata/public/flows/vpc")) {
        let text = std::fs::read_to_string(&p).unwrap();
        let ok: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|t| t.len() >= 14 && t[13] == "OK")
            .collect();
        let want: u64 = ok.iter().map(|t| t[9].parse::<u64>().unwrap()).sum();
        let (rows, o) = flows(&p);
        assert_eq!(o.status.code(), Some(0), "{}", p.display());
        assert_eq!(rows.len(), ok.len(), "{}", p.display());
        let got: u64 = rows
            .iter()
            .map(|r| num(r, "orig_ip_bytes") + num(r, "resp_ip_bytes"))
            .sum();
        assert_eq!(got, want, "{}", p.display());
    }
}
