//! Per-parameter constraints, applied to every candidate before every loss evaluation.

use crate::error::{Result, invalid};

/// What values a parameter may take. The transform is a projection (KernelML's
/// `parameter_transform`): the loss never sees a vector that violates a constraint.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Constraint {
    /// Any real value.
    #[default]
    None,
    /// Values `<= 0` become `floor` (> 0), as KernelML's HIGGS example clips to 1e-6.
    Positive { floor: f64 },
    /// Clamped into `[low, high]`.
    Interval { low: f64, high: f64 },
    /// Always this value: the parameter is not optimised (and its interval has zero width).
    Fixed(f64),
}

/// KernelML's clip value for positive parameters.
pub const DEFAULT_FLOOR: f64 = 1e-6;

impl Constraint {
    /// `Positive` with KernelML's floor of 1e-6.
    pub fn positive() -> Constraint {
        Constraint::Positive { floor: DEFAULT_FLOOR }
    }

    pub fn validate(&self, what: &str) -> Result<()> {
        match *self {
            Constraint::None => Ok(()),
            Constraint::Positive { floor } => {
                if !(floor.is_finite() && floor > 0.0) {
                    return Err(invalid!("{what}: the positive constraint's floor {floor} must be finite and > 0"));
                }
                Ok(())
            }
            Constraint::Interval { low, high } => {
                if !(low.is_finite() && high.is_finite()) || low >= high {
                    return Err(invalid!(
                        "{what}: the interval constraint needs finite low < high, not [{low}, {high}]"
                    ));
                }
                Ok(())
            }
            Constraint::Fixed(v) => {
                if !v.is_finite() {
                    return Err(invalid!("{what}: the fixed value {v} is not finite"));
                }
                Ok(())
            }
        }
    }

    /// The nearest allowed value (NaN becomes the floor, the interval's midpoint or 0).
    pub fn apply(&self, x: f64) -> f64 {
        match *self {
            Constraint::None => x,
            Constraint::Positive { floor } => {
                if x > 0.0 {
                    x
                } else {
                    floor
                }
            }
            Constraint::Interval { low, high } => {
                if x.is_nan() {
                    0.5 * (low + high)
                } else {
                    x.clamp(low, high)
                }
            }
            Constraint::Fixed(v) => v,
        }
    }

    /// Whether `x` satisfies the constraint exactly.
    pub fn admits(&self, x: f64) -> bool {
        match *self {
            Constraint::None => true,
            Constraint::Positive { .. } => x > 0.0,
            Constraint::Interval { low, high } => x >= low && x <= high,
            Constraint::Fixed(v) => x == v,
        }
    }

    pub fn is_fixed(&self) -> bool {
        matches!(self, Constraint::Fixed(_))
    }
}
