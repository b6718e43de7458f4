//! Trace ids in the W3C `traceparent` format.

use rand::RngCore;

/// Makes a new random trace id: 32 lowercase hex digits, never all zeros.
pub fn new_trace_id() -> String {
    let mut bytes = [0u8; 16];
    loop {
        rand::rng().fill_bytes(&mut bytes);
        if bytes.iter().any(|b| *b != 0) {
            return hex::encode(bytes);
        }
    }
}

/// Extracts the trace id from a `traceparent` header value (`00-<trace id>-<span id>-<flags>`).
///
/// Returns `None` for a malformed value or the all-zero trace id, which the W3C format forbids.
pub fn parse_traceparent(value: &str) -> Option<String> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let _flags = parts.next()?;
    let is_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !is_hex(version, 2) || !is_hex(trace_id, 32) || !is_hex(span_id, 16) {
        return None;
    }
    if trace_id.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace_id.to_owned())
}

/// Builds a `traceparent` value for an outgoing call that continues `trace_id`.
pub fn traceparent_for(trace_id: &str) -> String {
    let mut span = [0u8; 8];
    rand::rng().fill_bytes(&mut span);
    format!("00-{trace_id}-{}-01", hex::encode(span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trip() {
        let id = new_trace_id();
        assert_eq!(parse_traceparent(&traceparent_for(&id)), Some(id));
    }

    #[test]
    fn traceparent_rejects_zero_and_garbage() {
        let zero = format!("00-{}-{}-01", "0".repeat(32), "1".repeat(16));
        assert_eq!(parse_traceparent(&zero), None);
        assert_eq!(parse_traceparent("garbage"), None);
        assert_eq!(parse_traceparent("00-ABC-def-01"), None);
    }
}
