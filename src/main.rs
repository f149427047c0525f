//! The `kvsim` binary: parse the command line, run the library, map errors to
//! exit codes (0 success, 1 a regression or infeasible plan, 2 bad input).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kvsim::cli::Cli::parse();
    match kvsim::cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
