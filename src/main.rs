//! The `kvsim` binary: parse the command line, run the library, map errors to
//! exit codes (0 success, 1 a regression, an infeasible plan or an unusable
//! calibration fit, 2 bad input, 3 a
//! run stopped by `--max-events` or `--time-limit`, 130 interrupted).

use std::process::ExitCode;

use clap::Parser;
use kvsim::cli::Command;
use kvsim::input::QUOTE_CHARS;

fn main() -> ExitCode {
    let cli = match kvsim::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as clap prints them.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // clap quotes a bad value whole; a value may be megabytes.
            eprint!("{}", cut_quoted(&e.to_string()));
            return ExitCode::from(2);
        }
    };
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

/// `text` with every span between single quotes or backticks longer than
/// [`QUOTE_CHARS`] characters cut short (clap quotes a value the first way,
/// kvsim's own messages the second).
fn cut_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(8 * QUOTE_CHARS));
    let mut rest = text;
    while let Some(open) = rest.find(['\'', '`']) {
        let mark = &rest[open..=open];
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let Some(close) = rest.find(mark) else {
            break;
        };
        out.push_str(&kvsim::input::quote(&rest[..close]));
        out.push_str(mark);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}
