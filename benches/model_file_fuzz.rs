//! Mutation fuzzing of `model_file::from_bytes`: corrupts small model files a million ways
//! (`FUZZ_FILES` overrides the count, `FUZZ_SEED` the seed) and prints what the parser made of
//! them. Exits non-zero if any call panicked.
//!
//! `cargo bench --bench model_file_fuzz`
//!
//! The generator (`mutate`) is shared with `tests/checkpoint.rs`, which includes this file.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use latent::model_file;
use latent::rng::Rng;

/// Corrupted model files: what `tests/checkpoint.rs` and this bench feed the parser.
pub mod mutate {
    use latent::network::{MAX_LAYERS, MAX_PARAMS, MAX_UNITS};
    use latent::rng::Rng;
    use latent::{Activation, Init, LayerSpec, Loss, Network, NetworkSpec, model_file};

    /// One corrupted file and how it was made.
    pub struct Mutant {
        pub bytes: Vec<u8>,
        /// The mutations applied, joined by '+'.
        pub kinds: String,
        /// The trailing CRC was recomputed after mutating, so the parser proper sees the damage.
        pub crc_fixed: bool,
    }

    /// CRC-32/IEEE, bit by bit: independent of the library's table-driven one.
    pub fn crc32(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
            }
        }
        !c
    }

    /// Rewrites the last four bytes as the CRC of the rest.
    pub fn fix_crc(bytes: &mut [u8]) {
        if bytes.len() >= 4 {
            let n = bytes.len() - 4;
            let crc = crc32(&bytes[..n]);
            bytes[n..].copy_from_slice(&crc.to_le_bytes());
        }
    }

    /// Small networks of every shape the format distinguishes: mirrored, tied, explicit decoder,
    /// no hidden layers, every activation, loss and init.
    pub fn base_networks() -> Vec<Network> {
        use Activation::*;
        let mut specs = vec![
            NetworkSpec { seed: 11, ..NetworkSpec::new(6, &[5, 4], Relu, 3) },
            NetworkSpec { tied_weights: true, init: Init::He, seed: 12, ..NetworkSpec::new(5, &[4, 3], Tanh, 2) },
            NetworkSpec {
                decoder: Some(vec![LayerSpec::new(7, Elu), LayerSpec::new(3, Gelu)]),
                output_activation: Identity,
                loss: Loss::Mse,
                init: Init::FanInUniform,
                seed: 13,
                ..NetworkSpec::new(4, &[3], Softplus, 2)
            },
            NetworkSpec { init: Init::SmallUniform, ..NetworkSpec::new(3, &[], LeakyRelu, 2) },
        ];
        specs.push(NetworkSpec {
            encoder: Activation::ALL.iter().map(|&a| LayerSpec::new(2, a)).collect(),
            decoder: Some(vec![]),
            init: Init::Glorot,
            seed: u64::MAX,
            ..NetworkSpec::new(2, &[], Sigmoid, 1)
        });
        specs.into_iter().map(|s| Network::new(s).expect("base network")).collect()
    }

    pub fn base_files() -> Vec<Vec<u8>> {
        base_networks().iter().map(model_file::to_bytes).collect()
    }

    /// Values that sit on the edges of the parser's checks.
    fn interesting_u32(rng: &mut Rng) -> u32 {
        const V: [u32; 16] = [
            0,
            1,
            2,
            3,
            7,
            8,
            255,
            256,
            MAX_LAYERS as u32,
            MAX_LAYERS as u32 + 1,
            MAX_UNITS as u32,
            MAX_UNITS as u32 + 1,
            0x7fff_ffff,
            0x8000_0000,
            u32::MAX - 1,
            u32::MAX,
        ];
        if rng.below(4) == 0 { rng.next_u64() as u32 } else { V[rng.below(V.len() as u64) as usize] }
    }

    fn interesting_u64(rng: &mut Rng, len: usize) -> u64 {
        let v = [
            0,
            1,
            u64::MAX,
            u64::MAX / 4,
            1 << 62,
            1 << 32,
            u64::from(u32::MAX) + 1,
            MAX_PARAMS as u64,
            MAX_PARAMS as u64 + 1,
            len as u64 / 4,
            len as u64 / 4 + 1,
            len as u64,
        ];
        if rng.below(4) == 0 { rng.next_u64() } else { v[rng.below(v.len() as u64) as usize] }
    }

    /// A 4-aligned offset where `width` bytes fit: mostly in the header and architecture section
    /// (where the sizes are), sometimes anywhere.
    fn field_offset(bytes: &[u8], width: usize, rng: &mut Rng) -> Option<usize> {
        if bytes.len() < width {
            return None;
        }
        let arch_end = bytes
            .get(16..20)
            .map(|a| 28 + u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as usize)
            .unwrap_or(bytes.len());
        let limit = if rng.below(4) != 0 { arch_end.min(bytes.len()) } else { bytes.len() };
        let slots = (limit.saturating_sub(width)) / 4 + 1;
        Some(4 * rng.below(slots as u64) as usize).filter(|&o| o + width <= bytes.len())
    }

    fn mutate_once(b: &mut Vec<u8>, rng: &mut Rng) -> &'static str {
        match rng.below(6) {
            0 => {
                for _ in 0..1 + rng.below(8) {
                    if !b.is_empty() {
                        let i = rng.below(b.len() as u64) as usize;
                        b[i] ^= 1 + rng.below(255) as u8;
                    }
                }
                "flip"
            }
            1 => {
                let n = rng.below(b.len() as u64 + 1) as usize;
                b.truncate(n);
                "truncate"
            }
            2 => {
                let at = rng.below(b.len() as u64 + 1) as usize;
                let n = 1 + rng.below(16) as usize;
                let ins: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                b.splice(at..at, ins);
                "insert"
            }
            3 => {
                if !b.is_empty() {
                    let at = rng.below(b.len() as u64) as usize;
                    let n = (1 + rng.below(16) as usize).min(b.len() - at);
                    b.drain(at..at + n);
                }
                "delete"
            }
            4 => {
                if let Some(o) = field_offset(b, 4, rng) {
                    let v = interesting_u32(rng);
                    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
                }
                "u32"
            }
            _ => {
                if let Some(o) = field_offset(b, 8, rng) {
                    let v = interesting_u64(rng, b.len());
                    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
                }
                "u64"
            }
        }
    }

    /// One to three mutations of `base`; the CRC recomputed afterwards for half of them.
    pub fn mutate(base: &[u8], rng: &mut Rng) -> Mutant {
        let mut bytes = base.to_vec();
        let n = match rng.below(8) {
            0 => 3,
            1 | 2 => 2,
            _ => 1,
        };
        let kinds: Vec<&str> = (0..n).map(|_| mutate_once(&mut bytes, rng)).collect();
        let crc_fixed = rng.below(2) == 0;
        if crc_fixed {
            fix_crc(&mut bytes);
        }
        Mutant { bytes, kinds: kinds.join("+"), crc_fixed }
    }
}

/// The class of a parse error: its message up to the first ':' ("checksum mismatch", ...).
fn class(e: &latent::Error) -> String {
    let full = match e {
        latent::Error::BadFormat(m) => format!("BadFormat: {m}"),
        other => format!("{other:?}"),
    };
    match full.match_indices(':').nth(1) {
        Some((i, _)) => full[..i].to_string(),
        None => full,
    }
}

#[allow(dead_code)]
fn main() {
    let files: u64 = std::env::var("FUZZ_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x1a7e_2f00);
    let bases = mutate::base_files();
    let mut rng = Rng::new(seed, 0xF022);
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let (mut panics, mut fixed, mut bytes_total) = (0u64, 0u64, 0u64);
    let mut max_time = Duration::ZERO;
    let mut max_kind = String::new();
    let mut slowest: Vec<u8> = Vec::new();
    let mut parse_time = Duration::ZERO;
    let start = Instant::now();
    for _ in 0..files {
        let base = &bases[rng.below(bases.len() as u64) as usize];
        let m = mutate::mutate(base, &mut rng);
        fixed += u64::from(m.crc_fixed);
        bytes_total += m.bytes.len() as u64;
        let t = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| model_file::from_bytes(&m.bytes)));
        let dt = t.elapsed();
        parse_time += dt;
        if dt > max_time {
            max_time = dt;
            slowest.clone_from(&m.bytes);
            max_kind =
                format!("{} ({} bytes, crc {})", m.kinds, m.bytes.len(), if m.crc_fixed { "fixed" } else { "stale" });
        }
        let key = match r {
            Err(_) => {
                panics += 1;
                "PANIC".to_string()
            }
            Ok(Ok(_)) => "ok".to_string(),
            Ok(Err(e)) => class(&e),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let wall = start.elapsed();
    println!("model_file fuzz: {files} mutated files (seed {seed:#x}), CRC recomputed for {fixed}");
    println!("{:<52} {:>10} {:>8}", "outcome", "files", "share");
    for (k, v) in &outcomes {
        println!("{k:<52} {v:>10} {:>7.3}%", 100.0 * *v as f64 / files.max(1) as f64);
    }
    println!(
        "{} files/s overall ({:.2} s, mutation included); from_bytes alone: {:.0} files/s, {:.0} MB/s, mean {:.2} us",
        (files as f64 / wall.as_secs_f64()) as u64,
        wall.as_secs_f64(),
        files as f64 / parse_time.as_secs_f64(),
        bytes_total as f64 / parse_time.as_secs_f64() / 1e6,
        parse_time.as_secs_f64() * 1e6 / files.max(1) as f64
    );
    println!("max time for one file: {:.1} us, {max_kind}", max_time.as_secs_f64() * 1e6);
    // One slow call among a million is the scheduler (a 2-core machine shared with builds), not
    // the file: timing the same file again says which.
    let again = (0..1000)
        .map(|_| {
            let t = Instant::now();
            let _ = catch_unwind(AssertUnwindSafe(|| model_file::from_bytes(&slowest)));
            t.elapsed()
        })
        .max()
        .unwrap_or_default();
    println!("the slowest file parsed 1000 more times: at most {:.1} us", again.as_secs_f64() * 1e6);
    println!("panics: {panics}");
    if panics > 0 {
        std::process::exit(1);
    }
}
