//! Philox4x32-10 (Salmon et al. 2011), the counter-based generator of the device backends: the
//! numbers of element i of draw `ctr` under key `seed` are a pure function of the three, so the
//! CUDA kernels (`cuda/common.cuh`, the same arithmetic) and the Cpu backend draw the same stream
//! whatever the grid.

#![forbid(unsafe_code)]

/// The four words of element `i` of draw `ctr`.
pub fn philox(seed: u64, ctr: u64, i: u64) -> [u32; 4] {
    let (mut c0, mut c1, mut c2, mut c3) = (i as u32, (i >> 32) as u32, ctr as u32, (ctr >> 32) as u32);
    let (mut k0, mut k1) = (seed as u32, (seed >> 32) as u32);
    for _ in 0..10 {
        let p0 = 0xD251_1F53u64 * c0 as u64;
        let p1 = 0xCD9E_8D57u64 * c2 as u64;
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 = k0.wrapping_add(0x9E37_79B9);
        k1 = k1.wrapping_add(0xBB67_AE85);
    }
    [c0, c1, c2, c3]
}

/// Uniform in [0, 1) from the top 24 bits (lat_uniform).
pub fn uniform(bits: u32) -> f32 {
    (bits >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Standard normal by Box-Muller (lat_normal): u1 in (0, 1], so the log is finite.
pub fn normal(a: u32, b: u32) -> f32 {
    let u1 = ((a >> 8) + 1) as f32 * (1.0 / 16_777_216.0);
    let u2 = uniform(b);
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // Random123's published known-answer vector for philox4x32-10 with all-zero counter and key.
        assert_eq!(philox(0, 0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
    }

    #[test]
    fn normal_moments() {
        let n = 200_000u64;
        let (mut s, mut s2) = (0f64, 0f64);
        for i in 0..n {
            let r = philox(7, 3, i);
            let v = normal(r[0], r[1]) as f64;
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01, "mean {mean} var {var}");
    }
}
