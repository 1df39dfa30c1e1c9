pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    // C has no portable literal for infinity.
    #[ffi]
    const HUGE: f64 = f64::INFINITY;
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
}

pub struct Text;

#[ffi_dispatch::library(name = "text")]
impl Text {
    // A C string would end at the NUL.
    #[ffi]
    const CUT: &str = "a\0b";
    #[ffi(ctor)]
    fn create() -> Text {
        Text
    }
}

fn main() {}
