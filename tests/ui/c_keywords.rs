// Names that are C or C++ keywords, or that make one C field twice, cannot be fields.
#[derive(ffi_dispatch::Record)]
pub struct Shape {
    pub class: u32,
}

#[derive(ffi_dispatch::Record)]
pub struct Blob {
    pub data: Vec<u8>,
    pub data_len: u64,
}

pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
    #[ffi]
    fn resize(&self, new: u32) -> u32 {
        new
    }
}

fn main() {}
