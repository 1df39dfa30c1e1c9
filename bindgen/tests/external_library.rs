//! A library crate outside this repository (`tests/external/`, depending on ffi-dispatch
//! by path, `cdylib` only) gets its bindings from the `ffi-dispatch-bindgen` command,
//! and a C host compiled with `-I <out>` alone runs against it. `--check` finds the
//! files missing, then current, then stale.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bindgen/ is in the repository")
        .to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn ok(what: &str, out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Builds the external crate (in a target folder of its own, kept between runs).
fn build_external(crate_dir: &Path) -> PathBuf {
    let target = repo().join("target").join("external-library");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--release", "--quiet"])
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("running cargo");
    ok("building the external library", out);
    let file = format!(
        "{}greeter{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    target.join("release").join(file)
}

fn bindgen(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ffi-dispatch-bindgen"))
        .args(args)
        .output()
        .expect("running ffi-dispatch-bindgen")
}

#[test]
fn an_outside_library_ships_a_header_a_c_host_builds_against() {
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("external-library");
    let _ = std::fs::remove_dir_all(&work);
    let crate_dir = work.join("greeter");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/external"),
        &crate_dir,
    );
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml.template"))
        .unwrap()
        .replace("@FFI_DISPATCH@", repo().to_str().unwrap());
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();
    // The repository's lock: the same dependency versions, none fetched anew.
    std::fs::copy(repo().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    let dylib = build_external(&crate_dir);

    let out_dir = work.join("bindings").join("include");
    let (lib, out) = (dylib.as_os_str(), out_dir.as_os_str());
    let check = [lib, "--out".as_ref(), out, "--check".as_ref()];

    // Nothing generated yet: every file is missing, and the fix is named.
    let missing = bindgen(&check);
    assert_eq!(missing.status.code(), Some(1));
    let said = String::from_utf8_lossy(&missing.stderr);
    for file in [
        "greeter.h",
        "ffi_dispatch.h",
        "greeter.hpp",
        "ffi_dispatch.hpp",
        "greeter.cddl",
    ] {
        assert!(said.contains(&format!("{file} is missing")), "{said}");
    }
    assert!(
        said.contains("Regenerate with:\n    ffi-dispatch-bindgen "),
        "{said}"
    );
    assert!(!out_dir.exists(), "--check wrote something");

    // Generated (the folder and its parent created), then current.
    let wrote = ok(
        "ffi-dispatch-bindgen",
        bindgen(&[lib, "--out".as_ref(), out]),
    );
    assert_eq!(wrote.lines().count(), 5, "{wrote}");
    ok("--check of fresh bindings", bindgen(&check));
    let header = std::fs::read_to_string(out_dir.join("greeter.h")).unwrap();
    for expected in [
        "#define GREETER_MAX_NAME UINT32_C(16) /* The longest name `greet` takes, in bytes. */",
        "#define GREETER_DEFAULT_GREETING \"Hello\"",
        "int greeter_version(ffid_callback cb, void* user_data);",
        "#define GREETER_INTERFACE_HASH UINT64_C(0x",
    ] {
        assert!(header.contains(expected), "greeter.h lacks `{expected}`");
    }
    let cddl = std::fs::read_to_string(out_dir.join("greeter.cddl")).unwrap();
    assert!(cddl.contains(";   GREETER_MAX_NAME = 16"), "{cddl}");

    // A C host with -I <out> alone, and the header as C++.
    let host = work.join("host");
    let status = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(format!("-I{}", out_dir.display()))
        .arg(crate_dir.join("host.c"))
        .arg("-o")
        .arg(&host)
        .arg(format!("-L{}", dylib.parent().unwrap().display()))
        .arg(format!("-Wl,-rpath,{}", dylib.parent().unwrap().display()))
        .args(["-lgreeter", "-lpthread"])
        .status()
        .expect("running cc");
    assert!(
        status.success(),
        "the host does not build against the bindings alone"
    );
    let ran = ok(
        "the C host",
        Command::new(&host)
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .unwrap(),
    );
    assert!(ran.contains("greeter host: ok"), "{ran}");
    // A C++ host of the generated binding alone, as C++17 and C++20.
    let probe = work.join("probe.cpp");
    std::fs::write(
        &probe,
        r#"#include "greeter.hpp"
#include <cstdio>
int main() {
    static_assert(greeter::MAX_NAME == 16);
    auto made = greeter::Context::create("Hi");
    if (!made) return 1;
    greeter::Context g = std::move(made).value();
    auto loud = g.greet("ann", greeter::Volume::Loud);
    if (!loud || loud->text != "HI, ANN!" || loud->ordinal != 0) return 2;
    auto later = g.greet_async("bo", greeter::Volume::Normal).get();
    if (!later || later->text != "Hi, bo!" || later->ordinal != 1) return 3;
    auto bad = g.greet("", greeter::Volume::Normal);
    if (bad || bad.error().message != "a name is 1 to 16 bytes") return 4;
    if (!greeter::version()) return 5;
    std::puts("greeter c++ host: ok");
    return 0;
}
"#,
    )
    .unwrap();
    for std in ["-std=c++17", "-std=c++20"] {
        let exe = work.join(format!("probe{std}"));
        let status = Command::new("c++")
            .args([std, "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .arg(format!("-I{}", out_dir.display()))
            .arg(&probe)
            .arg("-o")
            .arg(&exe)
            .arg(format!("-L{}", dylib.parent().unwrap().display()))
            .arg(format!("-Wl,-rpath,{}", dylib.parent().unwrap().display()))
            .args(["-lgreeter", "-lpthread"])
            .status()
            .expect("running c++");
        assert!(status.success(), "greeter.hpp does not build as {std}");
        let ran = ok(
            "the C++ host",
            Command::new(&exe)
                .env_remove("LD_LIBRARY_PATH")
                .output()
                .unwrap(),
        );
        assert!(ran.contains("greeter c++ host: ok"), "{ran}");
    }

    // A Python host of the generated module alone (`--lang python`), blocking and asyncio.
    let py_dir = work.join("bindings").join("python");
    let wrote = ok(
        "--lang python",
        bindgen(&[
            lib,
            "--out".as_ref(),
            py_dir.as_os_str(),
            "--lang".as_ref(),
            "python".as_ref(),
        ]),
    );
    assert_eq!(wrote.lines().count(), 2, "{wrote}");
    let python = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import asyncio, greeter
assert greeter.MAX_NAME == 16 and greeter.DEFAULT_GREETING == "Hello"
with greeter.Context("Hi") as g:
    loud = g.greet("ann", greeter.Volume.LOUD)
    assert (loud.text, loud.ordinal) == ("HI, ANN!", 0), loud
    try:
        g.greet("", greeter.Volume.NORMAL)
        raise SystemExit("an empty name was accepted")
    except greeter.GreeterError as e:
        assert e.message == "a name is 1 to 16 bytes", e.message
async def main():
    async with greeter.AsyncContext("Yo") as g:
        assert (await g.greet("bo", greeter.Volume.NORMAL)).text == "Yo, bo!"
asyncio.run(main())
assert greeter.version()
print("greeter python host: ok")
"#,
        )
        .env("PYTHONPATH", &py_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("GREETER_LIBRARY", &dylib)
        .output()
        .expect("running python3");
    let ran = ok("the Python host", python);
    assert!(ran.contains("greeter python host: ok"), "{ran}");

    // An edited file is stale, a deleted one missing: both named.
    std::fs::write(
        out_dir.join("greeter.h"),
        header.replacen("Greets", "Greet", 1),
    )
    .unwrap();
    std::fs::remove_file(out_dir.join("ffi_dispatch.h")).unwrap();
    let stale = bindgen(&check);
    assert_eq!(stale.status.code(), Some(1));
    let said = String::from_utf8_lossy(&stale.stderr);
    assert!(
        said.contains("greeter.h is stale (first difference at line "),
        "{said}"
    );
    assert!(said.contains("ffi_dispatch.h is missing"), "{said}");
    assert!(!said.contains("greeter.cddl"), "{said}");
    ok("regenerating", bindgen(&[lib, "--out".as_ref(), out]));
    ok("--check after regenerating", bindgen(&check));

    // `--lang cpp` alone brings the C header it includes along (and no schema).
    let cpp_dir = work.join("bindings").join("cpp-only");
    let cpp = bindgen(&[
        lib,
        "--out".as_ref(),
        cpp_dir.as_os_str(),
        "--lang".as_ref(),
        "cpp".as_ref(),
    ]);
    let wrote = ok("--lang cpp", cpp);
    let mut files: Vec<String> = std::fs::read_dir(&cpp_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "ffi_dispatch.h",
            "ffi_dispatch.hpp",
            "greeter.h",
            "greeter.hpp"
        ],
        "{wrote}"
    );
}

#[test]
fn a_file_that_is_no_library_is_a_clear_error() {
    let not_lib = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("not-a-library.so");
    std::fs::write(&not_lib, b"plain text").unwrap();
    let out = bindgen(&[not_lib.as_os_str(), "--out".as_ref(), "unused".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("not a shared library this tool reads"),
        "{said}"
    );

    let usage = bindgen(&["--out".as_ref(), "x".as_ref()]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("the path to the library is missing"));
}
