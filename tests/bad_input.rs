//! The bad-input suite (issue 15): every function exported in include/latent.h called with
//! NULLs, zero and huge sizes, overflowing products, NaN/Inf hyperparameters and out-of-range
//! enums, one bad argument at a time, each call in its own child process under a memory limit
//! (`ulimit -v`, LATENT_BAD_INPUT_MEM_KIB, default 2 GiB) and a timeout
//! (LATENT_BAD_INPUT_TIMEOUT seconds, default 10). The limit is set per child here, so CI needs
//! nothing more than `make test`.
//!
//! The cases come from the header, not from a hand-kept list: the function declarations and
//! their parameter types are parsed, every parameter gets the bad values of its type (a struct
//! passed by pointer gets one field at a time mutated), and one generated C program makes any
//! case's call (argv: scratch directory, case number) around valid objects it builds on demand
//! (an 8-6-4-6-8 autoencoder, an 8-4-8 one, a classifier, a VAE, a PSD model, 16 x 8 datasets,
//! trainers, Monte-Carlo optimizers, saved files). A function of the header without a case fails the test. Beside the
//! values of each type: handles of the wrong kind or state (a classifier for an autoencoder, an
//! unlabeled or 5-column dataset, an optimizer never run), callbacks that return NaN or Inf,
//! cancel, or call back into the library on the handle being trained; and after each call the
//! handles it made or changed are used again (encode, fit, minimize), so a bad value that a
//! constructor or setter accepted is tried by the calls that depend on it.
//!
//! A case fails on a signal (crash, abort), a timeout (hang), an exit of its own, a status
//! outside LATENT_STATUS_*, LATENT_STATUS_INTERNAL, anything written to stderr (the library
//! never prints), a failure without a message, a NULL required pointer that does not get
//! LATENT_STATUS_NULL_ARGUMENT, or a peak resident memory above LATENT_BAD_INPUT_RSS_MIB
//! (default 512: a tiny call that fills memory before failing, as reading /dev/zero whole). Cases listed in tests/bad_input_known.txt (or the file named by
//! LATENT_BAD_INPUT_ALLOW) may fail with the outcomes listed there; anything else fails the test.
//!
//! LATENT_BAD_INPUT_ONLY=text runs the functions whose name contains it; LATENT_BAD_INPUT_JOBS
//! sets the parallel children (default 2); LATENT_BAD_INPUT_LOG=file writes every case's outcome
//! (`case function label outcome time [status and message]`), LATENT_BAD_INPUT_REPORT=file the
//! summary and the failures.
//!
//! What is never generated, since no library can check it: a non-NULL buffer shorter than the
//! count passed with it (a count is made huge only where no real buffer could hold it: its
//! byte size overflows or exceeds isize::MAX).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

// ---------------------------------------------------------------------------------------------
// The header.

#[derive(Clone, Debug)]
struct Param {
    ty: String,
    name: String,
}

#[derive(Debug)]
struct Func {
    ret: String,
    name: String,
    params: Vec<Param>,
    doc: String,
}

struct Header {
    funcs: Vec<Func>,
    /// Non-opaque structs: name -> fields (arrays such as `char name[256]` are left out).
    structs: HashMap<String, Vec<Param>>,
    opaque: BTreeSet<String>,
    /// `typedef int32_t latent_x;` enums -> one past their largest LATENT_X_* constant.
    enums: HashMap<String, i64>,
}

fn split_decl(decl: &str) -> Param {
    let decl = decl.trim();
    let cut = decl.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1);
    Param { ty: decl[..cut].trim().to_string(), name: decl[cut..].to_string() }
}

fn parse_header(text: &str) -> Header {
    let mut funcs = Vec::new();
    let mut structs = HashMap::new();
    let mut opaque = BTreeSet::new();
    let mut int_typedefs = Vec::new();
    let mut defines: Vec<(String, i64)> = Vec::new();
    let mut doc = String::new();
    let mut decl = String::new();
    let mut in_block_comment = false;
    let mut in_struct: Option<Vec<Param>> = None;
    for line in text.lines() {
        let t = line.trim();
        if in_block_comment {
            in_block_comment = !t.contains("*/");
            continue;
        }
        if t.starts_with("/*") {
            in_block_comment = !t.contains("*/");
            continue;
        }
        if let Some(c) = t.strip_prefix("//") {
            doc.push_str(c.trim());
            doc.push(' ');
            continue;
        }
        if t.is_empty() {
            if decl.is_empty() {
                doc.clear();
            }
            continue;
        }
        if let Some(d) = t.strip_prefix("#define ") {
            let mut it = d.split_whitespace();
            if let (Some(n), Some(v)) = (it.next(), it.next())
                && let Ok(v) = v.parse::<i64>()
            {
                defines.push((n.to_string(), v));
            }
            doc.clear();
            continue;
        }
        if t.starts_with('#') {
            continue;
        }
        if let Some(fields) = in_struct.as_mut() {
            if let Some(rest) = t.strip_prefix("} ") {
                let name = rest.trim_end_matches(';').to_string();
                structs.insert(name, in_struct.take().unwrap());
            } else if !t.contains('[') {
                fields.push(split_decl(t.trim_end_matches(';')));
            }
            continue;
        }
        if t.starts_with("typedef struct ") && t.ends_with('{') {
            in_struct = Some(Vec::new());
            doc.clear();
            continue;
        }
        if let Some(rest) = t.strip_prefix("typedef struct ") {
            opaque.insert(rest.split_whitespace().next().unwrap().to_string());
            doc.clear();
            continue;
        }
        if let Some(rest) = t.strip_prefix("typedef int32_t ") {
            int_typedefs.push(rest.trim_end_matches(';').to_string());
            doc.clear();
            continue;
        }
        if t.starts_with("typedef") || t.starts_with("extern") || t.starts_with('}') {
            doc.clear();
            decl.clear();
            continue;
        }
        decl.push_str(t);
        decl.push(' ');
        if t.ends_with(';') {
            let d = std::mem::take(&mut decl);
            if let (Some(open), Some(close)) = (d.find('('), d.rfind(')')) {
                let head = split_decl(&d[..open]);
                let inner = d[open + 1..close].trim();
                let params = if inner == "void" || inner.is_empty() {
                    Vec::new()
                } else {
                    inner.split(',').map(split_decl).collect()
                };
                funcs.push(Func { ret: head.ty, name: head.name, params, doc: std::mem::take(&mut doc) });
            }
            doc.clear();
        }
    }
    let mut enums = HashMap::new();
    for ty in int_typedefs {
        let mut prefix = format!("{}_", ty.to_uppercase());
        loop {
            let max = defines.iter().filter(|(n, _)| n.starts_with(&prefix)).map(|(_, v)| *v).max();
            if let Some(m) = max {
                enums.insert(ty.clone(), m + 1);
                break;
            }
            match prefix[..prefix.len() - 1].rfind('_') {
                Some(i) if i > "LATENT".len() => prefix.truncate(i + 1),
                _ => {
                    enums.insert(ty.clone(), 64);
                    break;
                }
            }
        }
    }
    Header { funcs, structs, opaque, enums }
}

// ---------------------------------------------------------------------------------------------
// Valid arguments: what the generated program passes for every argument but the bad one.

/// Parameters that the documentation (or a reading of it) allows to be NULL.
const OPTIONAL: &[(&str, &str)] = &[
    ("latent_dataset_from_idx", "labels_path"),
    ("latent_dataset_from_npy", "labels_path"),
    ("latent_dataset_from_csv", "params"),
    ("latent_network_device", "device"),
    ("latent_network_device", "ordinal"),
    ("latent_network_layer_offsets", "w"),
    ("latent_network_layer_offsets", "w_len"),
    ("latent_network_layer_offsets", "b"),
    ("latent_vae_encode", "logvar"),
    ("latent_vae_encode_dataset", "logvar"),
    ("latent_vae_interpolate", "z"),
    ("latent_montecarlo_set_proposal", "quantile"),
    ("latent_montecarlo_set_prior_sampler", "sampler"), // NULL: back to the priors
    ("latent_montecarlo_set_sampler", "sampler"),       // NULL: back to the strategy's draws
    ("latent_montecarlo_set_transform", "transform"),   // NULL: no transform
    ("latent_montecarlo_records", "params"),            // with capacities 0: the count only
    ("latent_montecarlo_records", "losses"),
    ("latent_vae_device", "device"), // "as latent_network_device": either may be NULL
    ("latent_vae_device", "ordinal"),
    ("latent_trainer_fit_vae", "valid"), // "as latent_trainer_fit trains a network"
    // The statistics may be NULL (capacity 0) when there are none: the valid model has none.
    ("latent_network_get_scaling", "a"),
    ("latent_network_get_scaling", "b"),
    ("latent_vae_get_scaling", "a"), // "latent_network_get_scaling for a VAE"
    ("latent_vae_get_scaling", "b"),
    ("latent_vae_get_scaling", "cols"),
];

/// The output of an inference on a caller's buffer (latent_network_*_buffer): `void *` because
/// its element type is the call's dtype, but required, unlike a callback's `void *user`.
fn buffer_out(func: &str, p: &Param) -> bool {
    p.ty == "void *" && func.starts_with("latent_network_") && func.ends_with("_buffer")
}

fn optional(f: &Func, p: &Param) -> bool {
    if p.ty == "void *" && !buffer_out(&f.name, p) || p.ty.ends_with("_fn") && p.name == "progress" {
        return true;
    }
    if OPTIONAL.contains(&(f.name.as_str(), p.name.as_str())) {
        return true;
    }
    let d = &f.doc;
    [format!("`{}` (may be NULL", p.name), format!("*{} (may be NULL", p.name), format!("`{}` (may be NULL)", p.name)]
        .iter()
        .any(|s| d.contains(s.as_str()))
        || d.contains(&format!("`{}` is NULL", p.name))
        || d.contains(&format!("`{}` if not NULL", p.name))
        || d.contains(&format!("*{}, if not NULL", p.name))
}

fn handle_kind(ty: &str) -> Option<(&str, bool, usize)> {
    // "const struct latent_x *" / "struct latent_x *" / "struct latent_x **"
    let konst = ty.starts_with("const ");
    let t = ty.trim_start_matches("const ").strip_prefix("struct ")?;
    let stars = t.matches('*').count();
    Some((t.trim_end_matches('*').trim(), konst, stars))
}

fn valid_handle(func: &str, name: &str, h: &str, konst: bool) -> String {
    let supervised = ["predict", "classify", "evaluate", "output_dim", "_task"].iter().any(|s| func.contains(s));
    match h {
        "latent_network" if supervised => "H_cnet()".into(),
        "latent_network" if func == "latent_network_fit_recirculation" => "H_net1()".into(),
        "latent_network" => "H_net()".into(),
        "latent_vae" => "H_vae()".into(),
        "latent_psd" => "H_psd()".into(),
        "latent_rbm" if konst => "H_rbm_fitted()".into(),
        "latent_rbm" => "H_rbm()".into(),
        "latent_hash_index" => "H_hidx()".into(),
        "latent_stream" => "H_stream()".into(),
        "latent_trainer" if konst => "H_trainer_fitted()".into(),
        "latent_trainer" => "H_trainer()".into(),
        "latent_montecarlo" if func == "latent_montecarlo_fit_network" => "H_mc_net()".into(),
        "latent_montecarlo" if func == "latent_montecarlo_run_intervals" => "H_mc_runs()".into(),
        "latent_montecarlo"
            if konst || func == "latent_montecarlo_intervals" || func == "latent_montecarlo_laplace" =>
        {
            "H_mc_min()".into()
        }
        "latent_montecarlo" => "H_mc()".into(),
        "latent_dataset" => match (func, name) {
            (_, "valid") => "H_dsv()".into(),
            (_, "fitted") => "H_ds_scaled()".into(),
            (_, "dst") | ("latent_dataset_scale", _) => "H_ds2()".into(),
            _ => "H_ds()".into(),
        },
        other => panic!("no valid handle of {other}"),
    }
}

fn valid_size(func: &str, name: &str) -> String {
    let v = match (func, name) {
        ("latent_trainer_history", "capacity") => "64",
        (_, "capacity" | "values_capacity") => "BUF",
        ("latent_network_decode" | "latent_psd_decode", "cols") => "4",
        ("latent_psd_new", "input_dim") => "8",
        ("latent_psd_new", "code_dim") => "4",
        ("latent_vae_generate_mean" | "latent_vae_generate_random", "cols") => "2",
        ("latent_dataset_set_targets", "cols") => "1",
        (_, "cols") => "8",
        (_, "rows") => "16",
        (_, "n_rows") => "4",
        ("latent_network_set_params", "n") => "pc_net()",
        ("latent_vae_set_params", "n") => "pc_vae()",
        ("latent_psd_set_params", "n") => "pc_psd()",
        ("latent_rbm_set_params", "n") => "pc_rbm()",
        ("latent_hash_index_new", "bits") => "64",
        ("latent_set_inference_cache_limit", "bytes") => "1048576",
        ("latent_stream_open_files", "n") => "2",
        ("latent_stream_set_shuffle", "block_rows") => "4",
        ("latent_stream_set_shuffle", "window_blocks") => "2",
        (_, "n_visible") => "8",
        (_, "n_hidden") => "6",
        (
            "latent_montecarlo_set_start"
            | "latent_montecarlo_intervals"
            | "latent_montecarlo_laplace"
            | "latent_montecarlo_run_intervals",
            "n",
        ) => "2",
        (_, "params_capacity" | "losses_capacity" | "covariance_capacity") => "BUF",
        ("latent_pca_fit", "components_capacity" | "mean_capacity" | "variance_capacity") => "BUF",
        (_, "n") => "16",
        (_, "first") => "0",
        (_, "count") => "2",
        (_, "k") => "3",
        (_, "layer") => "0",
        (_, "observations") => "16",
        (_, "grid_cols") => "2",
        (_, "height") => "2",
        (_, "width") => "4",
        (_, "words") => "1",
        (_, "n_queries") => "2",
        (_, "n_params") => "2",
        _ => panic!("no valid size for {func}({name})"),
    };
    v.into()
}

fn valid_arg(f: &Func, p: &Param, case: usize, h: &Header) -> String {
    let (func, name, ty) = (f.name.as_str(), p.name.as_str(), p.ty.as_str());
    if let Some((hty, konst, stars)) = handle_kind(ty) {
        if h.opaque.contains(hty) {
            return if stars == 2 {
                match name {
                    "second" => format!("&o_{hty}[1]"),
                    _ => format!("&o_{hty}[0]"),
                }
            } else {
                valid_handle(func, name, hty, konst)
            };
        }
        if konst {
            return format!("&P_{hty}");
        }
        return format!("o_{hty}");
    }
    let write =
        func.contains("save") || func.contains("write") || func.contains("export") || func.contains("checkpoint");
    match ty {
        "const char *" => match (func, name) {
            (_, "name") => "\"mnist\"".into(),
            _ if write => format!("S(\"w_{case}\")"),
            ("latent_network_load", _) => "S(\"net.lnt\")".into(),
            ("latent_vae_load", _) => "S(\"vae.lnt\")".into(),
            ("latent_trainer_resume_network", _) => "S(\"ck.lnt\")".into(),
            ("latent_trainer_resume_vae", _) => "S(\"ckv.lnt\")".into(),
            ("latent_rbm_load", _) => "S(\"rbm.lnt\")".into(),
            ("latent_dataset_from_idx", "images_path") => "S(\"img.idx\")".into(),
            ("latent_dataset_from_idx", "labels_path") => "S(\"lab.idx\")".into(),
            ("latent_dataset_from_npy", "path") => "S(\"data.npy\")".into(),
            ("latent_dataset_from_npy", "labels_path") => "S(\"lab.npy\")".into(),
            ("latent_dataset_from_csv", _) => "S(\"data.csv\")".into(),
            ("latent_stream_open", _) => "S(\"data.npy\")".into(),
            _ => panic!("no valid path for {func}({name})"),
        },
        "char *" => "cbuf".into(),
        "const char *const *" => "P_spaths(0)".into(),
        "const void *" | "const float *" => "fin".into(),
        "const double *" => "din".into(),
        "const int32_t *" => "iin".into(),
        "const uint64_t *" => "uin".into(),
        "const uint32_t *" => "u32in".into(),
        "const latent_activation *" => "iin".into(),
        "float *" => match name {
            "logvar" => "flv".into(),
            "z" => "fz".into(),
            "x" => "fx".into(),
            _ => "fout".into(),
        },
        "double *" => match name {
            "upper" | "free_energy" | "b" => "dout2".into(),
            _ => "dout".into(),
        },
        "int32_t *"
        | "latent_device *"
        | "latent_rbm_unit *"
        | "latent_vae_objective *"
        | "latent_scaling *"
        | "latent_wait_policy *"
        | "latent_matmul_precision *" => match name {
            "ordinal" => "&i32o[1]".into(),
            _ => "iout".into(),
        },
        "uint64_t *" => "uout".into(),
        "uint32_t *" => "u32out".into(),
        "uint8_t *" => "u8out".into(),
        "size_t *" => {
            let i = f.params.iter().position(|q| q.name == name).unwrap();
            format!("&szo[{i}]")
        }
        "void *" if buffer_out(func, p) => "fout".into(),
        "void *" => "NULL".into(),
        "latent_progress_fn" => "prog_ok".into(),
        "latent_objective_fn" => "obj_sq".into(),
        "latent_quantile_fn" => "q_lin".into(),
        "latent_prior_sampler_fn" => "ps_ok".into(),
        "latent_sampler_fn" => "smp_ok".into(),
        "latent_transform_fn" => "tf_ok".into(),
        "size_t" => valid_size(func, name),
        "uint32_t" => match name {
            "samples" => "2".into(),
            "steps" => "3".into(),
            "threads" => "1".into(),
            "iterations" => "20".into(),
            "epochs" if func == "latent_network_freeze" => "0".into(),
            "epochs" => "2".into(),
            "batch_size" => "8".into(),
            "radius" => "2".into(),
            "cd_k" => "1".into(),
            "n_hidden" | "n_layers" => "1".into(),
            "outputs" => "3".into(),
            "first_layer" => "0".into(),
            "every" => "2".into(),
            _ => panic!("no valid uint32_t for {func}({name})"),
        },
        "uint64_t" => "0".into(),
        "int32_t" => match name {
            "on" | "positive" => "1".into(),
            _ => "0".into(),
        },
        "double" => match name {
            "a" => "-1.0".into(),
            "b" | "temperature" => "1.0".into(),
            "fraction" => "0.25".into(),
            "level" => "0.95".into(),
            "quantile" => "0.9".into(),
            "variance_factor" => "1.0".into(),
            "threshold" => "0.5".into(),
            "lambda" => "0.1".into(),
            "alpha" => "1.0".into(),
            "learning_rate" => "0.01".into(),
            "tolerance" => "1e-4".into(),
            "regression" => "0.75".into(),
            "sigma" => "0.5".into(),
            _ => panic!("no valid double for {func}({name})"),
        },
        "float" => match name {
            "hi" => "1.0f".into(),
            "threshold" => "0.5f".into(),
            _ => "0.0f".into(),
        },
        "latent_dtype" => "LATENT_DTYPE_F32".into(),
        "latent_layout" => "LATENT_LAYOUT_ROW_MAJOR".into(),
        "latent_device" => "LATENT_DEVICE_CPU".into(),
        "latent_image_format" => "LATENT_IMAGE_PGM".into(),
        "latent_constraint" => "LATENT_CONSTRAINT_INTERVAL".into(),
        "latent_prior" => "LATENT_PRIOR_UNIFORM".into(),
        "latent_proposal" => "LATENT_PROPOSAL_NORMAL".into(),
        "latent_scaling" => "LATENT_SCALING_MIN_MAX".into(),
        "latent_onnx_part" => "LATENT_ONNX_PART_ENCODER".into(),
        "latent_rbm_unit" => "LATENT_RBM_UNIT_BERNOULLI".into(),
        "latent_task" => "LATENT_TASK_CLASSIFY".into(),
        "latent_loss" => "LATENT_LOSS_MSE".into(),
        "latent_vae_objective" => "LATENT_VAE_OBJECTIVE_ELBO".into(),
        "latent_wait_policy" => "LATENT_WAIT_POLICY_SPIN_THEN_PARK".into(),
        "latent_matmul_precision" => "LATENT_MATMUL_PRECISION_F32".into(),
        "latent_status" => "LATENT_STATUS_OK".into(),
        other => panic!("no valid argument of type {other} ({func}({name}))"),
    }
}

// ---------------------------------------------------------------------------------------------
// Bad values.

const WORK: &[&str] = &[
    "epochs",
    "rbm_k",
    "cd_k",
    "runs",
    "samples",
    "steps",
    "max_iterations",
    "init_samples",
    "max_evaluations",
    "interval_samples",
    "observations",
    "patience",
    "early_stopping_patience",
    "num_samples",
    "full_hessian_max",
    "updates",
    "z_window",
    "history_window",
];

/// (label, C expression) of the bad values of a scalar type, None for a type without any.
fn scalar_bad(ty: &str, h: &Header) -> Option<Vec<(String, String)>> {
    let v = |xs: &[(&str, &str)]| Some(xs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect());
    match ty {
        "uint32_t" => v(&[("0", "0u"), ("1", "1u"), ("UINT32_MAX", "UINT32_MAX")]),
        "uint64_t" => v(&[("0", "0u"), ("2^40", "((uint64_t)1 << 40)"), ("UINT64_MAX", "UINT64_MAX")]),
        "int32_t" => v(&[("-1", "-1"), ("2", "2"), ("INT32_MIN", "INT32_MIN"), ("INT32_MAX", "INT32_MAX")]),
        "double" => v(&[
            ("NaN", "NAN"),
            ("+Inf", "INFINITY"),
            ("-Inf", "-INFINITY"),
            ("-1", "-1.0"),
            ("0", "0.0"),
            ("1e300", "1e300"),
            ("-1e300", "-1e300"),
        ]),
        "float" => v(&[
            ("NaN", "NAN"),
            ("+Inf", "INFINITY"),
            ("-Inf", "-INFINITY"),
            ("-1", "-1.0f"),
            ("0", "0.0f"),
            ("FLT_MAX", "FLT_MAX"),
        ]),
        "char" => v(&[
            ("NUL", "'\\0'"),
            ("newline", "'\\n'"),
            ("quote", "'\"'"),
            ("minus", "'-'"),
            ("dot", "'.'"),
            ("0x80", "(char)-128"),
        ]),
        _ => {
            let past = *h.enums.get(ty)?;
            let past_s = past.to_string();
            Some(vec![
                ("-1".into(), "-1".into()),
                (past_s.clone(), past_s),
                ("999".into(), "999".into()),
                ("INT32_MIN".into(), "INT32_MIN".into()),
            ])
        }
    }
}

/// A size_t that sizes a buffer the caller passes in (rows, cols, n, ...): its huge values are
/// only those no real buffer could hold.
fn is_extent(f: &Func, p: &Param) -> bool {
    p.ty == "size_t"
        && !["capacity", "values_capacity", "first", "count", "k", "layer", "observations", "grid_cols"]
            .contains(&p.name.as_str())
        && f.params.iter().any(|q| {
            q.ty.starts_with("const ")
                && q.ty.ends_with('*')
                && q.ty != "const char *"
                && !q.ty.starts_with("const struct")
        })
}

fn size_bad(f: &Func, p: &Param) -> Vec<(String, String)> {
    let mut v: Vec<(&str, &str)> = vec![("0", "(size_t)0"), ("1", "(size_t)1"), ("3", "(size_t)3")];
    if is_extent(f, p) {
        v.extend([("2^62", "((size_t)1 << 62)"), ("2^63", "((size_t)1 << 63)"), ("SIZE_MAX", "SIZE_MAX")]);
    } else {
        v.extend([("2^32", "((size_t)1 << 32)"), ("2^40", "((size_t)1 << 40)"), ("SIZE_MAX", "SIZE_MAX")]);
    }
    v.into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn path_bad(f: &Func) -> Vec<(String, String)> {
    let write = f.name.contains("save")
        || f.name.contains("write")
        || f.name.contains("export")
        || f.name.contains("checkpoint");
    let mut v = vec![
        ("\"\"", "\"\""),
        ("/nonexistent/x", "\"/nonexistent/dir/x\""),
        ("directory", "S(\"dir\")"),
        ("/dev/null", "\"/dev/null\""),
        ("fifo", "S(\"fifo\")"),
    ];
    if write {
        v.push(("/dev/full", "\"/dev/full\""));
    } else {
        v.extend([
            ("/dev/zero", "\"/dev/zero\""),
            ("wrong-format", "S(\"garbage.bin\")"),
            ("empty-file", "S(\"empty\")"),
        ]);
    }
    v.into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[derive(Clone, Debug)]
struct Case {
    func: usize,
    label: String,
    args: Vec<String>,
    /// C statements run before the call (a struct field's mutation).
    setup: String,
    /// A required pointer is NULL: the status must be LATENT_STATUS_NULL_ARGUMENT.
    null_required: bool,
    /// A work count made huge: a timeout means long work, not a hang.
    work: bool,
}

fn struct_mutations(h: &Header, sname: &str, prefix: &str, out: &mut Vec<(String, String, bool)>) {
    for fld in &h.structs[sname] {
        let path = format!("{prefix}.{}", fld.name);
        if let Some((inner, false, 0)) = handle_kind(&fld.ty) {
            if h.structs.contains_key(inner) {
                struct_mutations(h, inner, &path, out);
            }
            continue;
        }
        if fld.ty.ends_with('*') || fld.ty.ends_with("_fn") {
            continue; // arrays stay NULL (their counts are mutated); pointers to short arrays are not generated
        }
        let work = WORK.contains(&fld.name.as_str());
        for (label, expr) in scalar_bad(&fld.ty, h).unwrap_or_else(|| panic!("no bad values of {} ({path})", fld.ty)) {
            out.push((format!("{}={label}", path.trim_start_matches('.')), expr.to_string(), work));
        }
    }
}

fn cases(h: &Header) -> Vec<Case> {
    let mut all = Vec::new();
    for (fi, f) in h.funcs.iter().enumerate() {
        let k0 = all.len();
        let valid: Vec<String> = f.params.iter().map(|p| valid_arg(f, p, k0, h)).collect();
        let push = |all: &mut Vec<Case>, label: String, args: Vec<String>, setup: String, null_required, work| {
            let k = all.len();
            // write paths are per case
            let args = args.into_iter().map(|a| a.replace(&format!("\"w_{k0}\""), &format!("\"w_{k}\""))).collect();
            all.push(Case { func: fi, label, args, setup, null_required, work });
            let _ = k;
        };
        push(&mut all, "valid".into(), valid.clone(), String::new(), false, false);
        for (pi, p) in f.params.iter().enumerate() {
            let mut bad: Vec<(String, String, bool)> = Vec::new(); // label, expr, null
            let mut setups: Vec<(String, String, bool)> = Vec::new(); // label, statement, work
            let ty = p.ty.as_str();
            if ty.ends_with('*') && (ty != "void *" || buffer_out(&f.name, p)) {
                bad.push(("NULL".into(), "NULL".into(), true));
            }
            if ty.ends_with("_fn") {
                bad.push(("NULL".into(), "NULL".into(), true));
            }
            match ty {
                "const float *" | "const void *" => {
                    bad.push(("NaN-data".into(), "fnan".into(), false));
                    bad.push(("Inf-data".into(), "finf".into(), false));
                }
                "const double *" => {
                    bad.push(("NaN-data".into(), "dnan".into(), false));
                    bad.push(("Inf-data".into(), "dinf".into(), false));
                }
                "const int32_t *" => bad.push(("bad-labels".into(), "ibad".into(), false)),
                "const latent_activation *" => bad.push(("bad-codes".into(), "ibad".into(), false)),
                "const uint32_t *" => bad.push(("zeros".into(), "u32zero".into(), false)),
                "const char *" if p.name == "name" => {
                    for (l, e) in [("\"\"", "\"\""), ("dotdot", "\"../../../../etc/passwd\""), ("long", "longname")] {
                        bad.push((l.into(), e.into(), false));
                    }
                }
                "const char *" => bad.extend(path_bad(f).into_iter().map(|(l, e)| (l, e, false))),
                "const char *const *" => {
                    bad.push(("NULL-entry".into(), "P_spaths(1)".into(), false));
                    bad.push(("directory-entry".into(), "P_spaths(2)".into(), false));
                    bad.push(("garbage-entry".into(), "P_spaths(3)".into(), false));
                }
                "latent_objective_fn" => {
                    bad.push(("returns-NaN".into(), "obj_nan".into(), false));
                    bad.push(("returns-Inf".into(), "obj_inf".into(), false));
                    bad.push(("reenters".into(), "obj_reenter".into(), false));
                }
                "latent_quantile_fn" => bad.push(("returns-NaN".into(), "q_nan".into(), false)),
                "latent_prior_sampler_fn" => {
                    bad.push(("returns-NaN".into(), "ps_nan".into(), false));
                    bad.push(("cancels".into(), "ps_cancel".into(), false));
                }
                "latent_sampler_fn" => {
                    bad.push(("returns-NaN".into(), "smp_nan".into(), false));
                    bad.push(("cancels".into(), "smp_cancel".into(), false));
                }
                "latent_transform_fn" => {
                    bad.push(("returns-NaN".into(), "tf_nan".into(), false));
                    bad.push(("cancels".into(), "tf_cancel".into(), false));
                    bad.push(("reenters".into(), "tf_reenter".into(), false));
                }
                "latent_progress_fn" => {
                    bad.push(("cancels".into(), "prog_cancel".into(), false));
                    bad.push(("reenters".into(), "prog_reenter".into(), false));
                }
                "size_t" => bad.extend(size_bad(f, p).into_iter().map(|(l, e)| (l, e, false))),
                _ => {}
            }
            if let Some((hty, _, 1)) = handle_kind(ty)
                && h.opaque.contains(hty)
            {
                let other: &[(&str, &str)] = match valid[pi].as_str() {
                    "H_net()" => &[("classifier", "H_cnet()")],
                    "H_net1()" => &[("deep", "H_net()"), ("classifier", "H_cnet()")],
                    "H_cnet()" => &[("autoencoder", "H_net()")],
                    "H_mc()" => &[("other-size", "H_mc_net()")],
                    "H_mc_net()" => &[("other-size", "H_mc()")],
                    "H_mc_min()" => &[("never-run", "H_mc()")],
                    "H_mc_runs()" => &[("one-run", "H_mc_min()"), ("never-run", "H_mc()")],
                    "H_trainer()" => &[("fitted", "H_trainer_fitted()")],
                    "H_trainer_fitted()" => &[("unfitted", "H_trainer()")],
                    "H_ds()" | "H_ds2()" | "H_dsv()" => &[("unlabeled", "H_dsu()"), ("5-cols", "H_ds5()")],
                    "H_ds_scaled()" => &[("unscaled", "H_ds2()"), ("5-cols", "H_ds5()")],
                    _ => &[],
                };
                for (l, e) in other {
                    bad.push((l.to_string(), e.to_string(), false));
                }
            }
            if let Some((sname, true, 1)) = handle_kind(ty)
                && h.structs.contains_key(sname)
            {
                let mut muts = Vec::new();
                struct_mutations(h, sname, "", &mut muts);
                for (label, expr, work) in muts {
                    let field = label.split('=').next().unwrap().to_string();
                    setups.push((format!("{}.{label}", p.name), format!("P_{sname}.{field} = {expr};"), work));
                }
            }
            if ty != "size_t"
                && !ty.ends_with('*')
                && !ty.ends_with("_fn")
                && let Some(vals) = scalar_bad(ty, h)
            {
                bad.extend(vals.into_iter().map(|(l, e)| (l, e, false)));
            }
            let work = WORK.contains(&p.name.as_str());
            for (label, expr, null) in bad {
                let mut args = valid.clone();
                args[pi] = expr;
                let null_required = null && !optional(f, p);
                let w = work && !null;
                push(&mut all, format!("{}={label}", p.name), args, String::new(), null_required, w);
            }
            for (label, stmt, work) in setups {
                push(&mut all, label, valid.clone(), stmt, false, work);
            }
        }
        // Products that overflow: two extents at once.
        let extents: Vec<usize> = (0..f.params.len()).filter(|&i| is_extent(f, &f.params[i])).collect();
        for (a, &i) in extents.iter().enumerate() {
            for &j in &extents[a + 1..] {
                for (la, ea, lb, eb) in [
                    ("2^32", "((size_t)1 << 32)", "2^32", "((size_t)1 << 32)"),
                    ("2^31", "((size_t)1 << 31)", "2^31", "((size_t)1 << 31)"),
                    ("2^33", "((size_t)1 << 33)", "2^31", "((size_t)1 << 31)"),
                ] {
                    let mut args = valid.clone();
                    args[i] = ea.into();
                    args[j] = eb.into();
                    let label = format!("{}={la},{}={lb}", f.params[i].name, f.params[j].name);
                    push(&mut all, label, args, String::new(), false, false);
                }
            }
        }
    }
    all
}

// ---------------------------------------------------------------------------------------------
// The C program.

const PRELUDE: &str = r#"#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "latent.h"

#define BUF 65536
static float fin[BUF], fnan[BUF], finf[BUF], fout[BUF], flv[BUF], fz[BUF], fx[BUF];
static double din[BUF], dnan[BUF], dinf[BUF], dout[BUF], dout2[BUF];
static int32_t iin[BUF], ibad[BUF], iout[BUF], i32o[4];
static uint64_t uin[BUF], uout[BUF];
static uint32_t u32out[BUF], u32in[BUF], u32zero[BUF];
static uint8_t u8out[BUF];
static char cbuf[BUF], longname[5000];
static size_t szo[16];
static const char *scratch;

static const char *S(const char *name) {
    static char bufs[4][4096];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 4096, "%s/%s", scratch, name);
    return b;
}

static void setup_failed(const char *what, latent_status st) {
    printf("SETUP %s: %d %s\n", what, st, latent_last_error_message());
    fflush(stdout);
    exit(3);
}
#define CHECK(what, call) do { latent_status st_ = (call); if (st_ != LATENT_STATUS_OK) setup_failed(what, st_); } while (0)

/* A follow-up call's status: "T status what". */
static void then_status(const char *what, latent_status st) {
    const char *m = latent_last_error_message();
    printf("T %d %s\n", (int)st, what);
    if (st != LATENT_STATUS_OK) printf("M %s\n", m ? (m[0] ? m : "<empty>") : "<NULL>");
}
static struct latent_network *H_net(void);
static struct latent_trainer *H_trainer(void);
static struct latent_vae *H_vae(void);
static struct latent_montecarlo *H_mc(void);
static struct latent_montecarlo *g_mcmin;
static struct latent_rbm *H_rbm(void);
/* Callbacks that call back into the library on the handles being trained or optimized: a
   change must get LATENT_STATUS_BUSY (or succeed), never deadlock or crash. */
static int32_t prog_reenter(void *u, const struct latent_progress *p) {
    (void)u; (void)p;
    then_status("reenter network_set_threads", latent_network_set_threads(H_net(), 1));
    then_status("reenter network_set_params", latent_network_set_params(H_net(), fin, 0));
    then_status("reenter network_encode", latent_network_encode(H_net(), fin, 16, 8, fout, BUF));
    then_status("reenter trainer_reset", latent_trainer_reset(H_trainer()));
    then_status("reenter vae_set_threads", latent_vae_set_threads(H_vae(), 1));
    then_status("reenter rbm_set_threads", latent_rbm_set_threads(H_rbm(), 1));
    return 0;
}
static double obj_reenter(void *u, const double *p, size_t n) {
    (void)u;
    then_status("reenter montecarlo_best", latent_montecarlo_best(H_mc(), dout2, BUF));
    then_status("reenter montecarlo_set_start", latent_montecarlo_set_start(H_mc(), din, 2));
    if (g_mcmin) then_status("reenter montecarlo_set_start(min)", latent_montecarlo_set_start(g_mcmin, din, 2));
    return n ? p[0] * p[0] : 0.0;
}
static double obj_sq(void *u, const double *p, size_t n) { double s = 0; size_t i; (void)u; for (i = 0; i < n; i++) s += p[i] * p[i]; return s; }
static double obj_nan(void *u, const double *p, size_t n) { (void)u; (void)p; (void)n; return NAN; }
static double obj_inf(void *u, const double *p, size_t n) { (void)u; (void)p; (void)n; return INFINITY; }
static double q_lin(void *u, size_t i, double c, double s, double x) { (void)u; (void)i; return c + s * (x - 0.5); }
static double q_nan(void *u, size_t i, double c, double s, double x) { (void)u; (void)i; (void)c; (void)s; (void)x; return NAN; }
static int32_t prog_ok(void *u, const struct latent_progress *p) { (void)u; (void)p; return 0; }
static int32_t ps_ok(void *u, double *o, size_t c, size_t p, uint64_t s) { size_t i; (void)u; for (i = 0; i < c * p; i++) o[i] = (double)((s + i) % 7) / 7.0 - 0.5; return 0; }
static int32_t ps_nan(void *u, double *o, size_t c, size_t p, uint64_t s) { size_t i; (void)u; (void)s; for (i = 0; i < c * p; i++) o[i] = NAN; return 0; }
static int32_t ps_cancel(void *u, double *o, size_t c, size_t p, uint64_t s) { (void)u; (void)o; (void)c; (void)p; (void)s; return 1; }
static int32_t smp_ok(void *u, const struct latent_montecarlo_view *v, double *o, size_t c, uint64_t s) { size_t i; (void)u; for (i = 0; i < c * v->n_params; i++) o[i] = v->best[i % v->n_params] + (double)((s + i) % 5) / 50.0; return 0; }
static int32_t smp_nan(void *u, const struct latent_montecarlo_view *v, double *o, size_t c, uint64_t s) { size_t i; (void)u; (void)s; for (i = 0; i < c * v->n_params; i++) o[i] = NAN; return 0; }
static int32_t smp_cancel(void *u, const struct latent_montecarlo_view *v, double *o, size_t c, uint64_t s) { (void)u; (void)v; (void)o; (void)c; (void)s; return 1; }
static int32_t tf_ok(void *u, double *x, size_t c, size_t p) { size_t i; (void)u; for (i = 0; i < c * p; i++) x[i] = fabs(x[i]); return 0; }
static int32_t tf_nan(void *u, double *x, size_t c, size_t p) { size_t i; (void)u; for (i = 0; i < c * p; i++) x[i] = NAN; return 0; }
static int32_t tf_cancel(void *u, double *x, size_t c, size_t p) { (void)u; (void)x; (void)c; (void)p; return 1; }
static int32_t tf_reenter(void *u, double *x, size_t c, size_t p) {
    (void)u; (void)x; (void)c; (void)p;
    then_status("reenter montecarlo_best(transform)", latent_montecarlo_best(H_mc(), dout2, BUF));
    then_status("reenter montecarlo_set_transform(transform)", latent_montecarlo_set_transform(H_mc(), NULL, NULL));
    return 0;
}
static int32_t prog_cancel(void *u, const struct latent_progress *p) { (void)u; (void)p; return 1; }

static const uint32_t hidden6[1] = {6};
static struct latent_network_params ae_params(void) {
    struct latent_network_params p = latent_network_params_default();
    p.input_dim = 8; p.n_encoder = 1; p.encoder_units = hidden6; p.code_units = 4;
    return p;
}
static struct latent_train_params small_train(void) {
    struct latent_train_params t = latent_train_params_default();
    t.epochs = 1; t.batch_size = 8; t.threads = 1;
    return t;
}
static struct latent_montecarlo_params small_mc(void) {
    struct latent_montecarlo_params m = latent_montecarlo_params_default();
    m.init_samples = 10; m.samples = 10; m.elite = 2; m.max_iterations = 3; m.threads = 1;
    return m;
}

/* What a struct-by-pointer argument starts from: the defaults with the required fields set and
   every array NULL (a mutated count then means "NULL array with n > 0"). */
static struct latent_network_params P_latent_network_params;
static struct latent_train_params P_latent_train_params;
static struct latent_pretrain_params P_latent_pretrain_params;
static struct latent_vae_params P_latent_vae_params;
static struct latent_montecarlo_params P_latent_montecarlo_params;
static struct latent_montecarlo_network_params P_latent_montecarlo_network_params;
static struct latent_csv_params P_latent_csv_params;
static struct latent_grid_params P_latent_grid_params;
static void init_params(void) {
    P_latent_network_params = latent_network_params_default();
    P_latent_network_params.input_dim = 8; P_latent_network_params.code_units = 4;
    P_latent_train_params = small_train();
    P_latent_pretrain_params = latent_pretrain_params_default();
    P_latent_pretrain_params.pretrain = small_train();
    P_latent_pretrain_params.intermediate = small_train();
    P_latent_pretrain_params.finetune = small_train();
    P_latent_vae_params = latent_vae_params_default();
    P_latent_vae_params.input_dim = 8; P_latent_vae_params.latent_dim = 2;
    P_latent_montecarlo_params = small_mc();
    P_latent_montecarlo_network_params = latent_montecarlo_network_params_default();
    P_latent_csv_params = latent_csv_params_default();
    P_latent_grid_params = latent_grid_params_default();
    P_latent_grid_params.format = LATENT_IMAGE_PGM;
}

static struct latent_network *o_latent_network[2];
static struct latent_dataset *o_latent_dataset[2];
static struct latent_trainer *o_latent_trainer[2];
static struct latent_vae *o_latent_vae[2];
static struct latent_psd *o_latent_psd[2];
static struct latent_montecarlo *o_latent_montecarlo[2];
static struct latent_rbm *o_latent_rbm[2];
static struct latent_hash_index *o_latent_hash_index[2];
static struct latent_stream *o_latent_stream[2];
static struct latent_metrics o_latent_metrics[4];
static struct latent_evaluation o_latent_evaluation[4];
static struct latent_elbo o_latent_elbo[4];
static struct latent_device_info o_latent_device_info[4];
static struct latent_epoch_record o_latent_epoch_record[64];

static struct latent_network *g_net, *g_cnet;
static struct latent_network *H_net(void) {
    if (!g_net) { struct latent_network_params p = ae_params(); CHECK("net", latent_network_new(&p, &g_net)); latent_network_set_threads(g_net, 1); }
    return g_net;
}
static struct latent_network *H_cnet(void) {
    if (!g_cnet) {
        struct latent_network_params p = latent_network_params_default();
        p.input_dim = 8; p.code_units = 4; p.mirror_decoder = 0; p.task = LATENT_TASK_CLASSIFY; p.outputs = 3;
        p.output_activation = LATENT_ACTIVATION_IDENTITY;
        CHECK("cnet", latent_network_new(&p, &g_cnet));
        latent_network_set_threads(g_cnet, 1);
    }
    return g_cnet;
}
static size_t pc_net(void) { size_t n = 0; CHECK("param_count", latent_network_param_count(H_net(), &n)); return n; }
static struct latent_dataset *mkds(size_t rows) {
    struct latent_dataset *d = NULL;
    CHECK("dataset", latent_dataset_from_buffer(fin, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, rows, 8, &d));
    CHECK("labels", latent_dataset_set_labels(d, iin, rows));
    return d;
}
static struct latent_dataset *g_ds, *g_ds2, *g_dsv, *g_dss;
static struct latent_dataset *H_ds(void) { if (!g_ds) g_ds = mkds(16); return g_ds; }
static struct latent_dataset *H_ds2(void) { if (!g_ds2) g_ds2 = mkds(16); return g_ds2; }
static struct latent_dataset *H_dsv(void) { if (!g_dsv) g_dsv = mkds(8); return g_dsv; }
static struct latent_dataset *H_ds_scaled(void) {
    if (!g_dss) { g_dss = mkds(16); CHECK("scale", latent_dataset_scale(g_dss, LATENT_SCALING_MIN_MAX)); }
    return g_dss;
}
static struct latent_vae *g_vae;
static struct latent_vae *H_vae(void) {
    if (!g_vae) {
        struct latent_vae_params p = latent_vae_params_default();
        p.input_dim = 8; p.latent_dim = 2;
        CHECK("vae", latent_vae_new(&p, &g_vae));
        latent_vae_set_threads(g_vae, 1);
    }
    return g_vae;
}
static struct latent_rbm *g_rbm, *g_rbmf;
static struct latent_rbm *H_rbm(void) {
    if (!g_rbm) {
        CHECK("rbm", latent_rbm_new(8, 6, LATENT_RBM_UNIT_BERNOULLI, LATENT_RBM_UNIT_BERNOULLI, 0, &g_rbm));
        latent_rbm_set_threads(g_rbm, 1);
    }
    return g_rbm;
}
static struct latent_dataset *H_ds(void);
static struct latent_train_params small_train(void);
static struct latent_rbm *H_rbm_fitted(void) {
    if (!g_rbmf) {
        struct latent_train_params t = small_train();
        CHECK("rbm", latent_rbm_new(8, 6, LATENT_RBM_UNIT_BERNOULLI, LATENT_RBM_UNIT_BERNOULLI, 0, &g_rbmf));
        latent_rbm_set_threads(g_rbmf, 1);
        CHECK("rbm_fit", latent_rbm_fit(g_rbmf, &t, 1, 0, H_ds(), NULL, NULL));
    }
    return g_rbmf;
}
static size_t pc_rbm(void) { size_t n = 0; CHECK("rbm_param_count", latent_rbm_param_count(H_rbm(), &n)); return n; }
static struct latent_hash_index *g_hidx;
static struct latent_hash_index *H_hidx(void) {
    if (!g_hidx) CHECK("hash_index", latent_hash_index_new(uin, 16, 64, &g_hidx));
    return g_hidx;
}
static struct latent_stream *g_stream;
static struct latent_stream *H_stream(void) {
    if (!g_stream) CHECK("stream", latent_stream_open(S("data.npy"), &g_stream));
    return g_stream;
}
/* Four paths for latent_stream_open_files (valid n is 2): all data.npy, or the second one
   NULL (1), the scratch directory (2) or a file that is not .npy (3). */
static const char *const *P_spaths(int bad) {
    static char a[4096], b[4096];
    static const char *p[4];
    snprintf(a, sizeof a, "%s", S("data.npy"));
    snprintf(b, sizeof b, "%s", bad == 2 ? S("dir") : bad == 3 ? S("garbage.bin") : S("data.npy"));
    p[0] = a; p[1] = bad == 1 ? NULL : b; p[2] = a; p[3] = a;
    return p;
}
static size_t pc_vae(void) { size_t n = 0; CHECK("vae_param_count", latent_vae_param_count(H_vae(), &n)); return n; }
static struct latent_psd *g_psd;
static struct latent_psd *H_psd(void) {
    if (!g_psd) CHECK("psd", latent_psd_new(8, 4, 0.1, 1.0, 0, &g_psd));
    return g_psd;
}
static size_t pc_psd(void) { size_t n = 0; CHECK("psd_param_count", latent_psd_param_count(H_psd(), &n)); return n; }
/* A one-hidden-layer autoencoder 8-4-8 (what recirculation trains). */
static struct latent_network *g_net1;
static struct latent_network *H_net1(void) {
    if (!g_net1) {
        struct latent_network_params p = latent_network_params_default();
        p.input_dim = 8; p.code_units = 4;
        CHECK("net1", latent_network_new(&p, &g_net1));
        latent_network_set_threads(g_net1, 1);
    }
    return g_net1;
}
static struct latent_trainer *g_tr, *g_trf;
static struct latent_trainer *H_trainer(void) {
    if (!g_tr) { struct latent_train_params t = small_train(); CHECK("trainer", latent_trainer_new(&t, &g_tr)); }
    return g_tr;
}
static struct latent_trainer *H_trainer_fitted(void) {
    if (!g_trf) {
        struct latent_train_params t = small_train();
        CHECK("trainer", latent_trainer_new(&t, &g_trf));
        CHECK("fit", latent_trainer_fit(g_trf, H_net(), H_ds(), NULL, NULL, NULL));
    }
    return g_trf;
}
static struct latent_montecarlo *g_mc, *g_mcnet;
static struct latent_montecarlo *H_mc(void) {
    if (!g_mc) { struct latent_montecarlo_params m = small_mc(); CHECK("mc", latent_montecarlo_new(&m, 2, &g_mc)); }
    return g_mc;
}
static struct latent_montecarlo *H_mc_min(void) {
    if (!g_mcmin) {
        struct latent_montecarlo_params m = small_mc();
        CHECK("mc", latent_montecarlo_new(&m, 2, &g_mcmin));
        CHECK("minimize", latent_montecarlo_minimize(g_mcmin, obj_sq, NULL));
    }
    return g_mcmin;
}
static struct latent_montecarlo *g_mcruns;
static struct latent_montecarlo *H_mc_runs(void) {
    if (!g_mcruns) {
        struct latent_montecarlo_params m = small_mc();
        CHECK("mc", latent_montecarlo_new(&m, 2, &g_mcruns));
        CHECK("minimize", latent_montecarlo_minimize(g_mcruns, obj_sq, NULL));
        CHECK("minimize", latent_montecarlo_minimize(g_mcruns, obj_sq, NULL));
    }
    return g_mcruns;
}
static struct latent_montecarlo *H_mc_net(void) {
    if (!g_mcnet) { struct latent_montecarlo_params m = small_mc(); CHECK("mc", latent_montecarlo_new(&m, pc_net(), &g_mcnet)); }
    return g_mcnet;
}

static struct latent_dataset *g_dsu, *g_ds5;
static struct latent_dataset *H_dsu(void) {
    if (!g_dsu) CHECK("dataset", latent_dataset_from_buffer(fin, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 16, 8, &g_dsu));
    return g_dsu;
}
static struct latent_dataset *H_ds5(void) {
    if (!g_ds5) {
        CHECK("dataset", latent_dataset_from_buffer(fin, LATENT_DTYPE_F32, LATENT_LAYOUT_ROW_MAJOR, 16, 5, &g_ds5));
        CHECK("labels", latent_dataset_set_labels(g_ds5, iin, 16));
    }
    return g_ds5;
}

/* Follow-ups: a handle made or changed by a call with a bad argument still works, or fails
   with a documented status (the row counts keep every read within the buffers). */
static struct latent_trainer *small_trainer(void) {
    struct latent_train_params t = small_train(); struct latent_trainer *tr = NULL;
    CHECK("trainer", latent_trainer_new(&t, &tr));
    return tr;
}
static void use_latent_network(struct latent_network *n) {
    size_t in, code; struct latent_trainer *t;
    if (!n) return;
    in = latent_network_input_dim(n); code = latent_network_code_dim(n);
    if (in > 0 && in <= BUF / 16) {
        then_status("encode", latent_network_encode(n, fin, 16, in, fout, BUF));
        then_status("reconstruct", latent_network_reconstruct(n, fin, 16, in, fout, BUF));
    }
    if (code > 0 && code <= BUF / 16) then_status("decode", latent_network_decode(n, fin, 16, code, fout, BUF));
    if (in == 8) {
        t = small_trainer();
        then_status("trainer_fit", latent_trainer_fit(t, n, H_ds(), H_dsv(), NULL, NULL));
        latent_trainer_free(t);
    }
}
static void use_latent_vae(struct latent_vae *v) {
    size_t in; struct latent_trainer *t;
    if (!v) return;
    in = latent_vae_input_dim(v);
    if (in > 0 && in <= BUF / 16) then_status("vae_encode", latent_vae_encode(v, fin, 16, in, fout, flv, BUF));
    if (in == 8) {
        t = small_trainer();
        then_status("trainer_fit_vae", latent_trainer_fit_vae(t, v, H_ds(), H_dsv(), NULL, NULL));
        latent_trainer_free(t);
    }
}
static void use_latent_psd(struct latent_psd *p) {
    size_t in;
    if (!p) return;
    in = latent_psd_input_dim(p);
    if (in > 0 && in <= BUF / 16) {
        then_status("psd_encode", latent_psd_encode(p, fin, 16, in, fout, BUF));
        then_status("psd_encode_optimized", latent_psd_encode_optimized(p, fin, 16, in, 20, 1e-4, fout, BUF));
    }
    if (in == 8) then_status("psd_fit", latent_psd_fit(p, H_ds(), 1, 8, 0.01, 0, NULL));
}
static void use_latent_rbm(struct latent_rbm *r) {
    size_t nv; struct latent_train_params t = small_train();
    if (!r) return;
    nv = latent_rbm_n_visible(r);
    if (nv > 0 && nv <= BUF / 16) {
        then_status("rbm_free_energy", latent_rbm_free_energy(r, fin, 16, nv, dout, BUF));
        then_status("rbm_sample", latent_rbm_sample(r, fin, 16, nv, 2, 1, 0, fout, BUF));
    }
    if (nv == 8) then_status("rbm_fit", latent_rbm_fit(r, &t, 1, 0, H_ds(), NULL, NULL));
}
static void use_latent_hash_index(struct latent_hash_index *h) {
    if (!h) return;
    then_status("hash_index_query_top_k", latent_hash_index_query_top_k(h, 0, 3, uout, u32out, BUF, &szo[15]));
    then_status("hash_index_query_radius", latent_hash_index_query_radius(h, 0, 1, uout, u32out, BUF, &szo[15]));
}
static void use_latent_stream(struct latent_stream *s) {
    struct latent_trainer *t;
    if (!s) return;
    t = small_trainer();
    then_status("trainer_fit_stream", latent_trainer_fit_stream(t, H_net(), s, NULL, NULL, NULL));
    latent_trainer_free(t);
}
static void use_latent_trainer(struct latent_trainer *t) {
    size_t n = 0;
    if (!t) return;
    then_status("trainer_fit", latent_trainer_fit(t, H_net(), H_ds(), H_dsv(), NULL, NULL));
    then_status("trainer_history", latent_trainer_history(t, o_latent_epoch_record, 64, &n));
}
static void use_latent_montecarlo(struct latent_montecarlo *m) {
    if (!m) return;
    then_status("montecarlo_minimize", latent_montecarlo_minimize(m, obj_sq, NULL));
    then_status("montecarlo_best", latent_montecarlo_best(m, dout2, BUF));
}
static void use_latent_dataset(struct latent_dataset *d) {
    struct latent_trainer *t;
    if (!d) return;
    then_status("dataset_copy_rows", latent_dataset_copy_rows(d, 0, 1, fout, BUF));
    if (latent_dataset_cols(d) == 8) {
        t = small_trainer();
        then_status("trainer_fit", latent_trainer_fit(t, H_net(), d, NULL, NULL, NULL));
        latent_trainer_free(t);
        t = small_trainer();
        then_status("trainer_fit(classifier)", latent_trainer_fit(t, H_cnet(), d, NULL, NULL, NULL));
        latent_trainer_free(t);
        then_status("network_evaluate", latent_network_evaluate(H_cnet(), d, o_latent_evaluation, uout, BUF));
    }
}

static void put_be32(FILE *f, uint32_t v) { unsigned char b[4]; b[0] = v >> 24; b[1] = v >> 16; b[2] = v >> 8; b[3] = v; fwrite(b, 1, 4, f); }
static FILE *open_w(const char *name) { FILE *f = fopen(S(name), "wb"); if (!f) setup_failed(name, -1); return f; }
static void npy(const char *name, const char *descr, const char *shape, const void *data, size_t bytes) {
    char hdr[128]; size_t len; FILE *f = open_w(name);
    snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    len = strlen(hdr);
    while ((10 + len + 1) % 64) hdr[len++] = ' ';
    hdr[len++] = '\n';
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc((int)(len & 0xff), f); fputc((int)(len >> 8), f);
    fwrite(hdr, 1, len, f); fwrite(data, 1, bytes, f); fclose(f);
}
static void prepare(void) {
    FILE *f; int i, j; unsigned char px[16 * 8];
    CHECK("save net", latent_network_save(H_net(), S("net.lnt")));
    CHECK("save vae", latent_vae_save(H_vae(), S("vae.lnt")));
    CHECK("save rbm", latent_rbm_save(H_rbm_fitted(), S("rbm.lnt")));
    {   /* checkpoints of a network's and a VAE's fits (latent_trainer_resume_*) */
        struct latent_train_params t = small_train(); struct latent_trainer *tr = NULL;
        t.checkpoint_path = S("ck.lnt"); t.checkpoint_every = 1;
        CHECK("ck trainer", latent_trainer_new(&t, &tr));
        CHECK("ck fit", latent_trainer_fit(tr, H_net(), H_ds(), NULL, NULL, NULL));
        latent_trainer_free(tr);
        t.checkpoint_path = S("ckv.lnt");
        CHECK("ckv trainer", latent_trainer_new(&t, &tr));
        CHECK("ckv fit", latent_trainer_fit_vae(tr, H_vae(), H_ds(), NULL, NULL, NULL));
        latent_trainer_free(tr);
    }
    f = open_w("data.csv");
    for (i = 0; i < 16; i++) { for (j = 0; j < 8; j++) fprintf(f, j ? ",%g" : "%g", fin[i * 8 + j]); fputc('\n', f); }
    fclose(f);
    f = open_w("img.idx"); put_be32(f, 0x803); put_be32(f, 16); put_be32(f, 2); put_be32(f, 4);
    for (i = 0; i < 128; i++) { px[i] = (unsigned char)(i * 2); }
    fwrite(px, 1, 128, f); fclose(f);
    f = open_w("lab.idx"); put_be32(f, 0x801); put_be32(f, 16);
    for (i = 0; i < 16; i++) { fputc(i % 3, f); }
    fclose(f);
    npy("data.npy", "<f4", "(16, 8)", fin, 16 * 8 * sizeof(float));
    npy("lab.npy", "<i4", "(16,)", iin, 16 * sizeof(int32_t));
    f = open_w("garbage.bin");
    for (i = 0; i < 1000; i++) { fputc((i * 7919) & 0xff, f); }
    fclose(f);
    f = open_w("empty"); fclose(f);
    if (mkdir(S("dir"), 0755) != 0) setup_failed("mkdir", -1);
    if (mkfifo(S("fifo"), 0644) != 0) setup_failed("mkfifo", -1);
    printf("prepared\n");
}

static latent_status status(latent_status st) {
    const char *m = latent_last_error_message();
    printf("S %d\n", (int)st);
    if (st != LATENT_STATUS_OK) printf("M %s\n", m ? (m[0] ? m : "<empty>") : "<NULL>");
    return st;
}
static void text(const char *s) { printf("V %s\n", s ? "string" : "NULL"); if (s) printf("L %zu\n", strlen(s)); }
#define VALUE(call) do { (void)(call); printf("V value\n"); } while (0)
#define VOID(call) do { call; printf("V void\n"); } while (0)

static void run_case(int k);

int main(int argc, char **argv) {
    int i;
    if (argc < 3) return 2;
    scratch = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0); /* a hang's last line tells where it stopped */
    for (i = 0; i < BUF; i++) {
        fin[i] = (float)(i % 7) / 7.0f; fnan[i] = fin[i]; finf[i] = fin[i];
        din[i] = 0.01 * (double)(i % 100); dnan[i] = din[i]; dinf[i] = din[i];
        iin[i] = i % 3; ibad[i] = i % 2 ? INT32_MIN : -1; u32in[i] = 4;
        uin[i] = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    }
    fnan[3] = NAN; finf[5] = INFINITY; dnan[1] = NAN; dinf[0] = INFINITY;
    memset(longname, 'a', sizeof longname - 1);
    init_params();
    if (strcmp(argv[2], "prepare") == 0) { prepare(); return 0; }
    run_case(atoi(argv[2]));
    {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) printf("R %ld\n", (long)ru.ru_maxrss);
    }
    fflush(stdout);
    return 0;
}
"#;

/// What the program does after a call: use the handles it made (when it succeeded) and the
/// handle it changed (whatever it returned), so a bad value accepted by a constructor or a
/// setter is also tried by the calls that depend on it.
fn follow_ups(h: &Header, f: &Func, args: &[String]) -> String {
    let mut c = String::new();
    for (p, a) in f.params.iter().zip(args) {
        if let Some((hty, false, 2)) = handle_kind(&p.ty)
            && h.opaque.contains(hty)
            && a != "NULL"
        {
            let _ = write!(c, " if (st == LATENT_STATUS_OK) use_{hty}(*{a});");
        }
    }
    if let (Some(p), Some(a)) = (f.params.first(), args.first())
        && let Some((hty, false, 1)) = handle_kind(&p.ty)
        && h.opaque.contains(hty)
        && !f.name.ends_with("_free")
        && a != "NULL"
    {
        let _ = write!(c, " use_{hty}({a});");
    }
    c
}

fn harness(h: &Header, cases: &[Case]) -> String {
    let mut c = String::from(PRELUDE);
    let mut table = String::new();
    let mut k = 0;
    while k < cases.len() {
        let fi = cases[k].func;
        let f = &h.funcs[fi];
        let first = k;
        let _ = writeln!(c, "static void case_{fi}(int k) {{ /* {} */\n    switch (k) {{", f.name);
        while k < cases.len() && cases[k].func == fi {
            let case = &cases[k];
            let call = format!("{}({})", f.name, case.args.join(", "));
            let wrapped = match f.ret.as_str() {
                "latent_status" => {
                    format!("latent_status st = status({call}); (void)st;{}", follow_ups(h, f, &case.args))
                }
                "void" => format!("VOID({call});"),
                "const char *" => format!("text({call});"),
                _ => format!("VALUE({call});"),
            };
            let _ = writeln!(
                c,
                "    case {k}: {{ /* {} */ {} {wrapped} break; }}",
                case.label.replace("*/", "* /"),
                case.setup
            );
            k += 1;
        }
        c.push_str("    default: break;\n    }\n}\n");
        let _ = writeln!(table, "    if (k >= {first} && k < {k}) {{ case_{fi}(k); return; }}");
    }
    let _ = write!(c, "static void run_case(int k) {{\n{table}    printf(\"no case %d\\n\", k);\n    exit(4);\n}}\n");
    c
}

// ---------------------------------------------------------------------------------------------
// Running and judging.

#[derive(Debug)]
struct Outcome {
    /// crash, abort, hang, slow, exit, internal, print, undocumented, no-message, bad-message, not-null-status, setup
    kinds: BTreeSet<&'static str>,
    detail: String,
    ms: u128,
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run_case(exe: &Path, dir: &Path, k: usize, case: &Case, timeout: Duration, mem_kib: u64, rss_kib: u64) -> Outcome {
    let out_path = dir.join(format!("out_{k}"));
    let err_path = dir.join(format!("err_{k}"));
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {mem_kib} && exec \"$0\" \"$@\""))
        .arg(exe)
        .arg(dir)
        .arg(k.to_string())
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).unwrap())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn the bad-input harness");
    let mut kinds = BTreeSet::new();
    let mut detail = String::new();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(if start.elapsed() < Duration::from_millis(50) { 1 } else { 10 }));
    };
    let ms = start.elapsed().as_millis();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    let _ = std::fs::remove_file(dir.join(format!("w_{k}")));
    match status {
        None => {
            kinds.insert(if case.work { "slow" } else { "hang" });
            let last = stdout.lines().last().unwrap_or("nothing");
            let _ = write!(detail, "no answer in {}s, the last line was `{last}`", timeout.as_secs());
        }
        Some(st) => {
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = st.signal() {
                kinds.insert(if sig == 6 { "abort" } else { "crash" });
                let _ = write!(detail, "signal {sig}");
            } else if st.code() == Some(3) && stdout.starts_with("SETUP") {
                kinds.insert("setup");
                detail.push_str(stdout.trim());
            } else if st.code() != Some(0) {
                kinds.insert("exit");
                let _ = write!(detail, "exit status {:?}", st.code());
            }
        }
    }
    if !stderr.is_empty() {
        kinds.insert("print");
        let s = String::from_utf8_lossy(&stderr);
        let first = s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").chars().take(160).collect::<String>();
        let _ = write!(detail, "{}stderr: {first}", if detail.is_empty() { "" } else { "; " });
    }
    let mut msg = String::new();
    for line in stdout.lines() {
        if let Some(s) = line.strip_prefix("S ") {
            let s: i32 = s.trim().parse().unwrap_or(-999);
            if !(0..=13).contains(&s) {
                kinds.insert("undocumented");
            }
            if s == 10 {
                kinds.insert("internal");
            }
            if case.null_required && s != 1 {
                kinds.insert("not-null-status");
            }
            msg = format!("status {s}");
        } else if let Some(r) = line.strip_prefix("R ") {
            let kib: u64 = r.trim().parse().unwrap_or(0);
            if kib > rss_kib {
                kinds.insert("memory");
                let _ = write!(detail, "{}peak RSS {} MiB", if detail.is_empty() { "" } else { "; " }, kib >> 10);
            }
        } else if let Some(t) = line.strip_prefix("T ") {
            let (s, what) = t.split_once(' ').unwrap_or((t, ""));
            let s: i32 = s.trim().parse().unwrap_or(-999);
            if !(0..=13).contains(&s) {
                kinds.insert("undocumented");
            }
            if s == 10 {
                kinds.insert("internal");
            }
            if s != 0 {
                let _ = write!(msg, "; then {what}: status {s}");
            }
        } else if let Some(m) = line.strip_prefix("M ") {
            if m == "<empty>" || m == "<NULL>" {
                kinds.insert("no-message");
            } else if let Some(why) = bad_message(m) {
                kinds.insert("bad-message");
                let _ = write!(detail, "{}message {why}", if detail.is_empty() { "" } else { "; " });
            }
            let _ = write!(msg, " \"{}\"", m.chars().take(200).collect::<String>());
        }
    }
    let msg = msg.trim_start_matches("; ");
    if !msg.is_empty() {
        let _ = write!(detail, "{}{msg}", if detail.is_empty() { "" } else { "; " });
    }
    Outcome { kinds, detail, ms }
}

/// What is wrong with a message a C caller reads, if anything: a kind prefix twice
/// ("invalid argument: ...: invalid argument: ..."), a Rust path (`model_file::load`), Rust range
/// syntax (`0..8`), or a temporary file's name.
fn bad_message(m: &str) -> Option<&'static str> {
    const PREFIXES: [&str; 13] = [
        "null argument: ",
        "invalid argument: ",
        "shape mismatch: ",
        "non-finite value: ",
        "I/O error: ",
        "bad file format: ",
        "unsupported: ",
        "out of memory: ",
        "internal error: ",
        "buffer too small: ",
        "training diverged: ",
        "busy: ",
        "cancelled by",
    ];
    let prefixes = PREFIXES.iter().map(|p| m.matches(p).count()).sum::<usize>();
    if prefixes > 1 {
        return Some("has a doubled kind prefix");
    }
    let b = m.as_bytes();
    if m.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != ':');
        w.contains("::")
            && w.split("::").all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    }) {
        return Some("names a Rust path");
    }
    if (1..b.len().saturating_sub(2)).any(|i| {
        b[i] == b'.'
            && b[i + 1] == b'.'
            && (b[i - 1].is_ascii_digit() || b[i - 1] == b'}')
            && (b[i + 2].is_ascii_digit() || b[i + 2] == b'=')
    }) {
        return Some("uses Rust range syntax");
    }
    if m.contains(".latent-tmp-") || m.contains(".tmp") {
        return Some("shows a temporary file's name");
    }
    None
}

fn known_failures() -> (PathBuf, BTreeMap<String, BTreeSet<String>>) {
    let path = std::env::var("LATENT_BAD_INPUT_ALLOW")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("tests/bad_input_known.txt"));
    let mut map = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&path) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut it = line.split_whitespace();
            let (Some(f), Some(case), Some(outcome)) = (it.next(), it.next(), it.next()) else {
                panic!("{}: a line is `function case outcome[+outcome]`: {line}", path.display());
            };
            map.insert(format!("{f} {case}"), outcome.split('+').map(String::from).collect());
        }
    }
    (path, map)
}

#[test]
fn every_exported_function_survives_bad_input() {
    let header = parse_header(&std::fs::read_to_string(root().join("include/latent.h")).unwrap());
    assert!(header.funcs.len() > 100, "parsed only {} functions from include/latent.h", header.funcs.len());
    let cases = cases(&header);
    // Saves aimed at /dev/null and /dev/full must be refused, never rename a file over the
    // device (as root that replaces it for the whole machine): checked before and after.
    let devices_intact = || {
        use std::os::unix::fs::FileTypeExt;
        ["/dev/null", "/dev/full"]
            .iter()
            .all(|d| std::fs::metadata(d).map(|m| m.file_type().is_char_device()).unwrap_or(false))
    };
    assert!(devices_intact(), "/dev/null or /dev/full is not a character device before the suite");

    // Every function has cases: one valid call at least, and one bad one per parameter.
    for (fi, f) in header.funcs.iter().enumerate() {
        let n = cases.iter().filter(|c| c.func == fi).count();
        assert!(n > f.params.len(), "{} has {n} cases for {} parameters", f.name, f.params.len());
    }

    let dir = scratch("bad_input");
    let src = dir.join("bad_input.c");
    std::fs::write(&src, harness(&header, &cases)).unwrap();
    let exe = dir.join("bad_input");
    let t0 = Instant::now();
    compile_c(&[src], &exe, &["-O0", "-g0", "-Wno-unused-function", "-Wno-overflow"]);
    let compile_s = t0.elapsed().as_secs_f64();
    let (code, out, err) = run(Command::new(&exe).arg(&dir).arg("prepare"));
    assert!(code == 0 && out.contains("prepared"), "preparing the harness failed: {out}{err}");

    let timeout = Duration::from_secs(env_u64("LATENT_BAD_INPUT_TIMEOUT", 10));
    let mem_kib = env_u64("LATENT_BAD_INPUT_MEM_KIB", 2 << 20);
    let rss_kib = env_u64("LATENT_BAD_INPUT_RSS_MIB", 512) << 10;
    let jobs = env_u64("LATENT_BAD_INPUT_JOBS", 2).max(1) as usize;
    let only = std::env::var("LATENT_BAD_INPUT_ONLY").ok();
    let selected: Vec<usize> = (0..cases.len())
        .filter(|&k| only.as_deref().is_none_or(|o| header.funcs[cases[k].func].name.contains(o)))
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    let t1 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&k) = selected.get(i) else { break };
                    let o = run_case(&exe, &dir, k, &cases[k], timeout, mem_kib, rss_kib);
                    results.lock().unwrap().push((k, o));
                }
            });
        }
    });
    let run_s = t1.elapsed().as_secs_f64();
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(k, _)| *k);

    let (known_path, known) = known_failures();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut seen_known = BTreeSet::new();
    let mut report = String::new();
    let mut baseline_not_ok = Vec::new();
    let mut slowest = (0u128, String::new());
    let mut log = String::new();
    for (k, o) in &results {
        let case = &cases[*k];
        let fname = &header.funcs[case.func].name;
        let key = format!("{fname} {}", case.label);
        let kinds = o.kinds.iter().copied().collect::<Vec<_>>().join("+");
        let _ = writeln!(log, "{k} {key} {} {}ms [{}]", if kinds.is_empty() { "ok" } else { &kinds }, o.ms, o.detail);
        if o.ms > slowest.0 {
            slowest = (o.ms, key.clone());
        }
        if case.label == "valid"
            && o.kinds.is_empty()
            && o.detail.starts_with("status")
            && !o.detail.starts_with("status 0")
        {
            baseline_not_ok.push(format!("{fname}: {}", o.detail));
        }
        for kind in &o.kinds {
            *counts.entry(kind).or_default() += 1;
        }
        let failing: BTreeSet<String> = o.kinds.iter().filter(|k| **k != "slow").map(|k| k.to_string()).collect();
        if failing.is_empty() {
            continue;
        }
        let outcome = failing.iter().cloned().collect::<Vec<_>>().join("+");
        let allowed = known.get(&key).is_some_and(|ks| failing.is_subset(ks));
        if known.contains_key(&key) {
            seen_known.insert(key.clone());
        }
        let _ = writeln!(report, "  {}{key} {outcome}  [{}]", if allowed { "known: " } else { "NEW:   " }, o.detail);
        if !allowed {
            unexpected.push(format!("{key} {outcome}"));
        }
    }
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    let summary = format!(
        "bad_input: {} calls over {} functions: {} crashes, {} aborts, {} hangs, {} internal, {} prints, {} bad messages \
         ({} exits, {} undocumented statuses, {} without a message, {} NULLs not NULL_ARGUMENT, {} over {} MiB, {} setup failures; \
         {} slow by request) in {run_s:.1} s on {jobs} jobs (library build and C compile {compile_s:.1} s), ulimit -v {mem_kib} KiB, timeout {} s",
        results.len(),
        header.funcs.len(),
        n("crash"),
        n("abort"),
        n("hang"),
        n("internal"),
        n("print"),
        n("bad-message"),
        n("exit"),
        n("undocumented"),
        n("no-message"),
        n("not-null-status"),
        n("memory"),
        rss_kib >> 10,
        n("setup"),
        n("slow"),
        timeout.as_secs()
    );
    println!("{summary}");
    assert!(devices_intact(), "a call replaced /dev/null or /dev/full with a file");
    println!("slowest case: {} ms ({})", slowest.0, slowest.1);
    if !baseline_not_ok.is_empty() {
        println!("valid calls that did not return OK (the environment's answer, not failures):");
        for b in &baseline_not_ok {
            println!("  {b}");
        }
    }
    if !report.is_empty() {
        println!("failing cases (function case outcome [detail]):\n{report}");
    }
    if only.is_none() {
        let stale: Vec<&String> = known.keys().filter(|k| !seen_known.contains(*k)).collect();
        if !stale.is_empty() {
            println!("listed in {} but passing now (remove them):", known_path.display());
            for s in stale {
                println!("  {s}");
            }
        }
    }
    if let Ok(p) = std::env::var("LATENT_BAD_INPUT_LOG") {
        std::fs::write(p, &log).unwrap();
    }
    if let Ok(p) = std::env::var("LATENT_BAD_INPUT_REPORT") {
        std::fs::write(p, format!("{summary}\n{report}")).unwrap();
    }
    assert!(
        unexpected.is_empty(),
        "{} bad-input failures not in {}:\n{}",
        unexpected.len(),
        known_path.display(),
        unexpected.join("\n")
    );
}
