//! The lock of a model handle (network, VAE), and what a fit lets its own progress callback do.
//!
//! A fit holds the model for its whole run. Inside the fit's progress callback (on the fitting
//! thread) the callback may read the model, which is then between steps: reads see the current
//! parameters through a *view* the fit lends for the duration of the callback. Every other call
//! on a handle being fitted (a change from the callback, anything from another thread, a
//! Monte-Carlo link callback) returns `BUSY` at once instead of waiting: nothing can wait on
//! a fit that is waiting on it.

use std::cell::RefCell;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

use crate::error::{Error, Result};

thread_local! {
    /// (handle key, model) lent by fits on this thread to their running progress callbacks.
    static VIEWS: RefCell<Vec<(usize, *const ())>> = const { RefCell::new(Vec::new()) };
}

/// How often a call waiting for a handle's lock tries again.
const POLL: std::time::Duration = std::time::Duration::from_micros(50);

/// How many polls (of [`POLL`], about 20 ms with the sleeps' overshoot) a new reader holds back
/// for a waiting change.
const READER_DEFERS: u32 = 200;

/// A model behind a readers-writer lock that knows when it is being fitted.
pub(crate) struct Locked<T> {
    inner: RwLock<T>,
    fitting: AtomicBool,
    /// Changes (set_params, set_threads) waiting for the lock: new readers hold back for them
    /// (up to [`READER_DEFERS`]), so that a stream of inference calls from several threads,
    /// which always left one holding the lock, cannot keep a change waiting (an outside test
    /// saw set_params wait 51 s behind four threads encoding).
    writers: AtomicUsize,
    /// What the handle is, for messages ("network", "VAE").
    kind: &'static str,
}

/// Read access: a shared lock, or the view a fit lends its progress callback.
pub(crate) enum Read<'a, T> {
    Lock(RwLockReadGuard<'a, T>),
    View(&'a T),
}

impl<T> Deref for Read<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Read::Lock(g) => g,
            Read::View(v) => v,
        }
    }
}

/// The model held by a fit; the handle is busy until it is dropped.
pub(crate) struct Fitting<'a, T> {
    guard: RwLockWriteGuard<'a, T>,
    owner: &'a Locked<T>,
}

impl<T> Deref for Fitting<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for Fitting<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for Fitting<'_, T> {
    fn drop(&mut self) {
        self.owner.fitting.store(false, Ordering::Release);
    }
}

impl<T> Locked<T> {
    pub(crate) fn new(v: T, kind: &'static str) -> Locked<T> {
        Locked { inner: RwLock::new(v), fitting: AtomicBool::new(false), writers: AtomicUsize::new(0), kind }
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }

    fn busy(&self, what: &str) -> Error {
        Error::Busy(format!(
            "the {} is being trained: {what} while its fit runs is refused (from the fit's progress callback, read-only calls and save are allowed)",
            self.kind
        ))
    }

    /// Shared access for an inference call: the lent view inside the fit's own progress
    /// callback, BUSY during any other fit, otherwise the read lock (waiting only for a short
    /// change such as set_params).
    pub(crate) fn read(&self) -> Result<Read<'_, T>> {
        if let Some(p) = VIEWS.with(|v| v.borrow().iter().rev().find(|(k, _)| *k == self.key()).map(|(_, p)| *p)) {
            // SAFETY: the pointer was lent by `lend` from a `&T` that outlives the callback now
            // running on this thread, and is removed before that borrow ends.
            return Ok(Read::View(unsafe { &*(p as *const T) }));
        }
        let mut deferred = 0;
        loop {
            if self.fitting.load(Ordering::Acquire) {
                return Err(self.busy("reading it from outside its progress callback"));
            }
            // A change is waiting: let the readers inside drain first. Bounded, so that a
            // thread that already holds a read of this handle (and so keeps the change out)
            // is not stopped for good.
            if deferred < READER_DEFERS && self.writers.load(Ordering::Acquire) > 0 {
                deferred += 1;
                std::thread::sleep(POLL);
                continue;
            }
            match self.inner.try_read() {
                Ok(g) => return Ok(Read::Lock(g)),
                Err(TryLockError::Poisoned(e)) => return Ok(Read::Lock(e.into_inner())),
                Err(TryLockError::WouldBlock) => std::thread::sleep(POLL),
            }
        }
    }

    /// Exclusive access for a change: BUSY while a fit runs (its callback included).
    pub(crate) fn write(&self) -> Result<RwLockWriteGuard<'_, T>> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.writers.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.writers);
        loop {
            if self.fitting.load(Ordering::Acquire) {
                return Err(self.busy("changing it"));
            }
            match self.inner.try_write() {
                Ok(g) => return Ok(g),
                Err(TryLockError::Poisoned(e)) => return Ok(e.into_inner()),
                Err(TryLockError::WouldBlock) => std::thread::sleep(POLL),
            }
        }
    }

    /// Exclusive access for a fit: the handle is busy for everyone else until the guard drops
    /// (the fit waits only for inference calls already running).
    pub(crate) fn fit(&self) -> Result<Fitting<'_, T>> {
        if self.fitting.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(self.busy("a second fit"));
        }
        let guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        Ok(Fitting { guard, owner: self })
    }

    /// Runs `f` (a progress callback of this handle's fit) with `model` readable through the
    /// handle on this thread.
    pub(crate) fn lend<R>(&self, model: &T, f: impl FnOnce() -> R) -> R {
        struct Unlend;
        impl Drop for Unlend {
            fn drop(&mut self) {
                VIEWS.with(|v| v.borrow_mut().pop());
            }
        }
        VIEWS.with(|v| v.borrow_mut().push((self.key(), model as *const T as *const ())));
        let _unlend = Unlend;
        f()
    }
}
