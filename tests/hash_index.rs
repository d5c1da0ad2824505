//! Semantic hashing's address lookup (src/hashing/index.rs): the Hamming-ball lookup and the
//! growing-radius top-k against the brute-force scan, item for item, on the codes of all 60,000
//! MNIST training images; the scan fallback on small and wide indexes; and the C API's exact
//! statuses.

mod common;

use latent::data::{Dataset, Scaling};
use latent::ffi::*;
use latent::gemm::{Operand, gemm};
use latent::hashing::index::ball_size;
use latent::hashing::{BinaryCodes, HashIndex, Hits, hamming, top_k};
use latent::rng::Rng;
use latent::{Matrix, rng};

/// Sign bits of a fixed Gaussian random projection of the centred pixels (SimHash, Charikar
/// 2002): `bits`-bit codes of MNIST train (60,000) and test (10,000) images, packed one word per
/// code. Similar images share many bits, so the codes cluster and collide as learned codes do.
fn mnist_codes(bits: usize) -> Option<(BinaryCodes, BinaryCodes)> {
    let dir = common::data_dir("mnist")?;
    let load = |name: &str| {
        let mut d = Dataset::from_idx(dir.join(name), None).unwrap();
        d.scale(Scaling::Divide255).unwrap();
        d.x().clone()
    };
    let (train, test) = (load("train-images-idx3-ubyte.gz"), load("t10k-images-idx3-ubyte.gz"));
    Some((project(&train, &train, bits), project(&test, &train, bits)))
}

fn project(x: &Matrix, reference: &Matrix, bits: usize) -> BinaryCodes {
    let cols = x.cols();
    let mut mean = vec![0f64; cols];
    for r in 0..reference.rows() {
        for (m, &v) in mean.iter_mut().zip(reference.row(r)) {
            *m += v as f64;
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / reference.rows() as f64) as f32).collect();
    let centred: Vec<f32> =
        x.as_slice().chunks_exact(cols).flat_map(|r| r.iter().zip(&mean).map(|(v, m)| v - m)).collect();
    let mut rng = Rng::new(2024, rng::stream::INIT);
    let p: Vec<f32> = (0..cols * bits).map(|_| rng.normal()).collect();
    let mut out = vec![0f32; x.rows() * bits];
    gemm(x.rows(), bits, cols, 1.0, Operand::n(&centred, cols), Operand::n(&p, bits), 0.0, &mut out, bits, 2);
    BinaryCodes::pack(&Matrix::from_vec(x.rows(), bits, out).unwrap(), 0.0).unwrap()
}

/// Every item within `radius`, sorted by (distance, id), by a scan of the table.
fn brute_radius(table: &[u64], q: u64, radius: u32) -> Hits {
    let mut v: Vec<(u32, u64)> =
        table.iter().enumerate().map(|(i, &c)| (hamming(&[c], &[q]), i as u64)).filter(|&(d, _)| d <= radius).collect();
    v.sort_unstable();
    Hits { distances: v.iter().map(|p| p.0).collect(), ids: v.iter().map(|p| p.1).collect() }
}

/// The brute-force top_k of one query, as Hits.
fn brute_top_k(table: &[u64], q: u64, k: usize) -> Hits {
    let t = top_k(table, &[q], 1, k, 1).unwrap();
    Hits { ids: t.index[..t.found].to_vec(), distances: t.distance[..t.found].to_vec() }
}

/// 300 queries: 200 test images (unseen codes) and 100 training images (their own address is
/// occupied), against all 60,000 training codes; radius 0 to 4 (and, for 16 bits, 6 and 8, where
/// the lookup scans the occupied addresses: at 8 the ball's 39,203 addresses outnumber them) and
/// k = 1, 10, 100, 1000. Every result is identical to the scan. Measured (2026-11, this
/// machine): 16 bits: the 60,000 codes occupy 23,636 addresses, the fullest holding 224
/// images; the mean hits per query at radius 0 / 1 / 2 / 3 / 4 are 11.2 / 85.6 / 387 / 1,299 /
/// 3,520. 32 bits: 57,497 addresses, the fullest holding 65; 0.57 / 2.74 / 10.1 / 28.4 / 64.0.
/// The collision thresholds below sit well inside those counts.
#[test]
fn ball_lookup_and_top_k_match_brute_force_on_mnist_codes() {
    for bits in [16usize, 32] {
        let Some((train, test)) = mnist_codes(bits) else { return };
        let table = train.as_slice();
        let idx = HashIndex::from_codes(&train).unwrap();
        assert_eq!(idx.len(), 60_000);
        let fullest = table.iter().map(|&c| idx.get(c).len()).max().unwrap();
        let queries: Vec<u64> = (0..200).map(|i| test.row(i * 50)[0]).chain((0..100).map(|i| table[i * 600])).collect();
        let radii: &[u32] = if bits == 16 { &[0, 1, 2, 3, 4, 6, 8] } else { &[0, 1, 2, 3, 4] };
        let mut found = vec![0usize; radii.len()];
        let mut scanned = 0;
        for &q in &queries {
            for (j, &r) in radii.iter().enumerate() {
                let got = idx.query_radius(q, r as usize).unwrap();
                let want = brute_radius(table, q, r);
                assert_eq!(got, want, "{bits} bits, query {q:#x}, radius {r}");
                found[j] += got.len();
                scanned += (ball_size(bits, r as usize) > idx.buckets() as u64) as usize;
            }
            for k in [1, 10, 100, 1000] {
                let got = idx.query_top_k(q, k).unwrap();
                assert_eq!(got, brute_top_k(table, q, k), "{bits} bits, query {q:#x}, k {k}");
                assert_eq!(got.len(), k);
            }
        }
        let mean: Vec<String> =
            found.iter().zip(radii).map(|(f, r)| format!("r{r} {:.2}", *f as f64 / queries.len() as f64)).collect();
        eprintln!(
            "{bits} bits: 60000 codes in {} addresses, the fullest holding {fullest}; mean hits per query {}; \
             {scanned} of {} radius queries scanned the occupied addresses",
            idx.buckets(),
            mean.join(", "),
            queries.len() * radii.len()
        );
        // Realistic codes collide: many images share an address.
        let (most, least_fullest) = if bits == 16 { (30_000, 100) } else { (59_000, 20) };
        assert!(idx.buckets() < most && fullest >= least_fullest, "{} addresses, fullest {fullest}", idx.buckets());
        if bits == 16 {
            assert!(scanned > 0, "the scan fallback was not exercised");
        }
    }
}

/// Small indexes with heavy collisions, and random 64-bit codes: every radius up to the width
/// and every k up to past the item count (both lookup paths and the switch between them).
#[test]
fn every_radius_and_k_match_brute_force_on_small_and_wide_indexes() {
    let mut rng = Rng::new(7, 99);
    // Direct tables (up to 13 bits here) and hash tables (20 and 64 bits).
    for (bits, n) in [(1usize, 5usize), (6, 40), (10, 500), (13, 3000), (20, 200), (64, 300)] {
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        // Codes drawn from a few centres with a few flipped bits: clusters, as learned codes.
        let centres: Vec<u64> = (0..8).map(|_| rng.next_u64() & mask).collect();
        let table: Vec<u64> = (0..n)
            .map(|_| {
                let mut c = centres[rng.below(8) as usize];
                for _ in 0..rng.below(3) {
                    c ^= 1u64 << rng.below(bits as u64);
                }
                c
            })
            .collect();
        let idx = HashIndex::new(&table, bits).unwrap();
        let queries: Vec<u64> =
            (0..20).map(|i| if i % 2 == 0 { table[i * 7 % n] } else { rng.next_u64() & mask }).collect();
        for &q in &queries {
            let radii: Vec<usize> =
                if bits > 16 { vec![0, 1, 2, 3, 5, 16, bits / 2, bits] } else { (0..=bits).collect() };
            for r in radii {
                assert_eq!(idx.query_radius(q, r).unwrap(), brute_radius(&table, q, r as u32), "{bits} bits, r {r}");
            }
            for k in [1, 2, 3, 7, 50, n - 1, n, n + 1, 10 * n] {
                if k == 0 {
                    continue;
                }
                assert_eq!(idx.query_top_k(q, k).unwrap(), brute_top_k(&table, q, k), "{bits} bits, k {k}");
            }
        }
    }
}

/// The largest balls (radius 64 over 64 bits: 2^64 addresses) are answered by a scan of the
/// occupied addresses, not by enumeration: they return, with every item.
#[test]
fn huge_balls_fall_back_to_a_scan() {
    let mut rng = Rng::new(3, 4);
    let table: Vec<u64> = (0..60_000).map(|_| rng.next_u64()).collect();
    let idx = HashIndex::new(&table, 64).unwrap();
    let all = idx.query_radius(0, 64).unwrap();
    assert_eq!(all.len(), 60_000);
    assert!(all.distances.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(idx.query_top_k(0, 60_000).unwrap(), brute_top_k(&table, 0, 60_000));
    assert_eq!(idx.query_radius(table[5], 20).unwrap(), brute_radius(&table, table[5], 20));
}

// ---------------------------------------------------------------------------------------------
// The C API.

fn new_index(codes: &[u64], bits: usize) -> (i32, *mut latent_hash_index) {
    let mut h = std::ptr::null_mut();
    let st = unsafe { latent_hash_index_new(codes.as_ptr(), codes.len(), bits, &mut h) };
    (st, h)
}

#[test]
fn c_api_statuses_are_exact() {
    let codes = [0b0011u64, 0b0111, 0b0011, 0b1000];
    // Construction.
    for (c, n, bits, want) in [
        (&codes[..], 4, 0, LATENT_STATUS_INVALID_ARGUMENT),
        (&codes[..], 4, 65, LATENT_STATUS_INVALID_ARGUMENT),
        (&codes[..], 0, 4, LATENT_STATUS_INVALID_ARGUMENT),
        (&codes[..], 4, 3, LATENT_STATUS_INVALID_ARGUMENT), // 0b1000 has bit 3 set
    ] {
        let mut h = std::ptr::dangling_mut::<latent_hash_index>();
        let st = unsafe { latent_hash_index_new(c.as_ptr(), n, bits, &mut h) };
        assert_eq!(st, want, "n {n} bits {bits}");
        assert!(h.is_null());
    }
    let mut h = std::ptr::null_mut();
    assert_eq!(unsafe { latent_hash_index_new(std::ptr::null(), 4, 4, &mut h) }, LATENT_STATUS_NULL_ARGUMENT);
    assert_eq!(
        unsafe { latent_hash_index_new(codes.as_ptr(), 4, 4, std::ptr::null_mut()) },
        LATENT_STATUS_NULL_ARGUMENT
    );

    let (st, h) = new_index(&codes, 4);
    assert_eq!(st, LATENT_STATUS_OK);
    unsafe {
        assert_eq!((latent_hash_index_count(h), latent_hash_index_buckets(h), latent_hash_index_bits(h)), (4, 3, 4));
        assert_eq!(latent_hash_index_count(std::ptr::null()), 0);
        let (mut ids, mut dist, mut n) = ([0u64; 8], [0u32; 8], 0usize);
        // Radius 1 around 0b0011: items 0 and 2 at distance 0, item 1 at distance 1.
        assert_eq!(latent_hash_index_query_radius(h, 0b0011, 1, ids.as_mut_ptr(), dist.as_mut_ptr(), 8, &mut n), 0);
        assert_eq!((n, &ids[..3], &dist[..3]), (3, &[0u64, 2, 1][..], &[0u32, 0, 1][..]));
        // Counting only, then a buffer one short.
        n = 0;
        assert_eq!(
            latent_hash_index_query_radius(h, 0b0011, 1, std::ptr::null_mut(), std::ptr::null_mut(), 0, &mut n),
            0
        );
        assert_eq!(n, 3);
        ids = [9; 8];
        let st = latent_hash_index_query_radius(h, 0b0011, 1, ids.as_mut_ptr(), dist.as_mut_ptr(), 2, &mut n);
        assert_eq!((st, n, ids[0]), (LATENT_STATUS_BUFFER_TOO_SMALL, 3, 9));
        // Bad radius, bad code, NULLs.
        let q = |code, r, n: *mut usize| {
            latent_hash_index_query_radius(h, code, r, [0u64; 8].as_mut_ptr(), std::ptr::null_mut(), 8, n)
        };
        assert_eq!(q(0, 5, &mut n), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(q(0, u32::MAX, &mut n), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(q(0b10000, 1, &mut n), LATENT_STATUS_INVALID_ARGUMENT);
        assert_eq!(q(0, 4, std::ptr::null_mut()), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(q(0, 4, &mut n), LATENT_STATUS_OK);
        assert_eq!(n, 4);
        assert_eq!(
            latent_hash_index_query_radius(std::ptr::null(), 0, 1, ids.as_mut_ptr(), dist.as_mut_ptr(), 8, &mut n),
            LATENT_STATUS_NULL_ARGUMENT
        );
        assert_eq!(
            latent_hash_index_query_radius(h, 0, 1, std::ptr::null_mut(), dist.as_mut_ptr(), 8, &mut n),
            LATENT_STATUS_NULL_ARGUMENT
        );
        // Top-k: k = 0, k past the items (clamped, as latent_hamming_top_k), small buffers.
        let t = |code: u64, k: usize, cap: usize| {
            let (mut ids, mut dist, mut n) = (vec![9u64; 8], vec![9u32; 8], 0usize);
            let st = latent_hash_index_query_top_k(h, code, k, ids.as_mut_ptr(), dist.as_mut_ptr(), cap, &mut n);
            (st, n, ids, dist)
        };
        assert_eq!(t(0b0111, 0, 8).0, LATENT_STATUS_INVALID_ARGUMENT);
        let (st, n, ids, dist) = t(0b0111, 10, 8);
        assert_eq!((st, n, &ids[..4], &dist[..4]), (0, 4, &[1u64, 0, 2, 3][..], &[0u32, 1, 1, 4][..]));
        let (st, n, ids, _) = t(0b0111, 2, 1);
        assert_eq!((st, n, ids[0]), (LATENT_STATUS_BUFFER_TOO_SMALL, 2, 9));
        assert_eq!(t(0b0111, usize::MAX, 8).1, 4); // clamped to the 4 items
        assert_eq!(t(1 << 4, 1, 8).0, LATENT_STATUS_INVALID_ARGUMENT);
        // The same order as latent_hamming_top_k over the same codes.
        let (mut bi, mut bd, mut bf) = ([0u64; 4], [0u32; 4], 0usize);
        let q = [0b0111u64];
        assert_eq!(
            latent_hamming_top_k(codes.as_ptr(), 4, 1, q.as_ptr(), 1, 4, bi.as_mut_ptr(), bd.as_mut_ptr(), 4, &mut bf),
            0
        );
        let (_, _, ids, dist) = t(0b0111, 4, 8);
        assert_eq!((&ids[..4], &dist[..4]), (&bi[..], &bd[..]));
        latent_hash_index_free(h);
        latent_hash_index_free(std::ptr::null_mut());
    }
}

// ---------------------------------------------------------------------------------------------
// docs/semantic_hashing.md

/// The one fenced block of `lang` in a doc.
fn doc_block(doc: &str, lang: &str) -> String {
    let text = std::fs::read_to_string(common::root().join(doc)).unwrap();
    let fence = format!("```{lang}\n");
    let blocks: Vec<&str> = text.split(&fence).skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert_eq!(blocks.len(), 1, "{doc} should have one ```{lang} block");
    blocks[0].to_string()
}

/// docs/semantic_hashing.md's C block compiles against the header and runs on the digits; its
/// Python block runs and prints the retrieval precision quoted on the page.
#[test]
fn semantic_hashing_doc_code_blocks_compile_and_run() {
    use std::process::Command;
    if common::data_dir("digits").is_none() {
        return;
    }
    let dir = common::scratch("semantic_hashing_doc");
    let src = dir.join("hash.c");
    std::fs::write(&src, doc_block("docs/semantic_hashing.md", "c")).unwrap();
    let exe = dir.join("hash");
    common::compile_c(&[src], &exe, &[]);
    let (code, out, err) = common::run(Command::new(&exe).current_dir(&dir));
    println!("{out}");
    assert_eq!(code, 0, "the C block failed:\n{out}\n{err}");
    assert!(out.contains("1797 digits at") && out.contains("at distance 0"), "{out}");
    if !common::have("python3")
        || !Command::new("python3").args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success())
    {
        common::skip("python3 with numpy", "install python3-numpy to run the doc's Python block");
        return;
    }
    let script = dir.join("hash.py");
    std::fs::write(&script, doc_block("docs/semantic_hashing.md", "python")).unwrap();
    let lib = common::lib_dir().join(if cfg!(target_os = "macos") { "liblatent.dylib" } else { "liblatent.so" });
    let (code, out, err) = common::run(
        Command::new("python3")
            .current_dir(&dir)
            .arg(&script)
            .env("PYTHONPATH", common::root().join("python"))
            .env("LATENT_LIBRARY", lib)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
    );
    println!("{out}");
    assert_eq!(code, 0, "the Python block failed:\n{out}\n{err}");
    assert!(out.contains("precision@10 over all 1797 digits"), "{out}");
}
