//! Model files: a versioned, checksummed, little-endian serialisation of a [`Network`] (its
//! [`NetworkSpec`] and every parameter) or of a variational autoencoder ([`Vae`]: its
//! [`VaeSpec`], parameters and training clock), saved atomically.
//!
//! # Format, version 1
//!
//! Every integer is little-endian; `A` is the architecture section's length, `P` the parameter
//! count, `E` and `D` the numbers of hidden encoder and decoder layers.
//!
//! | offset       | size | type     | field                                                   |
//! |--------------|------|----------|---------------------------------------------------------|
//! | 0            | 8    | bytes    | magic `LATENT\0\0` (`4c 41 54 45 4e 54 00 00`)          |
//! | 8            | 4    | u32      | format version (1)                                      |
//! | 12           | 4    | u32      | flags: 0 (bits are reserved for later versions)         |
//! | 16           | 4    | u32      | `A`, the architecture section's length in bytes         |
//! | 20           | `A`  |          | architecture section (below)                            |
//! | 20 + A       | 8    | u64      | `P`, the number of parameters                           |
//! | 28 + A       | 4`P` | f32 × P  | the parameters, in [`Network::params`] order            |
//! | 28 + A + 4P  | 4    | u32      | CRC-32 of bytes `0 .. 28 + A + 4P`                      |
//!
//! The architecture section (offsets relative to its start, byte 20):
//!
//! | offset       | size | type     | field                                                   |
//! |--------------|------|----------|---------------------------------------------------------|
//! | 0            | 4    | u32      | `input_dim`                                             |
//! | 4            | 4    | u32      | `E`, hidden encoder layers                              |
//! | 8            | 8`E` |          | per encoder layer: u32 units, i32 activation code       |
//! | 8 + 8E       | 4    | u32      | code layer units                                        |
//! | 12 + 8E      | 4    | i32      | code layer activation code                              |
//! | 16 + 8E      | 4    | u32      | decoder mirrored: 1 = `spec.decoder` is `None`, 0 = `Some` |
//! | 20 + 8E      | 4    | u32      | `D`, hidden decoder layers (the resolved decoder)      |
//! | 24 + 8E      | 8`D` |          | per decoder layer: u32 units, i32 activation code       |
//! | 24 + 8E + 8D | 4    | i32      | output activation code                                  |
//! | 28 + 8E + 8D | 4    | i32      | loss code                                               |
//! | 32 + 8E + 8D | 4    | u32      | tied weights (0 or 1)                                   |
//! | 36 + 8E + 8D | 4    | i32      | init code                                               |
//! | 40 + 8E + 8D | 8    | u64      | seed                                                    |
//!
//! so `A = 48 + 8(E + D)` in version 1 and the file is `32 + A + 4P` bytes.
//!
//! # Version 2: regularisation and stochastic layers
//!
//! A network with regularisation (sparsity, contractive penalty, corruption or code noise: see
//! [`Regularization`]) or stochastic layers is written as version 2, which appends to the architecture section
//! (offsets relative to the end of the version-1 fields, `L` the sparse-layer list's length):
//!
//! | offset  | size | type     | field                                                        |
//! |---------|------|----------|--------------------------------------------------------------|
//! | 0       | 4    | i32      | sparsity code (`LATENT_SPARSITY_*`)                          |
//! | 4       | 4    | f32      | sparsity target rho (0 unless KL)                            |
//! | 8       | 4    | f32      | sparsity weight (beta or lambda; 0 without sparsity)         |
//! | 12      | 4    | u32      | sparse layers: 0 = code layer, 1 = list, 2 = alternate       |
//! | 16      | 4    | u32      | `L` for a list, the first layer for alternate, else 0        |
//! | 20      | 4`L` | u32 × L  | the listed hidden layers                                     |
//! | 20 + 4L | 4    | f32      | contractive weight                                           |
//! | 24 + 4L | 4    | i32      | corruption code (`LATENT_CORRUPTION_*`)                      |
//! | 28 + 4L | 4    | f32      | corruption level (0 without corruption)                      |
//! | 32 + 4L | 4    | f32      | code noise sigma                                             |
//! | 36 + 4L | 4    | u32      | `S`: 0, or E + 1 + D when a hidden layer is stochastic        |
//! | 40 + 4L | 8`S` |          | per hidden layer in forward order: i32 `LATENT_STOCHASTIC_*`, f32 sigma (0 unless Gaussian) |
//!
//! so `A = 88 + 8(E + D) + 4L + 8S`. A network without either is still written as version 1
//! (any older build reads it), and a version-2 file whose block says "no regularisation" is
//! refused, so that files stay canonical. Codes are those of
//! [`Activation::code`], [`Loss::code`] and [`Init::code`] (the `LATENT_*` constants of the C
//! API). The decoder is stored even when mirrored, and the mirrored flag keeps `decoder: None`
//! apart from an explicit decoder that happens to equal the mirror, so that `spec()` round-trips
//! exactly. The CRC is CRC-32/IEEE (zlib's, reflected polynomial `0xEDB88320`, initial value and
//! final xor `0xFFFFFFFF`; the CRC of `"123456789"` is `0xCBF43926`). Parameters are stored
//! bit for bit (`-0.0` stays `-0.0`); every one is finite. The floats of the architecture
//! section are finite and never `-0.0` (a zero setting is written as `+0.0`; a file with `-0.0`
//! there is refused as "bad architecture"). A file is canonical: the bytes a network saves to
//! are the only ones that load as that network.
//!
//! # Version 3: variational autoencoders
//!
//! Version 3 defines flag bit 0 (`0x1`, [`FLAG_VAE`]): the architecture section is a variational
//! autoencoder's instead of a network's. Everything around it is as in version 1 (header, `A`,
//! parameter count `P`, the parameters in [`Vae::params`] order, CRC), so a VAE file is
//! `32 + A + 4P` bytes too. `E` and `D` are the numbers of hidden encoder and decoder layers, `K`
//! the number of parts of the reconstruction distribution ([`Reconstruction`]), and
//! `B = 24 + 8(E + D) + 12K`:
//!
//! | offset       | size | type     | field                                                   |
//! |--------------|------|----------|---------------------------------------------------------|
//! | 0            | 4    | u32      | `input_dim`                                             |
//! | 4            | 4    | u32      | `E`, hidden encoder layers                              |
//! | 8            | 8`E` |          | per encoder layer: u32 units, i32 activation code       |
//! | 8 + 8E       | 4    | u32      | `latent_dim`                                            |
//! | 12 + 8E      | 4    | u32      | `D`, hidden decoder layers                              |
//! | 16 + 8E      | 8`D` |          | per decoder layer: u32 units, i32 activation code       |
//! | 16 + 8E + 8D | 4    | i32      | `pzx_activation` code                                   |
//! | 20 + 8E + 8D | 4    | u32      | `K`, parts of the reconstruction distribution           |
//! | 24 + 8E + 8D | 12`K`|          | per part: u32 columns, i32 [`DistKind::code`], i32 activation code |
//! | B            | 4    | u32      | `num_samples` (L, draws of z per example in training)   |
//! | B + 4        | 4    | f32      | `beta`, the KL weight                                   |
//! | B + 8        | 8    | u64      | `kl_warmup_steps`                                       |
//! | B + 16       | 4    | u32      | posterior variance: 0 learned, 1 constant               |
//! | B + 20       | 4    | f32      | the constant posterior log-variance (0 when learned)    |
//! | B + 24       | 4    | i32      | init code                                               |
//! | B + 28       | 8    | u64      | seed                                                    |
//! | B + 36       | 8    | u64      | training steps taken ([`Vae::steps`], the KL warm-up's clock) |
//! | B + 44       | 4    | i32      | only for a BILBO VAE: the objective code, 1 ([`Objective`]) |
//! | B + 48       | 4    | u32      | only for BILBO: `P`, fitted prior log-variances, 0 or `latent_dim` |
//! | B + 52       | 4`P` | f32      | only for BILBO: the prior's log-variances ([`Vae::fit_prior`]) |
//!
//! so `A = 68 + 8(E + D) + 12K` (ELBO VAEs, whose files are as before the objective existed),
//! or `A = 76 + 8(E + D) + 12K + 4P` (BILBO; an earlier build refuses the longer section). The parameters are the dense layers' weights and biases in
//! forward order (encoder hidden layers, the posterior head of width 2 `latent_dim`, or
//! `latent_dim` with a constant posterior variance, decoder hidden layers, the output layer of
//! width [`Reconstruction::param_width`]), then one log-variance per global-variance Gaussian
//! part. The inference thread count is not saved. Networks are still written as version 1 or
//! 2: a version-3 file with bit 0 clear would be a network with version 2's fields, which this
//! build never writes and refuses ("bad architecture"), so that files stay canonical. The two
//! kinds are loaded by different calls ([`load`]/[`from_bytes`] for networks,
//! [`load_vae`]/[`vae_from_bytes`] for VAEs); each refuses the other kind's file with
//! [`Error::BadFormat`] "wrong kind: ..." naming the call that loads it.
//!
//! # Version 4: supervised networks and functional connections
//!
//! A network whose task is not reconstruction ([`Task`]) or with a layer that is not dense
//! ([`Connection`]) is written as version 4 (flags 0): version 2's fields and block (the
//! regularisation block always present), then, `N` = E + 1 + D + 1 the number of layers:
//!
//! | offset  | size  | type     | field                                                        |
//! |---------|-------|----------|--------------------------------------------------------------|
//! | 0       | 4     | i32      | task code (`LATENT_TASK_*`)                                  |
//! | 4       | 4     | u32      | classes or regression outputs (0 for an autoencoder)         |
//! | 8       | 4     | u32      | `N`                                                          |
//! | 12      | 4`N`  | i32 × N  | each layer's connection code (`LATENT_CONNECTION_*`) in forward order, the output layer last |
//!
//! The output layer is `outputs` wide for a supervised network (`input_dim` otherwise); a
//! supervised network whose decoder was not given (`decoder: None`) is marked mirrored with no
//! decoder layers: it has none. A functional layer's parameters are its theta
//! block `[k][n_in][n_out]` then its bias, where a dense layer has its weights; a memory
//! layer's are its a, c, d planes then its bias. The fixed connection signs of functional
//! families are derived from the seed, so they are not stored. A version-4 block that says
//! "autoencoder, all dense" is refused (such a network is written as version 1 or 2).
//!
//! # Version 5: restricted Boltzmann machines
//!
//! Version 5 defines flag bit 1 (`0x2`, [`FLAG_RBM`]): the architecture section is a
//! standalone RBM's ([`crate::rbm_model::RbmModel`]), `A = 40` bytes:
//!
//! | offset | size | type | field                                                           |
//! |--------|------|------|-----------------------------------------------------------------|
//! | 0      | 4    | u32  | `n_visible`                                                     |
//! | 4      | 4    | u32  | `n_hidden`                                                      |
//! | 8      | 4    | i32  | visible unit kind (`LATENT_RBM_UNIT_*`: 0 Bernoulli, 1 Gaussian) |
//! | 12     | 4    | i32  | hidden unit kind                                                |
//! | 16     | 8    | u64  | seed the RBM was created with                                   |
//! | 24     | 8    | u64  | epochs trained, over all fits                                   |
//! | 32     | 4    | u32  | CD-k of the last fit (0: never trained)                         |
//! | 36     | 4    | u32  | the last fit was persistent CD (0 or 1)                         |
//!
//! then, as in version 1, `P = n_visible n_hidden + n_hidden + n_visible` and the parameters in
//! [`crate::train::Rbm::params`] order (W row-major n_visible x n_hidden, hidden biases, visible
//! biases), then the CRC, so an RBM file is `72 + 4P` bytes. A version-5 file with flag bit 1
//! clear would be a network, which this build never writes and refuses ("bad architecture");
//! each loader refuses the other kinds' files with "wrong kind: ..." naming the call that
//! loads them ([`load_rbm`]/[`rbm_from_bytes`] for RBMs).
//!
//! # Version 6: the exact contractive penalty
//!
//! A network whose contractive penalty is the whole encoder's ([`Regularization::contractive_exact`],
//! see [`crate::contractive`]) is written as version 6 (flags 0): version 4's fields (the
//! regularisation block and the task and connection block always present, even for a dense
//! autoencoder), then
//!
//! | offset  | size  | type     | field                                                        |
//! |---------|-------|----------|--------------------------------------------------------------|
//! | 0       | 4     | u32      | contractive mode: 1 = exact (whole encoder)                  |
//!
//! so `A` is version 4's plus 4. A version-6 file whose mode is 0 (per layer, the default) is
//! refused: such a network is written as version 1, 2 or 4. Older builds refuse version-6
//! files as "written by a newer latent" instead of training them with the other penalty.
//!
//! # Version 7: the input scaling a model carries
//!
//! A network or VAE that stores the scaling of its inputs ([`crate::preprocess`]: a fit on a
//! scaled dataset, or `latent_*_set_scaling`) is written as version 7, flags as before (0 for a
//! network, bit 0 for a VAE). A network's section holds version 6's fields (the contractive
//! mode may then be 0), a VAE's version 3's fields with the objective fields always present
//! (objective 0, ELBO, with no prior, is allowed); then the scaling block:
//!
//! | offset | size   | type     | field                                                         |
//! |--------|--------|----------|---------------------------------------------------------------|
//! | 0      | 4      | i32      | method (`LATENT_SCALING_*`: 1 divide by 255, 2 min-max, 3 z-score) |
//! | 4      | 4      | u32      | raw-input mode (0 or 1)                                       |
//! | 8      | 4      | u32      | C: per-column statistics (input_dim for 2 and 3, 0 for 1)     |
//! | 12     | 8C     | f64 x C  | a: min (2) or mean (3) per column                             |
//! | 12+8C  | 8C     | f64 x C  | b: max (2) or population std (3) per column                   |
//!
//! A model without a scaling is written as before, so its file loads in older builds.
//!
//! # Version 8: centred functional connections
//!
//! A network with a functional-transfer layer of a family whose connections have a constant
//! part (`Family::centred`: F05, F08-F16, F19, F20) is written as version 8, the layout of
//! version 7 (the scaling block always present, method 0 when there is none). Since version 8 such
//! a layer computes z_j = Σ_i (f(x_i; θ_ij) − f(0; θ_ij)) + b_j, so its bias means something else
//! than before: reading a file of version 4, 6 or 7 adds Σ_i f(0; θ_ij) to each such bias,
//! which gives the same network function as the older build computed, and an older build
//! refuses version 8 as newer rather than misreading the biases.
//!
//! # Compatibility
//!
//! A build that writes format version N loads every version from 1 to N. Later versions keep
//! the magic, the version field at byte 8 and the CRC as the last four bytes; they only ever
//! append: fields at the end of the architecture section (whose length `A` tells a reader where
//! the fields of an older file end: absent fields take their defaults) and new sections between
//! the parameter block and the CRC. No field is ever moved, resized or given a new meaning, and
//! new flag bits only describe appended data, with one kind of exception: a flag bit may say
//! that the file holds another kind of model (version 3's bit 0: a VAE), whose architecture
//! section then has its own layout. Such a kind only appears with a new version, so an older
//! build refuses it as newer rather than misreading it. A file whose version is higher than the
//! reader's is refused with [`Error::BadFormat`] "written by a newer latent" (an older build
//! cannot know what the newer fields mean, so it does not guess). Version 1 readers require
//! `A`, the flags, and the file length to be exactly what version 1 writes.
//!
//! # Loading untrusted files
//!
//! [`from_bytes`] checks, in order: the magic (on as many bytes as there are), the minimum
//! length, the version, then the CRC over the whole file before trusting any size in it; then
//! it parses with every read bounds-checked. Counts are checked before anything is allocated by
//! them: layers against [`MAX_LAYERS`] and the section's length, widths against [`MAX_UNITS`],
//! and the parameter count against both what the architecture implies and the bytes that are
//! left, so no allocation is larger than the file. Every problem is an [`Error::BadFormat`]
//! whose message starts with its class: "not a latent model file (bad magic)", "truncated: ...",
//! "written by a newer latent: ...", "checksum mismatch: ...", "bad architecture: ...",
//! "bad parameter block: ...", "trailing bytes: ...", "unsupported flags: ...",
//! "invalid format version: ...", "wrong kind: ...". [`vae_from_bytes`] checks a VAE file the
//! same way (part counts against the section's length as well).
//!
//! [`save`] (and [`save_vae`]) never leaves a half-written file at its target: it writes a temporary file in the
//! same directory, syncs it, renames it over the target and syncs the directory. If anything
//! fails the temporary file is removed and whatever was at the target is untouched.

#![forbid(unsafe_code)]

use crate::data::crc32::{Crc32, crc32};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::activation::Activation;
use crate::corruption::Corruption;
use crate::data::scale::{Scaler, Scaling};
use crate::distribution::{DistKind, Part, Reconstruction};
use crate::error::{Error, Result};
use crate::init::Init;
use crate::layer::{Connection, Stochastic};
use crate::loss::Loss;
use crate::network::{LayerSpec, MAX_LAYERS, MAX_PARAMS, MAX_UNITS, Network, NetworkSpec};
use crate::preprocess::InputScaling;
use crate::regularizer::{Regularization, SparseLayers, Sparsity};
use crate::task::Task;
use crate::vae::{Objective, Posterior, Vae, VaeSpec};

/// The first eight bytes of every model file.
pub const MAGIC: [u8; 8] = *b"LATENT\0\0";
/// The highest format version this build writes and reads (networks are written as version 1,
/// 2, 4 or 6, variational autoencoders as version 3, RBMs as version 5, a network or VAE that
/// carries its input scaling as version 7, and a network with centred functional connections as
/// version 8).
pub const FORMAT_VERSION: u32 = 8;
/// The version of networks and VAEs that carry their input scaling ([`crate::preprocess`]).
const SCALING_VERSION: u32 = 7;
/// The version of networks with centred functional connections (see "Version 8").
const CENTRED_VERSION: u32 = 8;
/// The version that adds tasks and connections to networks.
const NETWORK_V4: u32 = 4;
/// The version that adds the contractive penalty's mode.
const NETWORK_V6: u32 = 6;
/// Flag bit of a version-3 file whose architecture section is a variational autoencoder's.
pub const FLAG_VAE: u32 = 1;
/// The version of VAE files.
const VAE_VERSION: u32 = 3;
/// Flag bit of a version-5 file whose architecture section is a restricted Boltzmann machine's.
pub const FLAG_RBM: u32 = 2;
/// The version of RBM files.
const RBM_VERSION: u32 = 5;

mod network;
mod rbm;
mod vae;
pub use network::{from_bytes, load, save, to_bytes};
pub use rbm::{load_rbm, rbm_from_bytes, rbm_to_bytes, save_rbm};
pub use vae::{load_vae, save_vae, vae_from_bytes, vae_to_bytes};
/// Files larger than this are refused by [`load`] before reading them. The largest network
/// ([`MAX_PARAMS`] parameters) saves to a little over 8 GiB.
pub const MAX_FILE_BYTES: u64 = 16 << 30;

/// Magic, version, flags, architecture length.
const HEADER_BYTES: usize = 20;
/// The architecture section without layers.
const ARCH_FIXED_BYTES: usize = 48;
const LAYER_BYTES: usize = 8;
/// Header, architecture section without layers, parameter count, CRC: a network with no hidden
/// layers and no parameters (which does not exist) would take this much.
pub const MIN_FILE_BYTES: usize = HEADER_BYTES + ARCH_FIXED_BYTES + 8 + 4;

/// A kind of model the file holds (network, VAE, RBM): the length of its encoding, how it is
/// written, and how its body (the bytes before the CRC) is parsed. Each kind's public calls
/// (`to_bytes`, `from_bytes`, `save`, `load` and their `vae_`/`rbm_` twins) are these helpers.
trait Stored: Sized {
    fn encoded_len(&self) -> usize;
    fn encode<S: Sink>(&self, out: &mut S) -> std::result::Result<(), S::Error>;
    fn parse(body: &[u8]) -> Result<Self>;
}

/// `impl Stored for $model` by its kind's three functions.
macro_rules! stored {
    ($model:ty, $len:ident, $encode:ident, $parse:ident) => {
        impl Stored for $model {
            fn encoded_len(&self) -> usize {
                $len(self)
            }
            fn encode<S: Sink>(&self, out: &mut S) -> std::result::Result<(), S::Error> {
                $encode(self, out)
            }
            fn parse(body: &[u8]) -> Result<Self> {
                $parse(body)
            }
        }
    };
}
use stored;

fn to_bytes_of<M: Stored>(m: &M) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.encoded_len());
    match m.encode(&mut out) {
        Ok(()) => {}
        Err(never) => match never {},
    }
    debug_assert_eq!(out.len(), m.encoded_len());
    out
}

fn from_bytes_of<M: Stored>(bytes: &[u8]) -> Result<M> {
    check_envelope(bytes)?;
    M::parse(&bytes[..bytes.len() - 4])
}

fn save_of<M: Stored>(m: &M, path: &Path) -> Result<()> {
    save_with(path, |w| m.encode(w))
}

fn load_of<M: Stored>(path: &Path) -> Result<M> {
    let bytes = read_model_file(path)?;
    from_bytes_of(&bytes).map_err(|e| with_path(path, e))
}

type FileSink = CrcWriter<BufWriter<File>>;

/// Writes what `encode` puts to `path` atomically (see [`crate::atomic_file`]).
fn save_with(path: &Path, encode: impl FnOnce(&mut FileSink) -> io::Result<()>) -> Result<()> {
    crate::atomic_file::write_with(path, "saving", |file| {
        let mut w = CrcWriter { inner: BufWriter::with_capacity(1 << 16, file), crc: Crc32::new() };
        encode(&mut w)?;
        w.inner.into_inner().map_err(|e| e.into_error())
    })
}

/// A format error's message with the path in front.
fn with_path(path: &Path, e: Error) -> Error {
    match e {
        Error::BadFormat(m) => Error::BadFormat(format!("{}: {m}", path.display())),
        other => other,
    }
}

/// The bytes of a model file, refusing one larger than [`MAX_FILE_BYTES`] before reading it,
/// and anything but a regular file (a FIFO, a device) without blocking on it.
fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    crate::data::read_regular_checked(
        path,
        MAX_FILE_BYTES,
        "model file",
        Some((&MAGIC, "not a latent model file (bad magic)")),
    )
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Where encoded bytes go: a Vec (cannot fail) or a file (through CrcWriter).
trait Sink {
    type Error;
    fn put(&mut self, bytes: &[u8]) -> std::result::Result<(), Self::Error>;
    /// CRC of everything put so far.
    fn crc(&self) -> u32;
}

impl Sink for Vec<u8> {
    type Error = std::convert::Infallible;
    fn put(&mut self, bytes: &[u8]) -> std::result::Result<(), Self::Error> {
        self.extend_from_slice(bytes);
        Ok(())
    }
    fn crc(&self) -> u32 {
        crc32(self)
    }
}

struct CrcWriter<W: Write> {
    inner: W,
    crc: Crc32,
}

impl<W: Write> Sink for CrcWriter<W> {
    type Error = io::Error;
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }
    fn crc(&self) -> u32 {
        self.crc.value()
    }
}

/// The input-scaling block of a version-7 file: method code, raw-input flag, column count, then
/// the per-column statistics a and b (f64 each).
fn scaling_len(s: &InputScaling) -> usize {
    12 + 16 * s.scaler().cols().unwrap_or(0)
}

fn put_scaling(h: &mut Vec<u8>, s: &InputScaling) {
    let sc = s.scaler();
    h.extend_from_slice(&sc.method().code().to_le_bytes());
    h.extend_from_slice(&u32::from(s.raw()).to_le_bytes());
    let (a, b) = sc.stats();
    h.extend_from_slice(&u32_of(a.len()).to_le_bytes());
    for v in a.iter().chain(b) {
        h.extend_from_slice(&(if *v == 0.0 { 0.0 } else { *v }).to_le_bytes());
    }
}

/// Widths and layer counts of a built network are at most MAX_UNITS and MAX_LAYERS (checked by
/// its constructor), so they fit in a u32.
fn u32_of(n: usize) -> u32 {
    debug_assert!(n <= u32::MAX as usize);
    n as u32
}

/// Puts the parameter block and the CRC.
fn put_params<S: Sink>(params: &[f32], out: &mut S) -> std::result::Result<(), S::Error> {
    let mut buf = [0u8; 16 * 1024];
    for chunk in params.chunks(buf.len() / 4) {
        for (b, p) in buf.chunks_exact_mut(4).zip(chunk) {
            b.copy_from_slice(&p.to_le_bytes());
        }
        out.put(&buf[..4 * chunk.len()])?;
    }
    let crc = out.crc();
    out.put(&crc.to_le_bytes())
}

fn bad(msg: String) -> Error {
    Error::BadFormat(msg)
}

/// Magic, length, version and checksum: what is checked before any size in the file is used.
fn check_envelope(bytes: &[u8]) -> Result<()> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(bad("not a latent model file (bad magic)".into()));
    }
    if bytes.len() < MIN_FILE_BYTES {
        return Err(bad(format!(
            "truncated: the file has {} bytes, a model file has at least {MIN_FILE_BYTES}",
            bytes.len()
        )));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version == 0 {
        return Err(bad("invalid format version: 0".into()));
    }
    if version > FORMAT_VERSION {
        return Err(bad(format!(
            "written by a newer latent: format version {version}, this build reads versions 1 to {FORMAT_VERSION}"
        )));
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let computed = crc32(body);
    if stored != computed {
        // The sizes are not trusted, but they can still say what went wrong: a file shorter than
        // its header describes was most likely cut short.
        return Err(match described_len(bytes) {
            Some((d, exact)) if d > bytes.len() as u64 => bad(format!(
                "truncated: the header describes a file of {}{d} bytes, this one has {} (checksum mismatch)",
                if exact { "" } else { "at least " },
                bytes.len()
            )),
            _ => {
                bad(format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}: the file is corrupt"))
            }
        });
    }
    Ok(())
}

/// The file length the (unverified) header implies, exact when the parameter count is there to
/// read, else a lower bound from the architecture section's length.
fn described_len(bytes: &[u8]) -> Option<(u64, bool)> {
    let a = u64::from(u32::from_le_bytes(bytes.get(16..20)?.try_into().ok()?));
    let at_least = HEADER_BYTES as u64 + a + 12;
    let p_at = usize::try_from(HEADER_BYTES as u64 + a).ok()?;
    let Some(p) = p_at.checked_add(8).and_then(|end| bytes.get(p_at..end)) else {
        return Some((at_least, false));
    };
    let p = u64::from_le_bytes(p.try_into().ok()?);
    Some((p.checked_mul(4)?.checked_add(at_least)?, true))
}

/// Bounds-checked little-endian reads over a slice; `pos` is the offset in the file of the next
/// byte, for messages.
struct Reader<'a> {
    rest: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let Some((head, rest)) = self.rest.split_first_chunk::<N>() else {
            return Err(self.short(what, N));
        };
        self.rest = rest;
        self.pos += N;
        Ok(*head)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }
    fn i32(&mut self, what: &str) -> Result<i32> {
        self.array(what).map(i32::from_le_bytes)
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(self.short(what, n));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        self.pos += n;
        Ok(head)
    }
    fn short(&self, what: &str, n: usize) -> Error {
        bad(format!("truncated: {what} needs {n} bytes at offset {}, {} are left", self.pos, self.rest.len()))
    }
}

fn arch_err(msg: impl std::fmt::Display) -> Error {
    bad(format!("bad architecture: {msg}"))
}

fn units(r: &mut Reader, what: &str) -> Result<usize> {
    let at = r.pos;
    let u = r.u32(what)?;
    if u == 0 || u as usize > MAX_UNITS {
        return Err(arch_err(format_args!("{what} {u} at offset {at} is not in 1 to {MAX_UNITS}")));
    }
    Ok(u as usize)
}

/// A code field (activation, loss, init, distribution) that `from_code` knows.
fn coded<T>(r: &mut Reader, what: &str, from_code: fn(i32) -> Result<T>) -> Result<T> {
    let at = r.pos;
    let c = r.i32(what)?;
    from_code(c).map_err(|_| arch_err(format_args!("{what} code {c} at offset {at} is not one this build knows")))
}

fn activation(r: &mut Reader, what: &str) -> Result<Activation> {
    coded(r, what, Activation::from_code)
}

fn flag(r: &mut Reader, what: &str) -> Result<bool> {
    let at = r.pos;
    match r.u32(what)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(arch_err(format_args!("{what} at offset {at} is {v}, not 0 or 1"))),
    }
}

/// `count` layers of (units, activation), the count checked against MAX_LAYERS and the bytes
/// left before the vector is allocated. `what` is "encoder" or "decoder".
fn layers(r: &mut Reader, count: u32, what: &str) -> Result<Vec<LayerSpec>> {
    let n = count as usize;
    if n > MAX_LAYERS || n.saturating_mul(LAYER_BYTES) > r.rest.len() {
        return Err(arch_err(format_args!(
            "{count} {what} layers: more than {MAX_LAYERS}, or more than the section's {} remaining bytes hold",
            r.rest.len()
        )));
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let units = units(r, "hidden layer width")?;
        let activation = activation(r, "hidden layer activation")?;
        v.push(LayerSpec::new(units, activation));
    }
    Ok(v)
}

/// The decoder's hidden layers (their count, then the layers) after `enc` encoder layers.
fn decoder_layers(r: &mut Reader, enc: usize) -> Result<Vec<LayerSpec>> {
    let n_dec = r.u32("decoder layer count")?;
    if enc + n_dec as usize + 2 > MAX_LAYERS {
        return Err(arch_err(format_args!("{enc} + {n_dec} hidden layers is more than {MAX_LAYERS} layers")));
    }
    layers(r, n_dec, "decoder")
}

/// The version-7 input-scaling block ([`put_scaling`]).
/// The scaling block; method 0 (none) only where `none_ok` (version 8, which always has one).
fn scaling_block(r: &mut Reader, input_dim: usize, none_ok: bool) -> Result<InputScaling> {
    let at = r.pos;
    let c = r.i32("scaling method")?;
    let method = match Scaling::from_code(c) {
        Ok(m) if m != Scaling::None || none_ok => m,
        _ => return Err(arch_err(format_args!("scaling method {c} at offset {at} is not 1, 2 or 3"))),
    };
    let raw = flag(r, "raw-input flag")?;
    let at = r.pos;
    let n = r.u32("scaling column count")? as usize;
    let want = if matches!(method, Scaling::Divide255 | Scaling::None) { 0 } else { input_dim };
    if n != want {
        return Err(arch_err(format_args!(
            "{n} scaling columns at offset {at}: the {} scaling of {input_dim} inputs has {want}",
            method.name()
        )));
    }
    let mut stat = || -> Result<Vec<f64>> {
        (0..n)
            .map(|_| {
                let at = r.pos;
                let v = f64::from_le_bytes(r.array("scaling statistic")?);
                if v.to_bits() == 1 << 63 {
                    return Err(arch_err(format_args!("scaling statistic at offset {at} is -0 (written as +0)")));
                }
                Ok(v)
            })
            .collect()
    };
    let (a, b) = (stat()?, stat()?);
    let mut s = InputScaling::default();
    if method == Scaling::None {
        s.set_raw(raw);
        return Ok(s);
    }
    let scaler = Scaler::from_stats(method, a, b);
    s.set_scaler(scaler, input_dim).map_err(|e| arch_err(format_args!("at offset {at}: {}", e.message())))?;
    s.set_raw(raw);
    Ok(s)
}

/// The bits of `-0.0`, which no architecture field holds: the writer stores every zero as
/// `+0.0` ([`canonical`]), so that one byte string is one model.
const NEGATIVE_ZERO: u32 = 0x8000_0000;

/// An architecture field's value as written: `-0.0` becomes `+0.0` (they are the same setting).
fn canonical(v: f32) -> f32 {
    if v == 0.0 { 0.0 } else { v }
}

fn f32_field(r: &mut Reader, what: &str) -> Result<f32> {
    let at = r.pos;
    let v = f32::from_le_bytes(r.array(what)?);
    if !v.is_finite() {
        return Err(arch_err(format_args!("{what} at offset {at} is {v}")));
    }
    if v.to_bits() == NEGATIVE_ZERO {
        return Err(arch_err(format_args!("{what} at offset {at} is -0 (a zero is written as +0)")));
    }
    Ok(v)
}

/// What a file holds, by its version and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Network,
    Vae,
    Rbm,
}

impl Kind {
    /// What a file of this kind holds and the call that loads it ("wrong kind" messages).
    fn held(self) -> (&'static str, &'static str) {
        match self {
            Kind::Network => ("an autoencoder network", "latent_network_load"),
            Kind::Vae => ("a variational autoencoder", "latent_vae_load"),
            Kind::Rbm => ("a restricted Boltzmann machine", "latent_rbm_load"),
        }
    }
}

/// The kind of model a (checked) version and flags describe.
fn kind_of(version: u32, flags: u32) -> Result<Kind> {
    match (version, flags) {
        (1 | 2, 0) => Ok(Kind::Network),
        (1 | 2, f) => Err(bad(format!("unsupported flags: {f:#010x} (versions 1 and 2 define none)"))),
        (_, 0) => Ok(Kind::Network),
        (VAE_VERSION | SCALING_VERSION, FLAG_VAE) => Ok(Kind::Vae),
        (RBM_VERSION, FLAG_RBM) => Ok(Kind::Rbm),
        (NETWORK_V4 | NETWORK_V6 | SCALING_VERSION | CENTRED_VERSION, f) => Err(bad(format!(
            "unsupported flags: {f:#010x} (version {version} defines none for networks; bit 0 marks a VAE in versions 3 and 7)"
        ))),
        (RBM_VERSION, f) => Err(bad(format!(
            "unsupported flags: {f:#010x} (version 5 defines bit 1 only: a restricted Boltzmann machine)"
        ))),
        (_, f) => {
            Err(bad(format!("unsupported flags: {f:#010x} (version 3 defines bit 0 only: a variational autoencoder)")))
        }
    }
}

/// Magic, version, flags and the architecture section of a file without its CRC.
fn header<'a>(r: &mut Reader<'a>) -> Result<(u32, Kind, &'a [u8])> {
    r.take(8, "magic")?;
    let version = r.u32("version")?;
    let flags = r.u32("flags")?;
    let kind = kind_of(version, flags)?;
    let a = r.u32("architecture section length")?;
    let section = r.take(a as usize, "the architecture section")?;
    Ok((version, kind, section))
}

/// The parameter count (checked against `implied`, the architecture's), the parameters and
/// the end of the file.
fn parameter_block(r: &mut Reader, implied: u64) -> Result<Vec<f32>> {
    let at = r.pos;
    let count = r.u64("parameter count")?;
    if count != implied {
        return Err(bad(format!(
            "bad parameter block: the count at offset {at} is {count}, the architecture has {implied} parameters"
        )));
    }
    // implied <= MAX_PARAMS, so 4 * count fits.
    let n = count as usize;
    let block = r.take(4 * n, "the parameter block")?;
    if !r.rest.is_empty() {
        return Err(bad(format!("trailing bytes: {} bytes after the parameter block", r.rest.len())));
    }
    let mut params: Vec<f32> = Vec::new();
    params.try_reserve_exact(n).map_err(|_| Error::OutOfMemory(format!("{n} parameters of a model file")))?;
    for (i, b) in block.chunks_exact(4).enumerate() {
        let p = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if !p.is_finite() {
            return Err(bad(format!("bad parameter block: parameter {i} is {p}")));
        }
        params.push(p);
    }
    Ok(params)
}

/// A model's constructor error as a format error (the file described an invalid model).
fn build_err(e: Error) -> Error {
    match e {
        Error::OutOfMemory(m) => Error::OutOfMemory(m),
        Error::InvalidArgument(m) | Error::ShapeMismatch(m) | Error::NonFinite(m) => arch_err(m),
        other => arch_err(other),
    }
}
