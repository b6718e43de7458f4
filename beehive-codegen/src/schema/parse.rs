//! Tokenizer and parser for schema files: text in, a syntax tree with positions out.
//!
//! The grammar is line oriented: a `table NAME {` line, then one column, `unique (..)` or
//! `index (..)` item per line, then `}`. `#` starts a comment that runs to the end of the line.

use super::SchemaError;

/// A 1-based line and column (counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A bare word: a name, type or keyword.
    Word(String),
    /// A name in backticks, which may hold any character except a backtick or newline.
    Quoted(String),
    /// A string literal in single quotes; `''` inside stands for one quote.
    Str(String),
    /// An integer literal with an optional leading minus, kept as text until its type is known.
    Int(String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Newline,
    Eof,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// The source text of the token, for error messages.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableAst {
    pub name: Spanned<String>,
    pub columns: Vec<ColumnAst>,
    pub uniques: Vec<UniqueAst>,
    pub indexes: Vec<IndexAst>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnAst {
    pub name: Spanned<String>,
    pub ty: Spanned<String>,
    pub length: Option<Spanned<String>>,
    pub modifiers: Vec<Spanned<Modifier>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modifier {
    Null,
    Pk,
    Auto,
    Unique,
    Cached,
    Default(Literal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Int(String),
    Str(String),
    Bool(bool),
    Now,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueAst {
    pub pos: Pos,
    pub columns: Vec<Spanned<String>>,
    pub cached: bool,
    pub name: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexAst {
    pub pos: Pos,
    pub columns: Vec<(Spanned<String>, bool /* descending */)>,
    pub name: Option<Spanned<String>>,
}

/// Splits `source` into tokens, or fails at the first character no token starts with.
pub fn tokenize(file: &str, source: &str) -> Result<Vec<Token>, SchemaError> {
    let mut tokens = Vec::new();
    let mut chars = source.chars().peekable();
    let mut pos = Pos { line: 1, col: 1 };

    while let Some(&c) = chars.peek() {
        let start = pos;
        let single = |tok: Tok| Token {
            tok,
            pos: start,
            text: c.to_string(),
        };
        match c {
            '\n' => {
                chars.next();
                tokens.push(single(Tok::Newline));
                pos = Pos {
                    line: pos.line + 1,
                    col: 1,
                };
            }
            ' ' | '\t' | '\r' => {
                chars.next();
                pos.col += 1;
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                    pos.col += 1;
                }
            }
            '{' | '}' | '(' | ')' | ',' => {
                chars.next();
                pos.col += 1;
                tokens.push(single(match c {
                    '{' => Tok::LBrace,
                    '}' => Tok::RBrace,
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::Comma,
                }));
            }
            '`' | '\'' => {
                chars.next();
                pos.col += 1;
                let mut value = String::new();
                let mut text = c.to_string();
                loop {
                    match chars.next() {
                        Some(next) if next == c => {
                            pos.col += 1;
                            text.push(next);
                            // Two quotes in a row inside a string literal stand for one.
                            if c == '\'' && chars.peek() == Some(&'\'') {
                                chars.next();
                                pos.col += 1;
                                text.push('\'');
                                value.push('\'');
                                continue;
                            }
                            break;
                        }
                        Some('\n') | None => {
                            let what = if c == '`' { "quoted name" } else { "string" };
                            return Err(SchemaError::at(
                                file,
                                start,
                                &text,
                                format!("unterminated {what}"),
                                format!("close it with {c} on the same line"),
                            ));
                        }
                        Some(next) => {
                            pos.col += 1;
                            text.push(next);
                            value.push(next);
                        }
                    }
                }
                let tok = if c == '`' {
                    if value.is_empty() {
                        return Err(SchemaError::at(
                            file,
                            start,
                            &text,
                            "empty quoted name",
                            "write a name between the backticks",
                        ));
                    }
                    Tok::Quoted(value)
                } else {
                    Tok::Str(value)
                };
                tokens.push(Token {
                    tok,
                    pos: start,
                    text,
                });
            }
            c if c == '-' || c.is_ascii_digit() => {
                let mut text = String::new();
                text.push(c);
                chars.next();
                pos.col += 1;
                while let Some(&d) = chars
                    .peek()
                    .filter(|d| d.is_ascii_alphanumeric() || **d == '_')
                {
                    text.push(d);
                    chars.next();
                    pos.col += 1;
                }
                let digits = text.strip_prefix('-').unwrap_or(&text);
                if digits.is_empty() || !digits.chars().all(|d| d.is_ascii_digit()) {
                    return Err(SchemaError::at(
                        file,
                        start,
                        &text,
                        "invalid number",
                        "numbers are decimal integers such as 42 or -1; quote odd names with backticks",
                    ));
                }
                tokens.push(Token {
                    tok: Tok::Int(text.clone()),
                    pos: start,
                    text,
                });
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut text = String::new();
                while let Some(&d) = chars
                    .peek()
                    .filter(|d| d.is_ascii_alphanumeric() || **d == '_')
                {
                    text.push(d);
                    chars.next();
                    pos.col += 1;
                }
                tokens.push(Token {
                    tok: Tok::Word(text.clone()),
                    pos: start,
                    text,
                });
            }
            other => {
                return Err(SchemaError::at(
                    file,
                    start,
                    &other.to_string(),
                    "unexpected character",
                    "names are letters, digits and `_`; quote any other name with backticks",
                ));
            }
        }
    }
    tokens.push(Token {
        tok: Tok::Eof,
        pos,
        text: "end of file".to_owned(),
    });
    Ok(tokens)
}

/// Parses one schema file into its tables.
pub fn parse(file: &str, source: &str) -> Result<Vec<TableAst>, SchemaError> {
    let tokens = tokenize(file, source)?;
    let mut parser = Parser {
        file,
        tokens,
        next: 0,
    };
    parser.file()
}

struct Parser<'a> {
    file: &'a str,
    tokens: Vec<Token>,
    next: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[self.next.min(last)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.next + ahead).min(last)].tok
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if self.next < self.tokens.len() - 1 {
            self.next += 1;
        }
        token
    }

    fn error(
        &self,
        token: &Token,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> SchemaError {
        SchemaError::at(self.file, token.pos, &token.text, message, hint)
    }

    fn skip_newlines(&mut self) {
        while self.peek().tok == Tok::Newline {
            self.bump();
        }
    }

    fn expect(&mut self, tok: Tok, what: &str, hint: &str) -> Result<Token, SchemaError> {
        let token = self.bump();
        if token.tok == tok {
            Ok(token)
        } else {
            Err(self.error(&token, format!("expected {what}"), hint))
        }
    }

    fn end_of_line(&mut self, hint: &str) -> Result<(), SchemaError> {
        let token = self.peek().clone();
        match token.tok {
            Tok::Newline => {
                self.bump();
                Ok(())
            }
            Tok::RBrace | Tok::Eof => Ok(()),
            _ => Err(self.error(&token, "expected the end of the line", hint)),
        }
    }

    /// Reads a name: a bare word or a backtick-quoted name.
    fn name(&mut self, what: &str) -> Result<Spanned<String>, SchemaError> {
        let token = self.bump();
        match token.tok {
            Tok::Word(value) | Tok::Quoted(value) => Ok(Spanned {
                value,
                pos: token.pos,
                text: token.text,
            }),
            _ => Err(self.error(
                &token,
                format!("expected {what}"),
                "names are letters, digits and `_`; quote any other name with backticks",
            )),
        }
    }

    fn file(&mut self) -> Result<Vec<TableAst>, SchemaError> {
        let mut tables = Vec::new();
        loop {
            self.skip_newlines();
            let token = self.peek().clone();
            match &token.tok {
                Tok::Eof => return Ok(tables),
                Tok::Word(word) if word == "table" => {
                    self.bump();
                    tables.push(self.table()?);
                }
                _ => {
                    return Err(self.error(
                        &token,
                        "expected `table`",
                        "a schema file is a list of `table NAME { ... }` blocks",
                    ));
                }
            }
        }
    }

    fn table(&mut self) -> Result<TableAst, SchemaError> {
        let name = self.name("a table name after `table`")?;
        self.expect(
            Tok::LBrace,
            "`{` after the table name",
            "write `table NAME {` on one line",
        )?;
        let mut table = TableAst {
            name,
            columns: Vec::new(),
            uniques: Vec::new(),
            indexes: Vec::new(),
        };
        loop {
            self.skip_newlines();
            let token = self.peek().clone();
            match &token.tok {
                Tok::RBrace => {
                    self.bump();
                    self.end_of_line("start the next table on a new line")?;
                    return Ok(table);
                }
                Tok::Eof => {
                    return Err(self.error(
                        &token,
                        format!("table `{}` is not closed", table.name.value),
                        "end the table with `}`",
                    ));
                }
                Tok::Word(word) if word == "unique" && *self.peek_at(1) == Tok::LParen => {
                    self.bump();
                    table.uniques.push(self.unique(token.pos)?);
                }
                Tok::Word(word) if word == "index" && *self.peek_at(1) == Tok::LParen => {
                    self.bump();
                    table.indexes.push(self.index(token.pos)?);
                }
                _ => table.columns.push(self.column()?),
            }
        }
    }

    fn column_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, SchemaError>,
    ) -> Result<Vec<T>, SchemaError> {
        self.expect(Tok::LParen, "`(`", "list the key's columns in parentheses")?;
        let mut items = vec![item(self)?];
        loop {
            let token = self.bump();
            match token.tok {
                Tok::Comma => items.push(item(self)?),
                Tok::RParen => return Ok(items),
                _ => {
                    return Err(self.error(
                        &token,
                        "expected `,` or `)`",
                        "separate columns with commas and close the list with `)`",
                    ));
                }
            }
        }
    }

    fn key_name(&mut self) -> Result<Option<Spanned<String>>, SchemaError> {
        if matches!(&self.peek().tok, Tok::Word(w) if w == "as") {
            self.bump();
            return Ok(Some(self.name("an index name after `as`")?));
        }
        Ok(None)
    }

    fn unique(&mut self, pos: Pos) -> Result<UniqueAst, SchemaError> {
        let columns = self.column_list(|p| p.name("a column name"))?;
        let mut key = UniqueAst {
            pos,
            columns,
            cached: false,
            name: None,
        };
        loop {
            let token = self.peek().clone();
            match &token.tok {
                Tok::Word(w) if w == "cached" && !key.cached => {
                    self.bump();
                    key.cached = true;
                }
                Tok::Word(w) if w == "as" && key.name.is_none() => key.name = self.key_name()?,
                _ => break,
            }
        }
        self.end_of_line("a unique key takes `cached` and `as NAME` after its columns")?;
        Ok(key)
    }

    fn index(&mut self, pos: Pos) -> Result<IndexAst, SchemaError> {
        let columns = self.column_list(|p| {
            let name = p.name("a column name")?;
            let descending = match &p.peek().tok {
                Tok::Word(w) if w == "desc" => true,
                Tok::Word(w) if w == "asc" => false,
                _ => return Ok((name, false)),
            };
            p.bump();
            Ok((name, descending))
        })?;
        let name = self.key_name()?;
        self.end_of_line("an index takes only `as NAME` after its columns")?;
        Ok(IndexAst { pos, columns, name })
    }

    fn column(&mut self) -> Result<ColumnAst, SchemaError> {
        let name = self.name("a column name, `unique (...)` or `index (...)`")?;
        let ty_token = self.bump();
        let ty = match ty_token.tok {
            Tok::Word(ref word) => Spanned {
                value: word.clone(),
                pos: ty_token.pos,
                text: ty_token.text.clone(),
            },
            _ => {
                return Err(self.error(
                    &ty_token,
                    format!("expected a type for column `{}`", name.value),
                    super::TYPE_HINT,
                ));
            }
        };
        let mut length = None;
        if self.peek().tok == Tok::LParen {
            self.bump();
            let token = self.bump();
            let Tok::Int(ref digits) = token.tok else {
                return Err(self.error(
                    &token,
                    "expected a length",
                    "write a length such as `string(50)`",
                ));
            };
            length = Some(Spanned {
                value: digits.clone(),
                pos: token.pos,
                text: token.text.clone(),
            });
            self.expect(
                Tok::RParen,
                "`)` after the length",
                "write a length such as `string(50)`",
            )?;
        }
        let mut modifiers = Vec::new();
        loop {
            let token = self.peek().clone();
            let Tok::Word(word) = &token.tok else { break };
            let modifier = match word.as_str() {
                "null" => Modifier::Null,
                "pk" => Modifier::Pk,
                "auto" => Modifier::Auto,
                "unique" => Modifier::Unique,
                "cached" => Modifier::Cached,
                "default" => {
                    self.bump();
                    let literal = self.literal()?;
                    modifiers.push(Spanned {
                        value: Modifier::Default(literal.value),
                        pos: literal.pos,
                        text: literal.text,
                    });
                    continue;
                }
                _ => {
                    return Err(self.error(
                        &token,
                        format!("unknown column modifier `{word}`"),
                        "modifiers are null, pk, auto, unique, cached and default VALUE",
                    ));
                }
            };
            self.bump();
            modifiers.push(Spanned {
                value: modifier,
                pos: token.pos,
                text: token.text,
            });
        }
        self.end_of_line("modifiers are null, pk, auto, unique, cached and default VALUE")?;
        Ok(ColumnAst {
            name,
            ty,
            length,
            modifiers,
        })
    }

    fn literal(&mut self) -> Result<Spanned<Literal>, SchemaError> {
        let token = self.bump();
        let value = match &token.tok {
            Tok::Int(digits) => Literal::Int(digits.clone()),
            Tok::Str(value) => Literal::Str(value.clone()),
            Tok::Word(w) if w == "true" => Literal::Bool(true),
            Tok::Word(w) if w == "false" => Literal::Bool(false),
            Tok::Word(w) if w == "now" => Literal::Now,
            _ => {
                return Err(self.error(
                    &token,
                    "expected a default value",
                    "a default is an integer, 'text in single quotes', true, false or now",
                ));
            }
        };
        Ok(Spanned {
            value,
            pos: token.pos,
            text: token.text,
        })
    }
}
