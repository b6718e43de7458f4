//! Splitting a keyword into the parts that must all match.

use tantivy::tokenizer::TokenStream;

use super::tokenizer::{RunKind, analyzer, runs};

/// One run of a keyword: a Latin-script word or a CJK substring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeywordPart {
    pub kind: RunKind,
    /// The run as typed.
    pub text: String,
    /// Index terms the run analyzes to: one stem for a word, consecutive bigrams for CJK (the
    /// character itself for a single CJK character), one term per emoji.
    pub terms: Vec<String>,
}

/// Splits a keyword into runs and analyzes each one as the index does. Runs that analyze to
/// nothing (an over-long word) are left out.
pub fn parse_keyword(keyword: &str) -> Vec<KeywordPart> {
    let mut analyzer = analyzer();
    let mut parts = Vec::new();
    for run in runs(keyword) {
        let text = &keyword[run.start..run.end];
        let mut terms = Vec::new();
        // A CJK run of two or more characters is searched as its bigrams alone: the index
        // also holds each character, but the bigram phrase already requires them.
        let bigrams_only = run.kind == RunKind::Cjk && text.chars().nth(1).is_some();
        let mut stream = analyzer.token_stream(text);
        while stream.advance() {
            let token = stream.token();
            if bigrams_only && text[token.offset_from..token.offset_to].chars().count() == 1 {
                continue;
            }
            terms.push(token.text.clone());
        }
        if !terms.is_empty() {
            parts.push(KeywordPart {
                kind: run.kind,
                text: text.to_owned(),
                terms,
            });
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_parts() {
        let parts = parse_keyword("Checking 定期检, ok");
        let summary: Vec<(RunKind, &str, Vec<&str>)> = parts
            .iter()
            .map(|part| {
                (
                    part.kind,
                    part.text.as_str(),
                    part.terms.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (RunKind::Word, "Checking", vec!["check"]),
                (RunKind::Cjk, "定期检", vec!["定期", "期检"]),
                (RunKind::Word, "ok", vec!["ok"]),
            ]
        );
    }

    #[test]
    fn single_characters_and_emoji() {
        let terms = |keyword: &str| -> Vec<(RunKind, Vec<String>)> {
            parse_keyword(keyword)
                .into_iter()
                .map(|part| (part.kind, part.terms))
                .collect()
        };
        assert_eq!(terms("我"), vec![(RunKind::Cjk, vec!["我".to_owned()])]);
        assert_eq!(
            terms("🦀 café"),
            vec![
                (RunKind::Emoji, vec!["🦀".to_owned()]),
                (RunKind::Word, vec!["cafe".to_owned()]),
            ]
        );
    }
}
