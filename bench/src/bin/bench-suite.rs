//! `bench-suite`: runs the benchmarks of issue 7 and writes the table into `BENCHMARKS.md`.
//! Usually run by `cargo xtask bench [--quick]`, which builds the release binaries and
//! installs the load generator first.
//!
//! ```text
//! bench-suite [--quick] [--rounds N] [--duration SECS] [--warmup SECS] [--requests N]
//!             [--startups N] [--only ITEMS] [--loadgen wrk|oha] [--output PATH | --no-write]
//!             [--command TEXT]
//! bench-suite --instructions [--only KEYS] [--keep DIR]
//! ```

use inphms_bench::loadgen::Generator;
use inphms_bench::model::{Options, Row};
use inphms_bench::report;
use inphms_bench::servers::Env;
use inphms_bench::suite;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: bench-suite [--quick] [--rounds N] [--duration SECS] [--warmup SECS] \
[--requests N] [--startups N] [--only 1,2,...] [--loadgen wrk|oha] [--output PATH | --no-write] [--command TEXT]
       bench-suite --instructions [--only KEYS] [--keep DIR]

  --quick      1 round of 3 s runs, 100,000 requests for the RSS reading
               (default: 3 rounds of 10 s, 1,000,000 requests)
  --only       items to run (1-14, 17; default all)
  --output     the file to update (default: BENCHMARKS.md at the repository root); a full
               run of every item is also recorded in bench/history/<date>-<commit>.md
               beside it
  --instructions
               instead, count the instructions per request of the baseline and the host
               under valgrind's callgrind (a few minutes; prints a table, writes nothing);
               there --only takes scenario keys (base-get,host-health,host-close,...), --keep DIR
               keeps each dump as DIR/<key>.callgrind for callgrind_annotate";

const INTRO: &str =
    "# Benchmarks\n\nRun `cargo xtask bench` (or `cargo xtask bench --quick`). See `bench/`.\n";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-suite: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let instructions = args.iter().any(|a| a == "--instructions");
    let mut rounds = if quick { 1 } else { 3 };
    let mut duration = if quick { 3 } else { 10 };
    let mut warmup = if quick { 1 } else { 2 };
    let mut requests: u64 = if quick { 100_000 } else { 1_000_000 };
    let mut startups = 10;
    let mut only = None;
    let mut prefer = None;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    let mut output = Some(root.join("BENCHMARKS.md"));
    let mut keep = None;
    let mut command = format!("bench-suite {}", args.join(" ")).trim().to_owned();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        let number = |name: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: not a number: {v}"))
        };
        match a.as_str() {
            "--quick" | "--instructions" => {}
            "--rounds" => rounds = number(a, value(a)?)? as usize,
            "--duration" => duration = number(a, value(a)?)?,
            "--warmup" => warmup = number(a, value(a)?)?,
            "--requests" => requests = number(a, value(a)?)?,
            "--startups" => startups = number(a, value(a)?)? as usize,
            "--only" => only = Some(value(a)?.split(',').map(|s| s.trim().to_owned()).collect()),
            "--loadgen" => prefer = Some(value(a)?),
            "--output" => output = Some(PathBuf::from(value(a)?)),
            "--no-write" => output = None,
            "--command" => command = value(a)?,
            "--keep" => keep = Some(PathBuf::from(value(a)?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    let opts = Options {
        quick,
        rounds: rounds.max(1),
        duration: Duration::from_secs(duration.max(1)),
        warmup: Duration::from_secs(warmup.max(1)),
        connections: 32,
        startups: startups.max(1),
        rss_requests: requests.max(1),
        only,
        generator: Generator::detect(prefer.as_deref())?,
        clk_tck: inphms_bench::procfs::clk_tck(),
    };
    let bin_dir = std::env::current_exe()
        .map_err(|e| format!("current_exe: {e}"))?
        .parent()
        .ok_or("the executable has no folder")?
        .to_owned();
    let env = Env::new(bin_dir, root.clone())?;
    eprintln!(
        "bench: {} with {}; scratch folder {}",
        if quick { "quick run" } else { "full run" },
        opts.generator.describe(),
        env.work.display()
    );

    if instructions {
        let counts = inphms_bench::callgrind::run(&env, &opts, keep.as_deref())?;
        println!("{}", inphms_bench::callgrind::table(&counts));
        return Ok(());
    }
    let measured = suite::run_throughput(&env, &opts)?;
    // An item of the second table that fails (a missing build, no PostgreSQL) gets a row
    // saying so and the suite goes on; the exit status reports it at the end.
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (item, f) in suite::OTHER_ITEMS {
        if opts.wants(item) {
            eprintln!("bench: item {item}");
            match f(&env, &opts) {
                Ok(r) => rows.extend(r),
                Err(e) => {
                    eprintln!("bench: item {item} failed: {e}");
                    let first = e.lines().next().unwrap_or("").replace('|', "\\|");
                    rows.push(Row {
                        item: (*item).into(),
                        measure: "(not measured: the item failed)".into(),
                        baseline: "—".into(),
                        host: format!("failed: {first}"),
                        peer: "—".into(),
                        ratio: "—".into(),
                        target: "".into(),
                        met: "—".into(),
                    });
                    failed.push(*item);
                }
            }
        }
    }
    let section = report::section(&command, &root, &opts, &measured, &rows);
    println!("{section}");
    if let Some(path) = output {
        report::write_into(&path, &section, INTRO)?;
        eprintln!("bench: wrote {}", path.display());
        // A full run of every item is also kept in the history beside the file, if any.
        let history = path.parent().map(|p| p.join("bench").join("history"));
        if let Some(history) = history.filter(|h| h.is_dir() && !quick && opts.only.is_none()) {
            if let Some(kept) = report::record_run(&history, &section)? {
                eprintln!("bench: recorded the run in {}", kept.display());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("item(s) {} failed (see above)", failed.join(", ")))
    }
}
