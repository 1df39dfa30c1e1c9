//! Compiles the C host tests and the C host demo against the example cdylibs and runs
//! them, checks that the generated headers compile as C11 and as C++17, and runs the
//! generated Python modules' pytest suite (`tests/python`).
//!
//! `echo` and `kv` are dev-dependencies, so cargo has built their cdylibs before the
//! test runs.
//! The C compiler is found the way a build script finds it (the `cc` crate: `CC`,
//! `CFLAGS`, then `cc`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[path = "support/cdylib.rs"]
mod cdylib;
use cdylib::cdylib;

/// The folder of `lib<lib>.so` (see [`cdylib`]).
fn lib_dir(lib: &str) -> PathBuf {
    let file = cdylib(lib);
    file.parent().expect("a file in a folder").to_path_buf()
}

/// The system's C compiler (C11), or its C++ one at `-std=<std>`, with the project's
/// include paths and strict flags.
fn compiler(cpp: Option<&str>) -> Command {
    let root = root();
    let target = env!("FFID_BUILD_TARGET");
    let compiler = cc::Build::new()
        .cpp(cpp.is_some())
        .target(target)
        .host(target)
        .opt_level(1)
        .debug(true)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .get_compiler();
    let mut cmd = compiler.to_command();
    cmd.arg(match cpp {
        Some(std) => format!("-std={std}"),
        None => "-std=c11".into(),
    });
    cmd.args([
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-Wno-overlength-strings",
    ]);
    // The examples' generated folders only: each is self-contained (its header and the
    // runtime's `ffi_dispatch.h` beside it).
    for dir in [
        "examples/echo/include",
        "examples/kv/include",
        "examples/echo/c",
        "tests/c",
        "tests/cpp",
    ] {
        cmd.arg(format!("-I{}", root.join(dir).display()));
    }
    cmd
}

fn compile(source: &str, out_name: &str, libs: &[&str]) -> PathBuf {
    compile_with(compiler(None), source, out_name, libs)
}

fn compile_with(mut cmd: Command, source: &str, out_name: &str, libs: &[&str]) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(out_name);
    cmd.arg(root().join(source));
    for lib in libs {
        let dir = lib_dir(lib);
        cmd.arg(format!("-L{}", dir.display()))
            .arg(format!("-l{lib}"))
            .arg(format!("-Wl,-rpath,{}", dir.display()));
    }
    cmd.arg("-lpthread").arg("-ldl").arg("-o").arg(&out);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running the C compiler {cmd:?}: {e}"));
    assert!(status.success(), "compiling {source} failed: {cmd:?}");
    out
}

fn run(exe: &Path, env: &[(&str, &str)]) -> String {
    run_with(exe, &[], env)
}

fn run_with(exe: &Path, args: &[&Path], env: &[(&str, &str)]) -> String {
    // cargo test puts target/<profile> on LD_LIBRARY_PATH, which outranks the rpath the
    // programs were linked with: a stale `cargo build -p` copy there would be tested
    // instead of the cdylib this test run built. Let the rpath decide.
    let output = Command::new(exe)
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .envs(env.iter().copied())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    // Handler panics are part of the tests; their default-hook lines are expected noise.
    let notable: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            !l.contains("panicked at")
                && !l.contains("echo was asked to panic")
                && !l.starts_with("note:")
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    if !notable.is_empty() {
        println!("stderr:\n{}", notable.join("\n"));
    }
    assert!(
        output.status.success(),
        "{} exited with {}",
        exe.display(),
        output.status
    );
    stdout
}

#[test]
fn c_contract() {
    let out = run(&compile("tests/c/contract.c", "contract", &["echo"]), &[]);
    assert!(out.contains(" passed, 0 failed"));
}

/// The interface check at create and `ffid_last_error`, constants, inline exports and
/// the library's description.
#[test]
fn c_interface() {
    let out = run(&compile("tests/c/interface.c", "interface", &["echo"]), &[]);
    assert!(out.contains(" passed, 0 failed"));
}

/// The blocking forms of echo and kv.
#[test]
fn c_sync() {
    let out = run(&compile("tests/c/sync.c", "sync", &["kv", "echo"]), &[]);
    assert!(out.contains(" passed, 0 failed"));
}

/// The typed forms of echo and kv: typed replies and typed listeners.
#[test]
fn c_typed() {
    let out = run(&compile("tests/c/typed.c", "typed", &["kv", "echo"]), &[]);
    assert!(out.contains(" passed, 0 failed"));
}

#[test]
fn c_features() {
    let out = run(&compile("tests/c/features.c", "features", &["echo"]), &[]);
    assert!(out.contains(" passed, 0 failed"));
}

/// Hostile and careless hosts: destroy and blocking calls inside every kind of
/// callback, undrained completion mode, fork, allocation failure, thread exhaustion,
/// bad options, panics kept off stderr. Each test runs in a child process of its own.
#[test]
fn c_hostile() {
    let out = run(
        &compile("tests/c/hostile.c", "hostile", &["kv", "echo"]),
        &[],
    );
    assert!(out.contains(" passed, 0 failed"));
}

/// Unloading: after destroy, `dlclose` really unloads the library and a load/unload
/// cycle leaves no heap behind. The program loads the cdylib itself.
#[test]
fn c_reload() {
    let lib = cdylib("echo");
    let out = run_with(&compile("tests/c/reload.c", "reload", &[]), &[&lib], &[]);
    assert!(out.contains(" passed, 0 failed"));
}

/// echo and kv from one epoll loop through `<lib>_poll`: entries, the host's own
/// descriptor, one poller at a time, destroy waking a blocked poller.
#[test]
fn c_poll() {
    let out = run(&compile("tests/c/poll.c", "poll", &["kv", "echo"]), &[]);
    assert!(out.contains(" passed, 0 failed"));
}

#[test]
fn c_kv() {
    let out = run(&compile("tests/c/kv.c", "kv", &["kv", "echo"]), &[]);
    assert!(out.contains(" passed, 0 failed"));
}

/// The generated headers compile, with every warning an error, as C11 and as C++17.
#[test]
fn generated_headers_compile_as_c11_and_cpp17() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (cpp, file) in [(None, "headers.c"), (Some("c++17"), "headers.cpp")] {
        let src = dir.join(file);
        std::fs::write(
            &src,
            "#include \"echo.h\"\n#include \"kv.h\"\n\
             int main(void) { KvEntry e; EchoScalarCheckArgs a; (void)e; (void)a; \
             return KV_KIND_COUNTER == 2 ? 0 : 1; }\n",
        )
        .expect("writing the header probe");
        let mut cmd = compiler(cpp);
        cmd.arg("-fsyntax-only").arg(&src);
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("running the compiler {cmd:?}: {e}"));
        assert!(status.success(), "the headers do not compile: {cmd:?}");
    }
}

/// The generated C++ bindings (`echo.hpp`, `kv.hpp`) driven by C++ hosts: as C++17
/// under AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer, and as C++20.
/// gcc's sanitizer runtime instruments the host; the Rust libraries' allocations go
/// through the same malloc, so a leaked answer or box shows as well.
#[test]
fn cpp_bindings() {
    for (source, lib) in [("tests/cpp/kv.cpp", "kv"), ("tests/cpp/echo.cpp", "echo")] {
        for std in ["c++17", "c++20"] {
            let mut cmd = compiler(Some(std));
            if std == "c++17" {
                cmd.args([
                    "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all",
                    "-fno-omit-frame-pointer",
                ]);
            }
            let exe = compile_with(cmd, source, &format!("{lib}-{std}"), &[lib]);
            let out = run(&exe, &[("ASAN_OPTIONS", "detect_leaks=1")]);
            assert!(out.contains(" passed, 0 failed"), "{source} as {std}");
        }
    }
}

#[test]
fn c_concurrency() {
    let out = run(
        &compile("tests/c/concurrency.c", "concurrency", &["echo"]),
        &[],
    );
    assert!(out.contains(" passed, 0 failed"));
}

/// The demo host, briefly: every method in both modes, then each lane on a few calls.
/// It verifies every answer and exits non-zero otherwise; its timings mean nothing here.
#[test]
fn c_host_demo_verifies_every_answer() {
    let exe = compile("examples/echo/host.c", "echo-host", &["echo"]);
    for ring in ["0", "1"] {
        let out = run(
            &exe,
            &[
                ("ECHO_HOST_CALLS", "2000"),
                ("ECHO_HOST_THREADS", "2"),
                ("ECHO_HOST_RING_KIND", ring),
            ],
        );
        assert!(out.contains("all answers right") && out.contains("OK: every answer verified"));
        assert_eq!(
            out.lines().filter(|l| l.starts_with("csv,")).count(),
            7,
            "floor + 3 lanes x 2 thread counts"
        );
    }
}

/// The generated Python modules (`examples/*/bindings/python`) under pytest
/// (`tests/python`), loading the cdylibs this run built. `.ci/run` installs pytest;
/// without it this test fails and says how to get it.
#[test]
fn python_bindings() {
    let probe = Command::new("python3")
        .args(["-c", "import pytest"])
        .output()
        .expect("python3 runs");
    assert!(
        probe.status.success(),
        "pytest is missing: python3 -m pip install pytest==8.3.5 (what .ci/run installs)"
    );
    let output = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/python",
        ])
        .current_dir(root())
        .env("ECHO_LIBRARY", cdylib("echo"))
        .env("KV_LIBRARY", cdylib("kv"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("pytest runs");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    println!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "pytest exited with {}",
        output.status
    );
}
