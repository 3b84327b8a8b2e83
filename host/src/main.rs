//! The `inphms-host` binary: hands the command line to [`inphms_host::cli::main`].

fn main() {
    let code = inphms_host::cli::main(std::env::args_os().collect());
    // Log lines are written in batches: the last ones go out before the process does.
    inphms_host::netsvc::flush();
    std::process::exit(code);
}
