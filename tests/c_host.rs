//! Compiles the C host tests and the C host demo against the echo cdylib and runs them.
//!
//! `echo` is a dev-dependency, so cargo has built `libecho.so` before the test runs.
//! The C compiler is found the way a build script finds it (the `cc` crate: `CC`,
//! `CFLAGS`, then `cc`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo put `libecho.so`: beside this test binary (`target/<profile>/deps`, where
/// a dependency's cdylib lands) or one level up (where `cargo build -p echo` puts it).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let name = format!(
        "{}echo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let deps = exe.parent().expect("target/<profile>/deps").to_path_buf();
    let up = deps.parent().map(Path::to_path_buf);
    match [Some(deps.clone()), up]
        .into_iter()
        .flatten()
        .find(|dir| dir.join(&name).exists())
    {
        Some(dir) => dir,
        None => panic!(
            "{name} is missing near {}: run cargo test --workspace",
            deps.display()
        ),
    }
}

fn compile(source: &str, out_name: &str) -> PathBuf {
    let root = root();
    let lib_dir = lib_dir();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(out_name);
    let target = env!("FFID_BUILD_TARGET");
    let compiler = cc::Build::new()
        .target(target)
        .host(target)
        .opt_level(1)
        .debug(true)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args([
        "-std=c11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-Wno-overlength-strings",
    ])
    .arg(format!("-I{}", root.join("include").display()))
    .arg(format!(
        "-I{}",
        root.join("examples/echo/include").display()
    ))
    .arg(format!("-I{}", root.join("examples/echo/c").display()))
    .arg(format!("-I{}", root.join("tests/c").display()))
    .arg(root.join(source))
    .arg(format!("-L{}", lib_dir.display()))
    .arg("-lecho")
    .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
    .arg("-lpthread")
    .arg("-o")
    .arg(&out);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running the C compiler {cmd:?}: {e}"));
    assert!(status.success(), "compiling {source} failed: {cmd:?}");
    out
}

fn run(exe: &Path, env: &[(&str, &str)]) -> String {
    let output = Command::new(exe)
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
    let out = run(&compile("tests/c/contract.c", "contract"), &[]);
    assert!(out.contains(" passed, 0 failed"));
}

#[test]
fn c_concurrency() {
    let out = run(&compile("tests/c/concurrency.c", "concurrency"), &[]);
    assert!(out.contains(" passed, 0 failed"));
}

/// The demo host, briefly: every method in both modes, then each lane on a few calls.
/// It verifies every answer and exits non-zero otherwise; its timings mean nothing here.
#[test]
fn c_host_demo_verifies_every_answer() {
    let exe = compile("examples/echo/host.c", "echo-host");
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
