//! Addon swaps under load: the builds of `test_swap` (`v1`, `v2`, `fail_post_load`) that
//! `cargo xtask test` makes, installing one as an addon's library (atomically, or in place
//! in parts as `cp`, `scp` or `rsync --inplace` do), a server loading `test_swap` v1
//! ([`swap_server`]), and [`Load`]: keep-alive clients requesting a path without pause,
//! recording every answer and counting every failure.

use crate::{target_dir, test_addon_src, with_test_addons, HttpConn, Server, TestDir};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A build of `test_swap` made by `cargo xtask test`: `v1`, `v2` or `fail_post_load`.
pub fn swap_build(variant: &str) -> PathBuf {
    let lib = target_dir()
        .join("test-addons")
        .join(format!("test_swap-{variant}"))
        .join("libtest_swap.so");
    assert!(
        lib.is_file(),
        "{} is missing: run `cargo xtask test`",
        lib.display()
    );
    lib
}

/// The folder of the addon `test_swap` in `addons`, with its manifest.
pub fn swap_addon_dir(addons: &Path) -> PathBuf {
    let dir = addons.join("test_swap");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        test_addon_src("test_swap").join("__manifest__.toml"),
        dir.join("__manifest__.toml"),
    )
    .unwrap();
    dir
}

/// Installs `bytes` as `test_swap`'s library in `addons`, atomically (written aside, then
/// renamed); returns the library's path.
pub fn install_swap_bytes(addons: &Path, bytes: &[u8]) -> PathBuf {
    let dir = swap_addon_dir(addons);
    let tmp = dir.join(".libtest_swap.so.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    let lib = dir.join("libtest_swap.so");
    std::fs::rename(&tmp, &lib).unwrap();
    lib
}

/// Installs the library `lib` as `test_swap`'s in `addons`, atomically.
pub fn install_swap_lib(addons: &Path, lib: &Path) -> PathBuf {
    install_swap_bytes(addons, &std::fs::read(lib).unwrap())
}

/// A started server loading the addons `load` (e.g. `base,web,test_swap`) from
/// `<td>/addons`, where `test_swap` is v1 ([`swap_build`]), with `extra` arguments.
pub fn swap_server(td: &TestDir, load: &str, extra: &[&str]) -> Server {
    let addons = td.join("addons");
    install_swap_lib(&addons, &swap_build("v1"));
    // `<td>/addons` first, so its `test_swap` is the one loaded, then the test addons.
    let path = with_test_addons(&[&addons]);
    let mut args = vec!["--addons-path", &path, "--load", load];
    args.extend_from_slice(extra);
    td.server(args).start()
}

/// Writes `bytes` into the file `path` in place from the offset `at` (the file is cut there
/// first), as a copy in progress does; returns once they are written and flushed.
pub fn write_in_place(path: &Path, at: u64, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_len(at).unwrap();
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(at)).unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
}

/// Keep-alive clients requesting one path until stopped (60 s at most); every answer is
/// recorded, and any failure (an error status, a broken connection) counted. A client
/// connects again after an answer carrying `Connection: close` (a worker of workers mode
/// serves one request per connection by default), as any HTTP client does.
pub struct Load {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
    answers: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients requesting `path` on `port`.
    pub fn start(port: u16, path: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let threads = (0..clients)
            .map(|_| {
                let (stop, failures, answers) = (stop.clone(), failures.clone(), answers.clone());
                let request = request.clone();
                std::thread::spawn(move || {
                    let mut conn = HttpConn::connect(port).expect("connect");
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let sent = conn.send(request.as_bytes());
                        match sent.and_then(|_| conn.read_response(false)) {
                            Ok(r) if r.status == 200 => {
                                answers.lock().unwrap().push(r.text());
                                if crate::http::closes(&r) {
                                    conn = match HttpConn::connect(port) {
                                        Ok(c) => c,
                                        Err(e) => {
                                            failures.fetch_add(1, Ordering::Relaxed);
                                            eprintln!("failed to connect again: {e}");
                                            return;
                                        }
                                    };
                                }
                            }
                            Ok(r) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                                eprintln!("failed request: status {}", r.status);
                            }
                            Err(e) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                                eprintln!("failed request: {e}");
                                conn = match HttpConn::connect(port) {
                                    Ok(c) => c,
                                    Err(_) => return,
                                };
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            failures,
            answers,
            threads,
        }
    }

    /// Whether some answer was `answer`.
    pub fn seen(&self, answer: &str) -> bool {
        self.answers.lock().unwrap().iter().any(|a| a == answer)
    }

    /// How many answers were `answer` so far.
    pub fn count_of(&self, answer: &str) -> usize {
        self.answers
            .lock()
            .unwrap()
            .iter()
            .filter(|a| *a == answer)
            .count()
    }

    /// How many answers so far.
    pub fn count(&self) -> usize {
        self.answers.lock().unwrap().len()
    }

    /// Stops the clients; returns the number of failures and every answer, in order.
    pub fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let answers = self.answers.lock().unwrap().clone();
        (self.failures.load(Ordering::Relaxed), answers)
    }
}
