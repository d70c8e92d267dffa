//! Same inputs and options give byte-identical JSON and CSV whatever the thread
//! count, and every way of reading the same packets gives the same flows.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn analyze_json(inputs: &[PathBuf], threads: &str, name: &str) -> (Vec<u8>, Vec<u8>) {
    let d = tempdir(name);
    let j = d.join("r.json");
    let c = d.join("csv");
    let mut args: Vec<String> = vec![
        "analyze".into(),
        "--quiet".into(),
        "-j".into(),
        threads.into(),
    ];
    args.extend([
        "--json".into(),
        j.display().to_string(),
        "--csv".into(),
        c.display().to_string(),
    ]);
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs);
    let mut csvs = Vec::new();
    for f in ["hosts.csv", "destinations.csv", "pairs.csv", "flows.csv"] {
        csvs.extend(std::fs::read(c.join(f)).unwrap());
    }
    (std::fs::read(j).unwrap(), csvs)
}

#[test]
fn one_thread_or_many_gives_identical_reports() {
    let inputs = vec![testdata().join("pcap"), testdata().join("pcapng")];
    let (j1, c1) = analyze_json(&inputs, "1", "det1");
    let (j2, c2) = analyze_json(&inputs, "2", "det2");
    let (j4, c4) = analyze_json(&inputs, "4", "det4");
    assert!(j1.len() > 10_000);
    assert!(j1 == j2 && j2 == j4, "JSON differs between thread counts");
    assert!(c1 == c2 && c2 == c4, "CSV differs between thread counts");
}

/// Flow rows without the file column.
fn rows_without_file(p: &Path) -> Vec<Row> {
    let (mut rows, _) = flows(p);
    for r in &mut rows {
        r.remove("file");
    }
    rows
}

#[test]
fn compressed_and_stdin_inputs_give_the_same_flows() {
    let src = testdata().join("pcap/zeek__wikipedia.pcap");
    let want = rows_without_file(&src);
    assert!(!want.is_empty());
    let d = tempdir("comp");
    // gzip: with the gzip tool when present, else flate2.
    let gz = d.join("w.pcap.gz");
    if have("gzip") {
        let o = Command::new("sh")
            .args([
                "-c",
                &format!("gzip -c '{}' > '{}'", src.display(), gz.display()),
            ])
            .status()
            .unwrap();
        assert!(o.success());
    } else {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(&std::fs::read(&src).unwrap()).unwrap();
        e.finish().unwrap();
    }
    assert_eq!(rows_without_file(&gz), want, "gzip");
    let zst = d.join("w.pcap.zst");
    if have("zstd") {
        let o = Command::new("zstd")
            .args(["-q", "-f", "-o"])
            .arg(&zst)
            .arg(&src)
            .status()
            .unwrap();
        assert!(o.success());
    } else {
        eprintln!("NOTICE: zstd not installed; compressing with ruzstd instead");
        let v = ruzstd::encoding::compress_to_vec(
            std::fs::File::open(&src).unwrap(),
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        std::fs::write(&zst, v).unwrap();
    }
    assert_eq!(rows_without_file(&zst), want, "zstd");
    // Two zstd frames back to back (split at a record boundary): both are read.
    let b = std::fs::read(&src).unwrap();
    let cut = 24 + 16 + u32::from_le_bytes(b[32..36].try_into().unwrap()) as usize;
    let mut multi =
        ruzstd::encoding::compress_to_vec(&b[..cut], ruzstd::encoding::CompressionLevel::Fastest);
    multi.extend(ruzstd::encoding::compress_to_vec(
        &b[cut..],
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    let mz = d.join("multi.pcap.zst");
    std::fs::write(&mz, multi).unwrap();
    assert_eq!(rows_without_file(&mz), want, "multi-frame zstd");
    // stdin
    let o = Command::new(bin())
        .args(["flows", "--format", "csv", "-"])
        .stdin(Stdio::from(std::fs::File::open(&src).unwrap()))
        .output()
        .unwrap();
    let mut rows = parse_csv(&o.stdout);
    for r in &mut rows {
        assert_eq!(r["file"], "-");
        r.remove("file");
    }
    assert_eq!(rows, want, "stdin");
    // A directory is read recursively and sorted.
    std::fs::copy(&src, d.join("w.pcap")).unwrap();
    let (rows, o) = flows(&d);
    assert!(o.status.success());
    assert_eq!(
        rows.len(),
        want.len() * 4,
        "w.pcap, .gz, .zst and the multi-frame .zst"
    );
}

#[test]
fn pcap_and_pcapng_of_the_same_packets_give_the_same_flows() {
    // The lab's coverage-gap scenario ships the same packets as pcap and pcapng.
    if let Some(s) = shared("pcap vs pcapng comparison of lab captures") {
        let d = s.join("testdata/lab/07_coverage_gap/total");
        let a = rows_without_file(&d.join("capture.pcap"));
        let b = rows_without_file(&d.join("capture.pcapng"));
        assert!(!a.is_empty());
        assert_eq!(a, b);
    }
    // editcap (Wireshark) converts a shipped trace, when installed.
    if have("editcap") {
        let src = testdata().join("pcap/zeek__tunnels__gre-sample.pcap");
        let d = tempdir("editcap");
        let ng = d.join("g.pcapng");
        let ok = Command::new("editcap")
            .args(["-F", "pcapng"])
            .arg(&src)
            .arg(&ng)
            .status()
            .unwrap();
        assert!(ok.success());
        assert_eq!(rows_without_file(&src), rows_without_file(&ng));
    } else {
        eprintln!("NOTICE: editcap not installed; skipping the editcap pcap->pcapng comparison");
    }
}
