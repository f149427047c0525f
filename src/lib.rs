//! kvsim: a discrete-event simulator of LLM serving whose subject is the KV cache.
#![warn(missing_docs)]

pub mod cache;
pub mod catalog;
pub mod error;
pub mod hardware;
pub mod model;
pub mod rng;
pub mod traffic;
pub mod units;

pub use error::{Error, Result, SpecError};
