#[derive(ffi_dispatch::Record)]
pub struct Point {
    pub x: i32,
}

pub struct Lib;

#[ffi_dispatch::library(name = "lib")]
impl Lib {
    // Only numbers, bools and text can be C constants.
    #[ffi]
    const ORIGIN: (i32, i32) = (0, 0);
    #[ffi(ctor)]
    fn create() -> Lib {
        Lib
    }
    // An inline export answers before it returns: no reply token.
    #[ffi(inline)]
    fn later(reply: ffi_dispatch::Deferred<u32>) {
        reply.complete(1);
    }
    // An option of nothing has no C form: answer a bool.
    #[ffi]
    fn nothing(&self) -> Option<()> {
        None
    }
    // A record parameter is taken by value.
    #[ffi]
    fn moved(&self, p: &Point) -> i32 {
        p.x
    }
}

fn main() {}
