//! Data-parallel training across processes: every process (an MPI rank) holds the same training
//! rows and the same seed, so all of them draw the same global minibatch; each computes the
//! gradient of its contiguous slice of it, and the slices' gradients are summed across the
//! processes, weighted by their rows, before every optimizer step. Every process then takes
//! the same step and ends with the same parameters: single-process training with the same
//! global minibatch, up to the order of floating-point sums.

use crate::error::{Result, invalid};

/// The collective operations training needs. An MPI communicator is one (feature `mpi`); a
/// single process is the trivial one.
pub trait Collective: Send + Sync {
    /// This process's index, 0..size.
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Element-wise sum over the processes, in place on every process.
    fn all_reduce_sum_f32(&self, buf: &mut [f32]);
    fn all_reduce_sum_f64(&self, buf: &mut [f64]);
    /// Copies `root`'s buffer to every process.
    fn broadcast_f32(&self, buf: &mut [f32], root: usize);
}

/// Rows first..end of a global minibatch of `rows` that process `rank` of `size` takes.
pub fn slice_of(rows: usize, rank: usize, size: usize) -> (usize, usize) {
    (rank * rows / size, (rank + 1) * rows / size)
}

/// Checks that every process trains on as many rows of as many columns, and that the
/// parameters agree in number; then gives every process rank 0's parameters.
pub fn agree(c: &dyn Collective, rows: usize, cols: usize, params: &mut [f32]) -> Result<()> {
    let n = c.size() as f64;
    // Each quantity and its negation, summed: equal everywhere iff sum == n * mine.
    let mine = [rows as f64, cols as f64, params.len() as f64];
    let mut sums = mine;
    c.all_reduce_sum_f64(&mut sums);
    for ((what, &m), &s) in ["training rows", "columns", "parameters"].iter().zip(&mine).zip(&sums) {
        if (s - n * m).abs() > 0.5 {
            return Err(invalid!(
                "the {} processes disagree on the number of {what}: this one (rank {}) has {m}, their mean is {}",
                c.size(),
                c.rank(),
                s / n
            ));
        }
    }
    c.broadcast_f32(params, 0);
    Ok(())
}

#[cfg(feature = "mpi")]
pub use self::mpi_comm::MpiCollective;

/// Whether this build trains across MPI ranks (the cargo feature `mpi`).
pub fn mpi_compiled() -> bool {
    cfg!(feature = "mpi")
}

/// The collective over the MPI communicator whose Fortran handle is `fint` (duplicated);
/// Unsupported in a build without MPI.
pub fn mpi_from_fint(fint: i32) -> Result<std::sync::Arc<dyn Collective>> {
    #[cfg(feature = "mpi")]
    {
        Ok(std::sync::Arc::new(MpiCollective::from_fint(fint)?))
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = fint;
        Err(crate::error::Error::Unsupported(
            "this build has no MPI support: rebuild with `cargo build --release --features mpi` (needs libopenmpi-dev and libclang-dev)".into(),
        ))
    }
}

#[cfg(feature = "mpi")]
mod mpi_comm {
    use super::Collective;
    use crate::error::{Result, invalid};
    use mpi::collective::SystemOperation;
    use mpi::topology::{Communicator, SimpleCommunicator};
    use mpi::traits::*;

    /// An MPI communicator. The caller initialises MPI (MPI_Init) and finalises it after the
    /// library is done with the communicator.
    pub struct MpiCollective {
        comm: SimpleCommunicator,
    }

    // SAFETY: the trainer calls the collectives from the thread that called fit() only (MPI's
    // MPI_THREAD_FUNNELED); the handle is only an integer or pointer that MPI owns.
    unsafe impl Send for MpiCollective {}
    // SAFETY: as for Send: every MPI call is made from the fitting thread.
    unsafe impl Sync for MpiCollective {}

    impl MpiCollective {
        /// A duplicate of the communicator with Fortran handle `fint` (MPI_Comm_c2f of a C
        /// communicator, e.g. MPI_COMM_WORLD), so that the library's messages never mix with
        /// the caller's.
        pub fn from_fint(fint: i32) -> Result<MpiCollective> {
            let mut flag = 0;
            // SAFETY: MPI_Initialized may be called at any time; flag is a live int.
            unsafe { mpi::ffi::MPI_Initialized(&mut flag) };
            if flag == 0 {
                return Err(invalid!("MPI is not initialised: call MPI_Init before passing a communicator"));
            }
            // SAFETY: MPI is initialised (checked above); f2c only converts a handle.
            let raw = unsafe { mpi::ffi::MPI_Comm_f2c(fint) };
            // SAFETY: reads a constant handle of the initialised MPI library.
            if raw == unsafe { mpi::ffi::RSMPI_COMM_NULL } {
                return Err(invalid!("communicator {fint} is MPI_COMM_NULL"));
            }
            // SAFETY: reads a constant handle of the initialised MPI library.
            let mut dup = unsafe { mpi::ffi::RSMPI_COMM_NULL };
            // SAFETY: raw is a valid communicator (not NULL, checked above); dup is a live handle slot.
            let rc = unsafe { mpi::ffi::MPI_Comm_dup(raw, &mut dup) };
            if rc != 0 {
                return Err(invalid!("MPI_Comm_dup failed on communicator {fint} (error {rc})"));
            }
            // SAFETY: dup is a communicator MPI_Comm_dup just created, owned by this value from now on.
            let comm = unsafe { SimpleCommunicator::from_raw(dup) };
            Ok(MpiCollective { comm })
        }
    }

    impl Collective for MpiCollective {
        fn rank(&self) -> usize {
            self.comm.rank() as usize
        }
        fn size(&self) -> usize {
            self.comm.size() as usize
        }
        fn all_reduce_sum_f32(&self, buf: &mut [f32]) {
            let send = buf.to_vec();
            self.comm.all_reduce_into(&send[..], buf, SystemOperation::sum());
        }
        fn all_reduce_sum_f64(&self, buf: &mut [f64]) {
            let send = buf.to_vec();
            self.comm.all_reduce_into(&send[..], buf, SystemOperation::sum());
        }
        fn broadcast_f32(&self, buf: &mut [f32], root: usize) {
            self.comm.process_at_rank(root as i32).broadcast_into(buf);
        }
    }
}
