//! Training rows read from `.npy` files while a fit runs, for data larger than memory.
//!
//! A [`RowSource`] is what the epoch loop ([`crate::train::Trainer::fit_source`]) draws its
//! minibatches from: an in-memory [`Matrix`] (the ordinary fit, unchanged), or an
//! [`NpyStream`] over one `.npy` file or shards of them, which holds only a window of rows at a
//! time.
//!
//! Shuffling by blocks ([`BlockShuffle`]): the rows are cut into blocks of `block_rows`
//! contiguous rows. Each epoch permutes the blocks (seeded), groups them in that order into
//! windows of `window_blocks` blocks, and shuffles the rows within each window. A window is
//! read with one sequential read per block, and the epoch's next window is read (and decoded) on
//! a thread of its own while the current one trains, so the memory a streamed fit holds is the
//! parameters, the optimizer state, two windows, the minibatch buffers and 8 bytes of row index
//! per row.
//! When the whole file fits in one window the epoch order is a full shuffle, the same
//! permutation an in-memory fit draws.
//!
//! Reads go through `pread` ([`std::os::unix::fs::FileExt::read_exact_at`]) into the window
//! buffer, not through a memory map: the pages the kernel caches are not the process's
//! resident memory and are reclaimed under pressure, and a file truncated while it is read
//! ends the fit with [`Error::Io`] instead of the SIGBUS a mapping of it would raise.
//!
//! Files: NumPy `.npy`, format 1.0 to 3.0, `<f4` or `<f8` (converted to f32), C order, shape
//! `(n,)` or `(n, m)`; shards must agree on the column count. Values are checked as each
//! window is read (NaN or Inf is [`Error::NonFinite`] naming the file and row), and by the
//! model's own row checks.

#![forbid(unsafe_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::npy::{self, Kind};
use crate::error::{Error, Result, invalid, shape};
use crate::rng::Rng;
use crate::tensor::Matrix;

/// Where an epoch's minibatches come from. Positions index an epoch's order of rows; the
/// trainer asks for them in increasing order within an epoch.
pub trait RowSource: Send {
    /// Rows this process trains on (a rank's slice after [`RowSource::select_slice`]).
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    /// Rows of the whole source, before any slice was selected.
    fn total_rows(&self) -> usize {
        self.rows()
    }
    /// The global index of this process's first row (0 unless a slice was selected): the
    /// order's values are global row indices.
    fn first_row(&self) -> usize {
        0
    }
    /// All the rows, when the source holds them in memory (the trainer then runs the
    /// in-memory fit on them).
    fn in_memory(&self) -> Option<&Matrix> {
        None
    }
    /// Sets the order of the next epoch: shuffled with `rng`, or (None) in file order.
    /// `order` holds the previous epoch's order (first_row..first_row+rows at the start).
    fn start_epoch(&mut self, rng: Option<&mut Rng>, order: &mut [usize]);
    /// Copies the rows at positions first..first + out.len()/cols of `order` into `out`,
    /// calling `check` on each block of rows as it is read.
    fn fill(&mut self, order: &[usize], first: usize, out: &mut [f32], check: &mut RowCheck) -> Result<()>;
    /// Keeps only the contiguous slice of rows that process `rank` of `size` trains on.
    fn select_slice(&mut self, rank: usize, size: usize) -> Result<()>;
}

/// The model's checks of rows it is given (what [`crate::train::Trainable::check_rows`] does),
/// with a description of where they came from.
pub type RowCheck<'a> = dyn FnMut(&Matrix, &str) -> Result<()> + 'a;

impl RowSource for Matrix {
    fn rows(&self) -> usize {
        Matrix::rows(self)
    }
    fn cols(&self) -> usize {
        Matrix::cols(self)
    }
    fn in_memory(&self) -> Option<&Matrix> {
        Some(self)
    }
    fn start_epoch(&mut self, rng: Option<&mut Rng>, order: &mut [usize]) {
        if let Some(rng) = rng {
            rng.shuffle(order);
        }
    }
    fn fill(&mut self, order: &[usize], first: usize, out: &mut [f32], _check: &mut RowCheck) -> Result<()> {
        let c = Matrix::cols(self);
        for (k, o) in out.chunks_exact_mut(c).enumerate() {
            o.copy_from_slice(self.row(order[first + k]));
        }
        Ok(())
    }
    fn select_slice(&mut self, _rank: usize, _size: usize) -> Result<()> {
        Err(Error::Unsupported(
            "an in-memory fit across processes takes each rank's slice of every global minibatch; it selects no slice of rows".into(),
        ))
    }
}

/// How a streamed fit shuffles: blocks of `block_rows` contiguous rows, permuted, and rows
/// shuffled within windows of `window_blocks` blocks. Defaults: 1024 rows a block, 32 blocks a
/// window (32,768 rows: 100 MiB of 784-column f32 rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockShuffle {
    pub block_rows: usize,
    pub window_blocks: usize,
}

impl Default for BlockShuffle {
    fn default() -> Self {
        BlockShuffle { block_rows: 1024, window_blocks: 32 }
    }
}

impl BlockShuffle {
    pub fn validate(&self) -> Result<()> {
        if self.block_rows == 0 || self.window_blocks == 0 {
            return Err(invalid!(
                "block shuffle: block_rows ({}) and window_blocks ({}) must both be at least 1",
                self.block_rows,
                self.window_blocks
            ));
        }
        if self.block_rows.checked_mul(self.window_blocks).is_none_or(|n| n > 1 << 40) {
            return Err(invalid!(
                "block shuffle: a window of {} blocks of {} rows is too large",
                self.window_blocks,
                self.block_rows
            ));
        }
        Ok(())
    }
}

/// One `.npy` file of a stream.
#[derive(Debug)]
struct Shard {
    file: File,
    path: PathBuf,
    /// Byte offset of the data.
    offset: u64,
    /// Its rows, and the global index of its first.
    rows: usize,
    start: usize,
    /// Bytes of an element: 4 (f32) or 8 (f64).
    esize: usize,
}

/// A window of the epoch order: its blocks (ascending, as they are read) and the position
/// after its last row.
#[derive(Clone, Debug)]
struct Window {
    blocks: Vec<usize>,
    end: usize,
}

/// Rows of one or more `.npy` files (shards, in the order given), read a window at a time.
#[derive(Debug)]
pub struct NpyStream {
    shards: Arc<Vec<Shard>>,
    cols: usize,
    total: usize,
    /// The rows this process trains on (global indices).
    first: usize,
    rows: usize,
    shuffle: BlockShuffle,
    windows: Vec<Window>,
    /// The window whose rows the slots hold, and the one the next position is in.
    loaded: Option<usize>,
    cur: usize,
    /// The window buffer: one matrix per block slot; the slot of each block while loaded.
    slots: Vec<Matrix>,
    slot_of: Vec<usize>,
    scratch: Vec<u8>,
    bytes_read: u64,
    /// The next window of the epoch, read on a thread of its own while the current one trains.
    ahead: Option<ReadAhead>,
}

/// A window read ahead: its index and the thread reading its blocks (their rows, and the bytes
/// read).
#[derive(Debug)]
struct ReadAhead {
    window: usize,
    thread: JoinHandle<Result<(Vec<Matrix>, u64)>>,
}

impl Drop for NpyStream {
    fn drop(&mut self) {
        self.cancel_ahead();
    }
}

/// Reads `out.len() / cols` rows from global row `row` on (across shards) into `out` through
/// `scratch`: the bytes read.
fn read_rows_from(
    shards: &[Shard],
    cols: usize,
    mut row: usize,
    out: &mut [f32],
    scratch: &mut Vec<u8>,
) -> Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    let mut read = 0u64;
    let want = out.len() / cols;
    while done < want {
        let s = shards.partition_point(|s| s.start + s.rows <= row);
        let sh = &shards[s];
        let n = (sh.start + sh.rows - row).min(want - done);
        let bytes = n * cols * sh.esize;
        if scratch.len() < bytes {
            scratch.clear();
            scratch
                .try_reserve_exact(bytes)
                .map_err(|_| Error::OutOfMemory(format!("a read buffer of {bytes} bytes")))?;
            scratch.resize(bytes, 0);
        }
        let at = sh.offset + ((row - sh.start) * cols * sh.esize) as u64;
        sh.file.read_exact_at(&mut scratch[..bytes], at).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Io(format!(
                    "{}: the file ends before row {} of the {} its header states: it was truncated after it was opened",
                    sh.path.display(),
                    row - sh.start + n,
                    sh.rows
                ))
            } else {
                Error::io(&sh.path, e)
            }
        })?;
        let dst = &mut out[done * cols..(done + n) * cols];
        if sh.esize == 4 {
            for (o, b) in dst.iter_mut().zip(scratch[..bytes].chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        } else {
            for (o, b) in dst.iter_mut().zip(scratch[..bytes].chunks_exact(8)) {
                *o = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32;
            }
        }
        read += bytes as u64;
        done += n;
        row += n;
    }
    Ok(read)
}

impl NpyStream {
    /// Opens one `.npy` file, or a directory: its `*.npy` files (not recursing), in name order,
    /// as shards.
    pub fn open(path: &Path) -> Result<NpyStream> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_dir() {
            return NpyStream::open_files(&[path.to_path_buf()]);
        }
        let mut files = Vec::new();
        for e in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let p = e.map_err(|e| Error::io(path, e))?.path();
            if p.extension().is_some_and(|x| x == "npy") && p.is_file() {
                files.push(p);
            }
        }
        if files.is_empty() {
            return Err(Error::Io(format!("{}: the directory holds no .npy file", path.display())));
        }
        files.sort();
        NpyStream::open_files(&files)
    }

    /// Opens `.npy` files as the shards of one stream, their rows in the order given. Each is
    /// checked (header, dtype, order, size) before any row is read; all must have the same
    /// number of columns.
    pub fn open_files(paths: &[PathBuf]) -> Result<NpyStream> {
        if paths.is_empty() {
            return Err(invalid!("no .npy file given"));
        }
        let mut shards: Vec<Shard> = Vec::with_capacity(paths.len());
        let mut cols = 0;
        let mut total = 0usize;
        for path in paths {
            let (sh, c) = open_shard(path, total)?;
            if let Some(first) = shards.first()
                && c != cols
            {
                return Err(shape!(
                    "{} has {c} columns but {} has {cols}: the shards of a stream must have the same columns",
                    path.display(),
                    first.path.display()
                ));
            }
            cols = c;
            total = total
                .checked_add(sh.rows)
                .ok_or_else(|| invalid!("the shards hold more rows than this machine can index"))?;
            shards.push(sh);
        }
        Ok(NpyStream {
            shards: Arc::new(shards),
            cols,
            total,
            first: 0,
            rows: total,
            shuffle: BlockShuffle::default(),
            windows: Vec::new(),
            loaded: None,
            cur: 0,
            slots: Vec::new(),
            slot_of: Vec::new(),
            scratch: Vec::new(),
            bytes_read: 0,
            ahead: None,
        })
    }

    /// Sets the block shuffling (the buffers are sized at the next epoch).
    pub fn set_shuffle(&mut self, s: BlockShuffle) -> Result<()> {
        s.validate()?;
        self.cancel_ahead();
        self.shuffle = s;
        self.slots.clear();
        self.loaded = None;
        Ok(())
    }

    pub fn shuffle(&self) -> BlockShuffle {
        self.shuffle
    }

    /// Bytes read from the files so far (data only, not headers).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The number of shards (files).
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Reads `out.len() / cols` rows from global row `row` on (across shards) into `out`.
    fn read_rows(&mut self, row: usize, out: &mut [f32]) -> Result<()> {
        self.bytes_read += read_rows_from(&self.shards, self.cols, row, out, &mut self.scratch)?;
        Ok(())
    }

    /// (global first row, rows) of each block of window `w`, in the order they are read.
    fn block_rows_of(&self, w: usize) -> Vec<(usize, usize)> {
        let b = self.shuffle.block_rows;
        self.windows[w].blocks.iter().map(|&bk| (self.first + bk * b, b.min(self.rows - bk * b))).collect()
    }

    /// Starts reading window `w` on a thread of its own (the blocks' rows, decoded, unchecked).
    fn read_ahead(&mut self, w: usize) {
        let (shards, cols, blocks) = (Arc::clone(&self.shards), self.cols, self.block_rows_of(w));
        let thread = std::thread::Builder::new().name("latent-read-ahead".into()).spawn(move || {
            let mut scratch = Vec::new();
            let mut read = 0;
            let mut mats = Vec::with_capacity(blocks.len());
            for (row, n) in blocks {
                let mut m = Matrix::zeros(n, cols)?;
                read += read_rows_from(&shards, cols, row, m.as_mut_slice(), &mut scratch)?;
                mats.push(m);
            }
            Ok((mats, read))
        });
        // No thread to be had: the window is read when it is needed, as without read-ahead.
        self.ahead = thread.ok().map(|thread| ReadAhead { window: w, thread });
    }

    /// Waits for (and drops) a window being read ahead.
    fn cancel_ahead(&mut self) {
        if let Some(a) = self.ahead.take() {
            let _ = a.thread.join();
        }
    }

    /// Where global row `row` comes from, for messages.
    fn describe(&self, row: usize) -> String {
        let s = self.shards.partition_point(|s| s.start + s.rows <= row).min(self.shards.len() - 1);
        let sh = &self.shards[s];
        format!("{} (rows from {})", sh.path.display(), row - sh.start)
    }

    /// Reads window `w` into the slots (or takes it from the read-ahead thread) and checks its
    /// blocks, then starts reading the epoch's next window ahead.
    fn load(&mut self, w: usize, check: &mut RowCheck) -> Result<()> {
        let b = self.shuffle.block_rows;
        let ahead = match self.ahead.take() {
            Some(a) if a.window == w => Some(
                a.thread.join().map_err(|_| Error::Internal("the read-ahead thread panicked".into())).and_then(|r| r),
            ),
            Some(a) => {
                let _ = a.thread.join();
                None
            }
            None => None,
        };
        let blocks = std::mem::take(&mut self.windows[w].blocks);
        let res = (|| {
            let mut ahead = match ahead {
                Some(r) => {
                    let (mats, read) = r?;
                    self.bytes_read += read;
                    Some(mats.into_iter())
                }
                None => None,
            };
            while self.slots.len() < blocks.len() {
                self.slots.push(Matrix::default());
            }
            for (slot, &bk) in blocks.iter().enumerate() {
                let a = bk * b;
                let n = b.min(self.rows - a);
                let what = self.describe(self.first + a);
                let m = match ahead.as_mut().and_then(|it| it.next()) {
                    Some(m) => m,
                    None => {
                        // The slot's buffer is reused when it has the block's shape.
                        let mut m = std::mem::take(&mut self.slots[slot]);
                        if m.rows() != n || m.cols() != self.cols {
                            drop(m); // freed before its replacement is allocated
                            m = Matrix::zeros(n, self.cols)?;
                        }
                        self.read_rows(self.first + a, m.as_mut_slice())?;
                        m
                    }
                };
                let r = m.check_finite(&what).and_then(|()| check(&m, &what));
                self.slots[slot] = m;
                r?;
                self.slot_of[bk] = slot;
            }
            Ok(())
        })();
        self.windows[w].blocks = blocks;
        self.loaded = if res.is_ok() { Some(w) } else { None };
        if res.is_ok() && w + 1 < self.windows.len() {
            self.read_ahead(w + 1);
        }
        res
    }
}

impl RowSource for NpyStream {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn total_rows(&self) -> usize {
        self.total
    }
    fn first_row(&self) -> usize {
        self.first
    }

    fn start_epoch(&mut self, rng: Option<&mut Rng>, order: &mut [usize]) {
        let (b, w) = (self.shuffle.block_rows, self.shuffle.window_blocks);
        let n = self.rows;
        let nb = n.div_ceil(b);
        self.cancel_ahead();
        self.loaded = None;
        self.cur = 0;
        self.slot_of = vec![0; nb];
        self.windows.clear();
        match rng {
            // One window holds every row: a full shuffle of the previous order, as in memory.
            Some(rng) if nb <= w => {
                rng.shuffle(order);
                self.windows.push(Window { blocks: (0..nb).collect(), end: n });
            }
            Some(rng) => {
                let mut perm: Vec<usize> = (0..nb).collect();
                rng.shuffle(&mut perm);
                let mut pos = 0;
                for chunk in perm.chunks(w) {
                    let start = pos;
                    for &bk in chunk {
                        for r in bk * b..(bk * b + b).min(n) {
                            order[pos] = self.first + r;
                            pos += 1;
                        }
                    }
                    rng.shuffle(&mut order[start..pos]);
                    let mut blocks = chunk.to_vec();
                    blocks.sort_unstable();
                    self.windows.push(Window { blocks, end: pos });
                }
            }
            None => {
                for (i, o) in order.iter_mut().enumerate() {
                    *o = self.first + i;
                }
                let all: Vec<usize> = (0..nb).collect();
                for chunk in all.chunks(w) {
                    let end = ((chunk[chunk.len() - 1] + 1) * b).min(n);
                    self.windows.push(Window { blocks: chunk.to_vec(), end });
                }
            }
        }
    }

    fn fill(&mut self, order: &[usize], first: usize, out: &mut [f32], check: &mut RowCheck) -> Result<()> {
        let (b, cols) = (self.shuffle.block_rows, self.cols);
        if self.windows.is_empty() {
            return Err(Error::Internal("a streamed minibatch was asked for before its epoch started".into()));
        }
        for (k, o) in out.chunks_exact_mut(cols).enumerate() {
            let p = first + k;
            let start = |w: usize, ws: &[Window]| if w == 0 { 0 } else { ws[w - 1].end };
            if p < start(self.cur, &self.windows) {
                self.cur = 0;
            }
            while self.cur + 1 < self.windows.len() && self.windows[self.cur].end <= p {
                self.cur += 1;
            }
            if self.loaded != Some(self.cur) {
                self.load(self.cur, check)?;
            }
            let r = order[p] - self.first;
            let m = &self.slots[self.slot_of[r / b]];
            o.copy_from_slice(m.row(r % b));
        }
        Ok(())
    }

    fn select_slice(&mut self, rank: usize, size: usize) -> Result<()> {
        if size == 0 || rank >= size {
            return Err(invalid!("rank {rank} of {size} processes"));
        }
        let (a, e) = crate::train::collective::slice_of(self.total, rank, size);
        if a == e {
            return Err(invalid!(
                "{} rows leave rank {rank} of {size} processes no row: use fewer processes",
                self.total
            ));
        }
        self.cancel_ahead();
        self.first = a;
        self.rows = e - a;
        self.windows.clear();
        self.loaded = None;
        Ok(())
    }
}

/// Opens and checks one shard whose first row is global row `start`: (shard, columns).
fn open_shard(path: &Path, start: usize) -> Result<(Shard, usize)> {
    use std::os::unix::fs::FileExt;
    let file = super::open_regular(path)?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let want = usize::try_from(len.min(12 + npy::MAX_HEADER as u64)).unwrap_or(12 + npy::MAX_HEADER);
    let mut head = vec![0u8; want];
    file.read_exact_at(&mut head, 0).map_err(|e| Error::io(path, e))?;
    let h = npy::parse_header_of_len(&head, len).map_err(|e| super::in_file(path, e))?;
    let bad = |m: String| Error::BadFormat(format!("{}: {m}", path.display()));
    if h.dtype.kind != Kind::Float {
        return Err(bad(
            "a streamed file must hold floats ('<f4' or '<f8'), not integers: save it with arr.astype('<f4')".into(),
        ));
    }
    if h.dtype.big_endian {
        return Err(bad(
            "a streamed file must be little-endian ('<f4' or '<f8'): save it with arr.astype('<f4')".into()
        ));
    }
    if h.fortran_order {
        return Err(bad(
            "a streamed file must be in C (row-major) order, not Fortran order: save np.ascontiguousarray(arr)".into(),
        ));
    }
    let (rows, cols) = h.rows_cols();
    if rows == 0 || cols == 0 {
        return Err(bad(format!("shape {:?} holds no row", h.shape)));
    }
    let sh = Shard { file, path: path.to_path_buf(), offset: h.data_offset as u64, rows, start, esize: h.dtype.size };
    Ok((sh, cols))
}

/// Writes a `.npy` file of `rows` x `cols` float32 values ('<f4', C order, format 1.0) whose
/// row i is what `fill(i, row)` writes into `row`, a few thousand rows at a time: a file
/// larger than memory can be written (tests and benches make their streamed data with it).
/// The file is written in place, not atomically; an error leaves a partial file.
pub fn write_npy_f32(path: &Path, rows: usize, cols: usize, mut fill: impl FnMut(usize, &mut [f32])) -> Result<()> {
    use std::io::Write;
    if rows == 0 || cols == 0 {
        return Err(invalid!("a .npy file of {rows} x {cols} holds no value"));
    }
    crate::tensor::checked_len(rows, cols)?;
    let mut head = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}").into_bytes();
    while !(10 + head.len() + 1).is_multiple_of(64) {
        head.push(b' ');
    }
    head.push(b'\n');
    let f = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut bytes = npy::MAGIC.to_vec();
    bytes.extend([1, 0]);
    bytes.extend((head.len() as u16).to_le_bytes());
    bytes.extend(head);
    w.write_all(&bytes).map_err(|e| Error::io(path, e))?;
    let chunk = (1 << 22) / (cols * 4) + 1;
    let mut buf = vec![0f32; chunk.min(rows) * cols];
    let mut out = Vec::with_capacity(buf.len() * 4);
    let mut r = 0;
    while r < rows {
        let n = chunk.min(rows - r);
        for (k, row) in buf[..n * cols].chunks_exact_mut(cols).enumerate() {
            fill(r + k, row);
        }
        out.clear();
        out.extend(buf[..n * cols].iter().flat_map(|v| v.to_le_bytes()));
        w.write_all(&out).map_err(|e| Error::io(path, e))?;
        r += n;
    }
    w.flush().map_err(|e| Error::io(path, e))?;
    Ok(())
}
