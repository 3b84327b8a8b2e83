//! # inphms-bench: the benchmark suite of issue 7
//!
//! `cargo xtask bench [--quick]` builds the release binaries, makes sure a load generator is
//! installed, and runs `bench-suite`, which:
//!
//! - stages the release libraries of `base`, `web` and `test_http` in a temporary addons
//!   folder (so that no debug build in the tree is picked up) and runs
//!   `target/release/inphms-host` on it, and `target/release/bench-baseline` (a bare hyper
//!   hello world, see `src/bin/bench-baseline.rs`);
//! - drives them over loopback with `wrk -t1 -c32` (or `oha`, [`loadgen`]), the baseline and
//!   the host interleaved (A B A B ...) for several rounds, and reads each server's CPU time,
//!   context switches and RSS from `/proc` ([`procfs`]);
//! - prints a Markdown table of medians and host/baseline ratios, and writes it into
//!   `BENCHMARKS.md` between markers, keeping the hand-written text around them
//!   ([`report`]).
//!
//! The measured items follow issue 7's numbering; [`suite`] has one function per item. Items
//! 7 and 8 swap between the release builds `test_swap-v1` and `test_swap-v2` that `cargo
//! xtask bench` assembles in `target/release/bench-addons/`; item 9 needs PostgreSQL at
//! `127.0.0.1:5432` ([`pg`]) and the release `test_db`.
//!
//! `bench-suite --instructions` counts instead the instructions per request of the
//! keep-alive scenarios under callgrind ([`callgrind`]): exact, whatever the machine's load.

pub mod callgrind;
pub mod client;
pub mod loadgen;
pub mod pg;
pub mod procfs;
pub mod report;
pub mod servers;
pub mod suite;

/// The median of `values` (the mean of the two middle ones for an even count); `NaN` when
/// empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert!(median(&[]).is_nan());
        assert_eq!(median(&[3.0]), 3.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
