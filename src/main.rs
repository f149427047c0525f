//! The `kvsim` binary: parse the command line, run the library, map errors to
//! exit codes (0 success, 1 a regression, an infeasible plan or an unusable
//! calibration fit, 2 bad input, 3 a
//! run stopped by `--max-events` or `--time-limit`, 130 interrupted).

use std::process::ExitCode;

use clap::Parser;
use kvsim::cli::Command;

fn main() -> ExitCode {
    let cli = kvsim::cli::Cli::parse();
    // The commands that simulate stop by themselves at the next check point
    // and keep what they finished; the others stop at once.
    kvsim::interrupt::install(matches!(
        cli.command,
        Command::Run(_) | Command::Sweep(_) | Command::Plan(_) | Command::Check(_)
    ));
    // `check` finding a regression, `plan` finding no feasible candidate and
    // `calibrate` finding no usable fit exit 1: answers, not errors.
    match &cli.command {
        Command::Check(args) => verdict(kvsim::cli::check(args)),
        Command::Plan(args) => verdict(kvsim::cli::plan(args)),
        Command::Calibrate(args) => verdict(kvsim::cli::calibrate(args)),
        _ => verdict(kvsim::cli::dispatch(cli).map(|()| true)),
    }
}

/// 0 for a good answer, 1 for a bad one, the error's own code for an error.
fn verdict(result: Result<bool, kvsim::Error>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
