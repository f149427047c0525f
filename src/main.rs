//! The `kvsim` binary: parse the command line, run the library, map errors to
//! exit codes (0 success, 1 a regression or infeasible plan, 2 bad input, 3 a
//! run stopped by `--max-events` or `--time-limit`, 130 interrupted).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = kvsim::cli::Cli::parse();
    // `check` exits 1 on a regression, which is not an error.
    if let kvsim::cli::Command::Check(args) = &cli.command {
        return match kvsim::cli::check(args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    match kvsim::cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
