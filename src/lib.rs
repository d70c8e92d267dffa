//! exfilcheck: verify or refute the claim "no customer data was exfiltrated"
//! from network evidence.
//!
//! Data flows one way: `input -> decode -> flow -> attribution -> evidence ->
//! report`, and only [`app`] wires the stages together. See docs/ for the byte
//! accounting, the formats, the verdict logic and the report schema.

pub mod app;
pub mod attribution;
pub mod cli;
pub mod config;
pub mod decode;
pub mod detect;
pub mod diag;
pub mod evidence;
pub mod flow;
pub mod input;
pub mod model;
pub mod progress;
pub mod report;
