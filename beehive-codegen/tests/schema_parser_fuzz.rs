//! Property test: no input makes the schema parser, validator or generator panic.

use std::path::PathBuf;

use beehive_codegen::schema;
use proptest::prelude::*;

/// Fragments of the DSL, so that random inputs reach deep into the grammar.
const FRAGMENTS: &[&str] = &[
    "table",
    "t",
    "{",
    "}",
    "(",
    ")",
    ",",
    "\n",
    " ",
    "#c\n",
    "`",
    "`odd name`",
    "'",
    "'x''y'",
    "id",
    "type",
    "order",
    "key",
    "self",
    "bigint",
    "int",
    "smallint",
    "bool",
    "string",
    "string(10)",
    "string(0)",
    "text",
    "bytes",
    "json",
    "timestamp",
    "pk",
    "auto",
    "null",
    "unique",
    "cached",
    "default",
    "now",
    "true",
    "false",
    "0",
    "-1",
    "99999999999999999999",
    "index",
    "desc",
    "asc",
    "as",
    "a",
    "b",
    "-",
    "$",
    "中文",
];

fn dsl_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..80)
        .prop_map(|parts| parts.join(" "))
}

fn generate(source: String) {
    let inputs = [(PathBuf::from("schema/fuzz.schema"), source)];
    if let Err(err) = schema::generate(&inputs) {
        assert!(err.line >= 1, "{err}");
        assert!(err.col >= 1, "{err}");
        assert!(err.to_string().starts_with("schema/fuzz.schema:"), "{err}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_text_never_panics(source in "\\PC{0,300}") {
        generate(source);
    }

    #[test]
    fn dsl_like_text_never_panics(source in dsl_like()) {
        generate(source);
    }

    #[test]
    fn valid_prefix_with_noise_never_panics(noise in dsl_like()) {
        generate(format!("table t {{\n    id bigint pk auto cached\n    {noise}\n}}\n"));
    }
}
