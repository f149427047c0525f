//! Internal invariant checks: what a bug in kvsim would break, checked as the
//! simulation runs. Time never goes back; every issued request ends exactly
//! once, in one outcome; KV usage never exceeds the budget (a simulated crash
//! frees everything); the caches' internal bookkeeping (holes, buddy blocks,
//! reference counts, the prefix index) stays consistent.
//!
//! The checks are on in debug builds, in the library's own unit tests (a
//! test build is never what a user runs, and the tests that break an
//! invariant on purpose need them), and in any build with the `invariants`
//! cargo feature (`.ci/run` ends with an integration test pass that turns it
//! on), and compiled out otherwise: like
//! `debug_assert!`, each check is an `if` on a constant, so a plain release
//! build pays nothing for them in the hot loop.
//!
//! `invariant!` and `invariant_eq!` take `assert!`'s and `assert_eq!`'s
//! arguments; `invariant_violated!` takes `panic!`'s, for a branch only a
//! bug reaches, whose fallback (after the macro) keeps a build without the
//! checks going.

/// Whether the invariant checks run: in debug builds, in the library's unit
/// tests, and with the `invariants` feature in any profile.
pub(crate) const ENABLED: bool = cfg!(any(debug_assertions, test, feature = "invariants"));

/// `assert!` when the invariant checks are on ([`ENABLED`]); nothing otherwise.
macro_rules! invariant {
    ($($arg:tt)+) => {
        if $crate::invariants::ENABLED {
            ::std::assert!($($arg)+);
        }
    };
}

/// `assert_eq!` when the invariant checks are on ([`ENABLED`]); nothing
/// otherwise.
macro_rules! invariant_eq {
    ($($arg:tt)+) => {
        if $crate::invariants::ENABLED {
            ::std::assert_eq!($($arg)+);
        }
    };
}

/// `panic!` when the invariant checks are on ([`ENABLED`]); nothing
/// otherwise: marks a branch only a bug reaches.
macro_rules! invariant_violated {
    ($($arg:tt)+) => {
        if $crate::invariants::ENABLED {
            ::std::panic!($($arg)+);
        }
    };
}

/// Whether the library as linked (not its unit tests) checks its
/// invariants: `tests/kvsim` asserts it where `.ci/run`'s invariants pass
/// requires the checks (`KVSIM_REQUIRE_INVARIANTS`).
pub(crate) const IN_LIBRARY: bool = cfg!(any(debug_assertions, feature = "invariants"));

#[cfg(test)]
mod tests {
    /// The macros check in the unit tests, whatever the profile and features.
    #[test]
    fn checks_are_on_in_unit_tests() {
        let fired = |f: fn()| std::panic::catch_unwind(f).is_err();
        const { assert!(super::ENABLED) };
        assert!(fired(|| invariant!(1 + 1 == 3, "arithmetic")));
        assert!(fired(|| invariant_eq!(1 + 1, 3)));
        assert!(fired(|| invariant_violated!("unreachable")));
        assert!(!fired(|| invariant!(1 + 1 == 2)));
    }
}
