//! AMQP topic matching, used by the in-process bus to route like a RabbitMQ topic exchange.

/// Reports whether `topic` matches a binding `pattern` of dot-separated words, where `*`
/// matches exactly one word and `#` matches zero or more words.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let topic: Vec<&str> = topic.split('.').collect();
    matches_words(&pattern, &topic)
}

fn matches_words(pattern: &[&str], topic: &[&str]) -> bool {
    match pattern.split_first() {
        None => topic.is_empty(),
        Some((&"#", rest)) => (0..=topic.len()).any(|skip| matches_words(rest, &topic[skip..])),
        Some((&word, rest)) => match topic.split_first() {
            Some((&first, topic_rest)) => {
                (word == "*" || word == first) && matches_words(rest, topic_rest)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn topic_patterns() {
        let cases = [
            ("message.push", "message.push", true),
            ("message.push", "message.index", false),
            ("message.*", "message.push", true),
            ("message.*", "message.push.extra", false),
            ("message.#", "message", true),
            ("message.#", "message.push.extra", true),
            ("#", "friend.event", true),
            ("*.event", "friend.event", true),
            ("*.event", "event", false),
            ("#.event", "a.b.event", true),
            ("message", "message.push", false),
        ];
        for (pattern, topic, expected) in cases {
            assert_eq!(
                topic_matches(pattern, topic),
                expected,
                "{pattern} vs {topic}"
            );
        }
    }
}
