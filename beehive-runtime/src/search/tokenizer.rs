//! One tokenizer for Chinese, Japanese, Korean and Latin-script text in the same field.
//!
//! A run of CJK characters becomes overlapping bigrams ("定期检修" → 定期, 期检, 检修), each one
//! position after the previous, so any substring of two or more characters is a phrase of
//! consecutive bigrams and matches wherever it occurs. A lone CJK character between other
//! characters becomes a one-character token. Any other run of letters or digits is one word,
//! which the analyzer lowercases and reduces with the English Snowball stemmer, so "checking"
//! and "check" meet. Everything else separates tokens, and a position is skipped between runs
//! so that no phrase matches across a separator.

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer,
};

/// Name under which the analyzer is registered with the index.
pub const TOKENIZER_NAME: &str = "beehive_cjk";
/// Tokens longer than this many bytes are dropped (a pasted blob is no search term).
const MAX_TOKEN_BYTES: usize = 64;

/// Builds the analyzer used for message content, at index and at query time.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(CjkBigramTokenizer)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Kind of a run of characters that tokenizes as a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Consecutive CJK characters, tokenized as bigrams.
    Cjk,
    /// Consecutive letters or digits of other scripts, one token.
    Word,
}

/// A run of characters with its byte range in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub kind: RunKind,
    pub start: usize,
    pub end: usize,
}

/// Reports whether `c` is written without spaces between words: Han ideographs, kana and
/// Hangul.
pub fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3040}'..='\u{30FF}'     // Hiragana, Katakana
        | '\u{3400}'..='\u{4DBF}'   // CJK Extension A
        | '\u{4E00}'..='\u{9FFF}'   // CJK Unified Ideographs
        | '\u{AC00}'..='\u{D7AF}'   // Hangul syllables
        | '\u{F900}'..='\u{FAFF}'   // CJK Compatibility Ideographs
        | '\u{20000}'..='\u{2FA1F}' // CJK Extensions B to F and supplements
    )
}

/// Splits text into CJK runs and word runs, dropping separators.
pub fn runs(text: &str) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (start, c) in text.char_indices() {
        let kind = if is_cjk(c) {
            RunKind::Cjk
        } else if c.is_alphanumeric() {
            RunKind::Word
        } else {
            continue;
        };
        let end = start + c.len_utf8();
        match runs.last_mut() {
            Some(last) if last.kind == kind && last.end == start => last.end = end,
            _ => runs.push(Run { kind, start, end }),
        }
    }
    runs
}

/// Emits CJK bigrams and whole words; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct CjkBigramTokenizer;

/// Tokens computed up front for one text.
pub struct BigramTokenStream {
    tokens: std::vec::IntoIter<Token>,
    current: Token,
}

impl Tokenizer for CjkBigramTokenizer {
    type TokenStream<'a> = BigramTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        BigramTokenStream {
            tokens: tokenize(text).into_iter(),
            current: Token::default(),
        }
    }
}

impl TokenStream for BigramTokenStream {
    fn advance(&mut self) -> bool {
        match self.tokens.next() {
            Some(token) => {
                self.current = token;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.current
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut position = 0;
    for run in runs(text) {
        match run.kind {
            RunKind::Word => push_token(&mut tokens, text, run.start..run.end, &mut position),
            RunKind::Cjk => {
                let starts: Vec<usize> = text[run.start..run.end]
                    .char_indices()
                    .map(|(offset, _)| run.start + offset)
                    .chain(std::iter::once(run.end))
                    .collect();
                if starts.len() == 2 {
                    push_token(&mut tokens, text, starts[0]..starts[1], &mut position);
                }
                for window in starts.windows(3) {
                    push_token(&mut tokens, text, window[0]..window[2], &mut position);
                }
            }
        }
        // One unused position between runs keeps a phrase from spanning a separator, so
        // "可能是" does not match "可能，能是".
        position += 1;
    }
    tokens
}

fn push_token(
    tokens: &mut Vec<Token>,
    text: &str,
    range: std::ops::Range<usize>,
    position: &mut usize,
) {
    tokens.push(Token {
        offset_from: range.start,
        offset_to: range.end,
        position: *position,
        text: text[range].to_owned(),
        position_length: 1,
    });
    *position += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<(String, usize)> {
        let mut analyzer = analyzer();
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() {
            let token = stream.token();
            terms.push((token.text.clone(), token.position));
        }
        terms
    }

    #[test]
    fn cjk_runs_become_bigrams() {
        assert_eq!(
            terms("还有可能"),
            vec![
                ("还有".to_owned(), 0),
                ("有可".to_owned(), 1),
                ("可能".to_owned(), 2)
            ]
        );
    }

    #[test]
    fn mixed_text_keeps_positions() {
        assert_eq!(
            terms("Checking 定期检修, OK? 好"),
            vec![
                ("check".to_owned(), 0),
                ("定期".to_owned(), 2),
                ("期检".to_owned(), 3),
                ("检修".to_owned(), 4),
                ("ok".to_owned(), 6),
                ("好".to_owned(), 8),
            ]
        );
    }

    #[test]
    fn separators_and_empty_text() {
        assert_eq!(terms(""), Vec::new());
        assert_eq!(terms("，。！ ..."), Vec::new());
        assert_eq!(
            terms("a1-b2"),
            vec![("a1".to_owned(), 0), ("b2".to_owned(), 2)]
        );
    }

    #[test]
    fn offsets_cover_characters() {
        let text = "我想check一下";
        let tokens = tokenize(text);
        let pieces: Vec<&str> = tokens
            .iter()
            .map(|token| &text[token.offset_from..token.offset_to])
            .collect();
        assert_eq!(pieces, vec!["我想", "check", "一下"]);
    }
}
