//! The CUDA backend: cudarc over the driver API, the kernels of this folder compiled by NVRTC
//! once per process (per compute capability) and loaded once per device, cuBLAS for the
//! products. Nothing is linked at build time: the libraries are opened at first use, and a
//! machine without them gets `Error::Unsupported`, never a panic (cudarc panics when a library
//! is missing, so each is checked first, and every entry point runs under catch_unwind).
//!
//! Kernel arguments are passed as raw device addresses (a buffer's address plus the view's
//! offset, bounds-checked here), so one launch helper serves every kernel. Everything runs on
//! one stream, in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg};

use super::ops::{Backend, Gemm, In, Op, Out, SLOTS};
use super::{DeviceInfo, kernel_names, kernel_source};
use crate::error::{Error, Result};
use crate::optim::OptimizerKind;

/// Threads per block of the elementwise kernels.
const BLOCK: u32 = 256;

fn internal(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Internal(format!("CUDA {what}: {e:?}"))
}

fn driver_err(what: &str, e: cudarc::driver::DriverError) -> Error {
    if e.0 == cudarc::driver::sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        Error::OutOfMemory(format!("CUDA {what}: the device is out of memory"))
    } else {
        internal(what, e)
    }
}

/// Runs `f`, turning a panic inside cudarc into an error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Error::Internal(format!("CUDA {what} failed inside cudarc: {msg}")))
        }
    }
}

/// Whether the driver library can be opened at all.
fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

fn no_driver() -> Error {
    Error::Unsupported("no CUDA driver (libcuda.so) on this machine".into())
}

pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    if !driver_present() {
        return Err(no_driver());
    }
    guarded("device query", || {
        let n = CudaContext::device_count().map_err(|e| driver_err("device count", e))?;
        let mut out = Vec::new();
        for ordinal in 0..n.max(0) as usize {
            let ctx = CudaContext::new(ordinal).map_err(|e| driver_err("context", e))?;
            let (free, total) = ctx.mem_get_info().map_err(|e| driver_err("memory info", e))?;
            out.push(DeviceInfo {
                ordinal,
                name: ctx.name().map_err(|e| driver_err("device name", e))?,
                total_memory: total as u64,
                free_memory: free as u64,
                compute_capability: ctx.compute_capability().map_err(|e| driver_err("compute capability", e))?,
            });
        }
        Ok(out)
    })
}

/// Compiles the kernel source for `arch` (e.g. "compute_90") with NVRTC and returns the PTX and
/// NVRTC's log (empty when there was nothing to say). Needs only libnvrtc, no GPU.
pub fn compile_ptx(arch: &str) -> Result<(String, String)> {
    compile_source(&kernel_source(), arch)
}

/// compile_ptx() of any source (the tests feed it a broken kernel).
pub fn compile_source(source: &str, arch: &str) -> Result<(String, String)> {
    // SAFETY: only tries to dlopen the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(Error::Unsupported("no NVRTC library (libnvrtc.so.13) on this machine".into()));
    }
    guarded("NVRTC", || {
        use cudarc::nvrtc::result as nv;
        let src = std::ffi::CString::new(source).map_err(|e| internal("kernel source", e))?;
        let name = c"latent_kernels.cu";
        let prog = nv::create_program(&src, Some(name)).map_err(|e| internal("NVRTC program", e))?;
        let opts = [format!("--gpu-architecture={arch}"), "--std=c++17".to_string(), "-default-device".to_string()];
        // SAFETY: prog is a live program; the options outlive the call.
        let compiled = unsafe { nv::compile_program(prog, &opts) };
        // SAFETY: prog is a live program (compiled or not, it has a log).
        let log = unsafe { nv::get_program_log(prog) }
            .map(|l| l.iter().map(|&c| c as u8).take_while(|&c| c != 0).map(char::from).collect::<String>())
            .unwrap_or_default();
        let result = match compiled {
            // SAFETY: prog compiled successfully, so it has PTX.
            Ok(()) => unsafe { nv::get_ptx(prog) }
                .map(|p| p.iter().map(|&c| c as u8).take_while(|&c| c != 0).map(char::from).collect::<String>())
                .map_err(|e| internal("NVRTC PTX", e)),
            Err(e) => Err(Error::Internal(format!("NVRTC could not compile the kernels ({e:?}):\n{log}"))),
        };
        // SAFETY: prog is not used after this.
        let _ = unsafe { nv::destroy_program(prog) };
        Ok((result?, log.trim().to_string()))
    })
}

/// PTX per architecture, compiled once per process.
fn ptx_for(arch: String) -> Result<String> {
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache.lock().map_err(|_| internal("PTX cache", "poisoned"))?.get(&arch) {
        return Ok(p.clone());
    }
    let (ptx, _) = compile_ptx(&arch)?;
    cache.lock().map_err(|_| internal("PTX cache", "poisoned"))?.insert(arch, ptx.clone());
    Ok(ptx)
}

/// The loaded kernels of one device, shared by every backend on it.
struct Kernels {
    functions: HashMap<String, CudaFunction>,
}

fn kernels_for(ctx: &Arc<CudaContext>, ordinal: usize) -> Result<Arc<Kernels>> {
    static LOADED: OnceLock<Mutex<HashMap<usize, Arc<Kernels>>>> = OnceLock::new();
    let loaded = LOADED.get_or_init(Default::default);
    if let Some(k) = loaded.lock().map_err(|_| internal("module cache", "poisoned"))?.get(&ordinal) {
        return Ok(k.clone());
    }
    let (major, minor) = ctx.compute_capability().map_err(|e| driver_err("compute capability", e))?;
    let ptx = ptx_for(format!("compute_{major}{minor}"))?;
    let module = ctx.load_module(cudarc::nvrtc::Ptx::from_src(ptx)).map_err(|e| driver_err("module load", e))?;
    let mut functions = HashMap::new();
    for name in kernel_names() {
        let f = module.load_function(&name).map_err(|e| driver_err("kernel lookup", e))?;
        functions.insert(name, f);
    }
    let k = Arc::new(Kernels { functions });
    loaded.lock().map_err(|_| internal("module cache", "poisoned"))?.insert(ordinal, k.clone());
    Ok(k)
}

/// One GPU: its context, a stream, a cuBLAS handle, the kernels and the accumulators.
pub struct Cuda {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// The copy engine's stream (streamed minibatches), and per staging slot its pinned host
    /// buffer and the event of its last copy.
    copy: Arc<CudaStream>,
    staging: Mutex<[Staging; 2]>,
    blas: cudarc::cublas::CudaBlas,
    kernels: Arc<Kernels>,
    slots: CudaSlice<f64>,
    /// Blocks of a full grid: enough to fill every multiprocessor several times.
    max_blocks: u32,
    tf32: bool,
}

#[derive(Default)]
struct Staging {
    pinned: Option<cudarc::driver::PinnedHostSlice<f32>>,
    done: Option<cudarc::driver::CudaEvent>,
}

/// A view (buffer, offset) as a launch reads it, whether the op reads or writes it.
trait View<T> {
    fn parts(&self) -> (&CudaSlice<T>, usize);
}

impl<T> View<T> for (&CudaSlice<T>, usize) {
    fn parts(&self) -> (&CudaSlice<T>, usize) {
        (self.0, self.1)
    }
}

impl<T> View<T> for (&mut CudaSlice<T>, usize) {
    fn parts(&self) -> (&CudaSlice<T>, usize) {
        (&*self.0, self.1)
    }
}

/// A kernel argument: a device address or a value.
enum Arg {
    Ptr(u64),
    I32(i32),
    U64(u64),
    F32(f32),
    F64(f64),
}

impl Cuda {
    /// Opens GPU `ordinal`: Err(Unsupported) without a driver, a GPU of that ordinal, NVRTC or
    /// cuBLAS.
    pub fn new(ordinal: usize) -> Result<Cuda> {
        if !driver_present() {
            return Err(no_driver());
        }
        // SAFETY: only tries to dlopen the library.
        if !unsafe { cudarc::cublas::sys::is_culib_present() } {
            return Err(Error::Unsupported("no cuBLAS library (libcublas.so.13) on this machine".into()));
        }
        guarded("initialisation", || {
            let n = CudaContext::device_count().map_err(|e| driver_err("device count", e))?;
            if ordinal >= n.max(0) as usize {
                return Err(Error::Unsupported(format!("no CUDA device {ordinal}: this machine has {n}")));
            }
            let ctx = CudaContext::new(ordinal).map_err(|e| driver_err("context", e))?;
            // The backend orders its two streams itself (upload_async records and waits on its
            // own events), so cudarc's per-buffer events, which would add an event record and
            // wait to every pointer of every launch once a second stream exists, stay off.
            // SAFETY: every buffer is used on the compute stream, except the staging targets,
            // whose copies are ordered by those explicit events.
            unsafe { ctx.disable_event_tracking() };
            let kernels = kernels_for(&ctx, ordinal)?;
            let stream = ctx.default_stream();
            let blas = cudarc::cublas::CudaBlas::new(stream.clone()).map_err(|e| internal("cuBLAS handle", e))?;
            let slots = stream.alloc_zeros::<f64>(SLOTS).map_err(|e| driver_err("allocation", e))?;
            let sms = ctx.attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT).unwrap_or(80);
            let copy = ctx.new_stream().map_err(|e| driver_err("copy stream", e))?;
            Ok(Cuda {
                ordinal,
                ctx,
                stream,
                copy,
                staging: Mutex::new(Default::default()),
                blas,
                kernels,
                slots,
                max_blocks: (sms.max(1) as u32) * 8,
                tf32: false,
            })
        })
    }

    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// TF32 tensor cores for the products (about 10 bits of mantissa in the multiply, so
    /// results differ from f32 by about 1e-3 relative).
    pub fn set_tf32(&mut self, on: bool) -> Result<()> {
        use cudarc::cublas::sys::cublasMath_t;
        let mode = if on { cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH } else { cublasMath_t::CUBLAS_DEFAULT_MATH };
        self.ctx.bind_to_thread().map_err(|e| driver_err("context", e))?;
        // SAFETY: a live handle.
        unsafe { cudarc::cublas::sys::cublasSetMathMode(*self.blas.handle(), mode) }
            .result()
            .map_err(|e| internal("math mode", e))?;
        self.tf32 = on;
        Ok(())
    }

    pub fn tf32(&self) -> bool {
        self.tf32
    }

    /// The address of elements off..off + n of `b`, checked against its length.
    fn ptr<T>(&self, b: &CudaSlice<T>, off: usize, n: usize) -> Result<u64> {
        if off + n > b.len() {
            return Err(Error::Internal(format!("device view {off}+{n} past a buffer of {}", b.len())));
        }
        let (p, _g) = b.device_ptr(&self.stream);
        Ok(p + (std::mem::size_of::<T>() * off) as u64)
    }

    /// A view of `n` elements as a kernel's pointer argument.
    fn p<T>(&self, v: &impl View<T>, n: usize) -> Result<Arg> {
        let (b, off) = v.parts();
        Ok(Ptr(self.ptr(b, off, n)?))
    }

    fn slot_ptr(&self, slot: usize) -> u64 {
        let (p, _g) = self.slots.device_ptr(&self.stream);
        p + 8 * slot as u64
    }

    fn launch(&self, name: &str, threads: usize, max_blocks: u32, args: &[Arg]) -> Result<()> {
        if threads == 0 {
            return Ok(());
        }
        let f = self.kernels.functions.get(name).ok_or_else(|| Error::Internal(format!("no kernel {name}")))?;
        let blocks = (threads.div_ceil(BLOCK as usize) as u64).clamp(1, max_blocks as u64) as u32;
        let mut b = self.stream.launch_builder(f);
        for a in args {
            match a {
                Arg::Ptr(p) | Arg::U64(p) => b.arg(p),
                I32(v) => b.arg(v),
                Arg::F32(v) => b.arg(v),
                Arg::F64(v) => b.arg(v),
            };
        }
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: every pointer was bounds-checked against its buffer above and the argument
        // list matches the kernel's signature in the .cu file.
        unsafe { b.launch(cfg) }.map_err(|e| driver_err(name, e))?;
        Ok(())
    }

    fn i(n: usize) -> Arg {
        I32(n as i32)
    }
}

use Arg::{F32, F64, I32, Ptr, U64};

impl Backend for Cuda {
    type Buf = CudaSlice<f32>;
    type Ids = CudaSlice<u32>;

    fn alloc(&self, n: usize) -> Result<CudaSlice<f32>> {
        self.stream.alloc_zeros::<f32>(n.max(1)).map_err(|e| driver_err("allocation", e))
    }
    fn alloc_ids(&self, n: usize) -> Result<CudaSlice<u32>> {
        self.stream.alloc_zeros::<u32>(n.max(1)).map_err(|e| driver_err("allocation", e))
    }
    fn upload(&self, src: &[f32], dst: Out<'_, CudaSlice<f32>>) -> Result<()> {
        let (buf, off) = dst;
        if off + src.len() > buf.len() {
            return Err(Error::Internal("upload past the end of a device buffer".into()));
        }
        let mut v = buf.slice_mut(off..off + src.len());
        self.stream.memcpy_htod(src, &mut v).map_err(|e| driver_err("upload", e))
    }
    fn upload_ids(&self, src: &[u32], dst: &mut CudaSlice<u32>) -> Result<()> {
        if src.len() > dst.len() {
            return Err(Error::Internal("upload past the end of a device buffer".into()));
        }
        let mut v = dst.slice_mut(0..src.len());
        self.stream.memcpy_htod(src, &mut v).map_err(|e| driver_err("upload", e))
    }
    fn download(&self, src: In<'_, CudaSlice<f32>>, dst: &mut [f32]) -> Result<()> {
        let (buf, off) = src;
        if off + dst.len() > buf.len() {
            return Err(Error::Internal("download past the end of a device buffer".into()));
        }
        let v = buf.slice(off..off + dst.len());
        self.stream.memcpy_dtoh(&v, dst).map_err(|e| driver_err("download", e))?;
        self.synchronize()
    }
    fn copy(&self, src: In<'_, CudaSlice<f32>>, dst: Out<'_, CudaSlice<f32>>, n: usize) -> Result<()> {
        let (s, so) = src;
        let (d, doff) = dst;
        if so + n > s.len() || doff + n > d.len() {
            return Err(Error::Internal("copy past the end of a device buffer".into()));
        }
        let sv = s.slice(so..so + n);
        let mut dv = d.slice_mut(doff..doff + n);
        self.stream.memcpy_dtod(&sv, &mut dv).map_err(|e| driver_err("copy", e))
    }
    fn upload_async(
        &self,
        slot: usize,
        n: usize,
        fill: &mut dyn FnMut(&mut [f32]),
        dst: Out<'_, CudaSlice<f32>>,
    ) -> Result<()> {
        let mut staging = self.staging.lock().map_err(|_| internal("staging", "poisoned"))?;
        let st = staging.get_mut(slot).ok_or_else(|| Error::Internal(format!("no staging slot {slot}")))?;
        // The slot's previous copy must be done before its pinned buffer is written again.
        if let Some(ev) = &st.done {
            ev.synchronize().map_err(|e| driver_err("staging wait", e))?;
        }
        if st.pinned.as_ref().is_none_or(|p| p.len() < n) {
            st.pinned = None;
            // SAFETY: a fresh page-locked host buffer of n floats, written before it is read.
            let p =
                unsafe { self.ctx.alloc_pinned::<f32>(n.max(1)) }.map_err(|e| driver_err("pinned allocation", e))?;
            st.pinned = Some(p);
        }
        let pinned = st.pinned.as_mut().ok_or_else(|| internal("staging", "no buffer"))?;
        let host = pinned.as_mut_slice().map_err(|e| driver_err("pinned buffer", e))?;
        fill(&mut host[..n]);
        let target = self.ptr(dst.0, dst.1, n)?;
        self.ctx.bind_to_thread().map_err(|e| driver_err("context", e))?;
        // The copy waits for the work queued so far (it may read dst), then runs beside what follows.
        let queued = self.stream.record_event(None).map_err(|e| driver_err("event", e))?;
        self.copy.wait(&queued).map_err(|e| driver_err("stream wait", e))?;
        // SAFETY: target is a checked device range of n floats; host[..n] is page-locked and is
        // not written again before `done` (synchronized above on the slot's next use).
        unsafe { cudarc::driver::result::memcpy_htod_async(target, &host[..n], self.copy.cu_stream()) }
            .map_err(|e| driver_err("async upload", e))?;
        st.done = Some(self.copy.record_event(None).map_err(|e| driver_err("event", e))?);
        Ok(())
    }
    fn await_upload(&self, slot: usize) -> Result<()> {
        let staging = self.staging.lock().map_err(|_| internal("staging", "poisoned"))?;
        if let Some(ev) = staging.get(slot).and_then(|s| s.done.as_ref()) {
            self.stream.wait(ev).map_err(|e| driver_err("stream wait", e))?;
        }
        Ok(())
    }
    fn free_memory(&self) -> Option<u64> {
        self.ctx.mem_get_info().ok().map(|(free, _)| free as u64)
    }
    fn gemm(&self, g: Gemm, a: &CudaSlice<f32>, b: &CudaSlice<f32>, c: &mut CudaSlice<f32>) -> Result<()> {
        if g.m == 0 || g.n == 0 {
            return Ok(());
        }
        g.check(a.len(), b.len(), c.len())?;
        let (a_len, b_len, c_len) = g.extents();
        let pa = self.ptr(a, g.a_off, a_len)?;
        let pb = self.ptr(b, g.b_off, b_len)?;
        let pc = self.ptr(c, g.c_off, c_len)?;
        let op = |t: bool| if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
        // The raw cuBLAS call does not make the context current itself (a C caller may come from
        // any thread).
        self.ctx.bind_to_thread().map_err(|e| driver_err("context", e))?;
        // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
        // SAFETY: the three extents were checked against their buffers above.
        unsafe {
            cudarc::cublas::result::sgemm(
                *self.blas.handle(),
                op(g.tb),
                op(g.ta),
                g.n as i32,
                g.m as i32,
                g.k as i32,
                &g.alpha,
                pb as *const f32,
                g.ldb.max(1) as i32,
                pa as *const f32,
                g.lda.max(1) as i32,
                &g.beta,
                pc as *mut f32,
                g.ldc.max(1) as i32,
            )
        }
        .map_err(|e| internal("cuBLAS sgemm", e))
    }
    fn reset_slots(&self) -> Result<()> {
        let zeros = [0f64; SLOTS];
        self.ctx.bind_to_thread().map_err(|e| driver_err("context", e))?;
        let (p, _g) = self.slots.device_ptr(&self.stream);
        // SAFETY: the slots are SLOTS doubles; the copy is ordered on the stream.
        unsafe { cudarc::driver::result::memcpy_htod_async(p, &zeros[..], self.stream.cu_stream()) }
            .map_err(|e| driver_err("reset", e))?;
        self.synchronize()
    }
    fn read_slots(&self) -> Result<[f64; SLOTS]> {
        let mut out = [0f64; SLOTS];
        self.stream.memcpy_dtoh(&self.slots, &mut out[..]).map_err(|e| driver_err("read", e))?;
        self.synchronize()?;
        Ok(out)
    }
    fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| driver_err("synchronize", e))
    }

    fn run(&self, op: Op<'_, Self>) -> Result<()> {
        let full = self.max_blocks;
        let i = Cuda::i;
        match op {
            Op::BiasAct { z, b, y, rows, cols, act } => {
                let n = rows * cols;
                let args = [self.p(&z, n)?, self.p(&b, cols)?, self.p(&y, n)?, i(rows), i(cols), I32(act.code())];
                self.launch("lat_bias_act", n, full, &args)
            }
            Op::ActOnly { z, y, n, act } => {
                let args = [self.p(&z, n)?, self.p(&y, n)?, i(n), I32(act.code())];
                self.launch("lat_act_only", n, full, &args)
            }
            Op::FunctionalForward { params, p, b, x, z, rows, n_in, n_out, family, sign_seed } => {
                let k = family.params_per_connection();
                let args = [
                    self.p(&(params, p), k * n_in * n_out)?,
                    self.p(&(params, b), n_out)?,
                    self.p(&x, rows * n_in)?,
                    self.p(&z, rows * n_out)?,
                    i(rows),
                    i(n_in),
                    i(n_out),
                    I32(family.code()),
                    U64(sign_seed),
                ];
                self.launch("lat_functional_forward", rows * n_out, full, &args)
            }
            Op::FunctionalBackward { params, p, b, grads, x, dz, dx, rows, n_in, n_out, family, sign_seed } => {
                let k = family.params_per_connection();
                let theta = self.p(&(params, p), k * n_in * n_out)?;
                let xp = self.p(&x, rows * n_in)?;
                let dzp = self.p(&dz, rows * n_out)?;
                let args = [
                    theta,
                    xp,
                    dzp,
                    self.p(&(&*grads, p), k * n_in * n_out)?,
                    self.p(&(&*grads, b), n_out)?,
                    i(rows),
                    i(n_in),
                    i(n_out),
                    I32(family.code()),
                    U64(sign_seed),
                ];
                self.launch("lat_functional_backward_params", n_in * n_out, full, &args)?;
                if let Some(dx) = dx {
                    let args = [
                        self.p(&(params, p), k * n_in * n_out)?,
                        self.p(&x, rows * n_in)?,
                        self.p(&dz, rows * n_out)?,
                        self.p(&dx, rows * n_in)?,
                        i(rows),
                        i(n_in),
                        i(n_out),
                        I32(family.code()),
                        U64(sign_seed),
                    ];
                    self.launch("lat_functional_backward_input", rows * n_in, full, &args)?;
                }
                Ok(())
            }
            Op::ActBackward { d, z, y, n, act } => {
                let args = [self.p(&d, n)?, self.p(&z, n)?, self.p(&y, n)?, i(n), I32(act.code())];
                self.launch("lat_act_backward", n, full, &args)
            }
            Op::Loss { z, y, t, dz, el, n, loss, act, inv } => {
                let args = [
                    self.p(&z, n)?,
                    self.p(&y, n)?,
                    self.p(&t, n)?,
                    self.p(&dz, n)?,
                    self.p(&el, n)?,
                    i(n),
                    I32(loss.code()),
                    I32(act.code()),
                    F32(inv),
                ];
                self.launch("lat_loss", n, full, &args)
            }
            Op::LossRows { z, y, t, dz, el, rows, cols, loss, act, inv } => {
                let n = rows * cols;
                let args = [
                    self.p(&z, n)?,
                    self.p(&y, n)?,
                    self.p(&t, n)?,
                    self.p(&dz, n)?,
                    self.p(&el, rows)?,
                    i(rows),
                    i(cols),
                    I32(loss.code()),
                    I32(act.code()),
                    F32(inv),
                ];
                self.launch("lat_loss_rows", rows, full, &args)
            }
            Op::SoftmaxCe { logits, labels, dz, el, rows, classes, inv } => {
                let n = rows * classes;
                let args = [
                    self.p(&logits, n)?,
                    self.p(&labels, rows)?,
                    self.p(&dz, n)?,
                    self.p(&el, rows)?,
                    i(rows),
                    i(classes),
                    F32(inv),
                ];
                self.launch("lat_softmax_ce", rows, full, &args)
            }
            Op::KlValue { mean, el, cols, rho } => {
                let args = [self.p(&mean, cols)?, self.p(&el, cols)?, i(cols), F32(rho)];
                self.launch("lat_kl_value", cols, full, &args)
            }
            Op::KlGrad { dy, mean, rows, cols, rho, beta } => {
                let n = rows * cols;
                let args = [self.p(&dy, n)?, self.p(&mean, cols)?, i(rows), i(cols), F32(rho), F32(beta)];
                self.launch("lat_kl_grad", n, full, &args)
            }
            Op::L1 { dy, y, el, n, g } => {
                let args = [self.p(&dy, n)?, self.p(&y, n)?, self.p(&el, n)?, i(n), F32(g)];
                self.launch("lat_l1", n, full, &args)
            }
            Op::ActGradSq { z, y, out, n, act } => {
                let args = [self.p(&z, n)?, self.p(&y, n)?, self.p(&out, n)?, i(n), I32(act.code())];
                self.launch("lat_act_grad_sq", n, full, &args)
            }
            Op::ColSqSums { w, s, n_in, n_out } => {
                let args = [self.p(&w, n_in * n_out)?, self.p(&s, n_out)?, i(n_in), i(n_out)];
                self.launch("lat_col_sq_sums", n_out, full, &args)
            }
            Op::ContractiveDz { dz, z, y, s, rows, cols, act, scale } => {
                let n = rows * cols;
                let args = [
                    self.p(&dz, n)?,
                    self.p(&z, n)?,
                    self.p(&y, n)?,
                    self.p(&s, cols)?,
                    i(rows),
                    i(cols),
                    I32(act.code()),
                    F32(scale),
                ];
                self.launch("lat_contractive_dz", n, full, &args)
            }
            Op::ContractiveDw { dw, w, fsq, n_in, n_out, scale } => {
                let n = n_in * n_out;
                let args = [self.p(&dw, n)?, self.p(&w, n)?, self.p(&fsq, n_out)?, i(n_in), i(n_out), F32(scale)];
                self.launch("lat_contractive_dw", n, full, &args)
            }
            Op::Add { x, y, n } => {
                let args = [self.p(&x, n)?, self.p(&y, n)?, i(n)];
                self.launch("lat_add", n, full, &args)
            }
            Op::Mul { a, b, out, n } => {
                let args = [self.p(&a, n)?, self.p(&b, n)?, self.p(&out, n)?, i(n)];
                self.launch("lat_mul", n, full, &args)
            }
            Op::Corrupt { x, out, range, rows, cols, corruption, seed, ctr, first } => {
                let n = rows * cols;
                let (lo, hi) = match range {
                    Some((lo, hi)) => (self.ptr(lo.0, lo.1, cols)?, self.ptr(hi.0, hi.1, cols)?),
                    None => (0, 0),
                };
                let args = [
                    self.p(&x, n)?,
                    self.p(&out, n)?,
                    Ptr(lo),
                    Ptr(hi),
                    i(rows),
                    i(cols),
                    I32(corruption.code()),
                    F32(corruption.level()),
                    U64(seed),
                    U64(ctr),
                    U64(first as u64),
                ];
                self.launch("lat_corrupt", n, full, &args)
            }
            Op::Sample { y, s, n, kind, seed, ctr, first } => {
                let args = [
                    self.p(&y, n)?,
                    self.p(&s, n)?,
                    i(n),
                    I32(kind.code()),
                    F32(kind.sigma()),
                    U64(seed),
                    U64(ctr),
                    U64(first as u64),
                ];
                self.launch("lat_sample", n, full, &args)
            }
            Op::CodeNoise { z, y, ids, rows, cols, act, sigma, seed, bias: _ } => {
                let n = rows * cols;
                let args = [
                    self.p(&z, n)?,
                    self.p(&y, n)?,
                    self.p(&ids, rows)?,
                    i(rows),
                    i(cols),
                    I32(act.code()),
                    F32(sigma),
                    U64(seed),
                ];
                self.launch("lat_code_noise", n, full, &args)
            }
            Op::GatherRows { src, ids, dst, rows, cols } => {
                let n = rows * cols;
                // The ids index rows of src: its whole length is the bound.
                let src_len = src.0.len() - src.1.min(src.0.len());
                let args = [self.p(&src, src_len)?, self.p(&ids, rows)?, self.p(&dst, n)?, i(rows), i(cols)];
                self.launch("lat_gather_rows", n, full, &args)
            }
            Op::SplitRows { src, x, t, rows, cols, tw } => {
                let args = [
                    self.p(&src, rows * (cols + tw))?,
                    self.p(&x, rows * cols)?,
                    self.p(&t, rows * tw)?,
                    i(rows),
                    i(cols),
                    i(tw),
                ];
                self.launch("lat_split_rows", rows * (cols + tw), full, &args)
            }
            Op::Fill { x, n, v } => {
                let args = [self.p(&x, n)?, i(n), F32(v)];
                self.launch("lat_fill", n, full, &args)
            }
            Op::Sgd { p, g, v, n, wd, gscale, lr, mu, nesterov } => {
                let args = [
                    self.p(&p, n)?,
                    self.p(&g, n)?,
                    self.p(&v, n)?,
                    i(n),
                    F32(wd),
                    self.p(&(gscale, 0), 1)?,
                    F32(lr),
                    F32(mu),
                    I32(nesterov as i32),
                ];
                self.launch("lat_sgd", n, full, &args)
            }
            Op::Adaptive { kind, p, g, m, v, n, wd, gscale, lr, b1, b2, eps, bc1, bc2 } => {
                if matches!(kind, OptimizerKind::Adam | OptimizerKind::AdamW) {
                    // As optim::adam::update folds them.
                    let (step, inv_sqrt_bc2) = (lr / bc1 as f32, 1.0 / (bc2 as f32).sqrt());
                    let args = [
                        self.p(&p, n)?,
                        self.p(&g, n)?,
                        self.p(&m, n)?,
                        self.p(&v, n)?,
                        i(n),
                        F32(wd),
                        self.p(&(gscale, 0), 1)?,
                        F32(lr),
                        F32(b1),
                        F32(b2),
                        F32(eps),
                        F32(step),
                        F32(inv_sqrt_bc2),
                        I32((kind == OptimizerKind::AdamW) as i32),
                    ];
                    return self.launch("lat_adam", n, full, &args);
                }
                let args = [
                    self.p(&p, n)?,
                    self.p(&g, n)?,
                    self.p(&m, n)?,
                    self.p(&v, n)?,
                    i(n),
                    F32(wd),
                    self.p(&(gscale, 0), 1)?,
                    F32(lr),
                    F32(b1),
                    F32(b2),
                    F32(eps),
                    F32(lr / bc1 as f32),
                ];
                match kind {
                    OptimizerKind::RmsProp => self.launch("lat_rmsprop", n, full, &args),
                    OptimizerKind::AdaGrad => self.launch("lat_adagrad", n, full, &args),
                    OptimizerKind::AdaDelta => self.launch("lat_adadelta", n, full, &args),
                    OptimizerKind::AdaMax => self.launch("lat_adamax", n, full, &args),
                    OptimizerKind::Lion => self.launch("lat_lion", n, full, &args),
                    other => Err(Error::Internal(format!("{} is not an adaptive optimizer", other.name()))),
                }
            }
            Op::ClipFactor { factor, max_norm } => {
                let args =
                    [Ptr(self.slot_ptr(super::ops::Slot::GradSq as usize)), self.p(&(factor, 0), 1)?, F32(max_norm)];
                self.launch("lat_clip_factor", 1, 1, &args)
            }
            Op::Sum { x, n, slot, scale } => {
                let args = [self.p(&x, n)?, i(n), F64(scale), Ptr(self.slot_ptr(slot as usize))];
                self.launch("lat_sum_scaled", n, 256, &args)
            }
            Op::SumSq { x, n, slot } => {
                let args = [self.p(&x, n)?, i(n), Ptr(self.slot_ptr(slot as usize))];
                self.launch("lat_sum_sq", n, 256, &args)
            }
            Op::SumTo { x, n, out, scale } => {
                let args = [self.p(&x, n)?, i(n), F64(scale), self.p(&out, 1)?];
                // One block (the kernel's reduction is within a block); at least one thread
                // even for n = 0, so that 0 is written.
                self.launch("lat_sum_to", n.max(1), 1, &args)
            }
            Op::VaeReparam { head, eps, zs, rows, samples, latent, learned, const_lv, seed, ctr, first, batch } => {
                let total = rows * samples * latent;
                let hw = if learned { 2 * latent } else { latent };
                let args = [
                    self.p(&head, rows * hw)?,
                    self.p(&eps, total)?,
                    self.p(&zs, total)?,
                    i(rows),
                    i(samples),
                    i(latent),
                    I32(learned as i32),
                    F32(const_lv),
                    U64(seed),
                    U64(ctr),
                    i(first),
                    i(batch),
                ];
                self.launch("lat_vae_reparam", total, full, &args)
            }
            Op::VaeKl { head, kl_el, dhead, rows, latent, learned, const_lv, beta } => {
                let hw = if learned { 2 * latent } else { latent };
                let args = [
                    self.p(&head, rows * hw)?,
                    self.p(&kl_el, rows * latent)?,
                    self.p(&dhead, rows * hw)?,
                    i(rows),
                    i(latent),
                    I32(learned as i32),
                    F32(const_lv),
                    F32(beta),
                ];
                self.launch("lat_vae_kl", rows * latent, full, &args)
            }
            Op::VaeReparamBackward {
                head_z,
                head_y,
                dzs,
                eps,
                dhead,
                rows,
                samples,
                latent,
                learned,
                const_lv,
                act,
            } => {
                let hw = if learned { 2 * latent } else { latent };
                let total = rows * samples * latent;
                let args = [
                    self.p(&head_z, rows * hw)?,
                    self.p(&head_y, rows * hw)?,
                    self.p(&dzs, total)?,
                    self.p(&eps, total)?,
                    self.p(&dhead, rows * hw)?,
                    i(rows),
                    i(samples),
                    i(latent),
                    I32(learned as i32),
                    F32(const_lv),
                    I32(act.code()),
                ];
                self.launch("lat_vae_reparam_backward", rows * latent, full, &args)
            }
            Op::VaeRecon {
                x,
                pre,
                extra,
                parts,
                n_parts,
                n_extra,
                glob_cols,
                rec_el,
                dpre,
                glob_el,
                n,
                rows,
                d_cols,
                p_cols,
                scale,
            } => {
                let fields = super::ops::VAE_PART_FIELDS;
                let args = [
                    self.p(&x, rows * d_cols)?,
                    self.p(&pre, n * p_cols)?,
                    self.p(&extra, n_extra)?,
                    // The table's u32s are the kernel's non-negative ints, bit for bit.
                    self.p(&parts, n_parts * fields)?,
                    i(n_parts),
                    self.p(&rec_el, n * d_cols)?,
                    self.p(&dpre, n * p_cols)?,
                    self.p(&glob_el, n * glob_cols)?,
                    i(n),
                    i(rows),
                    i(d_cols),
                    i(p_cols),
                    F32(scale),
                ];
                self.launch("lat_vae_recon", n * d_cols, full, &args)
            }
        }
    }
}
