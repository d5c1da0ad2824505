//! A layer through the primitives, forward and backward side by side: what
//! [`Backend::layer_forward`] and [`Backend::layer_backward`] do unless a backend does it its own
//! way (the CPU runs the layer's own code). A dense layer's products are row-major GEMMs on the
//! parameter buffer (tied layers read the mirrored encoder matrix transposed), bias and
//! activation one fused kernel, the bias gradient a product with a row of ones; a functional
//! layer is its two kernels.

#![forbid(unsafe_code)]

use super::ops::{Backend, Below, Gemm, Op};
use crate::error::{Error, Result};
use crate::layer::{Connection, Dense};

/// z = x W + b (or the functional sum), y = f(z) over `rows` rows (z keeps its bias).
pub(crate) fn forward<B: Backend>(
    be: &B,
    l: &Dense,
    params: &B::Buf,
    x: &B::Buf,
    z: &mut B::Buf,
    y: &mut B::Buf,
    rows: usize,
) -> Result<()> {
    match l.connection {
        Connection::Functional(family) => {
            be.run(Op::FunctionalForward {
                params,
                p: l.w,
                b: l.b,
                x: (x, 0),
                z: (z, 0),
                rows,
                n_in: l.n_in,
                n_out: l.n_out,
                family,
                sign_seed: l.sign_seed,
            })?;
            be.run(Op::ActOnly { z: (z, 0), y: (y, 0), n: rows * l.n_out, act: l.activation })
        }
        Connection::Memory => Err(memory()),
        Connection::Dense => {
            be.gemm(weight_product(l, rows), x, params, z)?;
            be.run(Op::BiasAct { z: (z, 0), b: (params, l.b), y: (y, 0), rows, cols: l.n_out, act: l.activation })
        }
    }
}

pub(crate) fn memory() -> Error {
    Error::Unsupported(
        "a memory layer's state runs row after row, which this backend does not run (the CPU does): move the network to the CPU"
            .into(),
    )
}

/// Given dL/dz, writes dW (adds it when the layer accumulates: tied weights get two
/// contributions), db and, when `dx` is given, dL/dx = dz W^T, times the layer below's f'(z)
/// when `below` is given. `ones` holds at least `rows` ones.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<B: Backend>(
    be: &B,
    l: &Dense,
    params: &B::Buf,
    grads: &mut B::Buf,
    x: &B::Buf,
    dz: &B::Buf,
    ones: &B::Buf,
    dx: Option<&mut B::Buf>,
    below: Option<Below<'_, B>>,
    rows: usize,
) -> Result<()> {
    let dx = match l.connection {
        Connection::Memory => return Err(memory()),
        Connection::Functional(family) => {
            let mut dx = dx;
            be.run(Op::FunctionalBackward {
                params,
                p: l.w,
                b: l.b,
                grads,
                x: (x, 0),
                dz: (dz, 0),
                dx: dx.as_deref_mut().map(|d| (d, 0)),
                rows,
                n_in: l.n_in,
                n_out: l.n_out,
                family,
                sign_seed: l.sign_seed,
            })?;
            dx
        }
        Connection::Dense => dense_backward(be, l, params, grads, x, dz, ones, dx, rows)?,
    };
    if let (Some(d), Some((act, z, y))) = (dx, below) {
        be.run(Op::ActBackward { d: (d, 0), z: (z, 0), y: (y, 0), n: rows * l.n_in, act })?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn dense_backward<'d, B: Backend>(
    be: &B,
    l: &Dense,
    params: &B::Buf,
    grads: &mut B::Buf,
    x: &B::Buf,
    dz: &B::Buf,
    ones: &B::Buf,
    dx: Option<&'d mut B::Buf>,
    rows: usize,
) -> Result<Option<&'d mut B::Buf>> {
    let beta = if l.accumulate_dw { 1.0 } else { 0.0 };
    if l.tied {
        // the shared matrix V is n_out x n_in here: dV += dz^T x
        let dw = gemm_rm(l.n_out, l.n_in, rows, true, false, 1.0, beta, 0, l.n_out, 0, l.n_in, l.w, l.n_in);
        be.gemm(dw, dz, x, grads)?;
    } else {
        let dw = gemm_rm(l.n_in, l.n_out, rows, true, false, 1.0, beta, 0, l.n_in, 0, l.n_out, l.w, l.n_out);
        be.gemm(dw, x, dz, grads)?;
    }
    let mut db = column_sums(1.0, rows, l.n_out);
    db.c_off = l.b;
    be.gemm(db, ones, dz, grads)?;
    if let Some(dx) = dx {
        let g = if l.tied {
            gemm_rm(rows, l.n_in, l.n_out, false, false, 1.0, 0.0, 0, l.n_out, l.w, l.n_in, 0, l.n_in)
        } else {
            gemm_rm(rows, l.n_in, l.n_out, false, true, 1.0, 0.0, 0, l.n_out, l.w, l.n_out, 0, l.n_in)
        };
        be.gemm(g, dz, params, dx)?;
        return Ok(Some(dx));
    }
    Ok(None)
}

/// z = x W (or x V^T for a tied layer) as a row-major GEMM on the parameter buffer.
pub(crate) fn weight_product(l: &Dense, rows: usize) -> Gemm {
    if l.tied {
        gemm_rm(rows, l.n_out, l.n_in, false, true, 1.0, 0.0, 0, l.n_in, l.w, l.n_in, 0, l.n_out)
    } else {
        gemm_rm(rows, l.n_out, l.n_in, false, false, 1.0, 0.0, 0, l.n_in, l.w, l.n_out, 0, l.n_out)
    }
}

/// alpha * (column sums of a rows x cols matrix) as ones(1 x rows) . M.
pub(crate) fn column_sums(alpha: f32, rows: usize, cols: usize) -> Gemm {
    gemm_rm(1, cols, rows, false, false, alpha, 0.0, 0, rows, 0, cols, 0, cols)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_rm(
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    alpha: f32,
    beta: f32,
    a_off: usize,
    lda: usize,
    b_off: usize,
    ldb: usize,
    c_off: usize,
    ldc: usize,
) -> Gemm {
    Gemm { m, n, k, ta, tb, alpha, beta, a_off, lda, b_off, ldb, c_off, ldc }
}
