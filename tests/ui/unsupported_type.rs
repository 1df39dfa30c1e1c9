#![allow(unused_imports)]
use std::collections::HashMap;

pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
    #[ffi]
    fn count(&self, items: usize) -> u32 {
        items as u32
    }
    #[ffi]
    fn index(&self, map: HashMap<String, u32>) -> u32 {
        map.len() as u32
    }
    #[ffi]
    fn pair(&self) -> (u32, u32) {
        (1, 2)
    }
}

fn main() {}
