//! The load generators: `wrk` (preferred, from apt) and `oha` (the fallback, from
//! crates.io). Both are driven the same way: one thread, 32 connections, a fixed duration,
//! and a hard deadline (the duration plus 30 s) after which the generator is killed, so no
//! run can hang the suite. (A fixed number of requests is reached by repeating runs: wrk's
//! main thread sleeps the whole `-d` even when its script stops the load early.)

use inphms_test_support::process::run_bounded;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// What to send.
#[derive(Debug, Clone)]
pub struct Load {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// `Connection: close`: a new connection per request.
    pub close: bool,
    /// Append a per-request counter to `path` (`/x/` → `/x/1`, `/x/2`...).
    pub counter_suffix: bool,
}

impl Load {
    pub fn get(path: &str) -> Load {
        Load {
            method: "GET",
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
            close: false,
            counter_suffix: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Load {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn post_json(path: &str, body: &str) -> Load {
        Load {
            method: "POST",
            body: Some(body.to_owned()),
            ..Load::get(path)
        }
        .header("Content-Type", "application/json")
    }

    pub fn close(mut self) -> Load {
        self.close = true;
        self
    }

    pub fn counter_suffix(mut self) -> Load {
        self.counter_suffix = true;
        self
    }

    /// The path of the first request (for the check before the load).
    pub fn first_path(&self) -> String {
        if self.counter_suffix {
            format!("{}1", self.path)
        } else {
            self.path.clone()
        }
    }
}

/// What a load generator measured.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub requests: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Non-2xx/3xx responses plus socket errors (connect, read, write, timeout).
    pub errors: u64,
}

/// A load generator.
#[derive(Debug, Clone)]
pub enum Generator {
    Wrk {
        version: String,
    },
    Oha {
        version: String,
        json_flag: &'static str,
    },
}

impl Generator {
    /// `wrk` when on the `PATH`, else `oha`; `prefer` (`wrk` or `oha`) forces one.
    pub fn detect(prefer: Option<&str>) -> Result<Generator, String> {
        let wrk = || {
            let out = Command::new("wrk").arg("--version").output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            let version = text.lines().next()?.split(" [").next()?.trim().to_owned();
            Some(Generator::Wrk { version })
        };
        let oha = || {
            let out = Command::new("oha").arg("--version").output().ok()?;
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let help = Command::new("oha").arg("--help").output().ok()?;
            let help = String::from_utf8_lossy(&help.stdout).into_owned();
            let json_flag = if help.contains("--output-format") {
                "--output-format=json"
            } else {
                "--json"
            };
            Some(Generator::Oha { version, json_flag })
        };
        let found = match prefer {
            Some("wrk") => wrk(),
            Some("oha") => oha(),
            Some(other) => return Err(format!("unknown load generator '{other}' (wrk or oha)")),
            None => wrk().or_else(oha),
        };
        found.ok_or_else(|| {
            "no load generator: install wrk (apt-get install wrk) or oha (cargo install oha); \
             `cargo xtask bench` installs one"
                .to_owned()
        })
    }

    /// `wrk 4.1.0 ...` or `oha 1.x`, for the report.
    pub fn describe(&self) -> String {
        match self {
            Generator::Wrk { version } => version.clone(),
            Generator::Oha { version, .. } => version.clone(),
        }
    }

    /// The command line, for the report (`-t1 -c32 -d10s` ...).
    pub fn settings(&self, connections: u32) -> String {
        match self {
            Generator::Wrk { .. } => format!("wrk -t1 -c{connections} --latency -d<duration>"),
            Generator::Oha { .. } => format!("oha -c{connections} -z <duration>"),
        }
    }

    /// Runs `load` against `127.0.0.1:port`. `scratch` is a folder for the script.
    pub fn run(
        &self,
        port: u16,
        load: &Load,
        connections: u32,
        duration: Duration,
        scratch: &Path,
    ) -> Result<Stats, String> {
        let mut cmd = match self {
            Generator::Wrk { .. } => wrk_command(port, load, connections, duration, scratch)?,
            Generator::Oha { json_flag, .. } => {
                oha_command(port, load, connections, duration, json_flag)
            }
        };
        let limit = duration;
        let done = run_bounded(&mut cmd, limit + Duration::from_secs(30))?;
        if done.timed_out {
            return Err(format!(
                "{cmd:?} did not end within {limit:?} + 30 s; killed"
            ));
        }
        if !done.success() {
            return Err(format!("{cmd:?} failed: {}", done.stderr.trim()));
        }
        let (stdout, stderr) = (done.stdout, done.stderr);
        match self {
            Generator::Wrk { .. } => parse_wrk(&stdout)
                .ok_or_else(|| format!("cannot read wrk's output:\n{stdout}\n{stderr}")),
            Generator::Oha { .. } => parse_oha(&stdout)
                .ok_or_else(|| format!("cannot read oha's output:\n{stdout}\n{stderr}")),
        }
    }
}

/// A Lua string literal.
fn lua_str(s: &str) -> String {
    let mut level = 0;
    while s.contains(&format!("]{}]", "=".repeat(level))) {
        level += 1;
    }
    let eq = "=".repeat(level);
    format!("[{eq}[{s}]{eq}]")
}

fn wrk_command(
    port: u16,
    load: &Load,
    connections: u32,
    duration: Duration,
    scratch: &Path,
) -> Result<Command, String> {
    let mut lua = String::from("-- generated by bench-suite\n");
    lua.push_str(&format!("wrk.method = {}\n", lua_str(load.method)));
    lua.push_str(&format!("wrk.path = {}\n", lua_str(&load.path)));
    for (k, v) in &load.headers {
        lua.push_str(&format!("wrk.headers[ {} ] = {}\n", lua_str(k), lua_str(v)));
    }
    if load.close {
        lua.push_str("wrk.headers[\"Connection\"] = \"close\"\n");
    }
    if let Some(body) = &load.body {
        lua.push_str(&format!("wrk.body = {}\n", lua_str(body)));
    }
    if load.counter_suffix {
        lua.push_str("local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, wrk.path .. n)\nend\n");
    }
    let script = scratch.join("load.lua");
    std::fs::write(&script, lua).map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let mut cmd = Command::new("wrk");
    cmd.arg("-t1")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .args(["--timeout", "5s", "--latency", "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}{}", load.path));
    Ok(cmd)
}

fn oha_command(
    port: u16,
    load: &Load,
    connections: u32,
    duration: Duration,
    json_flag: &str,
) -> Command {
    let mut cmd = Command::new("oha");
    cmd.args(["--no-tui", json_flag, "-c"])
        .arg(connections.to_string());
    cmd.arg("-z").arg(format!("{}s", duration.as_secs().max(1)));
    cmd.args(["-m", load.method]);
    for (k, v) in &load.headers {
        cmd.arg("-H").arg(format!("{k}: {v}"));
    }
    if load.close {
        cmd.arg("--disable-keepalive");
    }
    if let Some(body) = &load.body {
        cmd.arg("-d").arg(body);
    }
    let url = if load.counter_suffix {
        cmd.arg("--rand-regex-url");
        format!("http://127\\.0\\.0\\.1:{port}{}[0-9]{{12}}", load.path)
    } else {
        format!("http://127.0.0.1:{port}{}", load.path)
    };
    cmd.arg(url);
    cmd
}

/// `123.45us`, `1.20ms`, `2.00s`, `1.5m` → microseconds.
fn parse_wrk_time(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v,
        "ms" => v * 1e3,
        "s" => v * 1e6,
        "m" => v * 60e6,
        "h" => v * 3600e6,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> Option<Stats> {
    let mut st = Stats::default();
    let mut have_requests = false;
    for line in out.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("50%") {
            st.p50_us = parse_wrk_time(rest)?;
        } else if let Some(rest) = t.strip_prefix("99%") {
            st.p99_us = parse_wrk_time(rest)?;
        } else if t.contains(" requests in ") {
            // `1234567 requests in 10.00s, 123.45MB read`
            let mut words = t.split_whitespace();
            st.requests = words.next()?.parse().ok()?;
            let secs = t.split(" requests in ").nth(1)?.split(',').next()?;
            st.seconds = parse_wrk_time(secs)? / 1e6;
            have_requests = true;
        } else if let Some(rest) = t.strip_prefix("Requests/sec:") {
            st.rps = rest.trim().parse().ok()?;
        } else if let Some(rest) = t.strip_prefix("Non-2xx or 3xx responses:") {
            st.errors += rest.trim().parse::<u64>().ok()?;
        } else if let Some(rest) = t.strip_prefix("Socket errors:") {
            // `connect 0, read 0, write 0, timeout 0`
            for part in rest.split(',') {
                st.errors += part
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    have_requests.then_some(st)
}

/// The number after `"key":` in `json`, from `from` on.
fn json_number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\""))?;
    let rest = json[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn parse_oha(out: &str) -> Option<Stats> {
    let mut st = Stats {
        rps: json_number(out, "requestsPerSec")?,
        seconds: json_number(out, "total")?,
        ..Stats::default()
    };
    let pct = &out[out.find("\"latencyPercentiles\"")?..];
    st.p50_us = json_number(pct, "p50")? * 1e6;
    st.p99_us = json_number(pct, "p99")? * 1e6;
    let codes = &out[out.find("\"statusCodeDistribution\"")?..];
    let codes = &codes[codes.find('{')? + 1..codes.find('}')?];
    for pair in codes.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair.split_once(':')?;
        let n: u64 = v.trim().parse().ok()?;
        st.requests += n;
        let k = k.trim().trim_matches('"');
        if !(k.starts_with('2') || k.starts_with('3')) {
            st.errors += n;
        }
    }
    if let Some(at) = out.find("\"errorDistribution\"") {
        let e = &out[at..];
        if let (Some(a), Some(b)) = (e.find('{'), e.find('}')) {
            for pair in e[a + 1..b].split(',').filter(|p| !p.trim().is_empty()) {
                st.errors += pair
                    .rsplit(':')
                    .next()
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Some(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk() {
        let out = "Running 10s test @ http://127.0.0.1:1/\n  1 threads and 32 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   160.61us   50.00us   5.00ms   90.00%\n  Latency Distribution\n     50%  150.00us\n     75%  170.00us\n     90%  200.00us\n     99%    1.20ms\n  1999999 requests in 10.00s, 200.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec: 199999.90\nTransfer/sec:     20.00MB\n";
        let st = parse_wrk(out).unwrap();
        assert_eq!(st.requests, 1999999);
        assert_eq!(st.seconds, 10.0);
        assert_eq!(st.p50_us, 150.0);
        assert_eq!(st.p99_us, 1200.0);
        assert_eq!(st.errors, 7);
        assert!((st.rps - 199999.9).abs() < 1e-6);
    }

    #[test]
    fn reads_oha() {
        let out = r#"{"summary":{"successRate":1.0,"total":2.5,"requestsPerSec":1000.5},"latencyPercentiles":{"p10":0.0001,"p50":0.00015,"p99":0.002},"statusCodeDistribution":{"200":2500,"500":1},"errorDistribution":{"connection refused":3}}"#;
        let st = parse_oha(out).unwrap();
        assert_eq!((st.requests, st.errors), (2501, 4));
        assert!((st.p50_us - 150.0).abs() < 1e-6 && (st.p99_us - 2000.0).abs() < 1e-6);
    }

    #[test]
    fn lua_strings() {
        assert_eq!(lua_str("a"), "[[a]]");
        assert_eq!(lua_str("x]]y"), "[=[x]]y]=]");
    }
}
