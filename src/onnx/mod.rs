//! ONNX export of trained models: a network's encoder, decoder, whole autoencoder or supervised
//! predictions, and a VAE's encoder (posterior mean and log-variance), decoder (mean of p(x|z))
//! or reconstruction, as an ONNX model (opset [`OPSET`], IR version [`IR_VERSION`]) that ONNX
//! Runtime and other runtimes serve. Inputs and outputs are float tensors [batch, width] with
//! a symbolic batch dimension "batch".
//!
//! Every graph is built from standard operators and computes what latent's inference computes:
//! dense layers are Gemm (a tied decoder layer reads its encoder layer's weight initializer with
//! transB = 1), the eight activations are their ONNX operators (GELU, which latent computes in
//! its erf form, as 0.5 z (1 + Erf(z / sqrt 2)), since Gelu is only in opset 20), a classifier's
//! predictions end in Softmax. Functional-transfer layers are the element-wise graph of their
//! family, z_j = sum_i f(x_i; theta_ij) + b_j: families linear in x, x^2 or x^3 (F01-F04, F06, F07,
//! F17, F18) fold their per-connection functions into weight matrices and become Gemm/MatMul;
//! the others broadcast x [batch, in, 1] against their parameter planes [in, out], apply f with
//! standard operators and ReduceSum over `in`. The fixed connection signs are constants.
//! Stochastic layers pass on their means, as inference does unless stochastic inference is on.
//!
//! Not exportable (UNSUPPORTED): memory layers (their state runs from row to row: a batch is a
//! sequence, which a stateless graph over independent rows cannot express), and a network with
//! stochastic inference switched on (latent's random draws cannot be reproduced by a graph).
//!
//! The file is written with the atomic writer of model files ([`crate::atomic_file`]); a model
//! whose parameters exceed protobuf's 2 GiB is UNSUPPORTED (ONNX's external data is not written).

#![forbid(unsafe_code)]

mod graph;
pub mod proto;

use std::path::Path;

use graph::{Attr, Graph};

use crate::activation::{Activation, ELU_ALPHA, LEAKY_SLOPE};
use crate::distribution::DistKind;
use crate::error::{Error, Result, invalid};
use crate::layer::{Connection, Dense, Family};
use crate::network::Network;
use crate::task::Task;
use crate::vae::{Posterior, Vae};

/// The ONNX operator set the files import (default domain). 17 is served by ONNX Runtime since
/// 1.13 and every current runtime; nothing here needs a later one.
pub const OPSET: i64 = 17;
/// The IR version that goes with opset 17 (ONNX 1.12).
pub const IR_VERSION: i64 = 8;

/// Which function of a model a file computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnnxPart {
    /// x -> code (a network); x -> (mean, log_variance) of q(z|x) (a VAE).
    Encoder,
    /// code -> output (a network's raw outputs, as decode); z -> mean of p(x|z) (a VAE).
    Decoder,
    /// x -> decode(encode(x)) (a network, as reconstruct); a VAE's mean of p(x|z) at the
    /// posterior mean.
    Reconstruction,
    /// x -> what predict returns: a classifier's class probabilities (softmax), a regressor's
    /// outputs, an autoencoder's reconstructions. Networks only.
    Predict,
}

impl OnnxPart {
    /// Every part, in code order.
    const ALL: [OnnxPart; 4] = [OnnxPart::Encoder, OnnxPart::Decoder, OnnxPart::Reconstruction, OnnxPart::Predict];

    /// The `LATENT_ONNX_PART_*` code.
    pub fn code(self) -> i32 {
        self as i32
    }
    pub fn from_code(c: i32) -> Result<OnnxPart> {
        usize::try_from(c).ok().and_then(|i| Self::ALL.get(i).copied()).ok_or_else(|| {
            invalid!("ONNX part code {c} is out of range (0 to 3: encoder, decoder, reconstruction, predict)")
        })
    }
    /// "encoder", "decoder", "reconstruction", "predict".
    pub fn name(self) -> &'static str {
        match self {
            OnnxPart::Encoder => "encoder",
            OnnxPart::Decoder => "decoder",
            OnnxPart::Reconstruction => "reconstruction",
            OnnxPart::Predict => "predict",
        }
    }
    pub fn from_name(s: &str) -> Result<OnnxPart> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| invalid!("unknown ONNX part {s:?} (encoder, decoder, reconstruction, predict)"))
    }
}

/// Appends activation `act` of `z` to the graph.
fn activation(g: &mut Graph, act: Activation, z: &str) -> String {
    match act {
        Activation::Identity => z.to_string(),
        Activation::Sigmoid => g.op1("Sigmoid", z),
        Activation::Tanh => g.op1("Tanh", z),
        Activation::Relu => g.op1("Relu", z),
        Activation::LeakyRelu => g.node("LeakyRelu", &[z], &[Attr::Float("alpha", LEAKY_SLOPE)]),
        Activation::Elu => g.node("Elu", &[z], &[Attr::Float("alpha", ELU_ALPHA)]),
        Activation::Softplus => g.op1("Softplus", z),
        Activation::Gelu => {
            // latent's GELU is the exact (erf) form: 0.5 z (1 + erf(z / sqrt 2)).
            let c = g.scalar(std::f32::consts::FRAC_1_SQRT_2);
            let t = g.op2("Mul", z, &c);
            let e = g.op1("Erf", &t);
            let one = g.scalar(1.0);
            let a = g.op2("Add", &e, &one);
            let half = g.scalar(0.5);
            let h = g.op2("Mul", z, &half);
            g.op2("Mul", &h, &a)
        }
    }
}

/// Gemm(x, W, b): W the parameter block at `w` read as [n_in, n_out], or transposed when the
/// layer is tied (the block is then its encoder layer's [n_out, n_in], shared with it).
fn dense(g: &mut Graph, params: &[f32], l: &Dense, x: &str) -> String {
    let (n_in, n_out) = (l.n_in, l.n_out);
    let block = || params[l.w..l.w + n_in * n_out].to_vec();
    let (w, trans) = if l.tied {
        (g.floats_once((l.w, 0), "weight", &[n_out, n_in], block), 1)
    } else {
        (g.floats_once((l.w, 0), "weight", &[n_in, n_out], block), 0)
    };
    let b = g.floats("bias", &[n_out], &params[l.b..l.b + n_out]);
    g.node("Gemm", &[x, &w, &b], &[Attr::Int("transB", trans)])
}

/// z = sum_i f(x_i; theta_ij) + b_j of a functional-transfer layer (pre-activation, bias
/// included); the centred form's offsets are folded into the bias, as the layer's kernel does.
fn functional(g: &mut Graph, params: &[f32], l: &Dense, family: Family, x: &str) -> String {
    let f = l.functional().expect("a functional layer");
    let (n_in, n_out) = (l.n_in, l.n_out);
    let plane = n_in * n_out;
    let theta = |k: usize| &params[f.p + k * plane..f.p + (k + 1) * plane];
    let signs = f.signs();
    let b: Vec<f32> = params[f.b..f.b + n_out].iter().zip(f.offsets(params)).map(|(b, o)| b - o).collect();
    let bias = g.floats("bias", &[n_out], &b);
    let dims = [n_in, n_out];
    // Per-connection values folded into one [n_in, n_out] matrix, with the same f32 operations
    // in the same order as the layer's kernel.
    let fold = |h: &dyn Fn(usize) -> f32| -> Vec<f32> { (0..plane).map(h).collect() };
    let clip_w = |v: f32| v.clamp(0.0, 1000.0);
    use Family::*;
    match family {
        // Linear in x: x @ W + b.
        F01 | F02 | F06 | F07 => {
            let w = match family {
                F01 => fold(&|q| theta(0)[q] * theta(0)[q]),
                F02 => fold(&|q| theta(0)[q] * theta(0)[q] * theta(0)[q]),
                _ => fold(&|q| signs[q] * clip_w(theta(0)[q])),
            };
            let w = g.floats("weight", &dims, &w);
            g.node("Gemm", &[x, &w, &bias], &[])
        }
        // In x^2: x^2 @ W + b.
        F17 | F18 => {
            let w = match family {
                F17 => fold(&|q| theta(0)[q] * theta(0)[q]),
                _ => fold(&|q| signs[q] * (theta(0)[q] * theta(0)[q])),
            };
            let w = g.floats("weight", &dims, &w);
            let x2 = g.op2("Mul", x, x);
            g.node("Gemm", &[&x2, &w, &bias], &[])
        }
        // a x^2 + c x (+ d x with a x^3 first): one product per power.
        F03 => {
            let a = g.floats("theta_a", &dims, theta(0));
            let c = g.floats("theta_c", &dims, theta(1));
            let x2 = g.op2("Mul", x, x);
            let t2 = g.op2("MatMul", &x2, &a);
            let t1 = g.node("Gemm", &[x, &c, &bias], &[]);
            g.op2("Add", &t2, &t1)
        }
        F04 => {
            let a = g.floats("theta_a", &dims, theta(0));
            let c = g.floats("theta_c", &dims, theta(1));
            let d = g.floats("theta_d", &dims, theta(2));
            let x2 = g.op2("Mul", x, x);
            let x3 = g.op2("Mul", &x2, x);
            let t3 = g.op2("MatMul", &x3, &a);
            let t2 = g.op2("MatMul", &x2, &c);
            let t1 = g.node("Gemm", &[x, &d, &bias], &[]);
            let s = g.op2("Add", &t3, &t2);
            g.op2("Add", &s, &t1)
        }
        // The element-wise graph: x as [batch, in, 1] against [in, out] planes, f, sum over in.
        _ => {
            let axes2 = g.ints(&[2]);
            let xe = g.op2("Unsqueeze", x, &axes2);
            let plane_k = |g: &mut Graph, k: usize, hint: &str| g.floats(hint, &dims, theta(k));
            let clip = |g: &mut Graph, v: &str, lo: f32, hi: f32| {
                let (lo, hi) = (g.scalar(lo), g.scalar(hi));
                g.node("Clip", &[v, &lo, &hi], &[])
            };
            // op(clip(v, lo, hi))
            let clipped = |g: &mut Graph, op: &str, v: &str, lo: f32, hi: f32| {
                let c = clip(g, v, lo, hi);
                g.op1(op, &c)
            };
            // p x + q with planes k and k + 1
            let affine = |g: &mut Graph, p: &str, q: &str| {
                let m = g.op2("Mul", &xe, p);
                g.op2("Add", &m, q)
            };
            let per_connection = match family {
                F05 => {
                    let (a, c) = (plane_k(g, 0, "theta_a"), plane_k(g, 1, "theta_c"));
                    let u = g.op2("Mul", &xe, &c);
                    let e = clipped(g, "Exp", &u, -30.0, 30.0);
                    g.op2("Mul", &a, &e)
                }
                F08 | F10 => {
                    let (a, c) = (plane_k(g, 0, "theta_a"), plane_k(g, 1, "theta_c"));
                    let s = g.floats("sign", &dims, &signs);
                    let u = affine(g, &a, &c);
                    let v = if family == F08 { clip(g, &u, 0.0, 20.0) } else { clipped(g, "Sigmoid", &u, -30.0, 30.0) };
                    g.op2("Mul", &s, &v)
                }
                F09 | F11 | F12 | F13 | F14 | F15 | F16 => {
                    let a = plane_k(g, 0, "theta_a");
                    let c = plane_k(g, 1, "theta_c");
                    let d = plane_k(g, 2, "theta_d");
                    let u = affine(g, &c, &d);
                    let v = match family {
                        F09 => g.op1("Relu", &u),
                        F11 => clipped(g, "Sigmoid", &u, -30.0, 30.0),
                        // latent's sin/cos clamp their argument to +-65536.
                        F12 => clipped(g, "Sin", &u, -65536.0, 65536.0),
                        F13 => clipped(g, "Cos", &u, -65536.0, 65536.0),
                        F14 => g.op1("Sinh", &u),
                        // cosh u - 1 = 2 sinh(u/2)^2, without cosh's cancellation near 0 (latent
                        // uses a series there for the same reason).
                        F15 => {
                            let half = g.scalar(0.5);
                            let h = g.op2("Mul", &u, &half);
                            let s = g.op1("Sinh", &h);
                            let s2 = g.op2("Mul", &s, &s);
                            let two = g.scalar(2.0);
                            g.op2("Mul", &s2, &two)
                        }
                        _ => g.op1("Tanh", &u),
                    };
                    g.op2("Mul", &a, &v)
                }
                // a^2 (x + c)^2 and s a^2 (x + c)^2, the scale folded.
                F19 | F20 => {
                    let scale = if family == F19 {
                        fold(&|q| theta(0)[q] * theta(0)[q])
                    } else {
                        fold(&|q| signs[q] * (theta(0)[q] * theta(0)[q]))
                    };
                    let scale = g.floats("theta_a2", &dims, &scale);
                    let c = plane_k(g, 1, "theta_c");
                    let u = g.op2("Add", &xe, &c);
                    let u2 = g.op2("Mul", &u, &u);
                    g.op2("Mul", &scale, &u2)
                }
                F01 | F02 | F03 | F04 | F06 | F07 | F17 | F18 => unreachable!("folded above"),
            };
            let axes1 = g.ints(&[1]);
            let z = g.node("ReduceSum", &[&per_connection, &axes1], &[Attr::Int("keepdims", 0)]);
            g.op2("Add", &z, &bias)
        }
    }
}

/// Appends layer `l` (its connection, bias and activation) applied to `x`.
fn layer(g: &mut Graph, params: &[f32], l: &Dense, index: usize, x: &str) -> Result<String> {
    let z = match l.connection {
        Connection::Dense => dense(g, params, l, x),
        Connection::Functional(f) => functional(g, params, l, f, x),
        Connection::Memory => {
            return Err(Error::Unsupported(format!(
                "layer {index} is a memory layer: its state carries from row to row (a batch is one \
                 sequence), which an ONNX graph over independent rows does not express"
            )));
        }
    };
    Ok(activation(g, l.activation, &z))
}

/// Protobuf messages are limited to 2 GiB; ONNX keeps larger weights in external data files,
/// which this exporter does not write.
fn check_size(params: usize) -> Result<()> {
    const LIMIT: usize = (1 << 31) - (1 << 24);
    if params.saturating_mul(4) > LIMIT {
        return Err(Error::Unsupported(format!(
            "{params} parameters ({} MiB) do not fit in one ONNX protobuf (2 GiB at most; larger \
             models need ONNX external data, which latent does not write)",
            (params * 4) >> 20
        )));
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic_file::write_bytes(path, "writing the ONNX model", bytes)
}

/// The ONNX model (serialised ModelProto) of one part of a network.
pub fn network_model(net: &Network, part: OnnxPart) -> Result<Vec<u8>> {
    check_size(net.param_count())?;
    let layers = net.layers();
    let n = layers.len();
    let enc = net.n_encoder_layers();
    let (range, input, in_width, output) = match part {
        OnnxPart::Encoder => (0..enc, "x", net.input_dim(), "code"),
        OnnxPart::Decoder => (enc..n, "code", net.code_dim(), "output"),
        OnnxPart::Reconstruction => (0..n, "x", net.input_dim(), "reconstruction"),
        OnnxPart::Predict => (0..n, "x", net.input_dim(), "prediction"),
    };
    if net.stochastic_inference().is_some()
        && let Some(i) = range.clone().find(|&i| !layers[i].stochastic.is_none())
    {
        return Err(Error::Unsupported(format!(
            "stochastic inference is on and layer {i} samples: latent's random draws cannot be \
             reproduced by an ONNX graph (switch stochastic inference off to export the means)"
        )));
    }
    let mut g = Graph::new();
    let mut v = g.input(input, in_width);
    for i in range.clone() {
        v = layer(&mut g, net.params(), &layers[i], i, &v)?;
    }
    // predict's softmax: a classifier's, or a softmax loss's (KL divergence, cross-entropy).
    if part == OnnxPart::Predict && (matches!(net.task(), Task::Classify { .. }) || net.spec().loss.softmax_output()) {
        v = g.node("Softmax", &[&v], &[Attr::Int("axis", 1)]);
    }
    let width = layers[range.end - 1].n_out;
    g.output(output, &v, width);
    let doc = format!("latent {} network, {}: {input} -> {output}", net.task().name(), part.name());
    Ok(g.model(&format!("latent_network_{}", part.name()), &doc))
}

/// The ONNX model (serialised ModelProto) of one part of a VAE.
pub fn vae_model(vae: &Vae, part: OnnxPart) -> Result<Vec<u8>> {
    check_size(vae.param_count())?;
    let layers = vae.layers();
    let head = vae.head_index();
    let jd = vae.latent_dim();
    let params = vae.params();
    let mut g = Graph::new();
    // The encoder: hidden layers, then the head (pzx activation on both halves).
    let encoder = |g: &mut Graph| -> Result<(String, String)> {
        let mut v = g.input("x", vae.input_dim());
        for (i, l) in layers.iter().enumerate().take(head + 1) {
            v = layer(g, params, l, i, &v)?;
        }
        Ok(match vae.spec().posterior {
            Posterior::Learned => {
                let axes = g.ints(&[1]);
                let (s0, s1, s2) = (g.ints(&[0]), g.ints(&[jd as i64]), g.ints(&[2 * jd as i64]));
                let mean = g.node("Slice", &[&v, &s0, &s1, &axes], &[]);
                let logvar = g.node("Slice", &[&v, &s1, &s2, &axes], &[]);
                (mean, logvar)
            }
            Posterior::Constant { log_variance } => {
                let shape = g.op1("Shape", &v);
                let logvar = g.node("ConstantOfShape", &[&shape], &[Attr::FloatTensor("value", log_variance)]);
                (v, logvar)
            }
        })
    };
    // The decoder from z to the mean of p(x|z), part by part.
    let decoder = |g: &mut Graph, z: String| -> Result<String> {
        let mut v = z;
        for (i, l) in layers.iter().enumerate().skip(head + 1) {
            v = layer(g, params, l, i, &v)?;
        }
        let rec = &vae.spec().reconstruction;
        let pre_width = rec.param_width();
        let mut means = Vec::new();
        let mut p = 0usize;
        for part in &rec.parts {
            let cols = if part.size == pre_width {
                v.clone()
            } else {
                let axes = g.ints(&[1]);
                let (s, e) = (g.ints(&[p as i64]), g.ints(&[(p + part.size) as i64]));
                g.node("Slice", &[&v, &s, &e, &axes], &[])
            };
            let m = activation(g, part.activation, &cols);
            // The exponential's mean is 1/lambda = exp(-act(pre)).
            let m = if part.kind == DistKind::Exponential {
                let neg = g.op1("Neg", &m);
                g.op1("Exp", &neg)
            } else {
                m
            };
            means.push(m);
            p += part.size * if part.kind == DistKind::Gaussian { 2 } else { 1 };
        }
        Ok(if means.len() == 1 {
            means.pop().expect("one part")
        } else {
            let refs: Vec<&str> = means.iter().map(String::as_str).collect();
            g.node("Concat", &refs, &[Attr::Int("axis", 1)])
        })
    };
    let (name, doc) = match part {
        OnnxPart::Encoder => {
            let (mean, logvar) = encoder(&mut g)?;
            g.output("mean", &mean, jd);
            g.output("log_variance", &logvar, jd);
            ("encoder", "latent VAE encoder: x -> mean, log_variance of q(z|x)")
        }
        OnnxPart::Decoder => {
            let z = g.input("z", jd);
            let m = decoder(&mut g, z)?;
            g.output("mean", &m, vae.input_dim());
            ("decoder", "latent VAE decoder: z -> mean of p(x|z)")
        }
        OnnxPart::Reconstruction => {
            let (mean, _) = encoder(&mut g)?;
            let m = decoder(&mut g, mean)?;
            g.output("reconstruction", &m, vae.input_dim());
            ("reconstruction", "latent VAE reconstruction: x -> mean of p(x|z) at the posterior mean")
        }
        OnnxPart::Predict => {
            return Err(invalid!(
                "a VAE has no supervised head to predict with (export its encoder, decoder or reconstruction)"
            ));
        }
    };
    Ok(g.model(&format!("latent_vae_{name}"), doc))
}

impl Network {
    /// Writes `part` of the network to `path` as an ONNX model (see [`crate::onnx`]); the file
    /// is written atomically.
    pub fn export_onnx(&self, path: &Path, part: OnnxPart) -> Result<()> {
        write(path, &network_model(self, part)?)
    }
}

impl Vae {
    /// Writes `part` of the VAE (encoder, decoder or reconstruction) to `path` as an ONNX model
    /// (see [`crate::onnx`]); the file is written atomically.
    pub fn export_onnx(&self, path: &Path, part: OnnxPart) -> Result<()> {
        write(path, &vae_model(self, part)?)
    }
}
