//! What `/proc` tells about a server process: CPU time, context switches, threads, RSS.
//! A server may be several processes (nginx: a master and its workers): [`family`] lists
//! them, and [`Counters`], [`family_threads`] and [`family_rss_anon_kib`] add them up.

use std::path::Path;

/// Clock ticks per second (`getconf CLK_TCK`; 100 when it cannot be asked).
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// `utime + stime` of the whole process (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
}

/// Fields 14 and 15 of `/proc/PID/stat`; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// `cutime + cstime` of the process (fields 16 and 17 of `/proc/PID/stat`), in clock
/// ticks: the CPU time of the children it has reaped (a workers-mode master's workers that
/// recycled or died), which [`Counters`] no longer sees in a live child.
pub fn reaped_children_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let cutime: u64 = fields.get(16 - 3)?.parse().ok()?;
    let cstime: u64 = fields.get(17 - 3)?.parse().ok()?;
    Some(cutime + cstime)
}

/// A field of `/proc/PID/status` in its first unit (`VmRSS` in kB, `Threads`...).
fn status_field(path: &Path, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == name).then(|| v.split_whitespace().next()?.parse().ok())?
    })
}

/// The resident set size, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field(Path::new(&format!("/proc/{pid}/status")), "VmRSS")
}

/// The anonymous part of the resident set (heap, stacks), in KiB: `VmRSS` less the pages
/// of mapped files (the binary's and libraries' code, paged in as paths are first run).
pub fn rss_anon_kib(pid: u32) -> Option<u64> {
    status_field(Path::new(&format!("/proc/{pid}/status")), "RssAnon")
}

/// The number of threads.
pub fn threads(pid: u32) -> Option<u64> {
    status_field(Path::new(&format!("/proc/{pid}/status")), "Threads")
}

/// Voluntary plus involuntary context switches, summed over the process's live threads
/// (threads that ended are not counted: the blocking pool keeps its threads 10 s).
pub fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .map(|t| {
            let p = t.path().join("status");
            status_field(&p, "voluntary_ctxt_switches").unwrap_or(0)
                + status_field(&p, "nonvoluntary_ctxt_switches").unwrap_or(0)
        })
        .sum()
}

/// The parent process id in a `/proc/PID/stat` text (field 4).
fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `pid` and its direct children (nginx's workers), from `/proc/*/stat`.
pub fn family(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return all;
    };
    for e in entries.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        if child != pid && parse_ppid(&stat) == Some(pid) {
            all.push(child);
        }
    }
    all
}

/// Threads of `pid` and its children.
pub fn family_threads(pid: u32) -> Option<u64> {
    family(pid).into_iter().map(threads).sum()
}

/// `RssAnon` of `pid` and its children added up (KiB): their private memory (nginx's
/// workers share the master's pages copy-on-write; the anonymous pages a worker writes are
/// its own).
pub fn family_rss_anon_kib(pid: u32) -> Option<u64> {
    family(pid).into_iter().map(rss_anon_kib).sum()
}

/// A snapshot of the counters that a run differences.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    pub ticks: u64,
    pub ctx_switches: u64,
}

impl Counters {
    /// The counters of `pid` and its children (CPU time of children that ended is not
    /// counted: a server's children live as long as it does).
    pub fn read(pid: u32) -> Counters {
        let mut c = Counters {
            ticks: 0,
            ctx_switches: 0,
        };
        for p in family(pid) {
            c.ticks += cpu_ticks(p).unwrap_or(0);
            c.ctx_switches += context_switches(p);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 10 1000 200";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_ppid(stat), Some(1));
    }

    #[test]
    fn a_child_is_in_the_family() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let fam = family(me);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(fam[0], me);
        assert!(fam.contains(&child.id()), "{fam:?}");
    }

    #[test]
    fn own_process() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(threads(pid).unwrap() >= 1);
    }
}
