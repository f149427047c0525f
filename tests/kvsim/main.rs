//! kvsim's integration tests, in one binary (faster to build and link).

mod bad_inputs;
mod calibrate;
mod cli;
mod common;
mod engine;
mod extreme;
mod fuzz;
mod golden;
mod memory;
mod plots;
mod properties;
mod seeds;
mod sweep;
