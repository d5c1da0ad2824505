//! ONNX export checked in a real runtime: small models of every exportable layer kind are
//! trained a few epochs, each part is exported, and tests/onnx_check.py parses every file with
//! the `onnx` package (fields, initializers, opset; onnx.checker full check), runs it in ONNX
//! Runtime on 1,000 random rows and compares with latent's own outputs (max |diff| <= 1e-5).
//! Also: what is not exportable fails with UNSUPPORTED, the C entry points, and the code blocks
//! of docs/serving.md (the C one compiled against the header, the Python one run).

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use latent::distribution::{DistKind, Part, Reconstruction};
use latent::layer::{Connection, Family, Stochastic};
use latent::onnx::OnnxPart;
use latent::rng::Rng;
use latent::{
    Activation, LayerSpec, Loss, Matrix, Network, NetworkSpec, OptimizerConfig, OptimizerKind, Posterior, TrainConfig,
    Trainer, Vae, VaeSpec,
};

const ROWS: usize = 1000;
const COLS: usize = 12;

/// The cases written for the checker: one line of JSON each.
struct Cases {
    dir: PathBuf,
    json: Vec<String>,
}

fn write_f32(path: &Path, m: &Matrix) {
    let bytes: Vec<u8> = m.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

impl Cases {
    fn new(name: &str) -> Cases {
        Cases { dir: scratch(name), json: Vec::new() }
    }

    /// Records a model file with its input and latent's outputs.
    fn add(&mut self, name: &str, kind: &str, part: OnnxPart, input: (&str, &Matrix), outputs: &[(&str, &Matrix)]) {
        let file = |suffix: &str| format!("{name}.{suffix}");
        write_f32(&self.dir.join(file(&format!("in.{}", input.0))), input.1);
        let mut outs = String::new();
        for (i, (o, m)) in outputs.iter().enumerate() {
            write_f32(&self.dir.join(file(&format!("out.{o}"))), m);
            let sep = if i > 0 { ", " } else { "" };
            let _ = write!(outs, "{sep}[\"{o}\", \"{}\", {}, {}]", file(&format!("out.{o}")), m.rows(), m.cols());
        }
        self.json.push(format!(
            "{{\"name\": \"{name}\", \"kind\": \"{kind}\", \"part\": \"{}\", \"model\": \"{name}.onnx\", \
             \"input\": [\"{}\", \"{}\", {}, {}], \"outputs\": [{outs}]}}",
            part.name(),
            input.0,
            file(&format!("in.{}", input.0)),
            input.1.rows(),
            input.1.cols()
        ));
    }

    /// Adds the first layer's weights and bias (a dense, untied layer) to the last case, for the
    /// checker to compare with the initializers of the graph's first Gemm.
    fn first_layer(&mut self, net: &Network) {
        let l = &net.layers()[0];
        if !l.connection.is_dense() || l.tied {
            return;
        }
        let name = format!("first_layer_{}", self.json.len());
        let w = Matrix::from_vec(l.n_in, l.n_out, net.params()[l.w..l.w + l.n_in * l.n_out].to_vec()).unwrap();
        let b = Matrix::from_vec(1, l.n_out, net.params()[l.b..l.b + l.n_out].to_vec()).unwrap();
        write_f32(&self.dir.join(format!("{name}.w")), &w);
        write_f32(&self.dir.join(format!("{name}.b")), &b);
        let last = self.json.last_mut().unwrap();
        last.pop();
        let _ = write!(last, ", \"first_layer\": [\"{name}.w\", {}, {}, \"{name}.b\"]}}", l.n_in, l.n_out);
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.onnx"))
    }

    /// Exports every part of a network that applies and records latent's outputs for each.
    fn network(&mut self, name: &str, kind: &str, net: &Network, x: &Matrix, parts: &[OnnxPart]) {
        for &part in parts {
            let case = format!("{name}_{}", part.name());
            net.export_onnx(&self.path(&case), part).unwrap_or_else(|e| panic!("{case}: {e}"));
            match part {
                OnnxPart::Encoder => {
                    self.add(&case, kind, part, ("x", x), &[("code", &net.encode(x).unwrap())]);
                    self.first_layer(net);
                }
                OnnxPart::Decoder => {
                    let codes = net.encode(x).unwrap();
                    self.add(&case, kind, part, ("code", &codes), &[("output", &net.decode(&codes).unwrap())])
                }
                OnnxPart::Reconstruction => {
                    self.add(&case, kind, part, ("x", x), &[("reconstruction", &net.reconstruct(x).unwrap())])
                }
                OnnxPart::Predict => self.add(&case, kind, part, ("x", x), &[("prediction", &net.predict(x).unwrap())]),
            }
        }
    }

    fn vae(&mut self, name: &str, kind: &str, vae: &Vae, x: &Matrix) {
        let (mean, logvar) = vae.encode(x).unwrap();
        for part in [OnnxPart::Encoder, OnnxPart::Decoder, OnnxPart::Reconstruction] {
            let case = format!("{name}_{}", part.name());
            vae.export_onnx(&self.path(&case), part).unwrap_or_else(|e| panic!("{case}: {e}"));
            match part {
                OnnxPart::Encoder => {
                    self.add(&case, kind, part, ("x", x), &[("mean", &mean), ("log_variance", &logvar)])
                }
                OnnxPart::Decoder => {
                    self.add(&case, kind, part, ("z", &mean), &[("mean", &vae.generate_at_mean(&mean).unwrap())])
                }
                _ => self.add(&case, kind, part, ("x", x), &[("reconstruction", &vae.reconstruct(x).unwrap())]),
            }
        }
    }

    fn manifest(&self) -> PathBuf {
        let p = self.dir.join("cases.json");
        std::fs::write(&p, format!("[\n{}\n]\n", self.json.join(",\n"))).unwrap();
        p
    }
}

/// Whether python3 with onnx and onnxruntime is here (else a SKIPPED line, or a panic in CI).
fn have_runtime() -> bool {
    let ok = have("python3")
        && Command::new("python3")
            .args(["-c", "import numpy, onnx, onnxruntime"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        skip("python3 with numpy, onnx and onnxruntime", "python3 -m pip install numpy onnx onnxruntime");
    }
    ok
}

/// Runs tests/onnx_check.py over the manifest and returns its output after asserting its pass line.
fn check(manifest: &Path) -> String {
    let (code, out, err) = run(Command::new("python3")
        .arg(root().join("tests/onnx_check.py"))
        .arg(manifest)
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    println!("{out}");
    assert_eq!(code, 0, "tests/onnx_check.py failed:\n{out}\n{err}");
    assert!(out.lines().any(|l| l.starts_with("ONNX CHECK PASSED")), "no pass line:\n{out}\n{err}");
    out
}

fn fit_network(spec: NetworkSpec, rng: &mut Rng, epochs: usize) -> (Network, Matrix) {
    let mut net = Network::new(spec).unwrap();
    let x = random_matrix(ROWS, COLS, 0.0, 1.0, rng);
    let task = net.task();
    let train = if task.is_supervised() { with_targets(&x, task, rng) } else { x.clone() };
    let cfg = TrainConfig {
        epochs,
        batch_size: 50,
        learning_rate: 3e-3,
        optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
        seed: 3,
        threads: 1,
        ..Default::default()
    };
    Trainer::new(cfg).unwrap().fit(&mut net, &train, None, None).unwrap();
    (net, x)
}

const ALL_PARTS: [OnnxPart; 4] = [OnnxPart::Encoder, OnnxPart::Decoder, OnnxPart::Reconstruction, OnnxPart::Predict];

/// Dense networks (every activation, tied weights, stochastic layers' means, classifier and
/// regressor heads), every functional family as an encoder layer (mirrored in the decoder),
/// and VAEs with every reconstruction distribution, all in ONNX Runtime.
#[test]
fn exported_models_match_latent_in_onnx_runtime() {
    if !have_runtime() {
        return;
    }
    let mut rng = Rng::new(2026, 7);
    let mut cases = Cases::new("onnx_runtime");
    for act in Activation::ALL {
        let mut spec = NetworkSpec::new(COLS, &[10], act, 6);
        spec.code.activation = act;
        spec.output_activation = act;
        spec.loss = Loss::Mse;
        spec.seed = 11;
        let (net, x) = fit_network(spec, &mut rng, 3);
        cases.network(&format!("dense_{}", act.name()), &format!("dense {}", act.name()), &net, &x, &ALL_PARTS);
    }
    let mut tied = NetworkSpec::new(COLS, &[10, 8], Activation::Tanh, 5);
    tied.tied_weights = true;
    let (net, x) = fit_network(tied, &mut rng, 3);
    cases.network("tied", "dense tied", &net, &x, &ALL_PARTS[..3]);

    let mut stoch = NetworkSpec::new(COLS, &[10], Activation::Sigmoid, 6);
    stoch.encoder[0].stochastic = Stochastic::Bernoulli;
    stoch.code = stoch.code.with(Stochastic::Gaussian { sigma: 0.3 });
    let (net, x) = fit_network(stoch, &mut rng, 3);
    cases.network("stochastic", "stochastic (means)", &net, &x, &ALL_PARTS[..3]);

    let hidden = [LayerSpec::new(10, Activation::Relu), LayerSpec::new(6, Activation::Tanh)];
    let (net, x) = fit_network(NetworkSpec::classifier(COLS, &hidden, 4).unwrap(), &mut rng, 3);
    cases.network("classifier", "classifier head", &net, &x, &ALL_PARTS);
    let (net, x) = fit_network(NetworkSpec::regressor(COLS, &hidden, 3).unwrap(), &mut rng, 3);
    cases.network("regressor", "regressor head", &net, &x, &[OnnxPart::Predict, OnnxPart::Encoder]);

    for family in Family::ALL {
        let f = Connection::Functional(family);
        let mut spec = NetworkSpec::new(COLS, &[8], Activation::Tanh, 5);
        spec.encoder[0] = spec.encoder[0].connected(f);
        spec.loss = Loss::Mse;
        spec.output_activation = Activation::Sigmoid;
        spec.seed = 5;
        let (net, x) = fit_network(spec, &mut rng, 2);
        cases.network(
            &format!("functional_{}", family.name()),
            &format!("functional {}", family.name().to_uppercase()),
            &net,
            &x,
            &[OnnxPart::Encoder, OnnxPart::Reconstruction],
        );
    }
    // Functional code and output layers too (F12: sine, F05: the clipped exponential).
    let mut spec = NetworkSpec::new(COLS, &[8], Activation::Gelu, 5);
    spec.code = spec.code.connected(Connection::Functional(Family::F12));
    spec.output_connection = Connection::Functional(Family::F05);
    spec.loss = Loss::Mse;
    let (net, x) = fit_network(spec, &mut rng, 2);
    cases.network("functional_code_output", "functional code/output", &net, &x, &ALL_PARTS[..3]);

    let x = random_matrix(ROWS, COLS, 0.0, 1.0, &mut rng);
    let vae_fit = |spec: VaeSpec| {
        let mut vae = Vae::new(spec).unwrap();
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 50,
            learning_rate: 3e-3,
            optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
            seed: 4,
            threads: 1,
            ..Default::default()
        };
        Trainer::new(cfg).unwrap().fit(&mut vae, &x, None, None).unwrap();
        vae
    };
    let spec = VaeSpec::new(COLS, &[10], 4, &[10], Activation::Relu);
    cases.vae("vae_bernoulli", "vae bernoulli", &vae_fit(spec.clone()), &x);
    let constant = VaeSpec {
        posterior: Posterior::Constant { log_variance: -1.5 },
        pzx_activation: Activation::Tanh,
        ..spec.clone()
    };
    cases.vae("vae_constant_posterior", "vae constant posterior", &vae_fit(constant), &x);
    let part = |size, kind, activation| Part { size, kind, activation };
    let composite = VaeSpec {
        reconstruction: Reconstruction {
            parts: vec![
                part(3, DistKind::Gaussian, Activation::Identity),
                part(3, DistKind::Exponential, Activation::Tanh),
                part(2, DistKind::GaussianGlobal, Activation::Sigmoid),
                part(2, DistKind::Mse, Activation::Softplus),
                part(2, DistKind::Bernoulli, Activation::Sigmoid),
            ],
        },
        ..VaeSpec::new(COLS, &[10], 4, &[10], Activation::Gelu)
    };
    cases.vae("vae_composite", "vae composite", &vae_fit(composite), &x);
    let gaussian =
        VaeSpec { reconstruction: Reconstruction::single(DistKind::Gaussian, Activation::Identity, COLS), ..spec };
    cases.vae("vae_gaussian", "vae gaussian", &vae_fit(gaussian), &x);

    let out = check(&cases.manifest());
    assert!(out.contains("models: "), "{out}");
}

/// What no graph expresses is refused with UNSUPPORTED and the reason, and nothing is written.
#[test]
fn memory_layers_and_stochastic_inference_are_unsupported() {
    let dir = scratch("onnx_unsupported");
    let memory = LayerSpec::new(6, Activation::Tanh).connected(Connection::Memory);
    let mut spec = NetworkSpec::new(COLS, &[], Activation::Tanh, 4);
    spec.code = memory;
    let net = Network::new(spec).unwrap();
    let path = dir.join("memory.onnx");
    let e = net.export_onnx(&path, OnnxPart::Encoder).unwrap_err();
    assert_eq!(e.status(), latent::error::status::UNSUPPORTED, "{e}");
    assert!(e.to_string().contains("memory layer"), "{e}");
    assert!(!path.exists());

    let mut spec = NetworkSpec::new(COLS, &[8], Activation::Sigmoid, 4);
    spec.encoder[0].stochastic = Stochastic::Bernoulli;
    let mut net = Network::new(spec).unwrap();
    net.set_stochastic_inference(Some(3));
    let e = net.export_onnx(&path, OnnxPart::Encoder).unwrap_err();
    assert_eq!(e.status(), latent::error::status::UNSUPPORTED, "{e}");
    assert!(e.to_string().contains("stochastic inference"), "{e}");
    net.set_stochastic_inference(None);
    net.export_onnx(&path, OnnxPart::Encoder).unwrap();
    assert!(path.exists());

    let vae = Vae::new(VaeSpec::new(COLS, &[8], 3, &[8], Activation::Relu)).unwrap();
    let e = vae.export_onnx(&dir.join("vae.onnx"), OnnxPart::Predict).unwrap_err();
    assert_eq!(e.status(), latent::error::status::INVALID_ARGUMENT, "{e}");
    // A failed write leaves nothing behind (the atomic writer).
    let e = net.export_onnx(&dir.join("no such dir").join("m.onnx"), OnnxPart::Encoder).unwrap_err();
    assert_eq!(e.status(), latent::error::status::IO, "{e}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

/// The C entry points: statuses for bad arguments, and the files they write run in ONNX Runtime.
#[test]
fn c_api_exports_networks_and_vaes() {
    use latent::ffi::*;
    use std::ffi::CString;
    let dir = scratch("onnx_c_api");
    let mut rng = Rng::new(5, 1);
    let (net, x) = fit_network(NetworkSpec::new(COLS, &[9], Activation::Elu, 4), &mut rng, 2);
    let expected = net.encode(&x).unwrap();
    let handle = latent_network_from(net);
    let path = CString::new(dir.join("enc.onnx").to_str().unwrap()).unwrap();
    unsafe {
        assert_eq!(latent_network_export_onnx(&handle, path.as_ptr(), 7), LATENT_STATUS_INVALID_ARGUMENT);
        let msg = std::ffi::CStr::from_ptr(latent_last_error_message()).to_string_lossy().into_owned();
        assert!(msg.contains("out of range (0 to 3"), "{msg}");
        assert_eq!(
            latent_network_export_onnx(std::ptr::null(), path.as_ptr(), LATENT_ONNX_PART_ENCODER),
            LATENT_STATUS_NULL_ARGUMENT
        );
        assert_eq!(latent_network_export_onnx(&handle, std::ptr::null(), 0), LATENT_STATUS_NULL_ARGUMENT);
        assert_eq!(latent_network_export_onnx(&handle, path.as_ptr(), LATENT_ONNX_PART_ENCODER), LATENT_STATUS_OK);
    }
    let vae = Vae::new(VaeSpec::new(COLS, &[8], 3, &[8], Activation::Relu)).unwrap();
    let (mean, logvar) = vae.encode(&x).unwrap();
    let vh = latent_vae_from(vae);
    let vpath = CString::new(dir.join("vae_enc.onnx").to_str().unwrap()).unwrap();
    unsafe {
        assert_eq!(
            latent_vae_export_onnx(&vh, vpath.as_ptr(), LATENT_ONNX_PART_PREDICT),
            LATENT_STATUS_INVALID_ARGUMENT
        );
        assert_eq!(latent_vae_export_onnx(&vh, vpath.as_ptr(), LATENT_ONNX_PART_ENCODER), LATENT_STATUS_OK);
    }
    if !have_runtime() {
        return;
    }
    let mut cases = Cases { dir: dir.clone(), json: Vec::new() };
    cases.add("enc", "C API network", OnnxPart::Encoder, ("x", &x), &[("code", &expected)]);
    cases.add("vae_enc", "C API vae", OnnxPart::Encoder, ("x", &x), &[("mean", &mean), ("log_variance", &logvar)]);
    check(&cases.manifest());
}

/// The fenced block of `lang` in docs/serving.md (exactly one).
fn doc_block(lang: &str) -> String {
    let doc = std::fs::read_to_string(root().join("docs/serving.md")).unwrap();
    let fence = format!("```{lang}\n");
    let blocks: Vec<&str> = doc.split(&fence).skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert_eq!(blocks.len(), 1, "docs/serving.md should have one ```{lang} block");
    blocks[0].to_string()
}

/// A trained autoencoder saved as `dir`/model.latent.
fn saved_model(dir: &Path) -> PathBuf {
    let mut rng = Rng::new(9, 2);
    let (net, _) = fit_network(NetworkSpec::new(COLS, &[10], Activation::Relu, 4), &mut rng, 2);
    let path = dir.join("model.latent");
    latent::model_file::save(&net, &path).unwrap();
    path
}

/// Runs a Python script with the checkout's package and this build's library.
fn python(dir: &Path, args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let lib = lib_dir().join(if cfg!(target_os = "macos") { "liblatent.dylib" } else { "liblatent.so" });
    run(Command::new("python3")
        .current_dir(dir)
        .args(args)
        .env("PYTHONPATH", root().join("python"))
        .env("LATENT_LIBRARY", lib)
        .env("PYTHONDONTWRITEBYTECODE", "1"))
}

/// docs/serving.md's C block compiles against the header and exports; its Python block runs.
#[test]
fn serving_doc_code_blocks_compile_and_run() {
    let dir = scratch("onnx_doc");
    saved_model(&dir);
    let src = dir.join("export.c");
    std::fs::write(&src, doc_block("c")).unwrap();
    let exe = dir.join("export");
    compile_c(&[src], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).current_dir(&dir));
    assert_eq!(code, 0, "the C block failed:\n{out}\n{err}");
    assert!(dir.join("encoder.onnx").exists());
    if !have_runtime() {
        return;
    }
    std::fs::remove_file(dir.join("encoder.onnx")).unwrap();
    let script = dir.join("serve.py");
    std::fs::write(&script, doc_block("python")).unwrap();
    let (code, out, err) = python(&dir, &[script.as_os_str()]);
    assert_eq!(code, 0, "the Python block failed:\n{out}\n{err}");
    assert!(dir.join("encoder.onnx").exists());
}

/// c_examples/cpp/onnx_export.cpp exports with latent.hpp; python/examples/onnx_serve.py serves
/// the files in ONNX Runtime and checks them against latent.
#[test]
fn cpp_example_exports_and_python_example_serves() {
    if !have("c++") {
        skip("a C++ compiler (c++)", "install g++ or clang++");
        return;
    }
    let dir = scratch("onnx_cpp_example");
    let model = saved_model(&dir);
    let exe = dir.join("onnx_export");
    let lib = lib_dir();
    let o = Command::new("c++")
        .args(["-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(format!("-I{}", root().join("include").display()))
        .arg(root().join("c_examples/cpp/onnx_export.cpp"))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-llatent", "-lm", "-lpthread"])
        .output()
        .expect("run c++");
    assert!(o.status.success(), "compiling onnx_export.cpp failed:\n{}", String::from_utf8_lossy(&o.stderr));
    let (code, _, err) = run(Command::new(&exe).arg(&model).arg(dir.join("x.onnx")).arg("nonsense"));
    assert_eq!(code, 2, "{err}");
    let parts = ["encoder", "decoder", "reconstruction", "predict"];
    for part in parts {
        let onnx = dir.join(format!("{part}.onnx"));
        let (code, out, err) = run(Command::new(&exe).arg(&model).arg(&onnx).arg(part));
        assert_eq!(code, 0, "onnx_export {part} failed:\n{out}\n{err}");
        assert!(out.contains(&format!("wrote the {part}")), "{out}");
    }
    if !have_runtime() {
        return;
    }
    for part in parts {
        let onnx = dir.join(format!("{part}.onnx"));
        let example = root().join("python/examples/onnx_serve.py");
        let (code, out, err) = python(&dir, &[example.as_os_str(), model.as_os_str(), onnx.as_os_str()]);
        assert_eq!(code, 0, "onnx_serve.py {part} failed:\n{out}\n{err}");
        assert!(out.contains("ONNX Runtime and latent agree on 1000 rows"), "{out}");
        println!("{out}");
    }
}

/// benches/onnx.py (the latency table of docs/serving.md) runs, in its quick mode.
#[test]
fn latency_bench_script_runs() {
    if !have_runtime() {
        return;
    }
    let dir = scratch("onnx_bench");
    let script = root().join("benches/onnx.py");
    let lib = lib_dir().join(if cfg!(target_os = "macos") { "liblatent.dylib" } else { "liblatent.so" });
    let (code, out, err) = run(Command::new("python3")
        .current_dir(&dir)
        .arg(&script)
        .env("QUICK", "1")
        .env("LATENT_LIBRARY", lib)
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    assert_eq!(code, 0, "benches/onnx.py failed:\n{out}\n{err}");
    assert!(out.contains("| 1 |") && out.contains("| 256 |"), "{out}");
}
