//! One tokenizer for Chinese, Japanese, Korean and Latin-script text in the same field.
//!
//! A run of CJK characters becomes overlapping bigrams ("定期检修" → 定期, 期检, 检修), each one
//! position after the previous, so any substring of two or more characters is a phrase of
//! consecutive bigrams and matches wherever it occurs. Every CJK character is also a
//! one-character token at the position of the bigram it starts (the last one at the next
//! position), so a single-character keyword matches any text containing that character, while
//! phrases of bigrams keep their positions. An emoji is a token of its own. Any other run of
//! letters or digits is one word, which the analyzer lowercases, folds to ASCII ("café" →
//! "cafe") and reduces with the English Snowball stemmer, so "checking" and "check" meet.
//! Everything else separates tokens, and a position is skipped between runs so that no phrase
//! matches across a separator.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token,
    TokenStream, Tokenizer,
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
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Kind of a run of characters that tokenizes as a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// Consecutive CJK characters, tokenized as bigrams and single characters.
    Cjk,
    /// Consecutive emoji, one token each.
    Emoji,
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

/// Reports whether `c` is a pictographic emoji: the Miscellaneous Symbols and Dingbats blocks
/// and the Supplementary Multilingual Plane's symbol blocks from Mahjong Tiles to Symbols and
/// Pictographs Extended-A. Joiners and variation selectors are not, so they separate.
pub fn is_emoji(c: char) -> bool {
    matches!(c,
        '\u{2600}'..='\u{27BF}'     // Miscellaneous Symbols, Dingbats
        | '\u{2B00}'..='\u{2BFF}'   // Miscellaneous Symbols and Arrows (⭐, ⬆)
        | '\u{1F000}'..='\u{1FAFF}' // Mahjong Tiles to Symbols and Pictographs Extended-A
    )
}

/// Splits text into CJK, emoji and word runs, dropping separators.
pub fn runs(text: &str) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    for (start, c) in text.char_indices() {
        let kind = if is_cjk(c) {
            RunKind::Cjk
        } else if is_emoji(c) {
            RunKind::Emoji
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
            RunKind::Emoji => {
                for (offset, c) in text[run.start..run.end].char_indices() {
                    let start = run.start + offset;
                    push_token(
                        &mut tokens,
                        text,
                        start..start + c.len_utf8(),
                        &mut position,
                    );
                }
            }
            RunKind::Cjk => {
                let starts: Vec<usize> = text[run.start..run.end]
                    .char_indices()
                    .map(|(offset, _)| run.start + offset)
                    .chain(std::iter::once(run.end))
                    .collect();
                // Each character, then the bigram it starts at the same position; the last
                // character starts no bigram.
                for (index, window) in starts.windows(2).enumerate() {
                    push_token_at(&mut tokens, text, window[0]..window[1], position);
                    if let Some(&bigram_end) = starts.get(index + 2) {
                        push_token_at(&mut tokens, text, window[0]..bigram_end, position);
                    }
                    position += 1;
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
    push_token_at(tokens, text, range, *position);
    *position += 1;
}

fn push_token_at(
    tokens: &mut Vec<Token>,
    text: &str,
    range: std::ops::Range<usize>,
    position: usize,
) {
    tokens.push(Token {
        offset_from: range.start,
        offset_to: range.end,
        position,
        text: text[range].to_owned(),
        position_length: 1,
    });
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

    fn owned(pairs: &[(&str, usize)]) -> Vec<(String, usize)> {
        pairs
            .iter()
            .map(|(text, position)| ((*text).to_owned(), *position))
            .collect()
    }

    #[test]
    fn cjk_runs_become_bigrams_and_characters() {
        assert_eq!(
            terms("还有可能"),
            owned(&[
                ("还", 0),
                ("还有", 0),
                ("有", 1),
                ("有可", 1),
                ("可", 2),
                ("可能", 2),
                ("能", 3),
            ])
        );
    }

    #[test]
    fn mixed_text_keeps_positions() {
        assert_eq!(
            terms("Checking 定期检修, OK? 好"),
            owned(&[
                ("check", 0),
                ("定", 2),
                ("定期", 2),
                ("期", 3),
                ("期检", 3),
                ("检", 4),
                ("检修", 4),
                ("修", 5),
                ("ok", 7),
                ("好", 9),
            ])
        );
    }

    #[test]
    fn accents_fold_to_ascii() {
        assert_eq!(terms("Café"), owned(&[("cafe", 0)]));
        assert_eq!(terms("naïve résumé"), owned(&[("naiv", 0), ("resum", 2)]));
        assert_eq!(terms("cafe"), terms("café"));
    }

    #[test]
    fn emoji_are_tokens() {
        assert_eq!(
            terms("rust🦀🦀 is fun 👍🏽!"),
            owned(&[
                ("rust", 0),
                ("🦀", 2),
                ("🦀", 3),
                ("is", 5),
                ("fun", 7),
                ("👍", 9),
                ("🏽", 10),
            ])
        );
        // A variation selector or joiner only separates.
        assert_eq!(terms("❤\u{FE0F}"), owned(&[("❤", 0)]));
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
        assert_eq!(
            pieces,
            vec!["我", "我想", "想", "check", "一", "一下", "下"]
        );
    }
}
