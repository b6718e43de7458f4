//! Rust names for proto names, following prost-build and tonic-build exactly, so generated glue
//! refers to the items those tools emit.

use heck::{ToSnakeCase, ToUpperCamelCase};
use proc_macro2::{Ident, Span};

/// Makes `name` usable as a Rust identifier the way prost-build does: keywords become raw
/// identifiers, the few keywords that cannot be raw get a `_` suffix, and a leading digit gets a
/// `_` prefix.
pub fn sanitize(name: &str) -> String {
    match name {
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{name}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{name}_"),
        _ if name.starts_with(|c: char| c.is_ascii_digit()) => format!("_{name}"),
        _ => name.to_owned(),
    }
}

/// prost-build's field, module and method name: `snake_case`, sanitized.
pub fn to_snake(name: &str) -> String {
    sanitize(&name.to_snake_case())
}

/// prost-build's type name: `UpperCamelCase`, sanitized.
pub fn to_upper_camel(name: &str) -> String {
    sanitize(&name.to_upper_camel_case())
}

/// tonic-build's module-name conversion (`UserService` → `user_service`), which differs from
/// heck's on runs of capitals.
pub fn naive_snake_case(name: &str) -> String {
    let mut out = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c.to_ascii_lowercase());
        if chars.peek().is_some_and(|next| next.is_uppercase()) {
            out.push('_');
        }
    }
    out
}

/// A file stem for an RPC's logic file: `GetUserInfo` → `get_user_info`, never raw.
pub fn file_stem(name: &str) -> String {
    name.to_snake_case()
}

/// Builds an identifier from a sanitized name, turning an `r#` prefix into a raw identifier.
pub fn ident(name: &str) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(name, Span::call_site()),
    }
}

/// A module identifier for a file stem, raw when the stem is a keyword (`type.rs` → `r#type`).
pub fn module_ident(stem: &str) -> Ident {
    ident(&sanitize(stem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_become_raw_identifiers() {
        assert_eq!(to_snake("type"), "r#type");
        assert_eq!(to_snake("self"), "self_");
        assert_eq!(to_upper_camel("Self"), "Self_");
        assert_eq!(ident("r#type").to_string(), "r#type");
    }

    #[test]
    fn tonic_module_names_follow_naive_snake_case() {
        assert_eq!(naive_snake_case("UserService"), "user_service");
        assert_eq!(naive_snake_case("HTTPApi"), "h_t_t_p_api");
    }

    #[test]
    fn file_stems_are_snake_case() {
        assert_eq!(file_stem("GetUserInfo"), "get_user_info");
        assert_eq!(file_stem("getURL"), "get_url");
    }
}
