//! Shared helpers: paths to the binary and the test data, running the CLI,
//! reading its CSV output.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_exfilcheck"))
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The public captures copied into this repository (BSD/MIT/Apache licensed).
pub fn testdata() -> PathBuf {
    root().join("testdata").join("public")
}

/// `../shared` (present in CI and for the developers, absent for users). Prints a
/// visible notice and returns None when it is missing.
pub fn shared(what: &str) -> Option<PathBuf> {
    let p = root().join("..").join("shared");
    if p.join("testdata").is_dir() {
        Some(p)
    } else {
        eprintln!("NOTICE: ../shared/testdata not found: skipping {what}");
        None
    }
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run exfilcheck")
}

pub fn run_paths(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(bin())
        .args(args)
        .args(paths)
        .stdin(Stdio::null())
        .output()
        .expect("run exfilcheck")
}

/// Runs exfilcheck with `args` and the file `stdin` on standard input; it
/// must exit (not be killed).
pub fn run_stdin(args: &[&str], stdin: &Path) -> Output {
    let o = Command::new(bin())
        .args(args)
        .stdin(Stdio::from(
            std::fs::File::open(stdin).expect("open stdin file"),
        ))
        .output()
        .expect("run exfilcheck");
    assert!(o.status.code().is_some(), "{o:?}");
    o
}

pub type Row = BTreeMap<String, String>;

pub fn parse_csv(bytes: &[u8]) -> Vec<Row> {
    let mut r = csv::Reader::from_reader(bytes);
    let head = r.headers().expect("csv header").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("csv record");
            head.iter()
                .map(|h| h.to_string())
                .zip(rec.iter().map(|v| v.to_string()))
                .collect()
        })
        .collect()
}

/// `exfilcheck flows --format csv PATH`, parsed.
pub fn flows(path: &Path) -> (Vec<Row>, Output) {
    let out = run_paths(&["flows", "--format", "csv"], &[path]);
    (parse_csv(&out.stdout), out)
}

pub fn num(r: &Row, k: &str) -> u64 {
    r.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Files under `dir` (one level), sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn tempdir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("exfilcheck-test-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tempdir");
    d
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read json")).expect("parse json")
}

/// Gate `id` (C1..C10) of an analyze report.
pub fn gate<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["coverage"]["gates"]
        .as_array()
        .expect("gates")
        .iter()
        .find(|g| g["id"] == id)
        .unwrap_or_else(|| panic!("no gate {id}"))
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
