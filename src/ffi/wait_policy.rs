//! C API of the pools' wait policy (OpenMP's `OMP_WAIT_POLICY` for this library): the policy
//! is the engine's, [`crate::wait_policy`].

use super::*;
use crate::wait_policy::{WaitPolicy, env_spin, set_wait_policy, wait_policy};

/// How the library's idle pool workers wait for work during a training step (process-wide).
pub type latent_wait_policy = i32;
/// Spin for the whole step (OpenMP `active`): the fastest hand-off on a machine with nothing
/// else to run; burns every core of the pool for the length of the step.
pub const LATENT_WAIT_POLICY_SPIN: latent_wait_policy = 0;
/// Spin until no work has come for the spin budget (`LATENT_WAIT_SPIN_US` microseconds, default
/// 1000), then sleep until the end of the step's next parallel region, and spin again. The
/// default.
pub const LATENT_WAIT_POLICY_SPIN_THEN_PARK: latent_wait_policy = 1;
/// Sleep as soon as there is no work (OpenMP `passive`): for machines shared with other
/// busy processes, or more threads than cores.
pub const LATENT_WAIT_POLICY_PARK: latent_wait_policy = 2;

/// Sets the wait policy of every pool of the process, from the next training step on. It
/// overrides the environment (`LATENT_WAIT_POLICY`: `spin`, `spin-then-park`, `park`; OpenMP's
/// `active` and `passive` too; an unknown value there is ignored and the default kept).
/// LATENT_WAIT_POLICY_SPIN_THEN_PARK takes its spin budget from `LATENT_WAIT_SPIN_US` (default
/// 1000 µs). Results are bit-identical under every policy. Another value is
/// LATENT_STATUS_INVALID_ARGUMENT and changes nothing.
#[unsafe(no_mangle)]
pub extern "C" fn latent_set_wait_policy(policy: latent_wait_policy) -> latent_status {
    guard(|| {
        let p = match policy {
            LATENT_WAIT_POLICY_SPIN => WaitPolicy::Spin,
            LATENT_WAIT_POLICY_SPIN_THEN_PARK => WaitPolicy::SpinThenPark(env_spin()),
            LATENT_WAIT_POLICY_PARK => WaitPolicy::Park,
            v => {
                return Err(invalid!("wait policy {v} is not a latent_wait_policy (0 spin, 1 spin-then-park, 2 park)"));
            }
        };
        set_wait_policy(p)
    })
}

/// Writes the wait policy in force to *policy: the last latent_set_wait_policy, else the one
/// `LATENT_WAIT_POLICY` names, else the default (spin-then-park). NULL is
/// LATENT_STATUS_NULL_ARGUMENT.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn latent_get_wait_policy(policy: *mut latent_wait_policy) -> latent_status {
    guard(|| {
        out(policy, "policy")?;
        let v = match wait_policy() {
            WaitPolicy::Spin => LATENT_WAIT_POLICY_SPIN,
            WaitPolicy::SpinThenPark(_) => LATENT_WAIT_POLICY_SPIN_THEN_PARK,
            WaitPolicy::Park => LATENT_WAIT_POLICY_PARK,
        };
        // SAFETY: the out-pointer was checked non-NULL; it points to a writable value (the C contract).
        unsafe { put(policy, v) };
        Ok(())
    })
}
