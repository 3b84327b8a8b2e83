//! The `inphms-host` binary: hands the command line to [`inphms_host::cli::main`].

fn main() {
    std::process::exit(inphms_host::cli::main(std::env::args_os().collect()));
}
