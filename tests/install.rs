//! `make install` into a temporary prefix, then programs built from a clean directory outside
//! the source tree against what was installed only: a C program with pkg-config, and a C, a
//! C++17 (latent.hpp) and a statically linked C program with CMake's find_package(latent).
//! Finally `make uninstall` removes every installed file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const APP_C: &str = r#"#include <stdio.h>
#include <latent.h>

int main(void) {
    uint32_t hidden[] = {8};
    float x[16] = {0}, code[3];
    latent_network *net = NULL;
    latent_status ok, bad;
    latent_network_params np = latent_network_params_default();
    np.input_dim = 16;
    np.n_encoder = 1;
    np.encoder_units = hidden;
    np.code_units = 3;
    if (latent_network_new(&np, &net) != LATENT_STATUS_OK) {
        fprintf(stderr, "%s\n", latent_last_error_message());
        return 1;
    }
    ok = latent_network_encode(net, x, 1, 16, code, 3);
    bad = latent_network_encode(net, x, 1, 15, code, 3);
    printf("latent %s abi %u code_dim %u encode %s bad %s\n", latent_version(), (unsigned)latent_abi_version(),
           (unsigned)latent_network_code_dim(net), latent_status_string(ok), latent_status_string(bad));
    latent_network_free(net);
    return latent_abi_version() == LATENT_ABI_VERSION && ok == LATENT_STATUS_OK &&
                   bad == LATENT_STATUS_SHAPE_MISMATCH ? 0 : 1;
}
"#;

const APP_CPP: &str = r#"#include <cstdio>
#include <vector>
#include <latent.hpp>

int main() {
    const uint32_t hidden[] = {8};
    latent_network_params np = latent::Network::default_params();
    np.input_dim = 16;
    np.n_encoder = 1;
    np.encoder_units = hidden;
    np.code_units = 3;
    latent::Network net(np);
    std::vector<float> codes = net.encode(std::vector<float>(2 * 16, 0.25f), 2);
    try {
        net.encode(std::vector<float>(15, 0.25f), 1);
    } catch (const latent::error &e) {
        std::printf("C++ latent %s: %zu codes, then %s\n", latent::version(), codes.size(), e.status_name());
        return 0;
    }
    return 1;
}
"#;

const CMAKELISTS: &str = r#"cmake_minimum_required(VERSION 3.16)
project(use_latent C CXX)
find_package(latent 0.1 CONFIG REQUIRED)
add_executable(app_c app.c)
target_link_libraries(app_c PRIVATE latent::latent)
add_executable(app_cpp app.cpp)
set_target_properties(app_cpp PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
target_compile_options(app_cpp PRIVATE -Wall -Wextra -Werror -pedantic)
target_link_libraries(app_cpp PRIVATE latent::latent)
add_executable(app_static app.c)
target_link_libraries(app_static PRIVATE latent::latent_static)
"#;

fn ok(cmd: &mut Command, what: &str) -> String {
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{what} failed:\n{out}\n{err}");
    out
}

fn make(args: &[String]) -> String {
    let mut cmd = Command::new("make");
    cmd.current_dir(root()).arg("--no-print-directory").args(args);
    ok(&mut cmd, &format!("make {}", args.join(" ")))
}

/// A clean directory outside the source tree (so nothing can find include/ by accident).
fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("latent-install-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const INSTALLED: &[&str] = &[
    "lib/liblatent.so",
    "lib/liblatent.so.5",
    "lib/liblatent.a",
    "include/latent.h",
    "include/latent.hpp",
    "lib/pkgconfig/latent.pc",
    "lib/cmake/latent/latentConfig.cmake",
    "lib/cmake/latent/latentConfigVersion.cmake",
];

fn check_installed(prefix: &Path, present: bool) {
    for f in INSTALLED {
        let p = prefix.join(f);
        assert_eq!(p.symlink_metadata().is_ok(), present, "{}: expected present = {present}", p.display());
    }
}

#[test]
fn make_install_gives_pkg_config_and_cmake_packages() {
    if !have("make") {
        skip("make", "install GNU make");
        return;
    }
    assert_eq!(latent::ffi::LATENT_ABI_VERSION, 5, "update INSTALLED (liblatent.so.<ABI>) in this test");
    let lib = lib_dir().display().to_string();
    let tmp = temp_dir();

    // DESTDIR stages under another root; the prefix written into latent.pc stays the real one.
    let stage = tmp.join("stage");
    make(&[
        "install".into(),
        "PREFIX=/opt/latent".into(),
        format!("DESTDIR={}", stage.display()),
        format!("LIB_BUILD_DIR={lib}"),
    ]);
    check_installed(&stage.join("opt/latent"), true);
    let pc = std::fs::read_to_string(stage.join("opt/latent/lib/pkgconfig/latent.pc")).unwrap();
    assert!(pc.contains("prefix=/opt/latent\n"), "{pc}");
    assert!(pc.contains("Version: 0.1.0") && pc.contains("Libs.private: ") && pc.contains("-lpthread"), "{pc}");

    let prefix = tmp.join("prefix");
    let out = make(&["install".into(), format!("PREFIX={}", prefix.display()), format!("LIB_BUILD_DIR={lib}")]);
    assert!(out.contains("installed latent 0.1.0 (ABI 5)"), "{out}");
    check_installed(&prefix, true);
    assert_eq!(std::fs::read_link(prefix.join("lib/liblatent.so")).unwrap(), Path::new("liblatent.so.5"));
    if have("readelf") {
        let d = ok(Command::new("readelf").arg("-d").arg(prefix.join("lib/liblatent.so.5")), "readelf");
        assert!(d.contains("Library soname: [liblatent.so.5]"), "{d}");
    }

    let src = tmp.join("app");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("app.c"), APP_C).unwrap();
    std::fs::write(src.join("app.cpp"), APP_CPP).unwrap();
    let libdir = prefix.join("lib");

    // pkg-config: cc app.c $(pkg-config --cflags --libs latent)
    if have("pkg-config") {
        let pc_path = libdir.join("pkgconfig");
        let flags = ok(
            Command::new("pkg-config").env("PKG_CONFIG_PATH", &pc_path).args(["--cflags", "--libs", "latent"]),
            "pkg-config",
        );
        assert!(flags.contains(&format!("-I{}/include", prefix.display())), "{flags}");
        let exe = src.join("app_pc");
        ok(
            Command::new("cc")
                .current_dir(&src)
                .args(["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "app.c", "-o"])
                .arg(&exe)
                .args(flags.split_whitespace()),
            "cc with pkg-config flags",
        );
        let out = ok(Command::new(&exe).env("LD_LIBRARY_PATH", &libdir), "the pkg-config program");
        let want = format!("latent 0.1.0 abi {} code_dim 3", latent::ffi::LATENT_ABI_VERSION);
        assert!(out.contains(&want) && out.contains("SHAPE_MISMATCH"), "{out}");
    } else {
        skip("pkg-config", "apt-get install pkg-config");
    }

    // CMake: find_package(latent CONFIG REQUIRED) and latent::latent / latent::latent_static.
    if have("cmake") {
        std::fs::write(src.join("CMakeLists.txt"), CMAKELISTS).unwrap();
        let build = tmp.join("build");
        ok(
            Command::new("cmake")
                .arg("-S")
                .arg(&src)
                .arg("-B")
                .arg(&build)
                .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
                .arg("-DCMAKE_BUILD_TYPE=Release"),
            "cmake configure",
        );
        ok(Command::new("cmake").arg("--build").arg(&build).args(["--parallel", "4"]), "cmake --build");
        // CMake's build tree RPATH points at the installed lib/: no LD_LIBRARY_PATH needed.
        let out = ok(&mut Command::new(build.join("app_c")), "the CMake C program");
        let want = format!("latent 0.1.0 abi {} code_dim 3", latent::ffi::LATENT_ABI_VERSION);
        assert!(out.contains(&want) && out.contains("SHAPE_MISMATCH"), "{out}");
        let out = ok(&mut Command::new(build.join("app_cpp")), "the CMake C++ program");
        assert!(out.contains("C++ latent 0.1.0: 6 codes, then LATENT_STATUS_SHAPE_MISMATCH"), "{out}");
        let out = ok(Command::new(build.join("app_static")).env_remove("LD_LIBRARY_PATH"), "the static CMake program");
        assert!(out.contains("code_dim 3"), "{out}");
        if have("ldd") {
            let l = ok(Command::new("ldd").arg(build.join("app_static")), "ldd");
            assert!(!l.contains("liblatent"), "app_static links liblatent dynamically:\n{l}");
        }
    } else {
        skip("cmake", "apt-get install cmake");
    }

    make(&["uninstall".into(), format!("PREFIX={}", prefix.display())]);
    check_installed(&prefix, false);
    let _ = std::fs::remove_dir_all(&tmp);
}
