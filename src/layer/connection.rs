//! How a layer's inputs reach its units: a weight matrix, trainable functions (Cai et al.
//! 2017), or the memory function. Every kind adds a bias and applies the layer's activation.

use super::functional::Family;
use crate::error::{Result, invalid};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Connection {
    /// z = x W + b.
    #[default]
    Dense,
    /// z_j = sum_i f(x_i; theta_ij) + b_j with one of the twenty function families.
    Functional(Family),
    /// z_j(t) = sum_i m_ij(t) + b_j, m_ij(t) = tanh(a x_i(t) + c m_ij(t-1) + d): rows are time
    /// steps.
    Memory,
}

/// Code of the memory function (after the families' 1..=20).
const MEMORY: i32 = 21;

impl Connection {
    pub fn code(self) -> i32 {
        match self {
            Connection::Dense => 0,
            Connection::Functional(f) => f.code(),
            Connection::Memory => MEMORY,
        }
    }

    pub fn from_code(code: i32) -> Result<Connection> {
        match code {
            0 => Ok(Connection::Dense),
            MEMORY => Ok(Connection::Memory),
            c if (1..=20).contains(&c) => Ok(Connection::Functional(Family::from_code(c)?)),
            c => Err(invalid!("connection code {c} is out of range (0 to 21) (dense, F01 to F20, memory)")),
        }
    }

    pub fn name(self) -> String {
        match self {
            Connection::Dense => "dense".into(),
            Connection::Functional(f) => format!("functional {}", f.name()),
            Connection::Memory => "memory".into(),
        }
    }

    pub fn is_dense(self) -> bool {
        self == Connection::Dense
    }

    /// Parameters of an n_in x n_out layer, bias included (a tied dense layer owns only its bias).
    pub fn params(self, n_in: usize, n_out: usize) -> Option<usize> {
        let k = match self {
            Connection::Dense => 1,
            Connection::Functional(f) => f.params_per_connection(),
            Connection::Memory => 3,
        };
        n_in.checked_mul(n_out)?.checked_mul(k)?.checked_add(n_out)
    }
}
