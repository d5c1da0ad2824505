//! Every fenced code block of the documentation is compiled or run.
//!
//! The files: every Markdown file of the repository outside `target/` and hidden folders
//! (README.md, ARCHITECTURE.md, docs/*.md, python/README.md, R/README.md, ...), found anew on
//! each run, so a new page is covered without changing this file.
//!
//! A block's info string is its language, then optional markers: ```` ```c fragment ````.
//!
//! | language | what is done |
//! |---|---|
//! | `c` | with a `main`: compiled (`-std=c99 -Wall -Wextra -pedantic -Werror`) against `include/latent.h`, linked with the library under test, and run in a scratch folder, where it must exit 0. Without a `main`: compiled only (`-c`). |
//! | `c fragment` | statements, compiled and linked inside a function whose parameters are the names a fragment may use undeclared (`FRAGMENT_CONTEXT` below: `net`, `vae`, `tr`, `data`, `train`, `test`, `mc`, `x`, `recon`, `codes`, `rows`, `cols`, `capacity`, `argc`, `argv`), with `c_examples/common.h` (`CHECK`) included. Not run. |
//! | `cpp`, `c++` | as `c`, with `-std=c++17` and `include/latent.hpp`; `cpp fragment` likewise. |
//! | `python` | run with `python3` in a scratch folder, the checkout's package on `PYTHONPATH` and `LATENT_LIBRARY` naming the library under test; must exit 0. A block that imports a module that is not installed (ONNX Runtime, say) is skipped, naming it. |
//! | `sh`, `bash` | every command is checked against the allowed set (`check_command`): `make` targets must exist in their Makefile, `cargo --test/--bench/--features` names must exist, paths to scripts, tests and sources must exist. `sh run` blocks are also run with `bash -eu -o pipefail` in a scratch folder holding `include/` and `target/release/` (links to the checkout's header and the library under test), a small `app.c` and `app.cpp`, and `$PREFIX` (the library installed there by `make install`, with `PKG_CONFIG_PATH` and `CMAKE_PREFIX_PATH` pointing at it). |
//! | `cmake` | appended to `cmake_minimum_required` and `project()` in a `CMakeLists.txt` beside `app.cpp`, configured against `$PREFIX` above and built; the program it makes is run. |
//! | `r` | run with `Rscript`, the R package built and installed once into a scratch library (`R CMD build`, `R CMD INSTALL`; `R_LIBS` names it), so `library(latent)` loads the installed package. |
//! | `julia` | every function it calls must be exported by `julia/Latent.jl` (or be one of a few Base names); run with `julia` when it is installed (not in CI). |
//! | `text` | not code: counted, nothing to check. |
//!
//! Any other language, or none, fails: give output and formulas ```` ```text ````.
//!
//! Markers: `fragment` (above); `norun` (compile only: a `c`/`cpp` program, or `python` checked
//! with `py_compile`); `run` (`sh`, above); `mpi` (a `c` block that includes `<mpi.h>`, compiled
//! with `mpicc`); `data=NAME` (the block needs the data set NAME). A block also needs every data
//! set it names in a string literal (`"mnist"`, `"fashion-mnist"`, `"digits/..."`, `"higgs/..."`).
//! Needed data is found through the data resolver and handed on as `LATENT_DATA_DIR`; a block
//! whose data or tool is missing is reported `SKIPPED`, which `LATENT_REQUIRE_DATA=1` (CI) turns
//! into a failure. Every scratch folder also holds `model.latent`, a small trained autoencoder
//! (12 -> 10 -> [4]), for blocks that load a model.
//!
//! Besides the blocks: relative links between the files must resolve (files and `#anchors`),
//! and README.md must stay short.
//!
//! `cargo test --release --test docs -- --nocapture` prints one line per block.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;

/// The longest a block may run.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// README.md's limit: the guide lives in docs/.
const README_MAX_BYTES: usize = 15_000;

/// Pages other branches are adding: a link to one of them may dangle until it lands.
const PENDING_PAGES: &[&str] = &[
    "docs/semantic_hashing.md",
    "docs/rbm.md",
    "docs/manifold.md",
    "docs/psd_recirculation.md",
    "docs/losses_and_vae_errors.md",
    "docs/transfer_and_outcomes.md",
];

/// The data sets a block can need, by the name the resolver knows.
const DATASETS: &[&str] = &["mnist", "fashion-mnist", "digits", "higgs"];

/// The parameters of the function a C or C++ fragment is compiled in.
const FRAGMENT_CONTEXT: &str = "int argc, char **argv, latent_network *net, latent_vae *vae, latent_trainer *tr, \
     latent_dataset *data, latent_dataset *train, latent_dataset *test, latent_montecarlo *mc, const float *x, \
     float *recon, float *codes, size_t rows, size_t cols, size_t capacity";

#[derive(Clone, Debug)]
struct Block {
    /// The file, relative to the checkout.
    file: String,
    /// The line of the opening fence (1-based).
    line: usize,
    lang: String,
    markers: Vec<String>,
    text: String,
}

impl Block {
    fn empty() -> Block {
        Block { file: String::new(), line: 0, lang: String::new(), markers: Vec::new(), text: String::new() }
    }

    fn has(&self, marker: &str) -> bool {
        self.markers.iter().any(|m| m == marker)
    }

    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// A scratch folder of its own, named after the file and line.
    fn scratch(&self) -> PathBuf {
        let name = format!("docs/{}-{}", self.file.replace(['/', '.'], "_"), self.line);
        let dir = scratch(&name);
        std::fs::copy(fixture_model(), dir.join("model.latent")).unwrap();
        dir
    }

    /// The data sets it needs: `data=NAME` markers and names in string literals.
    fn datasets(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> =
            self.markers.iter().filter_map(|m| m.strip_prefix("data=")).map(str::to_string).collect();
        for quote in ['"', '\''] {
            for piece in self.text.split(quote).skip(1).step_by(2) {
                let first = piece.split('/').next().unwrap_or("");
                if DATASETS.contains(&first) && (piece == first || piece.contains('/')) {
                    out.insert(first.to_string());
                }
            }
        }
        out
    }
}

/// What became of one block.
enum Outcome {
    Ok(String),
    Skipped(String),
    Failed(String),
}

/// Every Markdown file of the checkout, relative paths, sorted.
fn markdown_files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if dir == root && (name == "target" || name == "gpu-bundle") {
                    continue;
                }
                walk(&p, root, out);
            } else if ft.is_file() && name.ends_with(".md") {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &root(), &mut out);
    out.sort();
    out
}

/// The fenced blocks of one Markdown text (``` fences, possibly indented, as in lists).
fn parse_blocks(file: &str, md: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    // The block being read, with the indentation of its opening fence.
    let mut open: Option<(usize, Block)> = None;
    for (i, line) in md.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let mut words = info.split_whitespace().map(str::to_string);
                    let lang = words.next().unwrap_or_default().to_lowercase();
                    let block = Block {
                        file: file.to_string(),
                        line: i + 1,
                        lang,
                        markers: words.collect(),
                        text: String::new(),
                    };
                    open = Some((line.len() - trimmed.len(), block));
                }
            }
            Some((indent, block)) => {
                if trimmed.trim_end() == "```" {
                    blocks.push(std::mem::replace(block, Block::empty()));
                    open = None;
                } else {
                    let keep = match (line.get(..*indent), line.get(*indent..)) {
                        (Some(head), Some(rest)) if head.trim().is_empty() => rest,
                        _ => trimmed,
                    };
                    block.text.push_str(keep);
                    block.text.push('\n');
                }
            }
        }
    }
    if let Some((_, block)) = open {
        panic!("{}: a code fence is never closed", block.at());
    }
    blocks
}

fn all_blocks() -> &'static [Block] {
    static BLOCKS: OnceLock<Vec<Block>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        markdown_files()
            .iter()
            .flat_map(|f| parse_blocks(f, &std::fs::read_to_string(root().join(f)).unwrap()))
            .collect()
    })
}

fn blocks_of(langs: &[&str]) -> Vec<&'static Block> {
    all_blocks().iter().filter(|b| langs.contains(&b.lang.as_str())).collect()
}

/// A small trained autoencoder saved once, copied into every block's scratch folder.
fn fixture_model() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        use latent::{Activation, Network, NetworkSpec, OptimizerConfig, OptimizerKind, TrainConfig, Trainer};
        let dir = scratch("docs/fixtures");
        let mut rng = latent::rng::Rng::new(9, 2);
        let x = random_matrix(200, 12, 0.0, 1.0, &mut rng);
        let mut net = Network::new(NetworkSpec::new(12, &[10], Activation::Relu, 4)).unwrap();
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 50,
            optimizer: OptimizerConfig { kind: OptimizerKind::Adam, ..Default::default() },
            seed: 3,
            threads: 1,
            ..Default::default()
        };
        Trainer::new(cfg).unwrap().fit(&mut net, &x, None, None).unwrap();
        let path = dir.join("model.latent");
        latent::model_file::save(&net, &path).unwrap();
        path
    })
}

fn library_file() -> PathBuf {
    lib_dir().join(if cfg!(target_os = "macos") { "liblatent.dylib" } else { "liblatent.so" })
}

/// Runs a command with a time limit: (exit code, stdout, stderr); -1 for a signal or the limit.
fn run_limited(cmd: &mut Command, limit: Duration) -> (i32, String, String) {
    let mut child = cmd
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            timed_out = true;
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, mut err) = (out.join().unwrap(), err.join().unwrap());
    if timed_out {
        let _ = write!(err, "\n(stopped after {} s)", limit.as_secs());
    }
    (if timed_out { -1 } else { status.code().unwrap_or(-1) }, out, err)
}

/// The last lines of a program's output, for a failure message.
fn tail(out: &str, err: &str) -> String {
    let all = format!("{out}{err}");
    let lines: Vec<&str> = all.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Finds the data sets a block needs: Ok(LATENT_DATA_DIR to hand on, or None) or Err(skip).
fn data_for(b: &Block) -> Result<Option<String>, String> {
    let mut roots: Vec<String> = Vec::new();
    for name in b.datasets() {
        match data_dir(&name) {
            Some(d) => {
                let parent = d.parent().unwrap().display().to_string();
                if !roots.contains(&parent) {
                    roots.push(parent);
                }
            }
            None => return Err(format!("data set {name} not found")),
        }
    }
    Ok(if roots.is_empty() { None } else { Some(roots.join(":")) })
}

/// The environment every block runs in.
fn block_env(cmd: &mut Command, data: &Option<String>) {
    if let Some(d) = data {
        cmd.env("LATENT_DATA_DIR", d);
    }
    cmd.env("LATENT_LIBRARY", library_file())
        .env("PYTHONPATH", root().join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
}

/// Runs blocks one after the other, prints a line for each, and fails at the end listing
/// every failed block.
fn check_all(what: &str, blocks: &[&Block], mut f: impl FnMut(&Block) -> Outcome) {
    let mut failures = Vec::new();
    let (mut ok, mut skipped) = (0, 0);
    for &b in blocks {
        let t = Instant::now();
        let outcome = f(b);
        let secs = t.elapsed().as_secs_f64();
        match outcome {
            Outcome::Ok(how) => {
                ok += 1;
                println!("{} ```{}: ok, {how} ({secs:.1} s)", b.at(), b.lang);
            }
            Outcome::Skipped(why) => {
                skipped += 1;
                println!("{} ```{}: not run: {why}", b.at(), b.lang);
            }
            Outcome::Failed(why) => {
                println!("{} ```{}: FAILED ({secs:.1} s)", b.at(), b.lang);
                failures.push(format!("{} ```{} {}: {why}", b.at(), b.lang, b.markers.join(" ")));
            }
        }
    }
    println!("{what}: {} blocks, {ok} ok, {skipped} not run, {} failed", blocks.len(), failures.len());
    assert!(failures.is_empty(), "{} {what} failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Reports a missing tool or data set: a skip, or a failure under LATENT_REQUIRE_DATA=1.
fn missing(what: &str, how: &str) -> Outcome {
    skip(what, how);
    Outcome::Skipped(format!("{what} missing"))
}

// ---------------------------------------------------------------------------------------------
// C and C++

fn has_main(text: &str) -> bool {
    let t: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    t.contains("int main(") || t.contains("int main (")
}

/// The source file for a C or C++ block: a `#line` directive maps diagnostics to the Markdown
/// file; a fragment goes inside the context function.
fn c_source(b: &Block, cpp: bool) -> (String, bool) {
    let at = format!("#line {} \"{}\"\n", b.line + 1, b.file);
    if b.has("fragment") {
        let mut s = String::new();
        if cpp {
            s.push_str("#include <cstdio>\n#include <cstdlib>\n#include <vector>\n#include \"latent.hpp\"\n");
        }
        if b.has("mpi") {
            s.push_str("#include <mpi.h>\n");
        }
        s.push_str("#include \"common.h\"\n");
        let _ = write!(
            s,
            "void latent_doc_fragment({FRAGMENT_CONTEXT});\nvoid latent_doc_fragment({FRAGMENT_CONTEXT}) {{\n{at}{}}}\n\
             int main(void) {{ return 0; }}\n",
            b.text
        );
        (s, true)
    } else {
        (format!("{at}{}", b.text), has_main(&b.text))
    }
}

fn compile(b: &Block, dir: &Path, cpp: bool) -> Result<Option<PathBuf>, String> {
    let (source, link) = c_source(b, cpp);
    let src = dir.join(if cpp { "block.cpp" } else { "block.c" });
    std::fs::write(&src, source).unwrap();
    let compiler = if b.has("mpi") {
        "mpicc"
    } else if cpp {
        "c++"
    } else {
        "cc"
    };
    let mut cmd = Command::new(compiler);
    if cpp {
        cmd.args(["-std=c++17", "-O1", "-Wall", "-Wextra", "-pedantic", "-Werror"]);
    } else {
        cmd.args(CFLAGS);
    }
    if b.has("fragment") {
        cmd.args(["-Wno-unused-parameter", "-Wno-unused-variable", "-Wno-unused-but-set-variable"]);
    }
    cmd.arg(format!("-I{}", root().join("include").display()))
        .arg(format!("-I{}", root().join("c_examples").display()))
        .arg(&src);
    let exe = dir.join("block");
    if link {
        cmd.arg("-o")
            .arg(&exe)
            .arg(format!("-L{}", lib_dir().display()))
            .arg(format!("-Wl,-rpath,{}", lib_dir().display()))
            .args(["-llatent", "-lm", "-lpthread"]);
    } else {
        cmd.arg("-c").arg("-o").arg(dir.join("block.o"));
    }
    let (code, out, err) = run_limited(cmd.current_dir(dir), BLOCK_TIMEOUT);
    if code != 0 {
        return Err(format!("does not compile ({compiler}):\n{}", tail(&out, &err)));
    }
    Ok(if link && !b.has("fragment") { Some(exe) } else { None })
}

fn c_like(b: &Block, cpp: bool) -> Outcome {
    let tool = if b.has("mpi") {
        "mpicc"
    } else if cpp {
        "c++"
    } else {
        "cc"
    };
    if !have(tool) {
        return missing(tool, "install a C/C++ compiler (and OpenMPI for mpi blocks)");
    }
    let data = match data_for(b) {
        Ok(d) => d,
        Err(why) => return Outcome::Skipped(why),
    };
    let dir = b.scratch();
    let exe = match compile(b, &dir, cpp) {
        Ok(exe) => exe,
        Err(why) => return Outcome::Failed(why),
    };
    let Some(exe) = exe else {
        let how = if b.has("fragment") { "fragment compiled and linked" } else { "compiled" };
        return Outcome::Ok(how.into());
    };
    if b.has("norun") {
        return Outcome::Ok("compiled and linked (norun)".into());
    }
    let mut cmd = Command::new(&exe);
    block_env(cmd.current_dir(&dir), &data);
    let (code, out, err) = run_limited(&mut cmd, BLOCK_TIMEOUT);
    if code != 0 {
        return Outcome::Failed(format!("the program exited with {code}:\n{}", tail(&out, &err)));
    }
    let first = out.lines().next().unwrap_or("").chars().take(100).collect::<String>();
    Outcome::Ok(format!("compiled and ran: {first}"))
}

#[test]
fn c_blocks_compile_and_run() {
    check_all("C blocks", &blocks_of(&["c"]), |b| c_like(b, false));
}

#[test]
fn cpp_blocks_compile_and_run() {
    check_all("C++ blocks", &blocks_of(&["cpp", "c++"]), |b| c_like(b, true));
}

// ---------------------------------------------------------------------------------------------
// Python

#[test]
fn python_blocks_run() {
    let blocks = blocks_of(&["python"]);
    let python_ok = have("python3")
        && Command::new("python3").args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success());
    check_all("Python blocks", &blocks, |b| {
        if !python_ok {
            return missing("python3 with numpy", "install Python 3 and numpy");
        }
        let data = match data_for(b) {
            Ok(d) => d,
            Err(why) => return Outcome::Skipped(why),
        };
        let dir = b.scratch();
        let script = dir.join("block.py");
        std::fs::write(&script, &b.text).unwrap();
        let mut cmd = Command::new("python3");
        if b.has("norun") {
            cmd.args(["-m", "py_compile"]);
        }
        block_env(cmd.current_dir(&dir).arg(&script), &data);
        let (code, out, err) = run_limited(&mut cmd, BLOCK_TIMEOUT);
        if code != 0 {
            if let Some(module) = missing_module(&err)
                && module != "latent"
                && module != "numpy"
            {
                return missing(&format!("the Python module {module}"), &format!("pip install {module}"));
            }
            return Outcome::Failed(format!("python3 exited with {code}:\n{}", tail(&out, &err)));
        }
        Outcome::Ok(if b.has("norun") { "compiled".into() } else { "ran".into() })
    });
}

/// The module of a `ModuleNotFoundError: No module named 'x'` (its top-level package).
fn missing_module(err: &str) -> Option<String> {
    let rest = err.split("ModuleNotFoundError: No module named '").nth(1)?;
    Some(rest.split(['\'', '.']).next()?.to_string())
}

// ---------------------------------------------------------------------------------------------
// Shell and CMake

/// Splits shell text into commands (at newlines, `;`, `&&`, `||`, `|`), each a list of words
/// with quotes removed; comments dropped; `$(...)` kept whole inside its word.
fn shell_commands(text: &str) -> Vec<Vec<String>> {
    let text = text.replace("\\\n", " ");
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let end_word = |word: &mut String, in_word: &mut bool, words: &mut Vec<String>| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        i += 1;
                    }
                    word.push(chars[i]);
                    i += 1;
                }
            }
            '$' if chars.get(i + 1) == Some(&'(') => {
                in_word = true;
                let mut depth = 0;
                while i < chars.len() {
                    word.push(chars[i]);
                    if chars[i] == '(' {
                        depth += 1;
                    } else if chars[i] == ')' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            ' ' | '\t' => end_word(&mut word, &mut in_word, &mut words),
            '\n' | ';' | '&' | '|' => {
                end_word(&mut word, &mut in_word, &mut words);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
                if c == '&' && chars.get(i + 1) != Some(&'&') {
                    // a background `&`: the same as an end of command here
                }
                if (c == '&' || c == '|') && chars.get(i + 1) == Some(&c) {
                    i += 1;
                }
            }
            '\\' if i + 1 < chars.len() => {
                in_word = true;
                word.push(chars[i + 1]);
                i += 1;
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
        i += 1;
    }
    end_word(&mut word, &mut in_word, &mut words);
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

/// The rule names a Makefile defines (`name:` at the start of a line, not `:=`).
fn make_targets(makefile: &Path) -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(makefile) else { return BTreeSet::new() };
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with(['\t', '#', ' ']) {
            continue;
        }
        if let Some((head, rest)) = line.split_once(':') {
            if rest.starts_with('=') || head.contains('=') {
                continue;
            }
            out.extend(head.split_whitespace().map(str::to_string));
        }
    }
    out
}

/// Checks one command of a shell block against the allowed set; `dir` is the folder it runs
/// in, relative to the checkout (changed by `cd`). Paths are checked only outside `run`
/// blocks' scratch folders (`check_paths`).
fn check_command(words: &[String], dir: &mut PathBuf, check_paths: bool) -> Result<(), String> {
    let mut w: Vec<&str> = words.iter().map(String::as_str).collect();
    while let Some(first) = w.first() {
        let is_assignment = first
            .split_once('=')
            .is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if is_assignment || *first == "sudo" {
            w.remove(0);
        } else {
            break;
        }
    }
    let Some(&cmd) = w.first() else { return Ok(()) };
    let args = &w[1..];
    let exists = |p: &str, dir: &Path| -> Result<(), String> {
        if !check_paths || p.starts_with('$') || p.contains("$(") || p.contains('*') {
            return Ok(());
        }
        let path = root().join(dir).join(p);
        if path.exists() { Ok(()) } else { Err(format!("`{}`: {p} does not exist", words.join(" "))) }
    };
    match cmd {
        "make" => {
            let mut mdir = dir.clone();
            let mut targets = Vec::new();
            let mut k = 0;
            while k < args.len() {
                if args[k] == "-C" && k + 1 < args.len() {
                    mdir = mdir.join(args[k + 1]);
                    k += 1;
                } else if !args[k].starts_with('-') && !args[k].contains('=') {
                    targets.push(args[k]);
                }
                k += 1;
            }
            let makefile = root().join(&mdir).join("Makefile");
            let known = make_targets(&makefile);
            if known.is_empty() {
                return Err(format!("`{}`: no Makefile in {}", words.join(" "), mdir.display()));
            }
            for t in targets {
                if !known.contains(t) {
                    return Err(format!("`{}`: {} has no target {t}", words.join(" "), makefile.display()));
                }
            }
            Ok(())
        }
        "cargo" => {
            const SUBCOMMANDS: &[&str] = &["build", "test", "bench", "check", "clippy", "fmt", "run", "doc"];
            let sub = args.first().copied().unwrap_or("");
            if !SUBCOMMANDS.contains(&sub) {
                return Err(format!("`{}`: cargo {sub} is not among {SUBCOMMANDS:?}", words.join(" ")));
            }
            let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
            let mut k = 1;
            while k < args.len() && args[k] != "--" {
                let value = args.get(k + 1).copied().unwrap_or("");
                match args[k] {
                    "--test" if !root().join("tests").join(format!("{value}.rs")).exists() => {
                        return Err(format!("`{}`: there is no tests/{value}.rs", words.join(" ")));
                    }
                    "--bench" if !root().join("benches").join(format!("{value}.rs")).exists() => {
                        return Err(format!("`{}`: there is no benches/{value}.rs", words.join(" ")));
                    }
                    "--features" => {
                        for f in value.split([',', ' ']).filter(|f| !f.is_empty()) {
                            if !manifest.contains(&format!("\n{f} = [")) {
                                return Err(format!("`{}`: Cargo.toml has no feature {f}", words.join(" ")));
                            }
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            Ok(())
        }
        "cc" | "gcc" | "clang" | "c++" | "g++" | "clang++" | "mpicc" | "mpirun" | "mpiexec" | "pkg-config"
        | "cmake" | "ctest" | "export" | "mkdir" | "cp" | "ln" | "ls" | "cat" | "echo" | "sha256sum" | "gunzip"
        | "apt-get" | "apt" | "valgrind" | "gdb" | "sed" => Ok(()),
        "pip" | "pip3" => {
            for a in args.iter().filter(|a| a.starts_with("./")) {
                exists(a, dir)?;
            }
            Ok(())
        }
        "python3" | "python" => match args {
            ["-m", "pytest", rest @ ..] => {
                rest.iter().filter(|a| !a.starts_with('-')).try_for_each(|a| exists(a.split("::").next().unwrap(), dir))
            }
            ["-m", "pip", ..] | ["-c", ..] | [] => Ok(()),
            ["-m", m, ..] => Err(format!("`{}`: python3 -m {m} is not in the allowed set", words.join(" "))),
            [script, ..] => exists(script, dir),
        },
        "R" => match args {
            ["CMD", "INSTALL", rest @ ..] => {
                rest.iter().filter(|a| !a.starts_with('-')).try_for_each(|a| exists(a, dir))
            }
            ["CMD", "SHLIB", rest @ ..] => rest.iter().filter(|a| a.ends_with(".c")).try_for_each(|a| exists(a, dir)),
            ["CMD", "build" | "check", ..] => Ok(()),
            _ => Err(format!("`{}`: only R CMD INSTALL, SHLIB, build and check are allowed", words.join(" "))),
        },
        "Rscript" => args.iter().filter(|a| a.ends_with(".R")).try_for_each(|a| exists(a, dir)),
        "julia" => args.iter().try_for_each(|a| match a.strip_prefix("--project=") {
            Some(project) => exists(project, dir),
            None if a.ends_with(".jl") && !a.starts_with('-') => exists(a, dir),
            None => Ok(()),
        }),
        "cd" => {
            let to = args.first().copied().unwrap_or("");
            exists(to, dir)?;
            *dir = dir.join(to);
            Ok(())
        }
        c if c.starts_with("./") => Ok(()), // a program the block or its reader just built
        c if c.contains('/') => exists(c, dir),
        c => Err(format!(
            "`{}`: the command {c} is not in the allowed set (tests/docs.rs, check_command)",
            words.join(" ")
        )),
    }
}

/// `make install` of the library under test into a scratch prefix, once.
fn installed_prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let prefix = scratch("docs/prefix");
        let (code, out, err) = run_limited(
            Command::new("make")
                .current_dir(root())
                .arg("install")
                .arg(format!("PREFIX={}", prefix.display()))
                .arg(format!("LIB_BUILD_DIR={}", lib_dir().display())),
            BLOCK_TIMEOUT,
        );
        assert_eq!(code, 0, "make install into {} failed:\n{}", prefix.display(), tail(&out, &err));
        prefix
    })
}

/// A scratch folder for `sh run` and `cmake` blocks: include/ and target/release/ linked to the
/// checkout's header and the library under test, app.c and app.cpp.
fn shell_scratch(b: &Block) -> PathBuf {
    let dir = b.scratch();
    std::os::unix::fs::symlink(root().join("include"), dir.join("include")).unwrap();
    std::fs::create_dir_all(dir.join("target")).unwrap();
    std::os::unix::fs::symlink(lib_dir(), dir.join("target/release")).unwrap();
    std::fs::write(
        dir.join("app.c"),
        "#include <stdio.h>\n#include <latent.h>\n\nint main(void) {\n    printf(\"latent %s\\n\", latent_version());\n    return 0;\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("app.cpp"),
        "#include <cstdio>\n#include <latent.hpp>\n\nint main() {\n    std::printf(\"latent %s\\n\", latent_version());\n    return 0;\n}\n",
    )
    .unwrap();
    dir
}

fn prefix_env(cmd: &mut Command, prefix: &Path) {
    cmd.env("PREFIX", prefix).env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")).env("CMAKE_PREFIX_PATH", prefix);
}

fn shell_block(b: &Block) -> Outcome {
    let mut dir = PathBuf::new();
    for words in shell_commands(&b.text) {
        if let Err(why) = check_command(&words, &mut dir, !b.has("run")) {
            return Outcome::Failed(why);
        }
    }
    if !b.has("run") {
        return Outcome::Ok("commands checked".into());
    }
    let tools: Vec<&str> = ["cc", "c++", "pkg-config", "make"].into_iter().filter(|t| !have(t)).collect();
    if !tools.is_empty() {
        return missing(&tools.join(", "), "install gcc, g++, make and pkg-config");
    }
    let data = match data_for(b) {
        Ok(d) => d,
        Err(why) => return Outcome::Skipped(why),
    };
    let prefix = installed_prefix();
    let dir = shell_scratch(b);
    let mut cmd = Command::new("bash");
    cmd.current_dir(&dir).args(["-eu", "-o", "pipefail", "-c", &b.text]);
    block_env(&mut cmd, &data);
    prefix_env(&mut cmd, prefix);
    let (code, out, err) = run_limited(&mut cmd, BLOCK_TIMEOUT);
    if code != 0 {
        return Outcome::Failed(format!("bash exited with {code}:\n{}", tail(&out, &err)));
    }
    Outcome::Ok("commands checked and run".into())
}

fn cmake_block(b: &Block) -> Outcome {
    for tool in ["cmake", "c++", "make"] {
        if !have(tool) {
            return missing(tool, "install cmake, g++ and make");
        }
    }
    let prefix = installed_prefix();
    let dir = shell_scratch(b);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(dir.join("app.cpp"), src.join("app.cpp")).unwrap();
    std::fs::copy(dir.join("app.c"), src.join("app.c")).unwrap();
    std::fs::write(
        src.join("CMakeLists.txt"),
        format!("cmake_minimum_required(VERSION 3.16)\nproject(latent_doc_block C CXX)\n{}", b.text),
    )
    .unwrap();
    let build = dir.join("build");
    let steps: [Vec<String>; 2] = [
        vec![
            "-S".into(),
            src.display().to_string(),
            "-B".into(),
            build.display().to_string(),
            format!("-DCMAKE_PREFIX_PATH={}", prefix.display()),
        ],
        vec!["--build".into(), build.display().to_string()],
    ];
    for args in steps {
        let (code, out, err) = run_limited(Command::new("cmake").current_dir(&dir).args(&args), BLOCK_TIMEOUT);
        if code != 0 {
            return Outcome::Failed(format!("cmake {} failed:\n{}", args.join(" "), tail(&out, &err)));
        }
    }
    let exe = build.join("app");
    if exe.exists() {
        let (code, out, err) = run_limited(Command::new(&exe).current_dir(&dir), BLOCK_TIMEOUT);
        if code != 0 {
            return Outcome::Failed(format!("the program CMake built exited with {code}:\n{}", tail(&out, &err)));
        }
        return Outcome::Ok("configured, built and ran".into());
    }
    Outcome::Ok("configured and built".into())
}

#[test]
fn shell_and_cmake_blocks_are_allowed_commands_and_run_when_marked() {
    let blocks = blocks_of(&["sh", "bash", "cmake"]);
    check_all("shell and CMake blocks", &blocks, |b| if b.lang == "cmake" { cmake_block(b) } else { shell_block(b) });
}

// ---------------------------------------------------------------------------------------------
// R and Julia

/// R/latent built and installed into a scratch library (R CMD build, R CMD INSTALL), once:
/// the blocks load it with `library(latent)` as users do.
fn r_library() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| r_package::install(&scratch("docs/r_package")))
}

#[test]
fn r_blocks_run() {
    let blocks = blocks_of(&["r"]);
    check_all("R blocks", &blocks, |b| {
        if !have("Rscript") || !have("R") {
            return missing("Rscript", "install R (Debian: apt-get install r-base-core)");
        }
        let data = match data_for(b) {
            Ok(d) => d,
            Err(why) => return Outcome::Skipped(why),
        };
        let lib = r_library();
        let dir = b.scratch();
        let script = dir.join("block.R");
        std::fs::write(&script, &b.text).unwrap();
        let mut cmd = Command::new("Rscript");
        cmd.current_dir(&dir).arg("--vanilla").arg(&script).env("R_LIBS", lib);
        block_env(&mut cmd, &data);
        let (code, out, err) = run_limited(&mut cmd, BLOCK_TIMEOUT);
        if code != 0 {
            return Outcome::Failed(format!("Rscript exited with {code}:\n{}", tail(&out, &err)));
        }
        Outcome::Ok("ran".into())
    });
}

/// The names julia/Latent.jl exports.
fn julia_exports() -> BTreeSet<String> {
    let src = std::fs::read_to_string(root().join("julia/Latent.jl/src/Latent.jl")).unwrap();
    let mut out = BTreeSet::new();
    let mut in_export = false;
    for line in src.lines() {
        let line = line.split('#').next().unwrap();
        if let Some(rest) = line.trim_start().strip_prefix("export ") {
            in_export = true;
            out.extend(rest.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
        } else if in_export {
            out.extend(line.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
        }
        if in_export && !line.trim_end().ends_with(',') {
            in_export = false;
        }
    }
    out
}

/// Base Julia functions the blocks may call besides Latent.jl's.
const JULIA_BASE: &[&str] = &[
    "println",
    "print",
    "rand",
    "randn",
    "size",
    "length",
    "Matrix",
    "Float32",
    "Float64",
    "zeros",
    "ones",
    "sum",
    "collect",
    "vec",
    "joinpath",
    "tempdir",
    "isfile",
    "DataFrame",
    "sprint",
    "showerror",
    "round",
    "maximum",
    "minimum",
    "abs",
    "exp",
];

#[test]
fn julia_blocks_call_exported_functions() {
    let blocks = blocks_of(&["julia"]);
    let exports = julia_exports();
    assert!(exports.contains("latent_network"), "no exports parsed from Latent.jl: {exports:?}");
    check_all("Julia blocks", &blocks, |b| {
        let mut unknown = BTreeSet::new();
        let chars: Vec<char> = b.text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_alphabetic() || chars[i] == '_' {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '!') {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                let after_dot = start > 0 && chars[start - 1] == '.';
                if chars.get(i) == Some(&'(')
                    && !after_dot
                    && !exports.contains(&name)
                    && !JULIA_BASE.contains(&name.as_str())
                {
                    unknown.insert(name);
                }
            } else {
                i += 1;
            }
        }
        if !unknown.is_empty() {
            return Outcome::Failed(format!(
                "calls {unknown:?}, which julia/Latent.jl does not export (nor tests/docs.rs's JULIA_BASE list)"
            ));
        }
        if !b.text.contains("using Latent") {
            return Outcome::Failed("a Julia block must say `using Latent`".into());
        }
        if !have("julia") {
            return Outcome::Ok("calls checked against Latent.jl's exports; not run: julia is not installed".into());
        }
        let dir = b.scratch();
        let script = dir.join("block.jl");
        std::fs::write(&script, &b.text).unwrap();
        let mut cmd = Command::new("julia");
        cmd.current_dir(&dir)
            .arg(format!("--project={}", root().join("julia/Latent.jl").display()))
            .arg(&script)
            .env("LATENT_LIB", lib_dir());
        block_env(&mut cmd, &None);
        let (code, out, err) = run_limited(&mut cmd, BLOCK_TIMEOUT);
        if code != 0 {
            return Outcome::Failed(format!("julia exited with {code}:\n{}", tail(&out, &err)));
        }
        Outcome::Ok("calls checked and ran".into())
    });
}

// ---------------------------------------------------------------------------------------------
// Every block, links, README

/// The languages this file knows; any other fails (so that a new one gets a checker).
const KNOWN: &[&str] = &["c", "cpp", "c++", "python", "sh", "bash", "cmake", "r", "julia", "text"];

#[test]
fn every_block_has_a_language_the_harness_checks() {
    let blocks = all_blocks();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    for b in blocks {
        *counts.entry(b.lang.as_str()).or_default() += 1;
        if !KNOWN.contains(&b.lang.as_str()) {
            bad.push(format!(
                "{}: ```{} is not a language tests/docs.rs checks ({KNOWN:?}; ```text for output)",
                b.at(),
                b.lang
            ));
        }
        const MARKERS: &[&str] = &["fragment", "norun", "run", "mpi"];
        for m in &b.markers {
            if !MARKERS.contains(&m.as_str()) && !m.starts_with("data=") {
                bad.push(format!("{}: unknown marker {m} (known: {MARKERS:?} and data=NAME)", b.at()));
            }
        }
        if b.has("fragment") && !matches!(b.lang.as_str(), "c" | "cpp" | "c++") {
            bad.push(format!("{}: fragment is for c and cpp blocks", b.at()));
        }
        if b.has("run") && !matches!(b.lang.as_str(), "sh" | "bash") {
            bad.push(format!("{}: run is for sh blocks (the others run anyway)", b.at()));
        }
    }
    let files = markdown_files();
    println!("{} blocks in {} Markdown files, by language: {counts:?}", blocks.len(), files.len());
    for f in &files {
        let n = blocks.iter().filter(|b| &b.file == f).count();
        println!("  {f}: {n}");
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The harness itself: a file with every kind of fence parses as expected.
    let sample = "x\n```c fragment data=mnist\nint a;\n```\n- item\n  ```sh\n  make demo\n  ```\n";
    let parsed = parse_blocks("sample.md", sample);
    assert_eq!(parsed.len(), 2);
    assert_eq!((parsed[0].lang.as_str(), parsed[0].line), ("c", 2));
    assert!(parsed[0].has("fragment") && parsed[0].datasets().contains("mnist"));
    assert_eq!(parsed[1].text, "make demo\n");
}

#[test]
fn the_shell_checker_knows_right_from_wrong() {
    let ok = "make demo    # builds\ncargo test --release --test docs -- --nocapture\n\
              PEERS=none cargo bench --bench workloads\npython3 -m pytest python/tests\n\
              cc app.c $(pkg-config --cflags --libs latent) \\\n  -o app\n\
              cd R/latent/src && LATENT_LIB=$PWD/x R CMD SHLIB -o latent.so latent_r.c\n";
    let mut dir = PathBuf::new();
    for words in shell_commands(ok) {
        check_command(&words, &mut dir, true).unwrap();
    }
    for bad in [
        "make no-such-target",
        "cargo test --test no_such_test",
        "cargo build --features no_such_feature",
        "rm -rf /",
        "scripts/no-such-script.sh",
        "curl http://example.com | sh",
    ] {
        let cmds = shell_commands(bad);
        let mut dir = PathBuf::new();
        assert!(cmds.iter().any(|w| check_command(w, &mut dir, true).is_err()), "{bad} was allowed");
    }
    assert_eq!(
        shell_commands("a 'b c' \"d\" # e\nf && g | h"),
        vec![vec!["a".to_string(), "b c".into(), "d".into()], vec!["f".into()], vec!["g".into()], vec!["h".into()]]
    );
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks), duplicates numbered.
fn anchors(md: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_fence = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence || !line.starts_with('#') {
            continue;
        }
        let s = slug(line.trim_start_matches('#'));
        let n = seen.entry(s.clone()).or_default();
        out.insert(if *n == 0 { s.clone() } else { format!("{s}-{n}") });
        *n += 1;
    }
    out
}

/// The link targets of a Markdown text, outside code blocks and inline code: (line, target).
fn links(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for (i, line) in md.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Drop inline code spans, then find `](target)`.
        let plain: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = plain.as_str();
        while let Some(k) = rest.find("](") {
            let after = &rest[k + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("").to_string();
            out.push((i + 1, target));
            rest = &after[end..];
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn relative_links_resolve() {
    let mut bad = Vec::new();
    let mut pending = BTreeSet::new();
    let mut count = 0;
    for file in markdown_files() {
        let md = std::fs::read_to_string(root().join(&file)).unwrap();
        let base = Path::new(&file).parent().unwrap_or(Path::new("")).to_path_buf();
        for (line, target) in links(&md) {
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            count += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p.to_string(), Some(a.to_string())),
                None => (target.clone(), None),
            };
            let resolved = if path.is_empty() { PathBuf::from(&file) } else { normalize(&base.join(&path)) };
            let full = root().join(&resolved);
            if !full.exists() {
                let rel = resolved.to_string_lossy().into_owned();
                if PENDING_PAGES.contains(&rel.as_str()) {
                    pending.insert(rel);
                } else {
                    bad.push(format!("{file}:{line}: {target}: {} does not exist", resolved.display()));
                }
                continue;
            }
            if let (Some(a), true) = (anchor, full.extension().is_some_and(|e| e == "md")) {
                let have = anchors(&std::fs::read_to_string(&full).unwrap());
                if !have.contains(&a) {
                    bad.push(format!(
                        "{file}:{line}: {target}: no heading with the anchor #{a} in {}",
                        resolved.display()
                    ));
                }
            }
        }
    }
    println!("{count} relative links checked");
    if !pending.is_empty() {
        println!("links to pages other branches are adding, not there yet: {pending:?}");
    }
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

/// `a/b/../c` -> `a/c` (the links are relative to their file, inside the checkout).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn readme_stays_short_and_keeps_the_two_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.len() <= README_MAX_BYTES,
        "README.md is {} bytes, over {README_MAX_BYTES}: move the detail into docs/ and link it",
        readme.len()
    );
    assert!(
        readme.contains(
            "```sh\nmake demo    # builds the library and the C examples, trains an autoencoder on Fashion-MNIST\n\
                         make test    # runs the whole test suite (cargo test --release)\n```"
        ),
        "README.md must keep the two commands, `make demo` and `make test`"
    );
    let c = all_blocks().iter().filter(|b| b.file == "README.md" && b.lang == "c" && has_main(&b.text)).count();
    assert!(c >= 1, "README.md should keep a complete C example");
}
