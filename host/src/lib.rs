//! # inphms-host
//!
//! The Inphms application server, as a library: the `inphms-host` binary is a thin
//! [`cli::main`], and tests and commands reuse these parts. See `ARCHITECTURE.md` at the
//! root of the repository for the map.

pub mod cli;
pub mod config;
pub mod error;
pub mod host_api;
pub mod http;
pub mod metrics;
pub mod modules;
pub mod netsvc;
pub mod release;
pub mod service;
pub mod sql_db;

pub use error::{Error, Result};
