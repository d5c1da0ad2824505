//! benches/sitting/sitting.py, the script behind benches/README.md's per-machine tables: its
//! table of a saved log (tests/fixtures/sitting.log, written by hand), checked against the
//! figures worked out by hand: the median epoch of each run, the L3 marks from the bench's labels
//! around it, the per-round ratios and their median, a round a side did not run, and JAX's jit
//! epochs and other lines ignored. (A sitting itself takes minutes and JAX's venv: not a test.)

use std::process::Command;

mod common;

#[test]
fn the_sitting_table_of_a_saved_log_has_the_medians_marks_and_ratios() {
    if !common::have("python3") {
        common::skip("python3", "install python3");
        return;
    }
    let root = common::root();
    let (code, out, err) = common::run(
        Command::new("python3")
            .arg(root.join("benches/sitting/sitting.py"))
            .arg("--parse")
            .arg(root.join("tests/fixtures/sitting.log")),
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "| workload | latent-bf16 | jax-f32 | latent-bf16 / jax-f32, per round (median) |");
    // W1: medians 17,500 and 10,500 (the scan epochs only); the JAX run's first probe gave
    // no label: `?`; round 2 not run.
    assert_eq!(lines[2], "| W1 | 17,500 / - | 10,500? / - | 1.67 (**1.67**) |");
    // W3: 61,000 / 35,000 = 1.74 (JAX split before and after: `*`), 31,000 / 34,000 = 0.91
    // (latent switched: `†`; JAX's first probe "busy", another process: `?`); median 1.33.
    assert_eq!(lines[3], "| W3 | 61,000 / 31,000† | 35,000* / 34,000? | 1.74 / 0.91 (**1.33**) |");
    assert_eq!(lines.len(), 6, "{out}");
}
