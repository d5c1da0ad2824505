//! A VAE's learned manifold as a picture (Kingma & Welling 2014, "Auto-Encoding Variational
//! Bayes", Fig. 4): for a 2-D latent space, a k x k grid of latent points placed at the
//! standard normal quantiles of evenly spaced probabilities, so each point covers an equal
//! share of the prior N(0, I), each decoded to the mean of p(x|z).
//!
//! Tile (row r, column c) of the grid (r, c in 0..k, row 0 at the top) decodes
//! z = (Phi^-1((c + 0.5) / k), Phi^-1((k - 1 - r + 0.5) / k)): z1 grows left to right and z2
//! grows bottom to top, as on a plot's axes. Only 2-D latent spaces are drawn; others are
//! refused (InvalidArgument) rather than sliced.

use super::{Gray, GridSpec};
use crate::error::{Result, invalid, shape};
use crate::tensor::Matrix;
use crate::vae::Vae;

/// Most tiles a side of a manifold grid.
pub const MAX_K: usize = 256;

/// Evaluates the polynomial with coefficients `c` (constant first) at `x` (Horner).
fn poly(c: &[f64; 8], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &a| acc * x + a)
}

/// The standard normal quantile Phi^-1(p): Wichura's algorithm AS 241 (PPND16, Applied
/// Statistics 37(3), 1988, 477-484), rational approximations in three regions with a relative
/// error of about 1e-16. p = 0 gives -inf, p = 1 +inf, and p outside [0, 1] or NaN gives NaN.
// The coefficients as the paper prints them (20 digits), so they can be checked against it.
#[allow(clippy::excessive_precision)]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 8] = [
        3.387_132_872_796_366_608,
        1.331_416_678_917_843_774_5e2,
        1.971_590_950_306_551_442_7e3,
        1.373_169_376_550_946_112_5e4,
        4.592_195_393_154_987_145_7e4,
        6.726_577_092_700_870_085_3e4,
        3.343_057_558_358_812_810_5e4,
        2.509_080_928_730_122_672_7e3,
    ];
    const B: [f64; 8] = [
        1.0,
        4.231_333_070_160_091_125_2e1,
        6.871_870_074_920_579_083e2,
        5.394_196_021_424_751_107_7e3,
        2.121_379_430_158_659_586_7e4,
        3.930_789_580_009_271_061e4,
        2.872_908_573_572_194_267_4e4,
        5.226_495_278_852_854_561e3,
    ];
    const C: [f64; 8] = [
        1.423_437_110_749_683_577_34,
        4.630_337_846_156_545_295_9,
        5.769_497_221_460_691_405_5,
        3.647_848_324_763_204_605_04,
        1.270_458_252_452_368_382_58,
        2.417_807_251_774_506_117_7e-1,
        2.272_384_498_926_918_458_33e-2,
        7.745_450_142_783_414_076_4e-4,
    ];
    const D: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_821_87,
        1.676_384_830_183_803_849_4,
        6.897_673_349_851_000_045_5e-1,
        1.481_039_764_274_800_745_9e-1,
        1.519_866_656_361_645_719_66e-2,
        5.475_938_084_995_344_946e-4,
        1.050_750_071_644_416_843_24e-9,
    ];
    const E: [f64; 8] = [
        6.657_904_643_501_103_777_2,
        5.463_784_911_164_114_369_9,
        1.784_826_539_917_291_335_8,
        2.965_605_718_285_048_912_3e-1,
        2.653_218_952_657_612_309_3e-2,
        1.242_660_947_388_078_438_6e-3,
        2.711_555_568_743_487_578_15e-5,
        2.010_334_399_292_288_132_65e-7,
    ];
    const F: [f64; 8] = [
        1.0,
        5.998_322_065_558_879_376_9e-1,
        1.369_298_809_227_358_053_1e-1,
        1.487_536_129_085_061_485_25e-2,
        7.868_691_311_456_132_591e-4,
        1.846_318_317_510_054_681_8e-5,
        1.421_511_758_316_445_888_7e-7,
        2.044_263_103_389_939_785_64e-15,
    ];
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * poly(&A, r) / poly(&B, r);
    }
    let r = (-(if q < 0.0 { p } else { 1.0 - p }).ln()).sqrt();
    let v = if r <= 5.0 { poly(&C, r - 1.6) / poly(&D, r - 1.6) } else { poly(&E, r - 5.0) / poly(&F, r - 5.0) };
    if q < 0.0 { -v } else { v }
}

/// The k*k latent points of a k x k manifold grid, tile by tile (row-major, row 0 at the top):
/// tile (r, c) is (Phi^-1((c + 0.5) / k), Phi^-1((k - 1 - r + 0.5) / k)), as f32. k must be
/// 1..=[`MAX_K`].
pub fn grid_points(k: usize) -> Result<Matrix> {
    if k == 0 || k > MAX_K {
        return Err(invalid!("k {k} must be from 1 to {MAX_K} tiles a side"));
    }
    let at = |i: usize| normal_quantile((i as f64 + 0.5) / k as f64) as f32;
    let mut z = Vec::with_capacity(2 * k * k);
    for r in 0..k {
        for c in 0..k {
            z.push(at(c));
            z.push(at(k - 1 - r));
        }
    }
    Matrix::from_vec(k * k, 2, z)
}

/// The decoded manifold of a VAE with a 2-D latent space: the mean of p(x|z) (in the VAE's
/// raw input units, as latent_vae_generate_mean gives it) at each of [`grid_points`]`(k)`,
/// k*k rows of input_dim. A latent size other than 2 is InvalidArgument.
pub fn vae_manifold(vae: &Vae, k: usize) -> Result<Matrix> {
    if vae.latent_dim() != 2 {
        return Err(invalid!(
            "the VAE has {} latent dimensions: a manifold grid needs exactly 2 (build the VAE with latent_dim 2)",
            vae.latent_dim()
        ));
    }
    let z = grid_points(k)?;
    vae.input_scaling().to_raw(vae.generate_at_mean(&z)?)
}

/// The manifold of [`vae_manifold`] as a k x k grid picture of `spec.height` x `spec.width`
/// tiles (their product must be the VAE's input size; `spec.cols` is ignored: k tiles a line),
/// each pixel then a `scale` x `scale` block ([`super::upscale`]).
pub fn vae_manifold_picture(vae: &Vae, k: usize, spec: &GridSpec, scale: usize) -> Result<Gray> {
    let px = spec.height.checked_mul(spec.width);
    if px != Some(vae.input_dim()) {
        return Err(shape!(
            "{} x {} tiles hold {} values, the VAE decodes {}",
            spec.height,
            spec.width,
            px.map_or("too many".to_string(), |p| p.to_string()),
            vae.input_dim()
        ));
    }
    if scale == 0 || scale > super::MAX_SCALE {
        return Err(invalid!("scale {scale} must be from 1 to {}", super::MAX_SCALE));
    }
    let spec = GridSpec { cols: k.max(1), ..*spec };
    let images = vae_manifold(vae, k)?;
    let img = super::grid(images.as_slice(), k * k, &spec)?;
    super::upscale(&img, scale)
}
