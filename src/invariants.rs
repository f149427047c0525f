//! Internal invariant checks: what a bug in kvsim would break, checked as the
//! simulation runs. Time never goes back; every issued request ends exactly
//! once, in one outcome; KV usage never exceeds the budget (a simulated crash
//! frees everything); the caches' internal bookkeeping (holes, buddy blocks,
//! reference counts, the prefix index) stays consistent.
//!
//! The checks are on in debug builds and in any build with the `invariants`
//! cargo feature (`.ci/run` ends with a test pass that turns it on), and
//! compiled out otherwise: like
//! `debug_assert!`, each check is an `if` on a constant, so a plain release
//! build pays nothing for them in the hot loop.
//!
//! `invariant!` and `invariant_eq!` take `assert!`'s and `assert_eq!`'s
//! arguments; `invariant_violated!` takes `panic!`'s, for a branch only a
//! bug reaches, whose fallback (after the macro) keeps a build without the
//! checks going.

/// Whether the invariant checks run: in debug builds, and with the
/// `invariants` feature in any profile.
pub(crate) const ENABLED: bool = cfg!(any(debug_assertions, feature = "invariants"));

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

#[cfg(test)]
mod tests {
    /// `.ci/run`'s invariants pass sets `KVSIM_REQUIRE_INVARIANTS`: there the
    /// checks must be compiled in. Without the feature the tests that expect
    /// a check to fire would be compiled out and the pass would check
    /// nothing, silently.
    #[test]
    fn required_checks_are_compiled_in() {
        let required = std::env::var_os("KVSIM_REQUIRE_INVARIANTS").is_some();
        assert!(
            super::ENABLED || !required,
            "KVSIM_REQUIRE_INVARIANTS is set but the invariant checks are compiled out: \
             build with --features invariants (or in debug)"
        );
    }

    /// The macros check when the checks are on, and do nothing otherwise.
    #[test]
    fn checks_follow_the_build() {
        let fired = |f: fn()| std::panic::catch_unwind(f).is_err();
        let on = cfg!(any(debug_assertions, feature = "invariants"));
        assert_eq!(fired(|| invariant!(1 + 1 == 3, "arithmetic")), on);
        assert_eq!(fired(|| invariant_eq!(1 + 1, 3)), on);
        assert_eq!(fired(|| invariant_violated!("unreachable")), on);
        assert!(!fired(|| invariant!(1 + 1 == 2)));
    }
}
