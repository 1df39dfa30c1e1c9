// Hands the target triple to the tests, which use the `cc` crate to compile the C hosts
// with the same compiler and flags a build script would.
fn main() {
    println!(
        "cargo:rustc-env=FFID_BUILD_TARGET={}",
        std::env::var("TARGET").unwrap()
    );
    println!("cargo:rerun-if-changed=build.rs");
}
