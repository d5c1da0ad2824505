//! How the pool's idle workers wait for work during a training step: OpenMP's
//! `OMP_WAIT_POLICY` for this library's pools. One setting for the whole process.
//!
//! A training step is a chain of short parallel products with serial work between them. A worker
//! that sleeps between them takes tens of microseconds to wake (an interrupt to an idle virtual
//! CPU); one that spins picks up the next product at once, but burns its core while it waits,
//! which other processes on that core (other jobs, a second MPI rank, the application's own
//! threads) then do not get. So:
//!
//! - [`WaitPolicy::Spin`]: the workers spin for the whole step (OpenMP's `active`).
//! - [`WaitPolicy::SpinThenPark`]: a worker spins until it has found no work for the spin
//!   budget, then sleeps until the step's next parallel region wakes it (it sleeps through one
//!   gap). The serial gaps of a step on a quiet machine are well under the default budget
//!   (1 ms), so it spins through them; a worker that finds no work for longer is waiting on a
//!   thread that lost its core (a scheduler time slice is a few ms), and stops burning its own.
//!   Between steps the workers spin for the budget too, then rest asleep until the next step
//!   (for up to 100 ms) before they return to the pool's idle loop (`Spin` does the same).
//! - [`WaitPolicy::Park`]: no spinning during a step: idle workers sleep in the pool at once
//!   (after rayon's own few `sched_yield` rounds), as between steps (OpenMP's `passive`).
//!
//! Results do not depend on the policy: it changes who waits how, never which thread computes
//! which block or in which order sums are taken.
//!
//! The default is read once from `LATENT_WAIT_POLICY` (`spin`, `spin-then-park`, `park`;
//! OpenMP's `active` and `passive` are accepted for `spin` and `park`; case and surrounding
//! blanks are ignored) and `LATENT_WAIT_SPIN_US` (the spin budget of `spin-then-park` in
//! microseconds, at most [`MAX_SPIN`]). A value that does not parse is ignored: the built-in
//! default ([`DEFAULT_POLICY`], [`DEFAULT_SPIN`]) is used, and [`wait_policy`] shows which
//! policy is in force. [`set_wait_policy`] overrides both for the rest of the process.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Result, invalid};

/// The environment variable that chooses the policy (as `OMP_WAIT_POLICY` does for OpenMP).
pub const WAIT_POLICY_ENV: &str = "LATENT_WAIT_POLICY";
/// The environment variable that sets the spin budget of `spin-then-park`, in microseconds.
pub const SPIN_US_ENV: &str = "LATENT_WAIT_SPIN_US";
/// The longest spin budget accepted: one second (longer is spinning).
pub const MAX_SPIN: Duration = Duration::from_secs(1);
/// The spin budget of `spin-then-park` unless `LATENT_WAIT_SPIN_US` says otherwise (see
/// docs/threads_and_numerics.md, "Wait policy", for the measurements behind it: 1 ms did as well
/// as park under load in one round, 100 µs worse).
pub const DEFAULT_SPIN: Duration = Duration::from_millis(1);
/// The policy when neither `LATENT_WAIT_POLICY` nor [`set_wait_policy`] chose one.
pub const DEFAULT_POLICY: WaitPolicy = WaitPolicy::SpinThenPark(DEFAULT_SPIN);

/// How idle pool workers wait for the next parallel work of a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitPolicy {
    /// Spin for the whole step (OpenMP `active`): the fastest hand-off on an otherwise idle
    /// machine; burns every core the pool has for the length of the step.
    Spin,
    /// Spin until no work has come for this long, then sleep until the step's next parallel
    /// region wakes the worker, and spin again.
    SpinThenPark(Duration),
    /// Sleep at once when there is no work (OpenMP `passive`).
    Park,
}

impl WaitPolicy {
    /// How long a waiting thread spins before it sleeps: for ever (None) under `Spin`, the
    /// budget under `SpinThenPark`, not at all under `Park`.
    pub fn spin_for(self) -> Option<Duration> {
        match self {
            WaitPolicy::Spin => None,
            WaitPolicy::SpinThenPark(d) => Some(d),
            WaitPolicy::Park => Some(Duration::ZERO),
        }
    }

    /// Parses a policy name as `LATENT_WAIT_POLICY` takes it: `spin` (or `active`),
    /// `spin-then-park` (or `spin_then_park`, `hybrid`; with `spin` the budget), `park` (or
    /// `passive`), case-insensitive, blanks around ignored. `None` for anything else.
    pub fn parse(name: &str, spin: Duration) -> Option<WaitPolicy> {
        match name.trim().to_ascii_lowercase().as_str() {
            "spin" | "active" => Some(WaitPolicy::Spin),
            "spin-then-park" | "spin_then_park" | "hybrid" => Some(WaitPolicy::SpinThenPark(spin)),
            "park" | "passive" => Some(WaitPolicy::Park),
            _ => None,
        }
    }

    /// The policy's name as `LATENT_WAIT_POLICY` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            WaitPolicy::Spin => "spin",
            WaitPolicy::SpinThenPark(_) => "spin-then-park",
            WaitPolicy::Park => "park",
        }
    }

    /// `spin` budgets beyond [`MAX_SPIN`] are [`crate::Error::InvalidArgument`].
    pub fn check(&self) -> Result<()> {
        match self {
            WaitPolicy::SpinThenPark(d) if *d > MAX_SPIN => Err(invalid!(
                "a spin budget of {} µs is more than the maximum, {} µs",
                d.as_micros(),
                MAX_SPIN.as_micros()
            )),
            _ => Ok(()),
        }
    }

    fn encode(self) -> u64 {
        match self {
            WaitPolicy::Spin => 1,
            WaitPolicy::Park => 2,
            // The budget is at most a second: its nanoseconds fit in 62 bits.
            WaitPolicy::SpinThenPark(d) => 3 | ((d.as_nanos() as u64) << 2),
        }
    }

    fn decode(v: u64) -> WaitPolicy {
        match v & 3 {
            1 => WaitPolicy::Spin,
            2 => WaitPolicy::Park,
            _ => WaitPolicy::SpinThenPark(Duration::from_nanos(v >> 2)),
        }
    }
}

/// The policy in force, encoded; 0 = not read from the environment yet.
static POLICY: AtomicU64 = AtomicU64::new(0);

/// The policy `LATENT_WAIT_POLICY` and `LATENT_WAIT_SPIN_US` give (unparsable values ignored),
/// else [`DEFAULT_POLICY`].
pub fn env_wait_policy() -> WaitPolicy {
    from_env_values(std::env::var(WAIT_POLICY_ENV).ok().as_deref(), std::env::var(SPIN_US_ENV).ok().as_deref())
}

/// The spin budget `LATENT_WAIT_SPIN_US` gives (unparsable or beyond [`MAX_SPIN`]: ignored),
/// else [`DEFAULT_SPIN`].
pub fn env_spin() -> Duration {
    spin_of(std::env::var(SPIN_US_ENV).ok().as_deref())
}

fn spin_of(spin_us: Option<&str>) -> Duration {
    spin_us
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_micros)
        .filter(|d| *d <= MAX_SPIN)
        .unwrap_or(DEFAULT_SPIN)
}

/// What the two environment variables' values (None = unset) give.
pub fn from_env_values(policy: Option<&str>, spin_us: Option<&str>) -> WaitPolicy {
    let spin = spin_of(spin_us);
    match policy.and_then(|p| WaitPolicy::parse(p, spin)) {
        Some(p) => p,
        None => match DEFAULT_POLICY {
            WaitPolicy::SpinThenPark(_) => WaitPolicy::SpinThenPark(spin),
            p => p,
        },
    }
}

/// The policy in force: the last [`set_wait_policy`], else the environment's (read once).
pub fn wait_policy() -> WaitPolicy {
    let v = POLICY.load(Ordering::Relaxed);
    if v != 0 {
        return WaitPolicy::decode(v);
    }
    let p = env_wait_policy();
    // A concurrent set_wait_policy wins over the environment.
    match POLICY.compare_exchange(0, p.encode(), Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => p,
        Err(now) => WaitPolicy::decode(now),
    }
}

/// Sets the policy for the whole process from the next training step on (steps already
/// running finish with the one they started with). A spin budget beyond [`MAX_SPIN`] is
/// [`crate::Error::InvalidArgument`] and changes nothing.
pub fn set_wait_policy(policy: WaitPolicy) -> Result<()> {
    policy.check()?;
    POLICY.store(policy.encode(), Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_parse() {
        let d = Duration::from_micros(7);
        for (s, p) in [
            ("spin", WaitPolicy::Spin),
            (" ACTIVE\n", WaitPolicy::Spin),
            ("park", WaitPolicy::Park),
            ("Passive", WaitPolicy::Park),
            ("spin-then-park", WaitPolicy::SpinThenPark(d)),
            ("spin_then_park", WaitPolicy::SpinThenPark(d)),
            ("hybrid", WaitPolicy::SpinThenPark(d)),
        ] {
            assert_eq!(WaitPolicy::parse(s, d), Some(p), "{s:?}");
        }
        for s in ["", "spinning", "0", "turbo", "park-then-spin"] {
            assert_eq!(WaitPolicy::parse(s, d), None, "{s:?}");
        }
    }

    #[test]
    fn environment_values_fall_back_to_the_default() {
        assert_eq!(from_env_values(None, None), DEFAULT_POLICY);
        assert_eq!(from_env_values(Some("nonsense"), None), DEFAULT_POLICY);
        assert_eq!(from_env_values(Some("passive"), Some("junk")), WaitPolicy::Park);
        assert_eq!(
            from_env_values(Some("spin-then-park"), Some(" 250 ")),
            WaitPolicy::SpinThenPark(Duration::from_micros(250))
        );
        // A budget beyond a second, negative or not a number is ignored.
        for bad in ["2000000", "-5", "1e3", ""] {
            assert_eq!(
                from_env_values(Some("spin-then-park"), Some(bad)),
                WaitPolicy::SpinThenPark(DEFAULT_SPIN),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn encoding_round_trips() {
        for p in [
            WaitPolicy::Spin,
            WaitPolicy::Park,
            WaitPolicy::SpinThenPark(Duration::ZERO),
            WaitPolicy::SpinThenPark(Duration::from_nanos(123_456)),
            WaitPolicy::SpinThenPark(MAX_SPIN),
        ] {
            assert_eq!(WaitPolicy::decode(p.encode()), p);
        }
        assert!(WaitPolicy::SpinThenPark(MAX_SPIN + Duration::from_nanos(1)).check().is_err());
    }
}
