//! The CUDA backend passes kernel arguments as an untyped list, so a missing, extra or
//! misordered argument would compile and corrupt memory on a GPU. This test reads the kernel
//! signatures from the .cu sources and every `self.launch("name", ..., &args)` of
//! src/backend/cuda/mod.rs, and checks each argument list against its kernel: the same count,
//! and pointer / int / float / double / 64-bit integer in the same places. It also checks that
//! every kernel is launched somewhere or is on the list of those that are not.

mod common;

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ptr,
    I32,
    F32,
    F64,
    U64,
}

/// Splits on commas outside brackets and parentheses.
fn top_level(s: &str) -> Vec<String> {
    let (mut out, mut depth, mut cur) = (Vec::new(), 0i32, String::new());
    for c in s.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn kernel_signatures() -> HashMap<String, Vec<Kind>> {
    let src = latent::backend::kernel_source();
    let mut out = HashMap::new();
    let key = "__global__ void ";
    let mut at = 0;
    while let Some(p) = src[at..].find(key) {
        let start = at + p + key.len();
        let open = start + src[start..].find('(').unwrap();
        let close = open + src[open..].find(')').unwrap();
        let name = src[start..open].trim().to_string();
        let kinds = top_level(&src[open + 1..close])
            .iter()
            .map(|p| {
                // An unused parameter's name stays as a comment: `float /* b1 */`.
                let p = match (p.find("/*"), p.find("*/")) {
                    (Some(a), Some(b)) if b > a => format!("{}{}", &p[..a], &p[b + 2..]),
                    _ => p.to_string(),
                };
                if p.contains('*') {
                    Kind::Ptr
                } else if p.contains("unsigned long long") {
                    Kind::U64
                } else if p.contains("double") {
                    Kind::F64
                } else if p.contains("float") {
                    Kind::F32
                } else if p.contains("int") {
                    Kind::I32
                } else {
                    panic!("kernel {name}: parameter {p:?} of an unknown type")
                }
            })
            .collect();
        out.insert(name, kinds);
        at = close;
    }
    out
}

/// The kind of one Rust argument expression, resolving `let name = Ptr(...)` bindings in `arm`.
fn arg_kind(e: &str, arm: &str) -> Kind {
    let e = e.trim();
    for (prefix, k) in [
        ("Ptr(", Kind::Ptr),
        ("self.p(", Kind::Ptr),
        ("i(", Kind::I32),
        ("I32(", Kind::I32),
        ("F32(", Kind::F32),
        ("F64(", Kind::F64),
        ("U64(", Kind::U64),
    ] {
        if e.starts_with(prefix) {
            return k;
        }
    }
    if e.chars().all(|c| c.is_alphanumeric() || c == '_') {
        let bind = format!("let {e} = ");
        let at = arm.rfind(&bind).unwrap_or_else(|| panic!("argument {e}: no binding in\n{arm}"));
        return arg_kind(&arm[at + bind.len()..], arm);
    }
    panic!("argument {e:?}: unknown form")
}

#[test]
fn every_launch_passes_its_kernels_arguments() {
    let sigs = kernel_signatures();
    let src = std::fs::read_to_string(common::root().join("src/backend/cuda/mod.rs")).unwrap();
    let mut launched = std::collections::BTreeSet::new();
    let mut checked = 0;
    let mut at = 0;
    while let Some(p) = src[at..].find("self.launch(\"") {
        let call = at + p;
        let name_start = call + "self.launch(\"".len();
        let name = &src[name_start..name_start + src[name_start..].find('"').unwrap()];
        at = name_start;
        if name.is_empty() {
            continue;
        }
        // The argument list: the nearest `let args = [` before the call, within its match arm.
        let arm_start = src[..call].rfind("Op::").unwrap();
        let arm = &src[arm_start..call];
        let list_at = arm.rfind("let args =").unwrap_or_else(|| panic!("launch of {name}: no `let args =` before it"));
        let body = &arm[list_at..];
        let body = &body[body.find('[').unwrap() + 1..];
        let body = &body[..body.find("];").unwrap()];
        // Comments out first (they may hold commas).
        let body: String = body.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
        let kinds: Vec<Kind> = top_level(&body).iter().map(|e| arg_kind(e, arm)).collect();
        let want = sigs.get(name).unwrap_or_else(|| panic!("launch of {name}: no such kernel in the .cu sources"));
        assert_eq!(&kinds, want, "kernel {name}: arguments passed {kinds:?}, parameters {want:?}");
        launched.insert(name.to_string());
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} launches found");
    // Kernels that are not launched by Backend::run.
    let unlaunched: Vec<&String> = sigs.keys().filter(|k| !launched.contains(*k)).collect();
    let allowed = ["lat_sum"]; // lat_sum_scaled does its work with a scale of 1
    for k in &unlaunched {
        assert!(allowed.contains(&k.as_str()), "kernel {k} is compiled but never launched");
    }
    println!("{checked} launches of {} kernels checked against their signatures", launched.len());
}
