//! The one-way data flow (input -> decode -> flow -> attribution -> detect ->
//! evidence -> report, wired only by app) as a test: every `crate::X` a module
//! names must be in its row of the table below. A backward edge fails here.

use std::collections::BTreeSet;
use std::path::Path;

/// Module -> the crate modules it may use. `app` and `main` may use everything.
const ALLOWED: [(&str, &[&str]); 12] = [
    ("model", &[]),
    ("diag", &["model"]),
    ("progress", &[]),
    ("input", &["model", "diag"]),
    ("decode", &["model", "diag"]),
    ("flow", &["model", "diag", "decode"]),
    ("attribution", &["model"]),
    ("detect", &["model", "flow", "attribution"]),
    // InputSummary is the inventory the coverage gates read.
    ("evidence", &["model", "input", "attribution", "detect"]),
    (
        "report",
        &[
            "model",
            "diag",
            "input",
            "attribution",
            "detect",
            "evidence",
        ],
    ),
    // FlowFormat (an output format enum) is the only report type the flags use,
    // InputFormat the only input type.
    ("cli", &["report", "input"]),
    (
        "config",
        &["model", "cli", "input", "attribution", "detect"],
    ),
];

fn uses(dir: &Path, out: &mut BTreeSet<String>) {
    let files: Vec<_> = if dir.is_dir() {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect()
    } else {
        vec![dir.with_extension("rs")]
    };
    for f in files {
        if f.is_dir() {
            uses(&f, out);
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                let after = &rest[i + 7..];
                let name: String = after
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
                rest = &after[1..];
            }
        }
    }
}

#[test]
fn stages_only_use_what_comes_before_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    for (module, allowed) in ALLOWED {
        let mut used = BTreeSet::new();
        let dir = src.join(module);
        if dir.is_dir() {
            uses(&dir, &mut used);
        }
        uses(&src.join(format!("{module}.rs")), &mut used);
        for u in used {
            // Macros exported at the crate root (diag's warn_line!) count as diag.
            let u = if u == "warn_line" {
                "diag".to_string()
            } else {
                u
            };
            if u != module && !allowed.contains(&u.as_str()) {
                bad.push(format!("{module} uses crate::{u}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "backward or undeclared edges:\n{}",
        bad.join("\n")
    );
}
