//! Input checks the generated `Validate` impls call: one function per rule declared with
//! `(beehive.rules)` in the protos, and the field paths violations name.

use crate::error::ServiceError;
use crate::rpc::Validate;

/// Field-level checks of a message, with `prefix` prepended to every violated field's path
/// (`""` at the top, `parts[2].` inside a list of messages).
pub trait ValidateFields {
    fn validate_fields(&self, prefix: &str) -> Result<(), ServiceError>;
}

/// Builds an INVALID_ARGUMENT error naming `prefix` + `field`.
pub fn violation(prefix: &str, field: &str, reason: String) -> ServiceError {
    ServiceError::invalid(format!("{prefix}{field}"), reason)
}

/// Builds an INVALID_ARGUMENT error naming item `index` of list `field`: `user_ids[3]`.
pub fn item_violation(prefix: &str, field: &str, index: usize, reason: String) -> ServiceError {
    ServiceError::invalid(format!("{prefix}{field}[{index}]"), reason)
}

impl Validate for () {
    fn validate(&self) -> Result<(), ServiceError> {
        Ok(())
    }
}

impl Validate for prost_types::Timestamp {
    fn validate(&self) -> Result<(), ServiceError> {
        Ok(())
    }
}

impl Validate for prost_types::Duration {
    fn validate(&self) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// One function per rule. Each returns the reason a value breaks the rule.
pub mod check {
    use std::sync::OnceLock;

    /// The reason given for a missing required value.
    pub const REQUIRED: &str = "is required";

    /// Outcome of one rule: the reason when the value breaks it.
    pub type Outcome = Result<(), String>;

    /// Builds the path prefix of a nested message: `info.` or `parts[2].`.
    pub fn nested(prefix: &str, field: &str, index: Option<usize>) -> String {
        match index {
            Some(index) => format!("{prefix}{field}[{index}]."),
            None => format!("{prefix}{field}."),
        }
    }

    fn bounds(value: usize, min: Option<u32>, max: Option<u32>, unit: &str) -> Outcome {
        let too_short = min.is_some_and(|min| value < min as usize);
        let too_long = max.is_some_and(|max| value > max as usize);
        if !too_short && !too_long {
            return Ok(());
        }
        Err(match (min, max) {
            (Some(min), Some(max)) if min == max => {
                format!("must be exactly {min} {unit} (got {value})")
            }
            (Some(min), Some(max)) => format!("must be {min} to {max} {unit} (got {value})"),
            (Some(min), None) => format!("must be at least {min} {unit} (got {value})"),
            (None, Some(max)) => format!("must be at most {max} {unit} (got {value})"),
            (None, None) => unreachable!("no bound is set, so no bound is broken"),
        })
    }

    /// Checks the length in characters (Unicode scalar values).
    pub fn chars(value: &str, min: Option<u32>, max: Option<u32>) -> Outcome {
        bounds(value.chars().count(), min, max, "characters")
    }

    /// Checks the length in bytes.
    pub fn bytes(value: &[u8], min: Option<u32>, max: Option<u32>) -> Outcome {
        bounds(value.len(), min, max, "bytes")
    }

    /// Checks the number of items of a repeated field.
    pub fn items(count: usize, min: Option<u32>, max: Option<u32>) -> Outcome {
        bounds(count, min, max, "items")
    }

    /// Checks inclusive bounds on an integer.
    pub fn int_range(value: i128, gte: Option<i64>, lte: Option<i64>) -> Outcome {
        let low = gte.is_some_and(|gte| value < i128::from(gte));
        let high = lte.is_some_and(|lte| value > i128::from(lte));
        if !low && !high {
            return Ok(());
        }
        Err(range_reason(&value.to_string(), gte, lte))
    }

    /// Checks inclusive bounds on a floating-point number. NaN is out of every range.
    pub fn float_range(value: f64, gte: Option<i64>, lte: Option<i64>) -> Outcome {
        // i64 bounds as f64 lose precision only beyond 2^53, far outside any declared rule.
        let low = value.is_nan() || gte.is_some_and(|gte| value < gte as f64);
        let high = value.is_nan() || lte.is_some_and(|lte| value > lte as f64);
        if !low && !high {
            return Ok(());
        }
        Err(range_reason(&value.to_string(), gte, lte))
    }

    fn range_reason(value: &str, gte: Option<i64>, lte: Option<i64>) -> String {
        match (gte, lte) {
            (Some(gte), Some(lte)) => format!("must be between {gte} and {lte} (got {value})"),
            (Some(gte), None) => format!("must be at least {gte} (got {value})"),
            (None, Some(lte)) => format!("must be at most {lte} (got {value})"),
            (None, None) => format!("is out of range (got {value})"),
        }
    }

    /// Checks that a string or bytes value is not empty.
    pub fn required_len(len: usize) -> Outcome {
        if len == 0 {
            return Err(REQUIRED.to_owned());
        }
        Ok(())
    }

    /// Checks that an integer or enum value is not zero.
    pub fn required_int(value: i128) -> Outcome {
        if value == 0 {
            return Err(format!("{REQUIRED} (must not be 0)"));
        }
        Ok(())
    }

    /// Checks that a floating-point value is not zero.
    pub fn required_float(value: f64) -> Outcome {
        if value == 0.0 {
            return Err(format!("{REQUIRED} (must not be 0)"));
        }
        Ok(())
    }

    /// Checks that a boolean is `true`.
    pub fn required_bool(value: bool) -> Outcome {
        if !value {
            return Err(format!("{REQUIRED} (must be true)"));
        }
        Ok(())
    }

    /// Checks for an email address: one `@`, a local part of at most 64 bytes, and a domain of dot-separated
    /// labels of letters, digits and hyphens, none starting or ending with a hyphen.
    pub fn email(value: &str) -> Outcome {
        const REASON: &str = "must be an email address like name@example.com";
        let Some((local, domain)) = value.split_once('@') else {
            return Err(REASON.to_owned());
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && domain.len() <= 253
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok {
            Ok(())
        } else {
            Err(REASON.to_owned())
        }
    }

    /// A regular expression compiled on first use and cached for the process.
    pub struct Pattern {
        source: &'static str,
        compiled: OnceLock<Result<regex::Regex, regex::Error>>,
    }

    impl Pattern {
        pub const fn new(source: &'static str) -> Self {
            Self {
                source,
                compiled: OnceLock::new(),
            }
        }

        pub fn source(&self) -> &'static str {
            self.source
        }
    }

    /// Checks that the pattern matches the value. The generator compiles every pattern, so a
    /// pattern failing here means the runtime's regex crate rejects what the generator's accepted.
    pub fn pattern(value: &str, pattern: &Pattern) -> Outcome {
        match pattern
            .compiled
            .get_or_init(|| regex::Regex::new(pattern.source))
        {
            Ok(regex) if regex.is_match(value) => Ok(()),
            Ok(_) => Err(format!("must match `{}`", pattern.source)),
            Err(err) => {
                tracing::error!(pattern = pattern.source, error = %err, "input rule pattern does not compile");
                Err(format!("cannot be checked against `{}`", pattern.source))
            }
        }
    }

    /// Checks that the value equals one of `allowed`.
    pub fn one_of(value: &str, allowed: &[&str]) -> Outcome {
        if allowed.contains(&value) {
            return Ok(());
        }
        Err(format!("must be one of {}", allowed.join(", ")))
    }

    /// Checks that the enum defines the value.
    pub fn defined_enum(is_defined: bool, enum_name: &str) -> Outcome {
        if is_defined {
            return Ok(());
        }
        Err(format!("must be a defined {enum_name} value"))
    }

    /// Checks for an absolute `http://` or `https://` URL with a host and no whitespace or control
    /// characters.
    pub fn http_url(value: &str) -> Outcome {
        const REASON: &str = "must be an http:// or https:// URL";
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"));
        let Some(rest) = rest else {
            return Err(REASON.to_owned());
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        let host_ok = !host.is_empty() && !host.starts_with(':');
        let chars_ok = !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if host_ok && chars_ok {
            Ok(())
        } else {
            Err(REASON.to_owned())
        }
    }

    /// Checks for a JSON document whose top level is an object or an array.
    pub fn json_object_or_array(value: &str) -> Outcome {
        match serde_json::from_str::<serde_json::Value>(value) {
            Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_)) => Ok(()),
            Ok(_) => Err("must be a JSON object or array".to_owned()),
            Err(err) => Err(format!("must be a JSON object or array ({err})")),
        }
    }

    /// Checks that the value has no control characters, NUL included.
    pub fn no_control_chars(value: &str) -> Outcome {
        match value.char_indices().find(|(_, c)| c.is_control()) {
            None => Ok(()),
            Some((at, c)) => Err(format!(
                "must not contain control characters (found U+{:04X} at byte {at})",
                u32::from(c)
            )),
        }
    }

    /// Checks that the value has no explicit directional formatting characters (Unicode UAX #9:
    /// the embeddings, overrides and isolates U+202A to U+202E and U+2066 to U+2069). They can
    /// make displayed text read differently from the stored text. The marks U+200E, U+200F and
    /// U+061C, which cannot reorder text, are allowed.
    pub fn no_directional_formatting(value: &str) -> Outcome {
        let formatting = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
        match value.char_indices().find(|&(_, c)| formatting(c)) {
            None => Ok(()),
            Some((at, c)) => Err(format!(
                "must not contain directional formatting characters (found U+{:04X} at byte {at})",
                u32::from(c)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn chars_counts_characters_not_bytes() {
        assert_eq!(check::chars("蜂巢", Some(1), Some(2)), Ok(()));
        assert_eq!(
            check::chars("蜂巢蜜", Some(1), Some(2)),
            Err("must be 1 to 2 characters (got 3)".to_owned())
        );
    }

    #[test]
    fn bytes_counts_bytes() {
        assert_eq!(
            check::bytes("蜂".as_bytes(), None, Some(2)),
            Err("must be at most 2 bytes (got 3)".to_owned())
        );
        assert_eq!(
            check::bytes(b"1234567", Some(8), Some(72)),
            Err("must be 8 to 72 bytes (got 7)".to_owned())
        );
    }

    #[test]
    fn exact_length_reads_exactly() {
        assert_eq!(
            check::chars("12345", Some(6), Some(6)),
            Err("must be exactly 6 characters (got 5)".to_owned())
        );
    }

    #[test]
    fn int_range_is_inclusive() {
        assert_eq!(check::int_range(1, Some(1), Some(4)), Ok(()));
        assert_eq!(check::int_range(4, Some(1), Some(4)), Ok(()));
        assert_eq!(
            check::int_range(5, Some(1), Some(4)),
            Err("must be between 1 and 4 (got 5)".to_owned())
        );
        assert_eq!(
            check::int_range(-1, Some(0), None),
            Err("must be at least 0 (got -1)".to_owned())
        );
    }

    #[test]
    fn float_range_rejects_nan() {
        assert!(check::float_range(f64::NAN, Some(0), None).is_err());
        assert_eq!(check::float_range(0.5, Some(0), Some(1)), Ok(()));
    }

    #[test]
    fn email_accepts_and_rejects() {
        for good in [
            "a@b.co",
            "first.last+tag@example.com",
            "x_y@sub.example.org",
        ] {
            assert_eq!(check::email(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@-x.com",
            ".a@example.com",
            "a..b@example.com",
        ] {
            assert!(check::email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pattern_matches_and_caches() {
        static DIGITS: check::Pattern = check::Pattern::new("^[0-9]{6}$");
        assert_eq!(check::pattern("123456", &DIGITS), Ok(()));
        assert_eq!(
            check::pattern("12345a", &DIGITS),
            Err("must match `^[0-9]{6}$`".to_owned())
        );
    }

    #[test]
    fn one_of_lists_allowed_values() {
        assert_eq!(
            check::one_of("register", &["register", "bind_email"]),
            Ok(())
        );
        assert_eq!(
            check::one_of("other", &["register", "bind_email"]),
            Err("must be one of register, bind_email".to_owned())
        );
    }

    #[test]
    fn http_url_needs_scheme_and_host() {
        assert_eq!(check::http_url("https://example.com/a.png"), Ok(()));
        assert_eq!(check::http_url("http://127.0.0.1:8080"), Ok(()));
        for bad in [
            "ftp://example.com",
            "https://",
            "https:///path",
            "example.com",
            "https://a b",
        ] {
            assert!(check::http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_needs_object_or_array() {
        assert_eq!(check::json_object_or_array("{\"a\":1}"), Ok(()));
        assert_eq!(check::json_object_or_array("[1]"), Ok(()));
        assert_eq!(
            check::json_object_or_array("1"),
            Err("must be a JSON object or array".to_owned())
        );
        assert!(check::json_object_or_array("{").is_err());
    }

    #[test]
    fn control_characters_are_found() {
        assert_eq!(check::no_control_chars("a.txt"), Ok(()));
        assert_eq!(
            check::no_control_chars("a\0.txt"),
            Err("must not contain control characters (found U+0000 at byte 1)".to_owned())
        );
    }

    #[test]
    fn directional_formatting_is_found() {
        assert_eq!(
            check::no_directional_formatting("\u{200F}שלום team"),
            Ok(())
        );
        assert_eq!(
            check::no_directional_formatting("ab\u{202E}cd"),
            Err(
                "must not contain directional formatting characters (found U+202E at byte 2)"
                    .to_owned()
            )
        );
        for bad in ["\u{202A}", "\u{202D}", "\u{2066}x", "x\u{2069}"] {
            assert!(check::no_directional_formatting(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn violation_paths_name_items() {
        let err = super::item_violation("parts[2].", "etag", 0, "is required".to_owned());
        assert_eq!(err.field(), Some("parts[2].etag[0]"));
        assert_eq!(check::nested("", "parts", Some(2)), "parts[2].");
    }
}
