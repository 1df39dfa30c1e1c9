pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
    #[ffi]
    fn consume(self) -> u32 {
        1
    }
}

fn main() {}
