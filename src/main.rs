//! Process entry: parse flags, run, map the result to an exit code. A broken
//! pipe (e.g. `exfilcheck flows x.pcap | head`) is success.

use clap::Parser;
use exfilcheck::app::{self, exit};
use exfilcheck::cli::{Cli, Command};
use exfilcheck::config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    let res = match &cli.command {
        Command::Analyze(a) => match config::analyze_config(a, argv) {
            Ok(cfg) => app::run_analyze(&cfg),
            Err(msg) => return usage(&msg),
        },
        Command::Flows(f) => match config::input_config(&f.input, &[]) {
            Ok(cfg) => app::run_flows(&cfg, f.format, f.output.as_deref()),
            Err(msg) => return usage(&msg),
        },
        Command::Init(i) => init(i),
        Command::Detectors(d) => detectors(d.explain.as_deref()),
    };
    match res {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(0),
        Err(e) => {
            exfilcheck::warn_line!("exfilcheck: error: {e}");
            ExitCode::from(exit::RUNTIME)
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    exfilcheck::warn_line!("exfilcheck: {msg}");
    ExitCode::from(exit::USAGE)
}

fn init(i: &exfilcheck::cli::InitArgs) -> std::io::Result<u8> {
    if i.output.exists() && !i.force {
        exfilcheck::warn_line!(
            "exfilcheck: {} exists; use --force to overwrite",
            i.output.display()
        );
        return Ok(exit::USAGE);
    }
    std::fs::write(&i.output, config::CASE_TEMPLATE)?;
    exfilcheck::warn_line!("exfilcheck: wrote {}", i.output.display());
    Ok(0)
}

fn detectors(explain: Option<&str>) -> std::io::Result<u8> {
    use std::io::Write;
    let reg = exfilcheck::detect::registry();
    let mut out = std::io::stdout().lock();
    match explain {
        None => {
            for d in &reg {
                // The first sentence of "What it does", as a one-line summary.
                let what = d.explain().lines().nth(1).unwrap_or("");
                let first = what.split_inclusive(". ").next().unwrap_or(what).trim_end();
                writeln!(out, "{:<4} {:<22} {}", d.code(), d.name(), first)?;
            }
            Ok(0)
        }
        Some(code) => match reg
            .iter()
            .find(|d| d.code().eq_ignore_ascii_case(code) || d.name() == code)
        {
            Some(d) => {
                writeln!(out, "# {} {}\n\n{}", d.code(), d.name(), d.explain())?;
                Ok(0)
            }
            None => {
                exfilcheck::warn_line!(
                    "exfilcheck: no detector {code}; `exfilcheck detectors` lists them"
                );
                Ok(exit::USAGE)
            }
        },
    }
}
