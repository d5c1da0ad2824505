//! Functional-transfer connections (Cai et al. 2017, "Trainable back-propagated functional transfer
//! matrices", arXiv:1710.10403): every connection i -> j carries its own small trainable function
//! f(x; θ_ij) instead of a weight, and z_j = Σ_i f(x_i; θ_ij) + b_j (the network applies the
//! activation). The 20 function families are the author's `Matrices/F01.py`..`F20.py`
//! (reference: shared/reference/functional-transfer.md §3), numerics and clips included.
//!
//! Parameters: a θ block of k·n_in·n_out floats laid out [k][n_in][n_out] (the author's
//! (k, idim, odim)), then the bias (n_out). Families with a fixed random sign s per connection do not
//! store it: it is a hash of (sign seed, i, j), so the spec alone reproduces it.
//!
//! Both passes are one fused loop over (rows × n_in × n_out) with the family's f inlined into the
//! innermost loop over the contiguous output index j, so it vectorises; the family is matched once,
//! outside the loops, and each arm runs a copy of the loop monomorphised for that family (and
//! compiled twice by [`crate::simd::multiversion`], for SSE2 and AVX2). The backward recomputes f's
//! derivatives instead of caching them: a cache is rows·n_in·n_out floats (63 M for 100 × 784 × 800).
//!
//! Both passes give the same bits for any thread count: the forward splits rows, the backward
//! splits input indices i, and every output element is summed in the same order whatever the split.

use crate::activation::{exp_fast, sigmoid_fast};
use crate::error::{Result, invalid};
use crate::rng::Rng;

/// The 20 families of the reference table; `code()` is the F number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Family {
    /// w²x
    F01 = 1,
    /// w³x
    F02,
    /// a x² + c x
    F03,
    /// a x³ + c x² + d x
    F04,
    /// a e^{cx}, cx clipped to [−30, 30]
    F05,
    /// s·clip(w, 0, 1000)·x, gradient masked by w ≥ 0
    F06,
    /// s·clip(w, 0, 1000)·x, unmasked gradient ("adaptive" ReLU connection)
    F07,
    /// s·clip(ax + c, 0, 20)
    F08,
    /// a·max(cx + d, 0)
    F09,
    /// s·σ(ax + c), argument clipped to ±30
    F10,
    /// a·σ(cx + d), argument clipped to ±30
    F11,
    /// a·sin(cx + d)
    F12,
    /// a·cos(cx + d)
    F13,
    /// a·sinh(cx + d)
    F14,
    /// a·(cosh(cx + d) − 1)
    F15,
    /// a·tanh(cx + d)
    F16,
    /// w²x²
    F17,
    /// s·w²x²
    F18,
    /// a²(x + c)²
    F19,
    /// s·a²(x + c)²
    F20,
}

/// Runs `$e` with `$K` bound to the kernel type of `$fam`: the one place the family is matched.
macro_rules! dispatch {
    ($fam:expr, $K:ident => $e:expr) => {{
        use Family::*;
        match $fam {
            F01 => {
                type $K = K01;
                $e
            }
            F02 => {
                type $K = K02;
                $e
            }
            F03 => {
                type $K = K03;
                $e
            }
            F04 => {
                type $K = K04;
                $e
            }
            F05 => {
                type $K = K05;
                $e
            }
            F06 => {
                type $K = K06;
                $e
            }
            F07 => {
                type $K = K07;
                $e
            }
            F08 => {
                type $K = K08;
                $e
            }
            F09 => {
                type $K = K09;
                $e
            }
            F10 => {
                type $K = K10;
                $e
            }
            F11 => {
                type $K = K11;
                $e
            }
            F12 => {
                type $K = K12;
                $e
            }
            F13 => {
                type $K = K13;
                $e
            }
            F14 => {
                type $K = K14;
                $e
            }
            F15 => {
                type $K = K15;
                $e
            }
            F16 => {
                type $K = K16;
                $e
            }
            F17 => {
                type $K = K17;
                $e
            }
            F18 => {
                type $K = K18;
                $e
            }
            F19 => {
                type $K = K19;
                $e
            }
            F20 => {
                type $K = K20;
                $e
            }
        }
    }};
}

impl Family {
    pub const ALL: [Family; 20] = [
        Family::F01,
        Family::F02,
        Family::F03,
        Family::F04,
        Family::F05,
        Family::F06,
        Family::F07,
        Family::F08,
        Family::F09,
        Family::F10,
        Family::F11,
        Family::F12,
        Family::F13,
        Family::F14,
        Family::F15,
        Family::F16,
        Family::F17,
        Family::F18,
        Family::F19,
        Family::F20,
    ];

    /// The F number, 1..=20.
    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(c: i32) -> Result<Family> {
        usize::try_from(c)
            .ok()
            .and_then(|c| c.checked_sub(1))
            .and_then(|i| Family::ALL.get(i).copied())
            .ok_or_else(|| invalid!("functional family code {c} is out of range (1 to 20)"))
    }

    /// "f01".."f20".
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 20] = [
            "f01", "f02", "f03", "f04", "f05", "f06", "f07", "f08", "f09", "f10", "f11", "f12", "f13", "f14", "f15",
            "f16", "f17", "f18", "f19", "f20",
        ];
        NAMES[self as usize - 1]
    }

    /// k, the trainable parameters per connection (1, 2 or 3).
    pub fn params_per_connection(self) -> usize {
        use Family::*;
        match self {
            F01 | F02 | F06 | F07 | F17 | F18 => 1,
            F03 | F05 | F08 | F10 | F19 | F20 => 2,
            F04 | F09 | F11 | F12 | F13 | F14 | F15 | F16 => 3,
        }
    }

    /// Whether f has the fixed random sign s per connection.
    pub fn uses_sign(self) -> bool {
        use Family::*;
        matches!(self, F06 | F07 | F08 | F10 | F18 | F20)
    }

    /// Whether f(0; θ) can be non-zero, so that a layer takes each connection's value at 0 out of
    /// its sum ([`Functional::forward`]): otherwise ∂L/∂a of a e^{cx} or a σ(cx + d) is about the
    /// bias's gradient for every input at once, and the unit's offset learns n_in times faster
    /// than its bias (docs/functional.md, "The centred form"; LeCun et al. 1998).
    pub fn centred(self) -> bool {
        use Family::*;
        !matches!(self, F01 | F02 | F03 | F04 | F06 | F07 | F17 | F18)
    }

    /// The w² on the diagonal of a new square layer of the families whose stacks make every unit
    /// alike (slopes of one sign: a non-negative matrix keeps every direction's norm only as a
    /// permutation; squares), so each unit starts by following one below it (docs/functional.md).
    pub fn diagonal_gain(self) -> Option<f32> {
        match self {
            Family::F01 => Some(1.25),
            Family::F17 | Family::F18 => Some(1.75),
            _ => None,
        }
    }

    /// The initialisation interval U(lo, hi) of parameter `k` (the author's code: U(−0.1, 0.1)
    /// unless the table says otherwise).
    pub fn init_range(self, k: usize) -> (f32, f32) {
        use Family::*;
        match (self, k) {
            (F05, 1) => (-4.0, -2.0),
            (F06 | F07, 0) => (0.0, 0.2),
            (F12 | F13, 1 | 2) => (-10.0, 10.0),
            _ => (-0.1, 0.1),
        }
    }

    /// The initialisation interval U(lo, hi) of parameter `k` that gives the slope ∂f/∂x of a
    /// connection the variance `var` of a dense weight (Glorot's 2/(n_in + n_out) for a tanh
    /// layer, see [`crate::Init::slope_variance`]), so that a stack of layers keeps the scale of
    /// its activations forward and of its errors backward (Glorot & Bengio 2010, He et al. 2015).
    /// Derivation (docs/functional.md, "Initialisation"): with u(r) = U(−r, r), g = √(3 var) (so
    /// u(g) has variance var) and inner parameters c ~ u(√3) (E c² = 1):
    /// - w²x and w²x²: lognormal w ([`Family::lognormal_sigma`]; this returns (0, ∞));
    /// - w³x: E w⁶ = var (w ~ u((7 var)^⅙));
    /// - a x² + c x: slope 2ax + c, c ~ u(g), a ~ u(g/2); the cubic likewise, d ~ u(g), c ~ u(g/2),
    ///   a ~ u(g/3);
    /// - a e^{cx}: slope a c at 0, c ~ U(−1.5, −0.5) (the author's sign, a third of the scale),
    ///   a ~ u(g / √(E c²)), E c² = 13/12;
    /// - s max(w, 0) x: w ~ U(0, g) (E w² = var);
    /// - s relu(ax + c), a relu(cx + d): the relu passes half the connections, a ~ u(√2 g);
    /// - s σ(ax + c), a σ(cx + d): σ'(0) = ¼, a ~ u(4g);
    /// - a sin, a cos (cx + d): d ~ U(−π, π) (every phase), E cos² = E sin² = ½, a ~ u(√2 g);
    /// - a sinh, a tanh (cx + d): d ~ u(0.1), slope ≈ a c, a ~ u(g);
    /// - a (cosh(cx + d) − 1): slope a c sinh d at 0, d ~ u(1), E sinh² d = (sinh 2 / 2 − 1)/2,
    ///   a ~ u(g / √0.4067);
    /// - s w²x²: no slope at 0, and the square passes a signal of scale q on as one of q², so
    ///   a stack collapses to 0 unless the gain is large: E w⁴ = 4 var (w ~ u((20 var)^¼)), the
    ///   best of 1, 2, 4, 8 var tried at depth 10;
    /// - a²(x + c)², s a²(x + c)²: slope 2a²c at 0, E a⁴ = var/4 (a ~ u((5 var / 4)^¼)), c ~ u(√3).
    ///
    /// The bias then cancels what the connections give a zero input (b_j = −Σ_i f(0; θ_ij)), so
    /// the constant parts (a e^{c·0}, s σ(c), a cos d, ...) do not push the units off centre.
    pub fn scaled_range(self, k: usize, var: f32) -> (f32, f32) {
        use Family::*;
        let g = (3.0 * var).sqrt();
        let u = |r: f32| (-r, r);
        let unit = 3f32.sqrt();
        match (self, k) {
            (F01 | F17, _) => (0.0, f32::INFINITY), // lognormal, see [`Family::lognormal_sigma`]
            (F02, _) => u((7.0 * var).powf(1.0 / 6.0)),
            (F03, 0) => u(g / 2.0),
            (F03, _) => u(g),
            (F04, 0) => u(g / 3.0),
            (F04, 1) => u(g / 2.0),
            (F04, _) => u(g),
            (F05, 0) => u(g / (13.0f32 / 12.0).sqrt()),
            (F05, _) => (-1.5, -0.5),
            (F06 | F07, _) => (0.0, g),
            (F08, 0) => u(2f32.sqrt() * g),
            (F08, _) => u(g),
            (F09, 0) => u(2f32.sqrt() * g),
            (F10, 0) => u(4.0 * g),
            (F10, _) => u(0.1),
            (F11, 0) => u(4.0 * g),
            (F12 | F13, 0) => u(2f32.sqrt() * g),
            (F12 | F13, 2) => u(std::f32::consts::PI),
            (F14 | F16, 0) => u(g),
            (F15, 0) => u(g / 0.406_72f32.sqrt()),
            (F15, 2) => u(1.0),
            (F09 | F11 | F12 | F13 | F14 | F15 | F16, 1) => u(unit),
            (F09 | F11 | F14 | F16, _) | (F12 | F13 | F15, _) => u(0.1),
            (F18, _) => u((20.0 * var).powf(0.25)),
            (F19 | F20, 0) => u((1.25 * var).powf(0.25)),
            (F19 | F20, _) => u(unit),
        }
    }

    /// The spread σ of w = exp(μ + σ N(0, 1)) when the variance-preserving init draws w
    /// lognormal (w²x and w²x²), with μ = −σ² − ln(n_in / 4)/2 so that E w² = e^{2μ+2σ²} = 4/n_in;
    /// `None` for the families drawn from `scaled_range`. w²x and w²x² have slopes of one sign,
    /// so a layer's matrix of w² is non-negative and its Perron eigenvalue n_in E w² (the gain of
    /// the mode all units share) dwarfs the √(n_in Var w²) that carries what tells inputs apart
    /// (√(5 n_in / 4) times smaller for a uniform w, 9x at 64 inputs): after a few layers every
    /// unit says the same thing. A lognormal law has Var w² = (e^{4σ²} − 1)(E w²)², a heavy tail
    /// that lets each unit follow a few of its inputs. E w² = 4/n_in was the best of 1, 2, 4, 16
    /// (over n_in) at depth 3 on MNIST; σ the best of 0.5 ... 3 at depth 10 (F01: 0.19 at σ = 1,
    /// 0.42 at 2; F17: 0.19 at 1, 0.32 at 1.5, chance at 2), for about a point lost at depth 1
    /// (docs/functional.md, "Initialisation and depth").
    pub fn lognormal_sigma(self) -> Option<f32> {
        match self {
            Family::F01 => Some(2.0),
            Family::F17 => Some(1.5),
            _ => None,
        }
    }

    /// f(x; θ) of one connection with sign s (scalar; the layer's loops inline the same code).
    /// `theta` holds the family's k parameters in order (w; or a, c; or a, c, d).
    pub fn f(self, x: f32, theta: &[f32], s: f32) -> f32 {
        let t = pad(theta);
        dispatch!(self, K => K::f(x, t, s))
    }

    /// (∂f/∂x, [∂f/∂θ_0, ∂f/∂θ_1, ∂f/∂θ_2]) of one connection (entries past k are 0).
    pub fn df(self, x: f32, theta: &[f32], s: f32) -> (f32, [f32; 3]) {
        let t = pad(theta);
        let (dx, mut dt) = dispatch!(self, K => K::df(x, t, s));
        dt[self.params_per_connection()..].fill(0.0);
        (dx, dt)
    }
}

fn pad(theta: &[f32]) -> [f32; 3] {
    let mut t = [0f32; 3];
    for (a, b) in t.iter_mut().zip(theta) {
        *a = *b;
    }
    t
}

/// The fixed sign s_ij ∈ {−1, +1} of connection i -> j: a SplitMix64 hash of (seed, i, j), so it
/// needs no storage and the spec reproduces it (the author drew sign(U(−0.1, 0.1)) once).
#[inline]
pub fn connection_sign(seed: u64, i: usize, j: usize) -> f32 {
    let mut x = seed ^ (((i as u64) << 32) | j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    if x >> 63 == 0 { 1.0 } else { -1.0 }
}

// ---------------------------------------------------------------------------------------------
// The families' functions. Each is branch-free (selects, fast polynomial transcendentals) so the
// loops over j vectorise. `t` holds the connection's parameters (slots past K are don't-care
// stand-ins), `s` its sign (don't-care for families without one).

/// One family: f and its derivatives at one connection.
pub trait Kernel {
    /// Parameters per connection.
    const K: usize;
    fn f(x: f32, t: [f32; 3], s: f32) -> f32;
    /// (∂f/∂x, ∂f/∂θ_k for k < K; later slots are garbage).
    fn df(x: f32, t: [f32; 3], s: f32) -> (f32, [f32; 3]);
}

#[inline(always)]
fn clamp(v: f32, lo: f32, hi: f32) -> f32 {
    // Written as selects (f32::clamp asserts lo <= hi and may branch).
    let v = if v < lo { lo } else { v };
    if v > hi { hi } else { v }
}

#[inline(always)]
fn mask(cond: bool) -> f32 {
    if cond { 1.0 } else { 0.0 }
}

macro_rules! kernels {
    ($($name:ident: K = $k:expr, f($x:ident, $t:ident, $s:ident) = $f:block, df = $df:block;)*) => {
        $(
            #[doc(hidden)]
            pub struct $name;
            impl Kernel for $name {
                const K: usize = $k;
                #[inline(always)]
                #[allow(unused_variables)]
                fn f($x: f32, $t: [f32; 3], $s: f32) -> f32 $f
                #[inline(always)]
                #[allow(unused_variables)]
                fn df($x: f32, $t: [f32; 3], $s: f32) -> (f32, [f32; 3]) $df
            }
        )*
    };
}

kernels! {
    K01: K = 1, f(x, t, s) = { t[0] * t[0] * x }, df = {
        let w = t[0];
        (w * w, [2.0 * w * x, 0.0, 0.0])
    };
    K02: K = 1, f(x, t, s) = { t[0] * t[0] * t[0] * x }, df = {
        let w = t[0];
        (w * w * w, [3.0 * w * w * x, 0.0, 0.0])
    };
    K03: K = 2, f(x, t, s) = { t[0] * x * x + t[1] * x }, df = {
        (2.0 * t[0] * x + t[1], [x * x, x, 0.0])
    };
    K04: K = 3, f(x, t, s) = { t[0] * x * x * x + t[1] * x * x + t[2] * x }, df = {
        let x2 = x * x;
        (3.0 * t[0] * x2 + 2.0 * t[1] * x + t[2], [x2 * x, x2, x])
    };
    // The exponent's argument is clipped; where the clip is active the derivatives are still the
    // unclipped formulas evaluated at the clipped value (the author's code; they are not 0).
    K05: K = 2, f(x, t, s) = { t[0] * exp_fast(clamp(t[1] * x, -30.0, 30.0)) }, df = {
        let (a, c) = (t[0], t[1]);
        let e = exp_fast(clamp(c * x, -30.0, 30.0));
        (a * c * e, [e, a * x * e, 0.0])
    };
    // Forward uses clip(w, 0, 1000); ∂w is masked by w ≥ 0 (not by the upper clip), ∂x is s·clip(w).
    K06: K = 1, f(x, t, s) = { s * clamp(t[0], 0.0, 1000.0) * x }, df = {
        let w = t[0];
        (s * clamp(w, 0.0, 1000.0), [s * x * mask(w >= 0.0), 0.0, 0.0])
    };
    // As F06 with the gradient passed straight through: a weight below 0 can come back.
    K07: K = 1, f(x, t, s) = { s * clamp(t[0], 0.0, 1000.0) * x }, df = {
        (s * clamp(t[0], 0.0, 1000.0), [s * x, 0.0, 0.0])
    };
    // relu = clip(z, 0, 20); the mask is [z > 0] only, ignoring the upper clip, as the author's.
    K08: K = 2, f(x, t, s) = { s * clamp(t[0] * x + t[1], 0.0, 20.0) }, df = {
        let m = s * mask(t[0] * x + t[1] > 0.0);
        (t[0] * m, [x * m, m, 0.0])
    };
    K09: K = 3, f(x, t, s) = {
        let z = t[1] * x + t[2];
        t[0] * (if z > 0.0 { z } else { 0.0 })
    }, df = {
        let (a, c) = (t[0], t[1]);
        let z = c * x + t[2];
        let m = mask(z > 0.0);
        let r = if z > 0.0 { z } else { 0.0 };
        (a * c * m, [r, a * x * m, a * m])
    };
    // σ of the argument clipped to ±30; derivatives unmasked (σ' at ±30 is ~1e-13 anyway).
    K10: K = 2, f(x, t, s) = { s * sigmoid_fast(clamp(t[0] * x + t[1], -30.0, 30.0)) }, df = {
        let g = sigmoid_fast(clamp(t[0] * x + t[1], -30.0, 30.0));
        let g = s * g * (1.0 - g);
        (t[0] * g, [x * g, g, 0.0])
    };
    K11: K = 3, f(x, t, s) = { t[0] * sigmoid_fast(clamp(t[1] * x + t[2], -30.0, 30.0)) }, df = {
        let (a, c) = (t[0], t[1]);
        let sg = sigmoid_fast(clamp(c * x + t[2], -30.0, 30.0));
        let g = a * sg * (1.0 - sg);
        (c * g, [sg, x * g, g])
    };
    // The mathematically correct ∂f/∂x = a c cos z. The author's F12.py passes the *negative* of
    // it to the layer below (`ograds = -dot(...)`), a sign error in error transmission only; the
    // parameter gradients there are right. tests/functional.rs pins the correct sign.
    K12: K = 3, f(x, t, s) = { t[0] * sin_cos_fast(t[1] * x + t[2]).0 }, df = {
        let (a, c) = (t[0], t[1]);
        let (sn, cs) = sin_cos_fast(c * x + t[2]);
        let g = a * cs;
        (c * g, [sn, x * g, g])
    };
    // Correct ∂f/∂x = −a c sin z (F13.py transmits +a c sin z: the same sign error as F12).
    K13: K = 3, f(x, t, s) = { t[0] * sin_cos_fast(t[1] * x + t[2]).1 }, df = {
        let (a, c) = (t[0], t[1]);
        let (sn, cs) = sin_cos_fast(c * x + t[2]);
        let g = -(a * sn);
        (c * g, [cs, x * g, g])
    };
    K14: K = 3, f(x, t, s) = { t[0] * hyperbolic(t[1] * x + t[2]).0 }, df = {
        let (a, c) = (t[0], t[1]);
        let (sh, ch, _) = hyperbolic(c * x + t[2]);
        let g = a * ch;
        (c * g, [sh, x * g, g])
    };
    K15: K = 3, f(x, t, s) = { t[0] * hyperbolic(t[1] * x + t[2]).2 }, df = {
        let (a, c) = (t[0], t[1]);
        let (sh, _, chm1) = hyperbolic(c * x + t[2]);
        let g = a * sh;
        (c * g, [chm1, x * g, g])
    };
    K16: K = 3, f(x, t, s) = { t[0] * tanh_fast(t[1] * x + t[2]) }, df = {
        let (a, c) = (t[0], t[1]);
        let th = tanh_fast(c * x + t[2]);
        let g = a * (1.0 - th * th);
        (c * g, [th, x * g, g])
    };
    K17: K = 1, f(x, t, s) = { t[0] * t[0] * (x * x) }, df = {
        let w = t[0];
        (2.0 * (w * w) * x, [2.0 * w * (x * x), 0.0, 0.0])
    };
    K18: K = 1, f(x, t, s) = { s * (t[0] * t[0]) * (x * x) }, df = {
        let w = t[0];
        (2.0 * s * (w * w) * x, [2.0 * s * w * (x * x), 0.0, 0.0])
    };
    K19: K = 2, f(x, t, s) = {
        let u = x + t[1];
        t[0] * t[0] * (u * u)
    }, df = {
        let (a, u) = (t[0], x + t[1]);
        let g = 2.0 * (a * a) * u;
        (g, [2.0 * a * (u * u), g, 0.0])
    };
    K20: K = 2, f(x, t, s) = {
        let u = x + t[1];
        s * (t[0] * t[0]) * (u * u)
    }, df = {
        let (a, u) = (t[0], x + t[1]);
        let g = 2.0 * s * (a * a) * u;
        (g, [2.0 * s * a * (u * u), g, 0.0])
    };
}

// ---------------------------------------------------------------------------------------------
// The layer

#[derive(Clone, Debug, PartialEq)]
pub struct Functional {
    pub n_in: usize,
    pub n_out: usize,
    pub family: Family,
    /// Offset of the θ block ([k][n_in][n_out]) in the parameter buffer.
    pub p: usize,
    /// Offset of the bias (n_out).
    pub b: usize,
    /// Seed of the fixed connection signs (families with `uses_sign()`).
    pub sign_seed: u64,
}

/// Minimum connection·rows per task before splitting over threads pays off.
const GRAIN: usize = 64 * 1024;

impl Functional {
    /// A layer whose θ block starts at `p` and bias follows it.
    pub fn new(n_in: usize, n_out: usize, family: Family, p: usize, sign_seed: u64) -> Functional {
        let b = p + family.params_per_connection() * n_in * n_out;
        Functional { n_in, n_out, family, p, b, sign_seed }
    }

    pub fn own_params(&self) -> usize {
        self.family.params_per_connection() * self.n_in * self.n_out + self.n_out
    }

    /// θ from the family's intervals (parameter block by block, row-major), and the bias that
    /// makes the layer the author's at the start (his bias 0: b_j = Σ_i f(0; θ_ij) undoes the
    /// centred form's offset).
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let plane = self.n_in * self.n_out;
        for k in 0..self.family.params_per_connection() {
            let (lo, hi) = self.family.init_range(k);
            for v in &mut params[self.p + k * plane..self.p + (k + 1) * plane] {
                *v = lo + (hi - lo) * rng.uniform();
            }
        }
        let offsets = self.offsets(params);
        params[self.b..self.b + self.n_out].copy_from_slice(&offsets);
    }

    /// θ from the family's variance-preserving intervals ([`Family::scaled_range`] with slope
    /// variance `var`; a square layer of a family with a [`Family::diagonal_gain`] starts near the
    /// identity), bias 0: every unit is centred at a zero input, as each connection's value there
    /// is taken out of the sum ([`Family::centred`]). What [`crate::Network::new`] does unless the spec asks for `Init::SmallUniform`
    /// (then [`Functional::init`], the author's U(−0.1, 0.1) ranges, which stop a deep stack from
    /// learning: the slope of a·tanh(cx + d) there has variance 1.1e-5, so every layer of 64
    /// units scales the error it passes down by about 1/37).
    pub fn init_scaled(&self, params: &mut [f32], var: f32, rng: &mut Rng) {
        let plane = self.n_in * self.n_out;
        let k = self.family.params_per_connection();
        for kk in 0..k {
            let block = &mut params[self.p + kk * plane..self.p + (kk + 1) * plane];
            if let Some(sigma) = self.family.lognormal_sigma() {
                let mu = -sigma * sigma - 0.5 * (self.n_in.max(1) as f32 / 4.0).ln();
                block.iter_mut().for_each(|v| *v = (mu + sigma * rng.normal()).exp());
                continue;
            }
            let (lo, hi) = self.family.scaled_range(kk, var);
            for v in block {
                *v = lo + (hi - lo) * rng.uniform();
            }
        }
        if let (Some(gain), true) = (self.family.diagonal_gain(), self.n_in == self.n_out) {
            // The rest at 1% of its variance: what moves a unit off its diagonal is learnt.
            for v in &mut params[self.p..self.p + plane] {
                *v *= 0.1;
            }
            for i in 0..self.n_in {
                params[self.p + i * self.n_out + i] = gain.sqrt();
            }
        }
        params[self.b..self.b + self.n_out].fill(0.0);
    }

    /// s_ij row-major (n_in × n_out) for families with a sign, else empty. Recomputed per call
    /// (n_in·n_out hashes, 1/rows of a pass's work) rather than stored.
    pub fn signs(&self) -> Vec<f32> {
        if !self.family.uses_sign() {
            return Vec::new();
        }
        let mut s = Vec::with_capacity(self.n_in * self.n_out);
        for i in 0..self.n_in {
            s.extend((0..self.n_out).map(|j| connection_sign(self.sign_seed, i, j)));
        }
        s
    }

    fn theta<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.p..self.p + self.family.params_per_connection() * self.n_in * self.n_out]
    }

    /// z_rj = Σ_i (f(x_ri; θ_ij) − f(0; θ_ij)) + b_j (f(0) is 0 unless [`Family::centred`]): the
    /// plain sum's functions, better conditioned. x: rows × n_in; z: rows × n_out. Splits rows
    /// over the current pool.
    pub fn forward(&self, params: &[f32], x: &[f32], rows: usize, z: &mut [f32], threads: usize) {
        let (n_in, n_out, family) = (self.n_in, self.n_out, self.family);
        let (x, z) = (&x[..rows * n_in], &mut z[..rows * n_out]);
        let theta = self.theta(params);
        let signs = self.signs();
        let mut bias = std::borrow::Cow::Borrowed(&params[self.b..self.b + n_out]);
        if family.centred() {
            bias.to_mut().iter_mut().zip(self.offsets_signed(params, &signs)).for_each(|(b, o)| *b -= o);
        }
        let bias = &bias[..];
        if n_out == 0 {
            return;
        }
        if n_in == 0 {
            z.chunks_exact_mut(n_out).for_each(|zr| zr.copy_from_slice(bias));
            return;
        }
        let work = rows * n_in * n_out;
        if threads <= 1 || rows < 2 || work < 2 * GRAIN {
            forward_wide(family, theta, &signs, bias, x, n_in, n_out, z);
            return;
        }
        let per = rows.div_ceil(threads.min(work / GRAIN).max(1));
        crate::parallel::for_each_chunk_mut([z], per * n_out, threads, |i, [z]| {
            forward_wide(family, theta, &signs, bias, crate::parallel::chunk(x, i, per * n_in), n_in, n_out, z)
        });
    }

    /// Given dz = dL/dz (rows × n_out), overwrites dθ (Σ_rows δ_j ∂f/∂θ) and db (column sums of
    /// dz) in `grads`, and when `dx` is given writes dL/dx_ri = Σ_j δ_rj ∂f/∂x(x_ri) there.
    /// Splits input indices i over the current pool: each task owns θ[:, i-block, :] and the
    /// columns of dx it computes (as a transposed n_in × rows scratch, transposed back at the end).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        x: &[f32],
        dz: &[f32],
        dx: Option<&mut [f32]>,
        rows: usize,
        threads: usize,
    ) {
        let (n_in, n_out, family) = (self.n_in, self.n_out, self.family);
        let k = family.params_per_connection();
        let plane = n_in * n_out;
        let (x, dz) = (&x[..rows * n_in], &dz[..rows * n_out]);
        let theta = self.theta(params);
        let signs = self.signs();
        super::dense::column_sums(dz, n_out, &mut grads[self.b..self.b + n_out]);
        if n_in == 0 || n_out == 0 || rows == 0 {
            grads[self.p..self.p + k * plane].fill(0.0);
            if let Some(dx) = dx {
                dx[..rows * n_in].fill(0.0);
            }
            return;
        }
        let want_dx = dx.is_some();
        let mut dxt = vec![0f32; if want_dx { n_in * rows } else { 0 }];
        let dtheta = &mut grads[self.p..self.p + k * plane];

        let work = rows * n_in * n_out;
        let tasks = if threads <= 1 || n_in < 2 || work < 2 * GRAIN { 1 } else { threads.min(work / GRAIN).min(n_in) };
        let per = n_in.div_ceil(tasks);
        let jobs = input_blocks(dtheta, plane, n_out, per, &mut dxt, rows);
        let run = |(i0, g, d): (usize, [&mut [f32]; 3], &mut [f32])| {
            backward_wide(family, theta, &signs, x, dz, n_in, n_out, rows, i0, g, d)
        };
        crate::parallel::for_each_job(jobs, threads, run);
        if let Some(dx) = dx {
            transpose_into(&dxt, n_in, rows, &mut dx[..rows * n_in]);
        }
        if family.centred() {
            self.take_offset_share(theta, &signs, grads);
        }
    }

    /// Takes the offsets' share −db_j ∂f(0; θ_ij)/∂θ out of dθ: the parameter gradient of one
    /// zero row whose δ is db, by the same kernel.
    fn take_offset_share(&self, theta: &[f32], signs: &[f32], grads: &mut [f32]) {
        let (n_in, n_out, plane) = (self.n_in, self.n_out, self.n_in * self.n_out);
        let k = self.family.params_per_connection();
        let db = grads[self.b..self.b + n_out].to_vec();
        let mut share = vec![0f32; k * plane];
        let job = input_blocks(&mut share, plane, n_out, n_in, &mut [], 1).pop().expect("one block");
        backward_wide(self.family, theta, signs, &vec![0.0; n_in], &db, n_in, n_out, 1, 0, job.1, job.2);
        grads[self.p..self.p + k * plane].iter_mut().zip(share).for_each(|(g, c)| *g -= c);
    }

    /// Σ_i f(0; θ_ij) per unit j, summed over i in order (zeros for a family that is not
    /// [`Family::centred`]): what the centred form takes out of unit j's sum, and what a model
    /// file of version 7 or lower adds to its bias.
    pub fn offsets(&self, params: &[f32]) -> Vec<f32> {
        self.offsets_signed(params, &self.signs())
    }

    /// [`Functional::offsets`] with the layer's signs already at hand.
    fn offsets_signed(&self, params: &[f32], signs: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.n_out];
        if self.family.centred() && self.n_in > 0 {
            // One zero row through the layer's own kernel, with no bias.
            let (zeros, theta) = (vec![0f32; self.n_in + self.n_out], self.theta(params));
            let (x, bias) = zeros.split_at(self.n_in);
            forward_wide(self.family, theta, signs, bias, x, self.n_in, self.n_out, &mut out);
        }
        out
    }
}

/// One backward task: its first input, its rows of each gradient plane (absent planes empty) and
/// its rows of the transposed dx (empty when dx is not wanted).
pub(crate) type InputBlock<'a> = (usize, [&'a mut [f32]; 3], &'a mut [f32]);

/// Splits gradient planes (`dtheta`: up to 3 planes of n_in × n_out) and a transposed dx scratch
/// (n_in × rows, or empty) into blocks of `per` inputs, one per task.
pub(crate) fn input_blocks<'a>(
    dtheta: &'a mut [f32],
    plane: usize,
    n_out: usize,
    per: usize,
    dxt: &'a mut [f32],
    rows: usize,
) -> Vec<InputBlock<'a>> {
    let n_in = plane / n_out;
    let mut planes: Vec<std::slice::ChunksMut<f32>> =
        dtheta.chunks_mut(plane).map(|p| p.chunks_mut(per * n_out)).collect();
    let want_dx = !dxt.is_empty();
    let mut dxt_blocks = dxt.chunks_mut(per * rows.max(1));
    let mut jobs = Vec::new();
    for t in 0..n_in.div_ceil(per) {
        let mut g: [&mut [f32]; 3] = [&mut [], &mut [], &mut []];
        for (gk, p) in g.iter_mut().zip(planes.iter_mut()) {
            *gk = p.next().expect("one block per task");
        }
        let d: &mut [f32] = if want_dx { dxt_blocks.next().expect("one block per task") } else { &mut [] };
        jobs.push((t * per, g, d));
    }
    jobs
}

/// dx (rows × n_in) from its transpose.
pub(crate) fn transpose_into(dxt: &[f32], n_in: usize, rows: usize, dx: &mut [f32]) {
    for (i, col) in dxt.chunks_exact(rows).enumerate().take(n_in) {
        for (r, v) in col.iter().enumerate() {
            dx[r * n_in + i] = *v;
        }
    }
}

/// The k parameter planes (n_in × n_out each) of θ; planes past K are stand-ins (never read).
#[inline(always)]
fn planes<K: Kernel>(theta: &[f32], plane: usize) -> [&[f32]; 3] {
    let p0 = &theta[..plane];
    let p1 = if K::K >= 2 { &theta[plane..2 * plane] } else { p0 };
    let p2 = if K::K >= 3 { &theta[2 * plane..3 * plane] } else { p0 };
    [p0, p1, p2]
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_rows<K: Kernel>(
    theta: &[f32],
    signs: &[f32],
    bias: &[f32],
    x: &[f32],
    n_in: usize,
    n_out: usize,
    z: &mut [f32],
) {
    let plane = n_in * n_out;
    let [p0, p1, p2] = planes::<K>(theta, plane);
    // Families without a sign never read it; θ stands in so the loop keeps one shape.
    let s_all = if signs.is_empty() { p0 } else { &signs[..plane] };
    // Tiles of 4 rows share each load of θ (K·n_in·n_out floats per pass over it, more than L2
    // holds for K = 3). Every z element is the same sum in the same order as in a lone row.
    let tiles = x.len() / (4 * n_in);
    for (x4, z4) in x.chunks_exact(4 * n_in).zip(z.chunks_exact_mut(4 * n_out)) {
        z4.fill(0.0);
        let (z0, rest) = z4.split_at_mut(n_out);
        let (z1, rest) = rest.split_at_mut(n_out);
        let (z2, z3) = rest.split_at_mut(n_out);
        for i in 0..n_in {
            let (x0, x1, x2, x3) = (x4[i], x4[n_in + i], x4[2 * n_in + i], x4[3 * n_in + i]);
            let row = i * n_out..(i + 1) * n_out;
            for (((((((z0, z1), z2), z3), a), c), d), s) in z0
                .iter_mut()
                .zip(z1.iter_mut())
                .zip(z2.iter_mut())
                .zip(z3.iter_mut())
                .zip(&p0[row.clone()])
                .zip(&p1[row.clone()])
                .zip(&p2[row.clone()])
                .zip(&s_all[row])
            {
                let t = [*a, *c, *d];
                *z0 += K::f(x0, t, *s);
                *z1 += K::f(x1, t, *s);
                *z2 += K::f(x2, t, *s);
                *z3 += K::f(x3, t, *s);
            }
        }
        for zr in z4.chunks_exact_mut(n_out) {
            for (zj, b) in zr.iter_mut().zip(bias) {
                *zj += b;
            }
        }
    }
    let (x, z) = (&x[tiles * 4 * n_in..], &mut z[tiles * 4 * n_out..]);
    for (xr, zr) in x.chunks_exact(n_in).zip(z.chunks_exact_mut(n_out)) {
        zr.fill(0.0);
        for (i, &xi) in xr.iter().enumerate() {
            let row = i * n_out..(i + 1) * n_out;
            for ((((zj, a), c), d), s) in
                zr.iter_mut().zip(&p0[row.clone()]).zip(&p1[row.clone()]).zip(&p2[row.clone()]).zip(&s_all[row])
            {
                *zj += K::f(xi, [*a, *c, *d], *s);
            }
        }
        for (zj, b) in zr.iter_mut().zip(bias) {
            *zj += b;
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_any(
    family: Family,
    theta: &[f32],
    signs: &[f32],
    bias: &[f32],
    x: &[f32],
    n_in: usize,
    n_out: usize,
    z: &mut [f32],
) {
    dispatch!(family, K => forward_rows::<K>(theta, signs, bias, x, n_in, n_out, z))
}

crate::simd::multiversion!(fn forward_wide(family: Family, theta: &[f32], signs: &[f32], bias: &[f32], x: &[f32], n_in: usize, n_out: usize, z: &mut [f32]) => forward_any);

/// Lanes of the ∂x reduction over j: fixed, so the sum's order does not depend on the vector width.
const LANES: usize = 8;

/// Σ v in a fixed order (set by v's length alone), destroying v: the back half is added onto the
/// front half until LANES values are left, then a tree over those. Each halving is an elementwise
/// loop that vectorises; a running-lanes loop over chunks of LANES compiled to shuffles instead.
#[inline(always)]
pub(crate) fn lane_sum(v: &mut [f32]) -> f32 {
    let mut n = v.len();
    while n > LANES {
        let h = n.div_ceil(2);
        let (front, back) = v[..n].split_at_mut(h);
        for (f, b) in front.iter_mut().zip(back.iter()) {
            *f += b;
        }
        n = h;
    }
    let mut l = [0f32; LANES];
    l[..n].copy_from_slice(&v[..n]);
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

/// Backward over inputs i0..i0 + g[0].len() / n_out: g[k] (rows i of plane k) and dxt (rows i of
/// the transposed dx, empty when not wanted) are this task's.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_inputs<K: Kernel>(
    theta: &[f32],
    signs: &[f32],
    x: &[f32],
    dz: &[f32],
    n_in: usize,
    n_out: usize,
    rows: usize,
    i0: usize,
    g: [&mut [f32]; 3],
    dxt: &mut [f32],
) {
    let plane = n_in * n_out;
    let [p0, p1, p2] = planes::<K>(theta, plane);
    let s_all = if signs.is_empty() { p0 } else { &signs[..plane] };
    let count = g[0].len() / n_out;
    let [o0, o1, o2] = g;
    // One input's gradient rows accumulate here (all three exist, so the loop keeps one shape),
    // and the δ·∂f/∂x terms of one (row, input) before their lane sum.
    let mut acc = vec![0f32; 3 * n_out];
    let mut ex = vec![0f32; n_out];
    for li in 0..count {
        let i = i0 + li;
        let row = i * n_out..(i + 1) * n_out;
        let (a, c, d, s) = (&p0[row.clone()], &p1[row.clone()], &p2[row.clone()], &s_all[row]);
        acc.fill(0.0);
        let (g0, rest) = acc.split_at_mut(n_out);
        let (g1, g2) = rest.split_at_mut(n_out);
        for r in 0..rows {
            let xi = x[r * n_in + i];
            let dr = &dz[r * n_out..(r + 1) * n_out];
            for (((((((e, dv), a), c), d), s), g0), (g1, g2)) in ex
                .iter_mut()
                .zip(dr)
                .zip(a)
                .zip(c)
                .zip(d)
                .zip(s)
                .zip(g0.iter_mut())
                .zip(g1.iter_mut().zip(g2.iter_mut()))
            {
                let (gx, gt) = K::df(xi, [*a, *c, *d], *s);
                *g0 += dv * gt[0];
                if K::K >= 2 {
                    *g1 += dv * gt[1];
                }
                if K::K >= 3 {
                    *g2 += dv * gt[2];
                }
                *e = dv * gx;
            }
            if !dxt.is_empty() {
                dxt[li * rows + r] = lane_sum(&mut ex);
            }
        }
        o0[li * n_out..(li + 1) * n_out].copy_from_slice(g0);
        if K::K >= 2 {
            o1[li * n_out..(li + 1) * n_out].copy_from_slice(g1);
        }
        if K::K >= 3 {
            o2[li * n_out..(li + 1) * n_out].copy_from_slice(g2);
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_any(
    family: Family,
    theta: &[f32],
    signs: &[f32],
    x: &[f32],
    dz: &[f32],
    n_in: usize,
    n_out: usize,
    rows: usize,
    i0: usize,
    g: [&mut [f32]; 3],
    dxt: &mut [f32],
) {
    dispatch!(family, K => backward_inputs::<K>(theta, signs, x, dz, n_in, n_out, rows, i0, g, dxt))
}

crate::simd::multiversion!(fn backward_wide(family: Family, theta: &[f32], signs: &[f32], x: &[f32], dz: &[f32], n_in: usize, n_out: usize, rows: usize, i0: usize, g: [&mut [f32]; 3], dxt: &mut [f32]) => backward_any);

// ---------------------------------------------------------------------------------------------
// Branch-free transcendentals (libm's sinf, tanhf, ... are calls, which stop the loops over j
// from vectorising). Same style as activation::exp_fast.

/// (sin z, cos z), absolute error < 2e-7 for |z| <= 65536 (z is clamped there: past it an f32
/// cannot hold the phase to 1%). Cody-Waite reduction z = nπ + r with π in three parts (n·P1
/// exact for |n| < 2^15), |r| <= π/2, then Taylor series to r^11 and r^12 (truncation < 6e-8),
/// and the sign (−1)^n applied to both.
#[inline(always)]
#[allow(clippy::excessive_precision)]
pub fn sin_cos_fast(z: f32) -> (f32, f32) {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    const P1: f32 = 3.140625;
    const P2: f32 = 9.675_025_939_941_406e-4;
    const P3: f32 = 1.509_957_990_978_376_4e-7;
    let z = clamp(z, -65536.0, 65536.0);
    let t = z * std::f32::consts::FRAC_1_PI + ROUND;
    let n = t - ROUND;
    let r = ((z - n * P1) - n * P2) - n * P3;
    let r2 = r * r;
    let sp = -1.0 / 39_916_800.0;
    let sp = sp * r2 + 1.0 / 362_880.0;
    let sp = sp * r2 - 1.0 / 5040.0;
    let sp = sp * r2 + 1.0 / 120.0;
    let sp = sp * r2 - 1.0 / 6.0;
    let sn = r + r * r2 * sp;
    let cp = 1.0 / 479_001_600.0;
    let cp = cp * r2 - 1.0 / 3_628_800.0;
    let cp = cp * r2 + 1.0 / 40320.0;
    let cp = cp * r2 - 1.0 / 720.0;
    let cp = cp * r2 + 1.0 / 24.0;
    let cp = cp * r2 - 0.5;
    let cs = 1.0 + r2 * cp;
    // n's parity is the low mantissa bit of t (ulp 1 there): move it to the sign bit.
    let flip = t.to_bits() << 31;
    (f32::from_bits(sn.to_bits() ^ flip), f32::from_bits(cs.to_bits() ^ flip))
}

/// (sinh z, cosh z, cosh z − 1), relative error ~1e-7 (series for |z| < 0.5, where the
/// exponentials would cancel); saturating like exp_fast past |z| = 88 (cosh − 1 overflows to inf
/// past ~89, as f32's cosh does).
#[inline(always)]
pub fn hyperbolic(z: f32) -> (f32, f32, f32) {
    let a = if z < 0.0 { -z } else { z };
    let e = exp_fast(a);
    let ie = 1.0 / e;
    let a2 = a * a;
    let sp = 1.0 / 362_880.0;
    let sp = sp * a2 + 1.0 / 5040.0;
    let sp = sp * a2 + 1.0 / 120.0;
    let sp = sp * a2 + 1.0 / 6.0;
    let sinh_small = a + a * a2 * sp;
    let cp = 1.0 / 3_628_800.0;
    let cp = cp * a2 + 1.0 / 40320.0;
    let cp = cp * a2 + 1.0 / 720.0;
    let cp = cp * a2 + 1.0 / 24.0;
    let cp = cp * a2 + 0.5;
    let cm1_small = a2 * cp;
    let small = a < 0.5;
    let sh = if small { sinh_small } else { 0.5 * (e - ie) };
    let ch = 0.5 * (e + ie);
    let cm1 = if small { cm1_small } else { ch - 1.0 };
    (sh.copysign(z), ch, cm1)
}

/// tanh z, absolute error ~1e-7 (odd series below |z| = 0.125, where 1 − e^{−2|z|} cancels).
#[inline(always)]
pub fn tanh_fast(z: f32) -> f32 {
    let a = if z < 0.0 { -z } else { z };
    let e = exp_fast(-2.0 * a);
    let big = (1.0 - e) / (1.0 + e);
    let a2 = a * a;
    let p = 62.0 / 2835.0;
    let p = p * a2 - 17.0 / 315.0;
    let p = p * a2 + 2.0 / 15.0;
    let p = p * a2 - 1.0 / 3.0;
    let small = a + a * a2 * p;
    (if a < 0.125 { small } else { big }).copysign(z)
}
