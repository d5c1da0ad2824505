//! VAE model files (format version 3): round trips are exact (spec, parameters bit for bit,
//! steps trained, what the VAE computes), the byte layout is the documented one, damaged or
//! hostile files are refused with BAD_FORMAT (never a panic or an allocation sized by the file's
//! claims), and each kind of file is refused by the other kind's loader with a message naming
//! the right call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use latent::distribution::{DistKind, Part, Reconstruction};
use latent::error::status;
use latent::model_file::{self, load_vae, save_vae, vae_from_bytes, vae_to_bytes};
use latent::rng::Rng;
use latent::{Activation, Init, LayerSpec, Matrix, Network, NetworkSpec, Posterior, Vae, VaeSpec};

#[path = "../benches/model_file_fuzz.rs"]
#[allow(dead_code)]
mod fuzz;
use fuzz::mutate;

// ---------------------------------------------------------------------------------------------
// Allocation tracking (as in tests/checkpoint.rs): the largest single allocation the current
// thread asks for while tracking is on.

struct Tracking;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            LARGEST.with(|l| l.set(l.get().max(size)));
        }
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

fn tracked<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let v = f();
    TRACKING.with(|t| t.set(false));
    (v, LARGEST.with(Cell::get))
}

const ALLOC_SLACK: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Helpers

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "latent-vae-checkpoint-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn bits64(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn random_matrix(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed, 99);
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform()).collect()).unwrap()
}

fn part(size: usize, kind: DistKind, activation: Activation) -> Part {
    Part { size, kind, activation }
}

/// VAEs of every shape the format distinguishes.
fn base_vaes() -> Vec<Vae> {
    use Activation::*;
    let mut specs = Vec::new();
    // Bernoulli, one hidden layer each side, trained a few steps' worth of clock.
    specs.push(VaeSpec { seed: 21, ..VaeSpec::new(6, &[5], 2, &[4], Relu) });
    // Composite: Gaussian (two outputs per column), global-variance Gaussian, Bernoulli,
    // exponential; several samples, beta and warm-up, tanh pzx, explicit activations.
    let mut s = VaeSpec::new(9, &[7, 5], 3, &[6], Elu);
    s.encoder[1].activation = Gelu;
    s.reconstruction = Reconstruction {
        parts: vec![
            part(3, DistKind::Gaussian, Identity),
            part(2, DistKind::GaussianGlobal, Tanh),
            part(2, DistKind::Bernoulli, Sigmoid),
            part(1, DistKind::Exponential, Softplus),
            part(1, DistKind::GaussianGlobal, Identity),
        ],
    };
    s.pzx_activation = Tanh;
    s.num_samples = 3;
    s.beta = 0.25;
    s.kl_warmup_steps = 1000;
    s.init = Init::FanInUniform;
    s.seed = u64::MAX;
    specs.push(s);
    // Constant posterior variance, global-variance Gaussian.
    let mut s = VaeSpec::new(5, &[4], 2, &[3], Tanh);
    s.posterior = Posterior::Constant { log_variance: -1.5 };
    s.reconstruction = Reconstruction::single(DistKind::GaussianGlobal, Identity, 5);
    s.init = Init::He;
    s.seed = 7;
    specs.push(s);
    // No hidden layers at all; an MSE loss part beside an exponential one.
    let mut s = VaeSpec::new(4, &[], 1, &[], Identity);
    s.reconstruction =
        Reconstruction { parts: vec![part(3, DistKind::Mse, Sigmoid), part(1, DistKind::Exponential, Identity)] };
    s.beta = 0.0;
    s.init = Init::SmallUniform;
    specs.push(s);
    specs
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut v = Vae::new(s).expect("base VAE");
            v.set_steps([0, 12_345, 3, u64::MAX][i]);
            v
        })
        .collect()
}

/// Gives some parameters values that a lossy or re-encoding codec would change.
fn with_awkward_params(mut vae: Vae) -> Vae {
    let mut p = vae.params().to_vec();
    // Not huge ones: a weight of 1e38 would overflow exp() in the log-variances.
    let specials = [-0.0f32, 1.0e-40, -1.0e-45, f32::MIN_POSITIVE, 0.1, -1.0 / 3.0, 1.0e-30, -7.5];
    for (i, s) in specials.iter().enumerate() {
        let k = (i * 7919) % p.len();
        p[k] = *s;
    }
    vae.set_params(&p).unwrap();
    vae
}

/// The loaded VAE is the saved one: spec, parameters bit for bit, steps, and what it computes.
fn assert_same_vae(a: &Vae, b: &Vae) {
    assert_eq!(a.spec(), b.spec());
    assert_eq!(bits(a.params()), bits(b.params()));
    assert_eq!(a.steps(), b.steps());
    let x = random_matrix(17, a.input_dim(), 5);
    let (am, al) = a.encode(&x).unwrap();
    let (bm, bl) = b.encode(&x).unwrap();
    assert_eq!(bits(am.as_slice()), bits(bm.as_slice()));
    assert_eq!(bits(al.as_slice()), bits(bl.as_slice()));
    assert_eq!(bits(a.reconstruct(&x).unwrap().as_slice()), bits(b.reconstruct(&x).unwrap().as_slice()));
    assert_eq!(
        bits(a.sample_posterior(&x, 2, 9).unwrap().as_slice()),
        bits(b.sample_posterior(&x, 2, 9).unwrap().as_slice())
    );
    let e = (a.elbo(&x, 2, 3).unwrap(), b.elbo(&x, 2, 3).unwrap());
    assert_eq!(e.0.neg_elbo.to_bits(), e.1.neg_elbo.to_bits());
    if a.spec().reconstruction.is_probabilistic() {
        assert_eq!(bits64(&a.log_likelihood(&x, 4, 1).unwrap()), bits64(&b.log_likelihood(&x, 4, 1).unwrap()));
    }
}

fn bad_format(bytes: &[u8]) -> String {
    match vae_from_bytes(bytes) {
        Ok(_) => panic!("a damaged VAE file loaded"),
        Err(e) => {
            assert_eq!(e.status(), status::BAD_FORMAT, "{e}");
            e.to_string()
        }
    }
}

fn small_file() -> Vec<u8> {
    vae_to_bytes(&base_vaes().remove(0))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn every_base_vae_round_trips_bit_for_bit() {
    for vae in base_vaes() {
        let vae = with_awkward_params(vae);
        let bytes = vae_to_bytes(&vae);
        let back = vae_from_bytes(&bytes).unwrap();
        assert_same_vae(&vae, &back);
        assert_eq!(vae_to_bytes(&back), bytes, "not canonical");

        let dir = TempDir::new("rt");
        let path = dir.join("model.latent");
        save_vae(&vae, &path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
        assert_eq!(dir.entries(), ["model.latent"], "save left something behind");
        let back = load_vae(&path).unwrap();
        assert_same_vae(&vae, &back);
        // Saving again over it replaces it whole.
        save_vae(&back, &path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }
}

#[test]
fn a_trained_vae_round_trips_with_its_training_clock() {
    let mut spec = VaeSpec::new(8, &[6], 2, &[6], Activation::Relu);
    spec.kl_warmup_steps = 50;
    let mut vae = Vae::new(spec).unwrap();
    let x = random_matrix(64, 8, 1);
    let cfg = latent::TrainConfig { epochs: 2, batch_size: 16, threads: 1, ..Default::default() };
    latent::Trainer::new(cfg).unwrap().fit(&mut vae, &x, None, None).unwrap();
    assert_eq!(vae.steps(), 8);
    let back = vae_from_bytes(&vae_to_bytes(&vae)).unwrap();
    assert_same_vae(&vae, &back);
    // The KL warm-up resumes where it stopped.
    assert_eq!(back.kl_weight().to_bits(), vae.kl_weight().to_bits());
}

/// The documented layout, written field by field with an independent CRC.
#[test]
fn version_3_layout_is_the_documented_one() {
    // input 2, no hidden layers, latent 1, Bernoulli; head 2 -> 2 (mean, log-variance):
    // 2*2 + 2 = 6 parameters; decoder 1 -> 2: 1*2 + 2 = 4; A = 68 + 12.
    let mut spec = VaeSpec::new(2, &[], 1, &[], Activation::Identity);
    spec.pzx_activation = Activation::Tanh;
    spec.num_samples = 2;
    spec.beta = 0.5;
    spec.kl_warmup_steps = 0x1122_3344_5566_7788;
    spec.posterior = Posterior::Constant { log_variance: -2.0 };
    spec.init = Init::Glorot;
    spec.seed = 0x0102_0304_0506_0708;
    // Constant variance: the head is the mean only, 2*1 + 1 = 3; decoder 4: 7 parameters.
    let params = [0.5f32, -0.0, 1.0e-40, 3.0, -2.5, 0.25, f32::MIN_POSITIVE];
    let mut vae = Vae::from_params(spec, &params).unwrap();
    vae.set_steps(0x0A0B_0C0D_0E0F_1011);

    let mut f = Vec::new();
    f.extend_from_slice(b"LATENT\0\0");
    let u32s = |f: &mut Vec<u8>, v: &[u32]| v.iter().for_each(|x| f.extend_from_slice(&x.to_le_bytes()));
    u32s(&mut f, &[3, 1, 80]); // version, flags (VAE), A
    u32s(&mut f, &[2, 0, 1, 0]); // input, E, latent, D
    u32s(&mut f, &[Activation::Tanh.code() as u32, 1]); // pzx, K
    u32s(&mut f, &[2, DistKind::Bernoulli.code() as u32, Activation::Sigmoid.code() as u32]);
    u32s(&mut f, &[2]); // samples
    f.extend_from_slice(&0.5f32.to_le_bytes());
    f.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    u32s(&mut f, &[1]); // constant posterior
    f.extend_from_slice(&(-2.0f32).to_le_bytes());
    u32s(&mut f, &[Init::Glorot.code() as u32]);
    f.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
    f.extend_from_slice(&0x0A0B_0C0D_0E0F_1011u64.to_le_bytes());
    assert_eq!(f.len(), 20 + 80);
    f.extend_from_slice(&7u64.to_le_bytes());
    for p in params {
        f.extend_from_slice(&p.to_le_bytes());
    }
    let crc = mutate::crc32(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(f.len(), 32 + 80 + 4 * 7);

    assert_eq!(vae_to_bytes(&vae), f);
    let back = vae_from_bytes(&f).unwrap();
    assert_eq!(back.spec(), vae.spec());
    assert_eq!(bits(back.params()), bits(&params));
    assert_eq!(back.steps(), 0x0A0B_0C0D_0E0F_1011);
    assert_eq!(model_file::FORMAT_VERSION, 8);
    assert_eq!(model_file::FLAG_VAE, 1);
}

#[test]
fn the_architecture_length_is_68_plus_layers_and_parts() {
    for vae in base_vaes() {
        let b = vae_to_bytes(&vae);
        let s = vae.spec();
        let a = u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize;
        assert_eq!(a, 68 + 8 * (s.encoder.len() + s.decoder.len()) + 12 * s.reconstruction.parts.len());
        assert_eq!(b.len(), 32 + a + 4 * vae.param_count());
        // The steps are the section's last eight bytes.
        assert_eq!(u64::from_le_bytes(b[20 + a - 8..20 + a].try_into().unwrap()), vae.steps());
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged files

#[test]
fn every_truncation_is_bad_format() {
    for b in base_vaes().iter().map(vae_to_bytes) {
        for len in 0..b.len() {
            let msg = bad_format(&b[..len]);
            assert!(msg.contains("truncated"), "length {len} of {}: {msg}", b.len());
        }
    }
    let dir = TempDir::new("trunc");
    let path = dir.join("cut.latent");
    let b = small_file();
    fs::write(&path, &b[..b.len() - 5]).unwrap();
    let e = load_vae(&path).unwrap_err();
    assert_eq!(e.status(), status::BAD_FORMAT);
    assert!(e.to_string().contains("cut.latent") && e.to_string().contains("truncated"), "{e}");
}

#[test]
fn every_byte_flip_is_bad_format() {
    let b = small_file();
    for pos in 0..b.len() {
        for mask in [0x01u8, 0x10, 0x80, 0xff] {
            let mut m = b.clone();
            m[pos] ^= mask;
            let msg = bad_format(&m);
            let ok = match pos {
                0..8 => msg.contains("magic"),
                _ => msg.contains("checksum mismatch") || msg.contains("written by a newer latent"),
            };
            assert!(ok, "flip {mask:#x} at {pos}: {msg}");
        }
    }
}

#[test]
fn each_kind_is_refused_by_the_other_kinds_loader() {
    let vae_file = small_file();
    let net = Network::new(NetworkSpec::new(6, &[5], Activation::Relu, 2)).unwrap();
    let net_file = model_file::to_bytes(&net);

    let e = model_file::from_bytes(&vae_file).unwrap_err();
    assert_eq!(e.status(), status::BAD_FORMAT);
    let m = e.to_string();
    assert!(m.contains("wrong kind") && m.contains("variational autoencoder") && m.contains("latent_vae_load"), "{m}");
    let m = bad_format(&net_file);
    assert!(m.contains("wrong kind") && m.contains("latent_network_load"), "{m}");
    // A regularised (version 2) network too.
    let reg = Network::new(NetworkSpec {
        regularization: latent::Regularization { contractive: 0.1, ..Default::default() },
        ..NetworkSpec::new(6, &[5], Activation::Relu, 2)
    })
    .unwrap();
    assert!(bad_format(&model_file::to_bytes(&reg)).contains("wrong kind"));

    // Through the file loaders the path is named too.
    let dir = TempDir::new("kind");
    let (vp, np) = (dir.join("v.latent"), dir.join("n.latent"));
    fs::write(&vp, &vae_file).unwrap();
    fs::write(&np, &net_file).unwrap();
    let e = model_file::load(&vp).unwrap_err();
    assert!(
        e.status() == status::BAD_FORMAT
            && e.to_string().contains("v.latent")
            && e.to_string().contains("latent_vae_load")
    );
    let e = load_vae(&np).unwrap_err();
    assert!(
        e.status() == status::BAD_FORMAT && e.to_string().contains("n.latent") && e.to_string().contains("wrong kind")
    );
    // Networks still load as networks.
    assert_eq!(model_file::load(&np).unwrap().params(), net.params());
}

#[test]
fn version_3_network_files_and_unknown_flags_are_bad_format() {
    // A network file relabelled version 3 (flags 0): networks are written as version 1, 2, 4 or 6.
    let net = Network::new(NetworkSpec::new(6, &[5], Activation::Relu, 2)).unwrap();
    let mut b = model_file::to_bytes(&net);
    put_u32(&mut b, 8, 3);
    mutate::fix_crc(&mut b);
    let e = model_file::from_bytes(&b).unwrap_err();
    assert_eq!(e.status(), status::BAD_FORMAT);
    assert!(e.to_string().contains("bad architecture") && e.to_string().contains("version 1, 2, 4 or 6"), "{e}");
    assert!(bad_format(&b).contains("wrong kind"));
    // Version 9 is newer (5 holds RBMs, 6 exact-contractive networks, 7 models with their scaling,
    // 8 centred functional networks).
    let mut b = small_file();
    put_u32(&mut b, 8, 9);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("written by a newer latent: format version 9"));
    // Flag bits other than bit 0, and bit 0 in a version-1, -2, -4 or -6 file (VAEs are version 3).
    for (version, flags) in [(3, 2u32), (3, 3), (3, 0x8000_0001), (2, 1), (1, 1), (4, 1), (6, 1)] {
        let mut b = small_file();
        put_u32(&mut b, 8, version);
        put_u32(&mut b, 12, flags);
        mutate::fix_crc(&mut b);
        assert!(bad_format(&b).contains("unsupported flags"), "{version} {flags}");
        assert!(model_file::from_bytes(&b).unwrap_err().to_string().contains("unsupported flags"));
    }
}

/// Offsets in the small base file (input 6, encoder [5], latent 2, decoder [4], one Bernoulli
/// part): A = 68 + 16 + 12 = 96.
mod at {
    pub const N_ENC: usize = 24;
    pub const LATENT: usize = 36;
    pub const PZX: usize = 52;
    pub const K: usize = 56;
    pub const PART_SIZE: usize = 60;
    pub const PART_KIND: usize = 64;
    pub const PART_ACT: usize = 68;
    pub const SAMPLES: usize = 72;
    pub const BETA: usize = 76;
    pub const POSTERIOR: usize = 88;
    pub const LOGVAR: usize = 92;
    pub const INIT: usize = 96;
    pub const COUNT: usize = 116;
}

/// Valid checksum, damaged content: the parser refuses each with BAD_FORMAT (never
/// INVALID_ARGUMENT) and the class its message starts with.
#[test]
fn parser_refuses_bad_fields_behind_a_valid_checksum() {
    let good = small_file();
    assert_eq!(u32::from_le_bytes(good[16..20].try_into().unwrap()), 96);
    let n_params = base_vaes()[0].param_count() as u64;
    let f32_bits = |v: f32| v.to_bits();
    let cases: Vec<(usize, u32, &str)> = vec![
        (at::N_ENC, 300, "bad architecture"),
        (at::N_ENC, u32::MAX, "bad architecture"),
        (at::LATENT, 0, "bad architecture: latent width 0"),
        (at::LATENT, (1 << 24) + 1, "bad architecture"),
        (at::PZX, 99, "bad architecture: pzx activation code 99"),
        (at::K, 0, "bad architecture: 0 reconstruction parts"),
        (at::K, 2, "bad architecture"),
        (at::K, u32::MAX, "bad architecture"),
        (at::PART_SIZE, 5, "bad architecture"), // parts cover 5 columns of 6
        (at::PART_SIZE, 0, "bad architecture"),
        (at::PART_KIND, 5, "bad architecture: distribution code 5"),
        (at::PART_KIND, u32::MAX, "bad architecture: distribution code -1"),
        (at::PART_ACT, Activation::Identity.code() as u32, "bad architecture"), // Bernoulli needs sigmoid
        (at::SAMPLES, 0, "bad architecture"),
        (at::SAMPLES, 5000, "bad architecture"),
        (at::BETA, f32_bits(-1.0), "bad architecture"),
        (at::BETA, f32_bits(f32::NAN), "bad architecture"),
        (at::POSTERIOR, 2, "bad architecture: posterior kind 2"),
        (at::LOGVAR, f32_bits(1.0), "bad architecture"), // learned variance with a log-variance
        (at::LOGVAR, f32_bits(-0.0), "bad architecture"),
        (at::INIT, 42, "bad architecture: init code 42"),
        (16, 97, "bad"),      // A one byte longer
        (16, 0, "truncated"), // A = 0
    ];
    for (off, v, want) in cases {
        let mut b = good.clone();
        put_u32(&mut b, off, v);
        mutate::fix_crc(&mut b);
        let msg = bad_format(&b);
        assert!(msg.contains(want), "{v} at {off}: {msg}");
    }
    // A constant posterior whose log-variance is out of range.
    let mut b = good.clone();
    put_u32(&mut b, at::POSTERIOR, 1);
    put_u32(&mut b, at::LOGVAR, f32_bits(31.0));
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("bad architecture"));
    // ... but with -3 it is a valid file of another VAE (its head is narrower: the count no
    // longer matches).
    put_u32(&mut b, at::LOGVAR, f32_bits(-3.0));
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("bad parameter block"), "{}", bad_format(&b));
    // The parameter count.
    for c in [0, n_params - 1, n_params + 1, u64::MAX] {
        let mut b = good.clone();
        b[at::COUNT..at::COUNT + 8].copy_from_slice(&c.to_le_bytes());
        mutate::fix_crc(&mut b);
        let msg = bad_format(&b);
        assert!(msg.contains("bad parameter block") && msg.contains(&n_params.to_string()), "{c}: {msg}");
    }
    // A NaN parameter and trailing bytes.
    let mut b = good.clone();
    put_u32(&mut b, at::COUNT + 8 + 4 * 3, f32::NAN.to_bits());
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("bad parameter block: parameter 3"));
    let mut b = good.clone();
    let n = b.len() - 4;
    b.splice(n..n, [0u8; 8]);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("trailing bytes: 8 bytes"));
}

/// Mutated VAE files (flips, truncations, insertions, deletions, edge values in the size
/// fields, CRC recomputed or not) never panic, never allocate more than the file's size plus a
/// constant, and whatever loads is canonical.
#[test]
fn mutated_vae_files_never_panic_or_overallocate() {
    const FILES: usize = 30_000;
    let bases: Vec<Vec<u8>> = base_vaes().iter().map(vae_to_bytes).collect();
    let mut rng = Rng::new(0x5EED, 0x0AE3);
    let mut fixed: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..FILES {
        let base = &bases[rng.below(bases.len() as u64) as usize];
        let m = mutate::mutate(base, &mut rng);
        let (r, largest) = tracked(|| vae_from_bytes(&m.bytes));
        let what = || format!("file {i} ({}, crc {}, {} bytes)", m.kinds, m.crc_fixed, m.bytes.len());
        assert!(largest <= m.bytes.len() + ALLOC_SLACK, "{}: one allocation of {largest} bytes", what());
        let class = match &r {
            Ok(v) => {
                assert_eq!(vae_to_bytes(v), m.bytes, "{}: loaded but is not canonical", what());
                "ok".to_string()
            }
            Err(e) => {
                assert_eq!(e.status(), status::BAD_FORMAT, "{}: {e}", what());
                e.to_string().trim_start_matches("bad file format: ").split(':').next().unwrap().to_string()
            }
        };
        if !m.crc_fixed && m.bytes != *base {
            assert!(r.is_err(), "{}: damaged file with a stale CRC loaded", what());
        }
        // The network loader never panics on them either.
        let _ = model_file::from_bytes(&m.bytes);
        if m.crc_fixed {
            *fixed.entry(class).or_default() += 1;
        }
    }
    eprintln!("with recomputed CRC: {fixed:?}");
    for class in ["ok", "bad architecture", "bad parameter block", "truncated"] {
        assert!(fixed.get(class).copied().unwrap_or(0) >= 20, "{class}: {fixed:?}");
    }
}

#[test]
fn version_1_network_files_still_load() {
    // The frozen version-1 file of tests/checkpoint.rs, rebuilt: a build that writes version 3
    // reads it as before.
    let mut f = Vec::new();
    f.extend_from_slice(b"LATENT\0\0");
    for v in [1u32, 0, 48, 2, 0, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0i32, 1, 0, 0, 0, 0, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    f.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
    f.extend_from_slice(&7u64.to_le_bytes());
    for p in [0.5f32, -0.0, 1.0e-40, 3.0, -2.5, f32::MAX, f32::MIN_POSITIVE] {
        f.extend_from_slice(&p.to_le_bytes());
    }
    let crc = mutate::crc32(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    let net = model_file::from_bytes(&f).unwrap();
    assert_eq!(net.spec().code, LayerSpec::new(1, Activation::Identity));
    assert_eq!(model_file::to_bytes(&net), f);
}
