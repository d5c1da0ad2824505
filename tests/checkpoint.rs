//! Model files: save/load round trips are exact, the byte layout is the documented one, damaged
//! or hostile files are refused with BAD_FORMAT (never a panic, a hang, or an allocation sized by
//! the file's claims), and a failed save never harms what was at the target path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use latent::error::status;
use latent::model_file::{self, from_bytes, load, save, to_bytes};
use latent::network::{MAX_LAYERS, MAX_UNITS};
use latent::rng::Rng;
use latent::{Activation, Error, Init, LayerSpec, Loss, Matrix, Network, NetworkSpec};

// The mutation generator is shared with the fuzz bench.
#[path = "../benches/model_file_fuzz.rs"]
#[allow(dead_code)]
mod fuzz;
use fuzz::mutate;

// ---------------------------------------------------------------------------------------------
// Allocation tracking: the largest single allocation (and the total) the current thread asks for
// while tracking is on. Used to show that no file, whatever sizes it claims, makes from_bytes
// allocate more than the file's own size (plus a small constant). Failed requests count too,
// so "try a huge allocation and handle the failure" would be caught as well.

struct Tracking;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            LARGEST.with(|l| l.set(l.get().max(size)));
            TOTAL.with(|x| x.set(x.get().saturating_add(size)));
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

/// Runs f, returning its value, the largest single allocation and the total allocated.
fn tracked<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    LARGEST.with(|l| l.set(0));
    TOTAL.with(|t| t.set(0));
    TRACKING.with(|t| t.set(true));
    let v = f();
    TRACKING.with(|t| t.set(false));
    (v, LARGEST.with(Cell::get), TOTAL.with(Cell::get))
}

/// Allocation that from_bytes may make beyond the file's size: the spec's and network's layer
/// vectors (at most MAX_LAYERS entries) and messages.
const ALLOC_SLACK: usize = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Helpers

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "latent-checkpoint-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// Names in the directory, sorted.
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn random_matrix(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::new(seed, 99);
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform()).collect()).unwrap()
}

/// The loaded network is the saved one: spec, parameters bit for bit, and what it computes.
fn assert_same_network(a: &Network, b: &Network) {
    assert_eq!(a.spec(), b.spec());
    assert_eq!(bits(a.params()), bits(b.params()));
    let x = random_matrix(33, a.input_dim(), 5);
    assert_eq!(bits(a.encode(&x).unwrap().as_slice()), bits(b.encode(&x).unwrap().as_slice()));
    assert_eq!(bits(a.reconstruct(&x).unwrap().as_slice()), bits(b.reconstruct(&x).unwrap().as_slice()));
}

/// Saves to a file and loads it back, checking the file holds exactly to_bytes().
fn file_round_trip(net: &Network) -> Network {
    let dir = TempDir::new("rt");
    let path = dir.join("model.latent");
    save(net, &path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), to_bytes(net));
    assert_eq!(dir.entries(), ["model.latent"], "save left something behind");
    let back = load(&path).unwrap();
    assert_eq!(to_bytes(&back), to_bytes(net));
    back
}

/// Gives some parameters values that a lossy or re-encoding codec would change.
fn with_awkward_params(mut net: Network) -> Network {
    let mut p = net.params().to_vec();
    let specials = [-0.0f32, 1.0e-40, -1.0e-45, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 0.1, -1.0 / 3.0];
    for (i, s) in specials.iter().enumerate() {
        let k = (i * 7919) % p.len();
        p[k] = *s;
    }
    net.set_params(&p).unwrap();
    net
}

fn bad_format(bytes: &[u8]) -> String {
    match from_bytes(bytes) {
        Ok(_) => panic!("a damaged file loaded"),
        Err(e) => {
            assert_eq!(e.status(), status::BAD_FORMAT, "{e}");
            e.to_string()
        }
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A small network with known offsets: input 6, encoder [5, 4] relu, code 3, mirrored, sigmoid
/// output with BCE. Architecture section A = 48 + 8 * 4 = 80 bytes; the layout is:
mod at {
    pub const FLAGS: usize = 12;
    pub const ARCH_LEN: usize = 16;
    pub const INPUT: usize = 20;
    pub const N_ENC: usize = 24;
    pub const ENC0_UNITS: usize = 28;
    pub const ENC0_ACT: usize = 32;
    pub const CODE_UNITS: usize = 44;
    pub const MIRRORED: usize = 52;
    pub const N_DEC: usize = 56;
    pub const DEC0_UNITS: usize = 60;
    pub const OUTPUT_ACT: usize = 76;
    pub const LOSS: usize = 80;
    pub const TIED: usize = 84;
    pub const INIT: usize = 88;
    pub const SEED: usize = 92;
    pub const COUNT: usize = 100;
    pub const PARAMS: usize = 108;
}

fn known_net() -> Network {
    Network::new(NetworkSpec { seed: 3, ..NetworkSpec::new(6, &[5, 4], Activation::Relu, 3) }).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Round trips

#[test]
fn deep_mirrored_network_round_trips() {
    use Activation::*;
    let spec = NetworkSpec {
        encoder: vec![
            LayerSpec::new(48, Relu),
            LayerSpec::new(40, Tanh),
            LayerSpec::new(32, Elu),
            LayerSpec::new(24, Gelu),
            LayerSpec::new(16, LeakyRelu),
        ],
        seed: 0xDEAD_BEEF,
        ..NetworkSpec::new(64, &[], Relu, 8)
    };
    let net = with_awkward_params(Network::new(spec).unwrap());
    assert!(net.spec().decoder.is_none());
    let back = file_round_trip(&net);
    assert!(back.spec().decoder.is_none());
    assert_same_network(&net, &back);
}

#[test]
fn tied_weights_network_round_trips() {
    let spec = NetworkSpec {
        tied_weights: true,
        output_activation: Activation::Identity,
        loss: Loss::Mse,
        init: Init::He,
        ..NetworkSpec::new(30, &[20, 12], Activation::Tanh, 5)
    };
    let net = with_awkward_params(Network::new(spec).unwrap());
    let back = file_round_trip(&net);
    assert!(back.spec().tied_weights);
    assert_same_network(&net, &back);
    // Tied decoder layers own only their biases: the file holds that many parameters.
    assert_eq!(back.param_count(), (30 * 20 + 20) + (20 * 12 + 12) + (12 * 5 + 5) + 12 + 20 + 30);
}

#[test]
fn explicit_decoder_round_trips_and_stays_explicit() {
    use Activation::*;
    let spec = NetworkSpec {
        decoder: Some(vec![LayerSpec::new(9, Softplus), LayerSpec::new(17, Sigmoid), LayerSpec::new(11, Identity)]),
        init: Init::FanInUniform,
        seed: 7,
        ..NetworkSpec::new(13, &[10], Gelu, 4)
    };
    let net = with_awkward_params(Network::new(spec).unwrap());
    assert_same_network(&net, &file_round_trip(&net));

    // An explicit decoder equal to the mirror is still Some after loading: spec() round-trips
    // exactly, and the two files differ only in the mirrored flag (and the CRC).
    let mirrored = NetworkSpec::new(8, &[6, 4], Relu, 2);
    let explicit = NetworkSpec { decoder: Some(mirrored.decoder_layers()), ..mirrored.clone() };
    let a = Network::new(mirrored).unwrap();
    let b = Network::new(explicit).unwrap();
    assert_eq!(bits(a.params()), bits(b.params()));
    let (fa, fb) = (to_bytes(&a), to_bytes(&b));
    let differing: Vec<usize> = (0..fa.len()).filter(|&i| fa[i] != fb[i]).collect();
    assert!(
        !differing.is_empty() && differing.iter().all(|&i| i == at::MIRRORED || i >= fa.len() - 4),
        "{differing:?}"
    );
    let (ra, rb) = (from_bytes(&fa).unwrap(), from_bytes(&fb).unwrap());
    assert_eq!(ra.spec().decoder, None);
    assert_eq!(rb.spec().decoder, Some(b.spec().decoder_layers()));
    assert_same_network(&b, &rb);
}

#[test]
fn every_activation_loss_and_init_round_trips() {
    for &a in &Activation::ALL {
        // The activation in every position that stores one.
        let spec = NetworkSpec {
            decoder: Some(vec![LayerSpec::new(3, a)]),
            output_activation: a,
            loss: Loss::Mse,
            seed: a.code() as u64,
            ..NetworkSpec::new(5, &[4], a, 2)
        };
        let net = Network::new(spec).unwrap();
        let bytes = to_bytes(&net);
        // input 5, E = D = 1: encoder act at 32, code act at 40, decoder act at 56, output at 60.
        for off in [32, 40, 56, 60] {
            assert_eq!(i32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()), a.code(), "{a:?} at {off}");
        }
        assert_same_network(&net, &from_bytes(&bytes).unwrap());
    }
    for &l in &Loss::ALL {
        for &i in &Init::ALL {
            // Softplus where the loss takes it (not the default sigmoid), else what it needs.
            let out = [Activation::Softplus, Activation::Sigmoid, Activation::Identity]
                .into_iter()
                .find(|&a| l.check_output(a).is_ok())
                .unwrap();
            let spec = NetworkSpec {
                loss: l,
                init: i,
                output_activation: out,
                seed: 100 + i.code() as u64,
                ..NetworkSpec::new(4, &[3], Activation::Tanh, 2)
            };
            let net = Network::new(spec).unwrap();
            let bytes = to_bytes(&net);
            // E = D = 1: loss at 20 + 28 + 16 = 64, init at 72.
            assert_eq!(i32::from_le_bytes(bytes[64..68].try_into().unwrap()), l.code());
            assert_eq!(i32::from_le_bytes(bytes[72..76].try_into().unwrap()), i.code());
            assert_same_network(&net, &file_round_trip(&net));
        }
    }
}

#[test]
fn a_trained_looking_network_round_trips_through_load() {
    // Parameters nothing like an init: every bit pattern class of finite f32.
    let net = Network::new(NetworkSpec::new(20, &[16], Activation::Sigmoid, 6)).unwrap();
    let mut rng = Rng::new(42, 1);
    let p: Vec<f32> = (0..net.param_count())
        .map(|_| {
            loop {
                let v = f32::from_bits(rng.next_u64() as u32);
                if v.is_finite() {
                    break v;
                }
            }
        })
        .collect();
    let net = Network::from_params(net.spec().clone(), &p).unwrap();
    assert_same_network(&net, &file_round_trip(&net));
}

// ---------------------------------------------------------------------------------------------
// The byte layout

/// The documented layout, written field by field with an independent CRC: version-1 files must
/// load in every later build, so this file is frozen.
#[test]
fn version_1_layout_is_frozen() {
    let spec = NetworkSpec {
        output_activation: Activation::Identity,
        loss: Loss::Mse,
        init: Init::Glorot,
        seed: 0x0102_0304_0506_0708,
        ..NetworkSpec::new(2, &[], Activation::Identity, 1)
    };
    let params = [0.5f32, -0.0, 1.0e-40, 3.0, -2.5, f32::MAX, f32::MIN_POSITIVE];
    let net = Network::from_params(spec, &params).unwrap();

    let mut f = Vec::new();
    f.extend_from_slice(b"LATENT\0\0");
    for v in [1u32, 0, 48, 2, 0, 1] {
        f.extend_from_slice(&v.to_le_bytes()); // version, flags, A, input, E, code units
    }
    for v in [0i32, 1, 0, 0, 0, 0, 1] {
        f.extend_from_slice(&v.to_le_bytes()); // code act, mirrored, D, output act, loss, tied, init
    }
    f.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
    f.extend_from_slice(&7u64.to_le_bytes());
    for p in params {
        f.extend_from_slice(&p.to_le_bytes());
    }
    let crc = mutate::crc32(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(f.len(), 32 + 48 + 4 * 7);
    assert_eq!(mutate::crc32(b"123456789"), 0xCBF4_3926);

    assert_eq!(to_bytes(&net), f);
    let back = from_bytes(&f).unwrap();
    assert_eq!(back.spec(), net.spec());
    assert_eq!(bits(back.params()), bits(&params));
    assert_eq!(model_file::MIN_FILE_BYTES, 80);
    assert_eq!(model_file::FORMAT_VERSION, 8); // plain autoencoders are still written as version 1 or 2
}

#[test]
fn known_offsets_are_where_the_docs_say() {
    let net = known_net();
    let b = to_bytes(&net);
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!(u32_at(at::FLAGS), 0);
    assert_eq!(u32_at(at::ARCH_LEN), 80);
    assert_eq!(u32_at(at::INPUT), 6);
    assert_eq!(u32_at(at::N_ENC), 2);
    assert_eq!(u32_at(at::ENC0_UNITS), 5);
    assert_eq!(u32_at(at::ENC0_ACT), Activation::Relu.code() as u32);
    assert_eq!(u32_at(at::CODE_UNITS), 3);
    assert_eq!(u32_at(at::MIRRORED), 1);
    assert_eq!(u32_at(at::N_DEC), 2);
    assert_eq!(u32_at(at::DEC0_UNITS), 4);
    assert_eq!(u32_at(at::OUTPUT_ACT), Activation::Sigmoid.code() as u32);
    assert_eq!(u32_at(at::LOSS), Loss::BinaryCrossEntropy.code() as u32);
    assert_eq!(u32_at(at::TIED), 0);
    assert_eq!(u32_at(at::INIT), Init::Auto.code() as u32);
    assert_eq!(u64::from_le_bytes(b[at::SEED..at::SEED + 8].try_into().unwrap()), 3);
    assert_eq!(u64::from_le_bytes(b[at::COUNT..at::COUNT + 8].try_into().unwrap()), net.param_count() as u64);
    assert_eq!(b.len(), at::PARAMS + 4 * net.param_count() + 4);
    assert_eq!(
        f32::from_le_bytes(b[at::PARAMS..at::PARAMS + 4].try_into().unwrap()).to_bits(),
        net.params()[0].to_bits()
    );
}

// ---------------------------------------------------------------------------------------------
// Damaged files

#[test]
fn every_truncation_is_bad_format() {
    let bases = mutate::base_files();
    let small = bases.iter().min_by_key(|b| b.len()).unwrap();
    assert!(small.len() < 200);
    for b in &bases {
        for len in 0..b.len() {
            let msg = bad_format(&b[..len]);
            assert!(msg.contains("truncated"), "length {len} of {}: {msg}", b.len());
        }
    }
    // Through load, the path is named.
    let dir = TempDir::new("trunc");
    let path = dir.join("cut.latent");
    fs::write(&path, &small[..small.len() - 9]).unwrap();
    let e = load(&path).unwrap_err();
    assert_eq!(e.status(), status::BAD_FORMAT);
    assert!(e.to_string().contains("cut.latent") && e.to_string().contains("truncated"), "{e}");
    fs::write(&path, b"").unwrap();
    assert_eq!(load(&path).unwrap_err().status(), status::BAD_FORMAT);
}

#[test]
fn every_byte_flip_is_bad_format() {
    let b = to_bytes(&known_net());
    for pos in 0..b.len() {
        for mask in [0x01u8, 0x10, 0x80, 0xff] {
            let mut m = b.clone();
            m[pos] ^= mask;
            let msg = bad_format(&m);
            let expect = match pos {
                0..8 => "magic",
                8..12 => "version",
                _ => "checksum mismatch",
            };
            assert!(msg.contains(expect), "flip {mask:#x} at {pos}: {msg}");
        }
    }
}

#[test]
fn wrong_magic_is_bad_format() {
    let good = to_bytes(&known_net());
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let mut near = good.clone();
    near[7] = 1; // "LATENT\0\x01"
    mutate::fix_crc(&mut near);
    let mut lower = good.clone();
    lower[..6].copy_from_slice(b"latent");
    for bytes in [png, b"PK\x03".to_vec(), vec![0u8; 200], b"hello, world\n".repeat(20), near, lower] {
        let msg = bad_format(&bytes);
        assert!(msg.contains("not a latent model file (bad magic)"), "{msg}");
    }
    let dir = TempDir::new("magic");
    let path = dir.join("notes.txt");
    fs::write(&path, "these are not the weights you are looking for").unwrap();
    let e = load(&path).unwrap_err();
    assert_eq!(e.status(), status::BAD_FORMAT);
    assert!(e.to_string().contains("magic"), "{e}");
}

#[test]
fn newer_and_invalid_versions_are_bad_format() {
    let good = to_bytes(&known_net());
    for v in [model_file::FORMAT_VERSION + 1, 255, 0x0100_0000, u32::MAX] {
        let mut b = good.clone();
        put_u32(&mut b, 8, v);
        // Refused for the version even with a stale CRC (a newer version may checksum differently).
        assert!(bad_format(&b).contains("written by a newer latent"), "{v}");
        mutate::fix_crc(&mut b);
        let msg = bad_format(&b);
        assert!(msg.contains("written by a newer latent") && msg.contains(&format!("format version {v}")), "{msg}");
    }
    let mut b = good.clone();
    put_u32(&mut b, 8, 0);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("invalid format version"));
    // Version 3 holds VAEs (flag bit 0); a network relabelled 3 is refused, not read as version 2.
    let mut b = good.clone();
    put_u32(&mut b, 8, 3);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("bad architecture: a version-3 file without flag bit 0"), "{}", bad_format(&b));
    put_u32(&mut b, at::FLAGS, 1);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("wrong kind"), "{}", bad_format(&b));
    // Version 5 holds RBMs (flag bit 1): a network relabelled 5 is refused the same way.
    let mut b = good.clone();
    put_u32(&mut b, 8, 5);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("bad architecture: a version-5 file without flag bit 1"), "{}", bad_format(&b));
    put_u32(&mut b, at::FLAGS, 2);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("wrong kind") && bad_format(&b).contains("latent_rbm_load"), "{}", bad_format(&b));
    // A version-1 file relabelled 2 lacks the regularisation block.
    let mut b = good.clone();
    put_u32(&mut b, 8, 2);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("truncated: sparsity code"), "{}", bad_format(&b));
}

#[test]
fn trailing_garbage_is_bad_format() {
    let good = to_bytes(&known_net());
    // After the CRC: the CRC no longer is the last four bytes.
    for extra in [1usize, 4, 100] {
        let mut b = good.clone();
        b.extend(std::iter::repeat_n(0u8, extra));
        assert!(bad_format(&b).contains("checksum mismatch"));
        mutate::fix_crc(&mut b);
        assert!(bad_format(&b).contains("trailing bytes"));
    }
    // Between the parameters and the CRC, checksum recomputed.
    let mut b = good.clone();
    let n = b.len() - 4;
    b.splice(n..n, [0u8; 8]);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("trailing bytes: 8 bytes after the parameter block"));
}

/// Valid checksum, damaged content: the parser itself must refuse each one, with BAD_FORMAT
/// (not INVALID_ARGUMENT) for bad enum codes, and without allocating what the file claims.
#[test]
fn parser_refuses_bad_fields_behind_a_valid_checksum() {
    let good = to_bytes(&known_net());
    let n_params = known_net().param_count();
    let cases: Vec<(&str, usize, Vec<u8>, &str)> = vec![
        ("flags", at::FLAGS, 1u32.to_le_bytes().to_vec(), "unsupported flags"),
        ("arch length huge", at::ARCH_LEN, u32::MAX.to_le_bytes().to_vec(), "truncated"),
        ("arch length short", at::ARCH_LEN, 40u32.to_le_bytes().to_vec(), "bad architecture"),
        ("input 0", at::INPUT, 0u32.to_le_bytes().to_vec(), "input width 0"),
        ("input huge", at::INPUT, (MAX_UNITS as u32 + 1).to_le_bytes().to_vec(), "input width"),
        ("n_enc max", at::N_ENC, u32::MAX.to_le_bytes().to_vec(), "encoder layers"),
        ("n_enc 257", at::N_ENC, (MAX_LAYERS as u32 + 1).to_le_bytes().to_vec(), "encoder layers"),
        ("n_enc 0", at::N_ENC, 0u32.to_le_bytes().to_vec(), "bad architecture"),
        ("width 0", at::ENC0_UNITS, 0u32.to_le_bytes().to_vec(), "hidden layer width 0"),
        ("width huge", at::ENC0_UNITS, u32::MAX.to_le_bytes().to_vec(), "hidden layer width"),
        ("activation 8", at::ENC0_ACT, 8i32.to_le_bytes().to_vec(), "activation code 8"),
        ("activation -1", at::ENC0_ACT, (-1i32).to_le_bytes().to_vec(), "activation code -1"),
        ("code 0", at::CODE_UNITS, 0u32.to_le_bytes().to_vec(), "code width 0"),
        ("mirrored 2", at::MIRRORED, 2u32.to_le_bytes().to_vec(), "decoder-mirrored flag"),
        ("n_dec max", at::N_DEC, u32::MAX.to_le_bytes().to_vec(), "more than 256 layers"),
        ("mirror mismatch", at::DEC0_UNITS, 7u32.to_le_bytes().to_vec(), "marked mirrored"),
        ("output act 99", at::OUTPUT_ACT, 99i32.to_le_bytes().to_vec(), "output activation code 99"),
        ("bce without sigmoid", at::OUTPUT_ACT, 0i32.to_le_bytes().to_vec(), "sigmoid output"),
        ("loss 10", at::LOSS, 10i32.to_le_bytes().to_vec(), "loss code 10"),
        ("mcxent without identity", at::LOSS, 9i32.to_le_bytes().to_vec(), "identity activation, not sigmoid"),
        ("tied 2", at::TIED, 2u32.to_le_bytes().to_vec(), "tied-weights flag"),
        ("tied 1", at::TIED, 1u32.to_le_bytes().to_vec(), "bad parameter block"),
        ("init 5", at::INIT, 5i32.to_le_bytes().to_vec(), "init code 5"),
        ("count max", at::COUNT, u64::MAX.to_le_bytes().to_vec(), "bad parameter block"),
        ("count 2^40", at::COUNT, (1u64 << 40).to_le_bytes().to_vec(), "bad parameter block"),
        ("count + 1", at::COUNT, (n_params as u64 + 1).to_le_bytes().to_vec(), "bad parameter block"),
        ("NaN", at::PARAMS, f32::NAN.to_le_bytes().to_vec(), "parameter 0 is NaN"),
        ("inf", at::PARAMS + 8, f32::NEG_INFINITY.to_le_bytes().to_vec(), "parameter 2 is -inf"),
    ];
    for (name, off, value, expect) in cases {
        let mut b = good.clone();
        b[off..off + value.len()].copy_from_slice(&value);
        mutate::fix_crc(&mut b);
        let (r, largest, _) = tracked(|| from_bytes(&b));
        let e = r.err().unwrap_or_else(|| panic!("{name}: loaded"));
        assert_eq!(e.status(), status::BAD_FORMAT, "{name}: {e}");
        assert!(e.to_string().contains(expect), "{name}: expected {expect:?} in {e}");
        assert!(largest <= b.len() + ALLOC_SLACK, "{name}: allocated {largest} bytes");
    }

    // A longer architecture section than version 1 writes (what a later version might append)
    // is refused by this version, as is a parameter block shorter than its count.
    let mut b = good.clone();
    b.splice(at::COUNT..at::COUNT, [0u8; 8]);
    put_u32(&mut b, at::ARCH_LEN, 88);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("the section is 88 bytes, version 1's fields take 80"));
    let mut b = good.clone();
    b.drain(at::PARAMS..at::PARAMS + 4);
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("truncated: the parameter block"));
}

/// The decoder-mirrored flag cleared on a mirrored file gives the same network with an explicit
/// decoder: a legitimate file, so it loads (and is the canonical file of that spec).
#[test]
fn clearing_the_mirrored_flag_gives_an_explicit_decoder() {
    let net = known_net();
    let mut b = to_bytes(&net);
    put_u32(&mut b, at::MIRRORED, 0);
    mutate::fix_crc(&mut b);
    let back = from_bytes(&b).unwrap();
    assert_eq!(back.spec().decoder, Some(net.spec().decoder_layers()));
    assert_eq!(bits(back.params()), bits(net.params()));
    assert_eq!(to_bytes(&back), b);
}

/// Hand-built files whose layer counts exceed the limits, with the bytes present to back them.
#[test]
fn too_many_layers_is_bad_format_even_when_the_bytes_are_there() {
    let build = |n_enc: u32, n_dec: u32| {
        let layers = (n_enc + n_dec) as usize;
        let mut f = Vec::new();
        f.extend_from_slice(b"LATENT\0\0");
        for v in [1u32, 0, 48 + 8 * layers as u32, 2, n_enc] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for _ in 0..n_enc {
            f.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        }
        for v in [1u32, 0, 0, n_dec] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for _ in 0..n_dec {
            f.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        }
        for v in [0u32, 0, 0, 0, 0, 0] {
            f.extend_from_slice(&v.to_le_bytes()); // output, loss, tied, init, seed (8)
        }
        let params = 2 + 2 * layers + 1 + 4; // 2->1, 1->1 per hidden layer, 1->2 (weights + biases)
        f.extend_from_slice(&(params as u64).to_le_bytes());
        f.extend(std::iter::repeat_n(0u8, 4 * params));
        f.extend_from_slice(&[0; 4]);
        mutate::fix_crc(&mut f);
        f
    };
    // Within the limit the same construction loads, so the refusals below are for the counts.
    let ok = from_bytes(&build(100, 100)).unwrap();
    assert_eq!(ok.layers().len(), 202);
    assert!(bad_format(&build(300, 0)).contains("300 encoder layers"));
    assert!(bad_format(&build(200, 60)).contains("200 + 60 hidden layers is more than 256 layers"));
    assert!(bad_format(&build(0, 255)).contains("more than 256 layers"));
}

// ---------------------------------------------------------------------------------------------
// Mutation fuzzing

/// 100,000 mutated files (byte flips, truncations, insertions, deletions, u32/u64 fields set to
/// edge values; the CRC recomputed for half so the parser proper is exercised). Every call
/// returns (a panic fails the test: no catch_unwind here), quickly, and allocates no more than
/// the file's size plus a constant (the tracking allocator sees every request from this thread,
/// failed ones included, so a size taken from the file unchecked would show).
#[test]
fn mutated_files_never_panic_hang_or_overallocate() {
    const FILES: usize = 100_000;
    let bases = mutate::base_files();
    let mut rng = Rng::new(0x5EED, 0xF022);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut fixed_outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let (mut max_time, mut max_alloc) = (Duration::ZERO, 0usize);
    for i in 0..FILES {
        let base = &bases[rng.below(bases.len() as u64) as usize];
        let m = mutate::mutate(base, &mut rng);
        let t = Instant::now();
        let (r, largest, total) = tracked(|| from_bytes(&m.bytes));
        let mut dt = t.elapsed();
        if dt > Duration::from_millis(5) {
            // A preempted thread is not a hang: time it again, best of three.
            dt = (0..3)
                .map(|_| {
                    let t = Instant::now();
                    let _ = from_bytes(&m.bytes);
                    t.elapsed()
                })
                .min()
                .unwrap();
        }
        let what = || format!("file {i} ({}, crc {}, {} bytes)", m.kinds, m.crc_fixed, m.bytes.len());
        assert!(dt < Duration::from_millis(5), "{}: took {dt:?}", what());
        assert!(largest <= m.bytes.len() + ALLOC_SLACK, "{}: one allocation of {largest} bytes", what());
        assert!(total <= 4 * m.bytes.len() + 4 * ALLOC_SLACK, "{}: allocated {total} bytes in all", what());
        max_time = max_time.max(dt);
        max_alloc = max_alloc.max(largest);
        let class = match &r {
            Ok(net) => {
                // Files are canonical: whatever loads is exactly what that network saves to.
                assert_eq!(to_bytes(net), m.bytes, "{}: loaded but is not canonical", what());
                "ok".to_string()
            }
            Err(e) => {
                assert_eq!(e.status(), status::BAD_FORMAT, "{}: {e}", what());
                let msg = e.to_string();
                msg.trim_start_matches("bad file format: ").split(':').next().unwrap().to_string()
            }
        };
        if !m.crc_fixed && m.bytes != *base {
            assert!(r.is_err(), "{}: damaged file with a stale CRC loaded", what());
        }
        *outcomes.entry(class.clone()).or_default() += 1;
        if m.crc_fixed {
            *fixed_outcomes.entry(class).or_default() += 1;
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    eprintln!("with recomputed CRC: {fixed_outcomes:?}");
    eprintln!("slowest: {max_time:?}, largest allocation: {max_alloc} bytes");
    // The generator reaches past the checksum into every part of the parser.
    for class in ["ok", "bad architecture", "bad parameter block", "truncated", "trailing bytes", "unsupported flags"] {
        assert!(fixed_outcomes.get(class).copied().unwrap_or(0) >= 20, "{class}: {fixed_outcomes:?}");
    }
    for class in ["checksum mismatch", "not a latent model file (bad magic)", "written by a newer latent"] {
        assert!(outcomes.get(class).copied().unwrap_or(0) >= 20, "{class}: {outcomes:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Files on disk

#[test]
fn load_missing_or_unreadable_is_io() {
    let dir = TempDir::new("missing");
    let path = dir.join("absent.latent");
    let e = load(&path).unwrap_err();
    assert_eq!(e.status(), status::IO);
    assert!(e.to_string().contains("absent.latent"), "{e}");
    let e = load(dir.path()).unwrap_err();
    assert_eq!(e.status(), status::IO, "{e}");
}

#[test]
fn load_refuses_an_oversized_file_before_reading_it() {
    let dir = TempDir::new("huge");
    let path = dir.join("huge.latent");
    let f = fs::File::create(&path).unwrap();
    // Sparse: takes no disk space. Every Linux file system the tests run on supports it.
    f.set_len(model_file::MAX_FILE_BYTES + 1).unwrap();
    drop(f);
    let (r, largest, _) = tracked(|| load(&path));
    let e = r.unwrap_err();
    assert_eq!(e.status(), status::BAD_FORMAT);
    assert!(e.to_string().contains("larger than any model file"), "{e}");
    assert!(largest < ALLOC_SLACK, "allocated {largest} bytes");
}

#[test]
fn save_replaces_an_existing_file_and_leaves_nothing_else() {
    let dir = TempDir::new("replace");
    let path = dir.join("m.latent");
    let a = known_net();
    let b = Network::new(NetworkSpec::new(9, &[7], Activation::Tanh, 2)).unwrap();
    save(&a, &path).unwrap();
    save(&b, &path).unwrap();
    assert_eq!(dir.entries(), ["m.latent"]);
    assert_same_network(&b, &load(&path).unwrap());
    // A relative path in the current directory has an empty parent: that is ".".
    let rel = PathBuf::from(format!("latent-checkpoint-rel-{}.latent", std::process::id()));
    save(&a, &rel).unwrap();
    let back = load(&rel);
    let _ = fs::remove_file(&rel);
    assert_same_network(&a, &back.unwrap());
}

#[test]
fn concurrent_saves_to_one_path_each_land_whole() {
    let dir = TempDir::new("race");
    let path = dir.join("m.latent");
    let nets: Vec<Network> = (0..4)
        .map(|i| Network::new(NetworkSpec { seed: i, ..NetworkSpec::new(40, &[30], Activation::Relu, 5) }).unwrap())
        .collect();
    std::thread::scope(|s| {
        for net in &nets {
            let path = &path;
            s.spawn(move || {
                for _ in 0..10 {
                    save(net, path).unwrap();
                    // Whatever is there now is one complete model.
                    load(path).unwrap();
                }
            });
        }
    });
    let last = to_bytes(&load(&path).unwrap());
    assert!(nets.iter().any(|n| to_bytes(n) == last));
    assert_eq!(dir.entries(), ["m.latent"]);
}

#[test]
fn save_to_an_unwritable_path_is_io_and_leaves_nothing() {
    let net = known_net();
    let e = save(&net, Path::new("/proc/latent-nope/x.latent")).unwrap_err();
    assert_eq!(e.status(), status::IO);
    assert!(e.to_string().contains("/proc/latent-nope/x.latent"), "{e}");
    assert!(!Path::new("/proc/latent-nope").exists());

    let dir = TempDir::new("unwritable");
    fs::write(dir.join("plain"), b"a regular file").unwrap();
    for p in [dir.join("no-such-dir/x.latent"), dir.join("plain/x.latent")] {
        let e = save(&net, &p).unwrap_err();
        assert_eq!(e.status(), status::IO, "{e}");
        assert!(e.to_string().contains("x.latent"), "{e}");
    }
    assert_eq!(dir.entries(), ["plain"]);
    assert_eq!(fs::read(dir.join("plain")).unwrap(), b"a regular file");
    // A path that names no file.
    assert_eq!(save(&net, Path::new("/")).unwrap_err().status(), status::IO);
}

/// The target is a directory: the temporary file is complete but the rename fails. The
/// directory, and its parent, are as they were.
#[test]
fn save_whose_rename_fails_removes_its_temporary_file() {
    let dir = TempDir::new("rename");
    let target = dir.join("model.latent");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("inside"), b"keep me").unwrap();
    let e = save(&known_net(), &target).unwrap_err();
    assert_eq!(e.status(), status::IO);
    assert!(e.to_string().contains("renaming"), "{e}");
    assert_eq!(dir.entries(), ["model.latent"]);
    assert_eq!(fs::read(target.join("inside")).unwrap(), b"keep me");
}

/// Saving over a good file into a directory that cannot be written: the good file survives.
/// Root (CAP_DAC_OVERRIDE) writes through mode 0o555; then the directory cannot stop the save,
/// which this detects and says, and the failure comes from a parent that is a regular file
/// instead. save_failing_mid_write_keeps_the_original covers a failure with an existing target
/// for root and everyone else.
#[cfg(unix)]
#[test]
fn save_into_a_read_only_directory_keeps_the_original() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("ro");
    let target = dir.join("model.latent");
    let original = known_net();
    save(&original, &target).unwrap();
    let before = fs::read(&target).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
    let probe = dir.join("probe");
    let blocks = fs::write(&probe, b"x").is_err();
    let _ = fs::remove_file(&probe);
    let other = Network::new(NetworkSpec::new(9, &[7], Activation::Tanh, 2)).unwrap();
    if blocks {
        let e = save(&other, &target).unwrap_err();
        assert_eq!(e.status(), status::IO);
        assert!(e.to_string().contains("model.latent"), "{e}");
    } else {
        eprintln!("note: mode 0o555 does not stop this user (root); using a parent that is a regular file");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let e = save(&other, &target.join("x.latent")).unwrap_err();
        assert_eq!(e.status(), status::IO);
    }
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(fs::read(&target).unwrap(), before);
    assert_eq!(dir.entries(), ["model.latent"]);
    assert_same_network(&original, &load(&target).unwrap());
}

/// A write that fails part-way (file size limit, RLIMIT_FSIZE: root is bound by it too) over an
/// existing good file: the save reports Io, the temporary file is gone, the original is intact.
/// The limit applies to a whole process, so a child process (this test binary, running only
/// this test) does the failing save.
#[cfg(target_os = "linux")]
#[test]
fn save_failing_mid_write_keeps_the_original() {
    const CHILD: &str = "LATENT_CHECKPOINT_FSIZE_CHILD";
    if let Ok(target) = std::env::var(CHILD) {
        let big = Network::new(NetworkSpec::new(300, &[200], Activation::Relu, 50)).unwrap();
        assert!(to_bytes(&big).len() > 256 * 1024);
        // SAFETY: plain libc calls on valid arguments; SIGXFSZ ignored so write() returns EFBIG.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
            lim.rlim_cur = 64 * 1024;
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
        let e = save(&big, Path::new(&target)).unwrap_err();
        assert_eq!(e.status(), status::IO);
        assert!(e.to_string().contains(&target), "{e}");
        println!("child failed as intended: {e}");
        return;
    }
    let dir = TempDir::new("fsize");
    let target = dir.join("model.latent");
    let original = known_net();
    save(&original, &target).unwrap();
    let before = fs::read(&target).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "save_failing_mid_write_keeps_the_original", "--nocapture", "--test-threads=1"])
        .env(CHILD, &target)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("child failed as intended"), "the child did not run the save: {stdout}");
    assert_eq!(fs::read(&target).unwrap(), before);
    assert_eq!(dir.entries(), ["model.latent"]);
    assert_same_network(&original, &load(&target).unwrap());
}

#[test]
fn errors_from_files_are_never_invalid_argument() {
    // Codes come in through from_code(), whose own error is InvalidArgument: a file must map it.
    let mut b = to_bytes(&known_net());
    put_u32(&mut b, at::LOSS, 77);
    mutate::fix_crc(&mut b);
    let e = from_bytes(&b).unwrap_err();
    assert!(matches!(e, Error::BadFormat(_)), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// Version 2: regularisation

fn regularized(r: latent::Regularization) -> Network {
    let spec = NetworkSpec { regularization: r, seed: 5, ..NetworkSpec::new(10, &[8, 6], Activation::Sigmoid, 4) };
    with_awkward_params(Network::new(spec).unwrap())
}

#[test]
fn regularized_networks_round_trip_as_version_2() {
    use latent::{Corruption, Regularization, SparseLayers, Sparsity};
    let cases = [
        Regularization {
            sparsity: Sparsity::Kl { rho: 0.05, beta: 0.25 },
            sparse_layers: SparseLayers::Layers(vec![0, 2, 4]),
            contractive: 0.125,
            contractive_exact: false,
            corruption: Corruption::Masking { level: 0.3 },
            code_noise: 4.0,
        },
        Regularization {
            sparsity: Sparsity::L1 { lambda: 1e-3 },
            sparse_layers: SparseLayers::Alternate { start: 1 },
            corruption: Corruption::SaltPepper { fraction: 0.1 },
            ..Regularization::default()
        },
        Regularization { corruption: Corruption::Gaussian { sigma: 0.5 }, ..Regularization::default() },
        Regularization { contractive: 0.5, ..Regularization::default() },
    ];
    for r in cases {
        let net = regularized(r.clone());
        let b = to_bytes(&net);
        assert_eq!(u32::from_le_bytes(b[8..12].try_into().unwrap()), 2, "{r:?}");
        let listed = match &r.sparse_layers {
            SparseLayers::Layers(v) => v.len(),
            _ => 0,
        };
        // A = 88 + 8 (E + D) + 4 L (no stochastic layers)
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize, 88 + 8 * 4 + 4 * listed);
        let back = file_round_trip(&net);
        assert_eq!(back.spec().regularization, r);
        assert_same_network(&net, &back);
        assert!(back.describe().contains("regularization:"), "{}", back.describe());
    }
    // Without regularisation the file stays version 1, readable by every older build.
    let plain = regularized(Regularization::default());
    assert_eq!(u32::from_le_bytes(to_bytes(&plain)[8..12].try_into().unwrap()), 1);
}

#[test]
fn bad_regularization_blocks_are_bad_format() {
    use latent::{Corruption, Regularization, SparseLayers, Sparsity};
    let net = regularized(Regularization {
        sparsity: Sparsity::Kl { rho: 0.05, beta: 0.25 },
        sparse_layers: SparseLayers::Code,
        corruption: Corruption::Masking { level: 0.3 },
        ..Regularization::default()
    });
    let good = to_bytes(&net);
    // The block starts after the version-1 fields: 20 + 48 + 8 * 4.
    let reg = 20 + 48 + 32;
    let cases: Vec<(&str, usize, Vec<u8>, &str)> = vec![
        ("sparsity code", reg, 9i32.to_le_bytes().to_vec(), "sparsity code 9"),
        ("rho 0", reg + 4, 0f32.to_le_bytes().to_vec(), "rho"),
        ("rho NaN", reg + 4, f32::NAN.to_le_bytes().to_vec(), "sparsity target"),
        ("mode", reg + 12, 7u32.to_le_bytes().to_vec(), "sparse layer mode 7"),
        ("code mode with a count", reg + 16, 3u32.to_le_bytes().to_vec(), "sparse layer mode 0"),
        ("corruption code", reg + 24, 8i32.to_le_bytes().to_vec(), "corruption code 8"),
        ("masking 2", reg + 28, 2f32.to_le_bytes().to_vec(), "[0, 1]"),
        ("negative noise", reg + 32, (-1f32).to_le_bytes().to_vec(), "code noise"),
    ];
    for (name, off, value, expect) in cases {
        let mut b = good.clone();
        b[off..off + value.len()].copy_from_slice(&value);
        mutate::fix_crc(&mut b);
        let e = bad_format(&b);
        assert!(e.contains(expect), "{name}: expected {expect:?} in {e}");
    }
    // A version-2 block saying "no regularisation" is not canonical.
    let mut b = good.clone();
    for off in [reg, reg + 4, reg + 8, reg + 24, reg + 28] {
        b[off..off + 4].copy_from_slice(&[0; 4]);
    }
    mutate::fix_crc(&mut b);
    assert!(bad_format(&b).contains("without regularisation"));
}
