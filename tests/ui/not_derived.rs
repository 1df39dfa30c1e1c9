pub struct Point {
    pub x: f64,
}

pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
    #[ffi]
    fn norm(&self, p: Point) -> f64 {
        p.x
    }
}

fn main() {}
