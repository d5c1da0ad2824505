//! The Julia bindings (julia/Latent.jl) cannot run here (no Julia): tests/c/julia_mirror.c calls
//! the library through the exact declarations Latent.jl's `ccall`s use, in the order of
//! examples/quickstart.jl, with column-major double data. This test checks that the mirror's
//! declarations and structs match Latent.jl's (parsed from its source), that Latent.jl's structs
//! have include/latent.h's layout (offsets and sizes, compiled against the header), and runs the
//! mirror.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;

fn latent_jl() -> String {
    std::fs::read_to_string(root().join("julia/Latent.jl/src/Latent.jl")).unwrap()
}

fn mirror_c() -> String {
    std::fs::read_to_string(root().join("tests/c/julia_mirror.c")).unwrap()
}

/// Julia struct name -> (the mirror's C struct, latent.h's typedef).
const STRUCTS: &[(&str, &str, &str)] = &[
    ("NetworkParams", "struct jl_network_params", "latent_network_params"),
    ("TrainParams", "struct jl_train_params", "latent_train_params"),
    ("EpochRecord", "struct jl_epoch_record", "latent_epoch_record"),
    ("Progress", "struct jl_progress", "latent_progress"),
];

/// The C type a Julia ccall type stands for, `const` left out.
fn c_type(jl: &str) -> String {
    let jl = jl.trim();
    if let Some(inner) = jl.strip_prefix("Ptr{").and_then(|s| s.strip_suffix('}')) {
        return format!("{}*", c_type(inner));
    }
    let t = match jl {
        "Cvoid" => "void",
        "Cint" | "Int32" => "int32_t",
        "Cuint" | "UInt32" => "uint32_t",
        "UInt64" => "uint64_t",
        "Csize_t" => "size_t",
        "Float32" | "Cfloat" => "float",
        "Float64" | "Cdouble" => "double",
        "Cstring" => "char*",
        other => match STRUCTS.iter().find(|s| s.0 == other) {
            Some(s) => s.1,
            None => panic!("Latent.jl uses a type this test does not map: {other}"),
        },
    };
    t.to_string()
}

/// A C type with `const` and whitespace removed, for comparison.
fn norm(c: &str) -> String {
    c.split_whitespace().filter(|w| *w != "const").collect::<Vec<_>>().join(" ").replace(' ', "")
}

/// Splits at commas outside brackets.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for ch in s.chars() {
        match ch {
            '{' | '(' => depth += 1,
            '}' | ')' => depth -= 1,
            _ => {}
        }
        if ch == ',' && depth == 0 {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(ch);
        }
    }
    out.push(cur);
    out.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

type Sig = (String, Vec<String>);

/// name -> (return type, argument types), as C types, of every ccall in Latent.jl.
fn julia_signatures() -> BTreeMap<String, Sig> {
    let src = latent_jl();
    let mut sigs = BTreeMap::new();
    for part in src.split("ccall((:").skip(1) {
        let name = part.split(',').next().unwrap().trim().to_string();
        let rest = part.split_once("),").expect("ccall((:name, LIB), ...").1;
        let (ret, rest) = rest.split_once(", (").expect("ccall return type then an argument tuple");
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .unwrap()
            .0;
        let args = split_top(&rest[..end]).iter().map(|a| norm(&c_type(a))).collect();
        let old = sigs.insert(name.clone(), (norm(&c_type(ret)), args));
        assert!(old.is_none(), "Latent.jl calls {name} from two ccalls: keep one wrapper per function");
    }
    sigs
}

/// Strips a trailing identifier (a parameter's or function's name) from a C declarator.
fn strip_name(decl: &str) -> (String, String) {
    let decl = decl.trim();
    let cut = decl.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_').len();
    (decl[..cut].to_string(), decl[cut..].to_string())
}

fn block<'a>(src: &'a str, what: &str) -> &'a str {
    let begin = format!("/* BEGIN JULIA {what} */");
    let end = format!("/* END JULIA {what} */");
    let start = src.find(&begin).unwrap_or_else(|| panic!("no {begin}")) + begin.len();
    &src[start..src.find(&end).unwrap_or_else(|| panic!("no {end}"))]
}

/// name -> (return type, argument types) of the mirror's declarations.
fn mirror_signatures() -> BTreeMap<String, Sig> {
    let src = mirror_c();
    let mut sigs = BTreeMap::new();
    for decl in block(&src, "SIGNATURES").split(';').map(str::trim).filter(|d| !d.is_empty()) {
        let (head, args) = decl.split_once('(').unwrap();
        let args = args.strip_suffix(')').unwrap();
        let (ret, name) = strip_name(head);
        let args: Vec<String> =
            if args.trim() == "void" { Vec::new() } else { args.split(',').map(|a| norm(&strip_name(a).0)).collect() };
        sigs.insert(name, (norm(&ret), args));
    }
    sigs
}

/// Fields (name, C type) of Latent.jl's struct `name`.
fn julia_fields(name: &str) -> Vec<(String, String)> {
    let src = latent_jl();
    let start = src.find(&format!("\nstruct {name}\n")).unwrap_or_else(|| panic!("no struct {name} in Latent.jl"));
    let body = &src[start + name.len() + 9..];
    let body = &body[..body.find("\nend").unwrap()];
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (f, t) = l.split_once("::").unwrap_or_else(|| panic!("field line {l:?}"));
            (f.to_string(), norm(&c_type(t)))
        })
        .collect()
}

/// Fields (name, C type) of the mirror's struct `cname` ("struct jl_...").
fn mirror_fields(cname: &str) -> Vec<(String, String)> {
    let src = mirror_c();
    let structs = block(&src, "STRUCTS");
    let start = structs.find(&format!("{cname} {{")).unwrap_or_else(|| panic!("no {cname} in the mirror"));
    let body = &structs[start + cname.len() + 2..];
    let body = &body[..body.find("};").unwrap()];
    body.split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let (t, f) = strip_name(d);
            (f, norm(&t))
        })
        .collect()
}

#[test]
fn mirror_declares_what_latent_jl_calls() {
    let jl = julia_signatures();
    let c = mirror_signatures();
    assert!(jl.len() >= 20, "only {} ccalls found in Latent.jl", jl.len());
    for (name, sig) in &jl {
        let m = c.get(name).unwrap_or_else(|| panic!("tests/c/julia_mirror.c does not declare {name}"));
        assert_eq!(m, sig, "{name}: the mirror declares {m:?}, Latent.jl calls it as {sig:?}");
    }
    for name in c.keys() {
        assert!(jl.contains_key(name), "the mirror declares {name}, which Latent.jl does not call");
    }
    for (jname, cname, _) in STRUCTS {
        assert_eq!(julia_fields(jname), mirror_fields(cname), "{jname} and the mirror's {cname} differ");
    }
}

#[test]
fn latent_jl_structs_have_the_header_layout() {
    // A C program holding Latent.jl's structs as it declares them, comparing each field's
    // offset and size, and each struct's size, with latent.h's.
    let mut src = String::from("#include <stddef.h>\n#include <stdio.h>\n#include \"latent.h\"\n");
    for (jname, cname, _) in STRUCTS {
        src += &format!("{cname} {{\n");
        for (f, t) in julia_fields(jname) {
            src += &format!("    {t} {f};\n");
        }
        src += "};\n";
    }
    src += "int main(void) {\n    int bad = 0;\n";
    for (jname, cname, real) in STRUCTS {
        src += &format!(
            "    if (sizeof({cname}) != sizeof({real})) {{ printf(\"sizeof {jname}: %zu, {real}: %zu\\n\", sizeof({cname}), sizeof({real})); bad = 1; }}\n"
        );
        for (f, _) in julia_fields(jname) {
            src += &format!(
                "    if (offsetof({cname}, {f}) != offsetof({real}, {f}) || sizeof((({cname} *)0)->{f}) != sizeof((({real} *)0)->{f})) {{ printf(\"{jname}.{f}: offset %zu, {real}: %zu\\n\", offsetof({cname}, {f}), offsetof({real}, {f})); bad = 1; }}\n"
            );
        }
    }
    src += "    if (!bad) printf(\"layouts match\\n\");\n    return bad;\n}\n";
    let dir = scratch("julia_layout");
    let c = dir.join("layout.c");
    std::fs::write(&c, src).unwrap();
    let exe = dir.join("layout");
    compile_c(&[c], &exe, &[]);
    let (code, out, err) = run(&mut Command::new(&exe));
    assert_eq!(code, 0, "Latent.jl's structs differ from latent.h's:\n{out}{err}");
    assert!(out.contains("layouts match"));
}

#[test]
fn julia_mirror_runs_the_quickstart() {
    let dir = scratch("julia_mirror");
    let exe = dir.join("julia_mirror");
    compile_c(&[root().join("tests/c/julia_mirror.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).arg(dir.join("q.latent")));
    assert_eq!(code, 0, "julia_mirror failed:\n{out}\n{err}");
    assert!(out.contains("reloaded model gives identical codes: true"), "{out}");
    assert!(out.contains("LATENT_STATUS_SHAPE_MISMATCH"), "{out}");
    assert!(out.contains("progress stopped the fit: status 9, 2 epochs, 2 calls"), "{out}");
    assert!(out.contains("settings: wait policy, precision and inference cache set and restored"), "{out}");
    assert!(out.contains("julia mirror OK"), "{out}");
}
