#[derive(ffi_dispatch::Record)]
pub struct Borrowing<'a> {
    pub name: &'a str,
}

#[derive(ffi_dispatch::Record)]
pub struct Nested {
    pub grid: Vec<Vec<u32>>,
}

#[derive(ffi_dispatch::Enum)]
pub enum Shape {
    Circle(f64),
}

fn main() {}
