//! # inphms-bench: the benchmark suite of issue 7
//!
//! `cargo xtask bench [--quick]` builds the release binaries, makes sure a load generator is
//! installed, and runs `bench-suite`, which:
//!
//! - stages the release libraries of `base`, `web` and `test_http` in a temporary addons
//!   folder (so that no debug build in the tree is picked up) and runs
//!   `target/release/inphms-host` on it, and `target/release/bench-baseline` (a bare hyper
//!   hello world, see `src/bin/bench-baseline.rs`);
//! - runs nginx beside them as the peer (a private instance, [`nginx`]), and, for the
//!   database route, `target/release/bench-baseline-db` (bare hyper + deadpool-postgres);
//! - drives them over loopback with `wrk -t1 -c32` (or `oha`, [`loadgen`]), the baseline,
//!   the peer and the host interleaved (A B C A B C ...) for several rounds, and reads each server's CPU time,
//!   context switches and RSS from `/proc` ([`procfs`]);
//! - prints a Markdown table of medians and host/baseline ratios, and writes it into
//!   `BENCHMARKS.md` between markers, keeping the hand-written text around them
//!   ([`report`]).
//!
//! The measured items follow issue 7's numbering; [`suite`] has a file per item (its doc
//! says what the item measures, its baseline and its target). Items 7 and 8 swap between the release builds `test_swap-v1` and `test_swap-v2` that `cargo
//! xtask bench` assembles in `target/release/bench-addons/`; item 9 needs PostgreSQL at
//! `127.0.0.1:5432` ([`pg`]) and the release `test_db`.
//!
//! `bench-suite --instructions` counts instead the instructions per request of the
//! keep-alive scenarios under callgrind ([`callgrind`]): exact, whatever the machine's load.

//!
//! ## Module dependencies (one way, no circle)
//!
//! Each module imports only modules of the layers below it:
//!
//! 1. [`stats`] (median, percentile), [`procfs`], [`pg`]: leaves (the HTTP/1.1 client, the
//!    process, file, socket and PostgreSQL helpers are `inphms-test-support`'s, shared with
//!    the integration tests);
//! 2. [`loadgen`] (the load generators), [`nginx`] (the peer's private instance) and
//!    [`servers`] (starting the servers under test);
//! 3. [`model`]: what a run is and yields (settings, scenarios, samples, rows) and the
//!    formatting of its values;
//! 4. [`suite`] (measures, fills the model) and [`report`] (prints the model, writes
//!    `BENCHMARKS.md`): neither imports the other;
//! 5. [`callgrind`] (counts the scenarios of [`suite`]);
//! 6. the binaries (`bench-suite` runs [`suite`] or [`callgrind`] and hands the results to
//!    [`report`]).

pub mod callgrind;
pub mod loadgen;
pub mod model;
pub mod nginx;
pub mod pg;
pub mod procfs;
pub mod report;
pub mod servers;
pub mod stats;
pub mod suite;
