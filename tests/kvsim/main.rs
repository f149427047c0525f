//! kvsim's integration tests, in one binary (faster to build and link).

mod bad_inputs;
mod calibrate;
mod check;
mod cli;
mod cluster;
mod common;
mod engine;
mod extreme;
mod fast_path;
mod fuzz;
mod golden;
mod hf;
mod layer_groups;
mod layering;
mod memory;
mod merge;
mod output;
mod plan;
mod plots;
mod properties;
mod readers;
mod readme;
mod report;
mod seeds;
mod sweep;
mod traces;
