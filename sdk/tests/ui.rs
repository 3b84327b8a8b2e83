//! The macros' compile-time checks (issue 18: `#[route]`, and the hooks' `#[auth_method]`,
//! `#[pre_dispatch]`...; issue 20: `#[rpc]`): each file of `tests/ui/` is a
//! handler the macro must refuse, with the error (its `.stderr` beside it) pointing at the
//! offending path or type; `tests/ui/pass/` holds handlers it must accept (every extractor
//! and return type).

#[test]
fn route_macro_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
