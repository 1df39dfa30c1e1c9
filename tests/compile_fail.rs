//! Every shape the macros reject fails to compile with a message that names the problem
//! (the expected messages are the `.stderr` files beside each case; regenerate them with
//! `TRYBUILD=overwrite cargo test --test compile_fail` after a deliberate change).

#[test]
fn rejected_shapes() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
