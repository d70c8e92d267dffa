//! One integration test binary; one module per area.

mod util;

mod accounting;
mod architecture;
mod bad_input;
mod cli;
mod detectors;
mod determinism;
mod flows;
mod lab;
mod nfcapd;
mod zeek;
