//! The driver mirrors `echo.h`'s structs by hand; it creates its contexts with the
//! interface hash of that header, so a library whose interface moved on refuses the
//! driver (with the reason) instead of being called with stale structs.

fn main() {
    let header = "../examples/echo/include/echo.h";
    println!("cargo:rerun-if-changed={header}");
    let text = std::fs::read_to_string(header).expect("reading examples/echo/include/echo.h");
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("#define ECHO_INTERFACE_HASH UINT64_C("))
        .and_then(|rest| rest.strip_suffix(")"))
        .and_then(|hex| hex.strip_prefix("0x"))
        .expect("echo.h defines ECHO_INTERFACE_HASH");
    println!("cargo:rustc-env=ECHO_INTERFACE_HASH={hash}"); // hex digits, no 0x
}
