//! Ctrl-C, one handler for every command.
//!
//! Commands that simulate (`run`, `sweep`, `plan`, `check`) stop cleanly: the
//! first Ctrl-C sets [`INTERRUPTED`], which every simulation checks every few
//! thousand events (through [`crate::engine::Limits::interrupt`]); the command
//! then keeps what it finished (see each command), says so on stderr, removes
//! its temporary files and lock, and exits 130. The other commands, and a
//! second Ctrl-C, stop at once: the handler deletes every temporary path and
//! lock of the process ([`crate::output::abandon_and_exit`]) and exits 130.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first Ctrl-C; never cleared.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether the running command polls [`INTERRUPTED`] and stops by itself.
static POLLED: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler (once per process; later calls only update
/// `polled`). `polled`: the command checks [`INTERRUPTED`] and stops by
/// itself; otherwise Ctrl-C stops the process at once.
pub fn install(polled: bool) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    POLLED.store(polled, Ordering::SeqCst);
    ONCE.call_once(|| {
        if let Err(e) = ctrlc::set_handler(on_ctrl_c) {
            // Without the handler Ctrl-C still stops kvsim, only less tidily
            // (a temporary directory may be left, and is removed by the next
            // run into the same --out).
            eprintln!("warning: cannot handle Ctrl-C ({e}); it will stop kvsim abruptly");
        }
    });
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

fn on_ctrl_c() {
    // The first Ctrl-C of a command that polls is its to handle.
    if POLLED.load(Ordering::SeqCst) && !INTERRUPTED.swap(true, Ordering::SeqCst) {
        return;
    }
    INTERRUPTED.store(true, Ordering::SeqCst);
    crate::output::abandon_and_exit(
        130,
        "error: interrupted (Ctrl-C): stopped at once; unfinished output and locks were removed",
    )
}
