//! The validated schema: plain data the emitters read.

use std::path::PathBuf;

/// Every table of every schema file, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub files: Vec<SchemaFile>,
}

/// One `schema/<service>.schema` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// Path relative to the workspace root, as given to [`super::generate`].
    pub path: PathBuf,
    /// The owning service: the file name without its extension.
    pub service: Name,
    pub tables: Vec<Table>,
}

/// A name as written in SQL and its Rust spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// The name in the database, exactly as written in the schema.
    pub sql: String,
    /// The snake_case Rust identifier, without any `r#` prefix.
    pub snake: String,
    /// Whether `snake` is a Rust keyword and must be written as a raw identifier.
    pub raw: bool,
    /// The UpperCamelCase spelling, used for types and enum variants.
    pub camel: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: Name,
    pub columns: Vec<Column>,
    /// Index into `columns` of the single-column primary key.
    pub primary_key: usize,
    /// Whether rows are cached by their primary key.
    pub primary_key_cached: bool,
    pub uniques: Vec<UniqueKey>,
    pub indexes: Vec<Index>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: Name,
    pub ty: ColumnType,
    pub nullable: bool,
    pub default: Option<DefaultValue>,
    pub auto_increment: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    SmallInt,
    Int,
    BigInt,
    Bool,
    /// A string of at most this many characters.
    String(u32),
    Text,
    Bytes,
    Json,
    /// A point in time, stored and read as UTC.
    Timestamp,
}

impl ColumnType {
    pub fn is_integer(self) -> bool {
        matches!(self, Self::SmallInt | Self::Int | Self::BigInt)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultValue {
    Int(i64),
    Bool(bool),
    Str(String),
    /// The time of the insert.
    Now,
}

/// A unique key over one or more columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    /// The index name in the database.
    pub name: String,
    /// Indexes into the table's `columns`.
    pub columns: Vec<usize>,
    /// Whether rows are cached by this key.
    pub cached: bool,
}

/// A secondary, non-unique index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub columns: Vec<(usize, SortOrder)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

impl Table {
    /// Returns the primary key column.
    pub fn pk(&self) -> &Column {
        &self.columns[self.primary_key]
    }

    /// Returns the keys rows are cached by: the primary key first (when cached), then each
    /// cached unique key, as lists of column indexes.
    pub fn cached_keys(&self) -> Vec<Vec<usize>> {
        let mut keys = Vec::new();
        if self.primary_key_cached {
            keys.push(vec![self.primary_key]);
        }
        keys.extend(
            self.uniques
                .iter()
                .filter(|u| u.cached)
                .map(|u| u.columns.clone()),
        );
        keys
    }

    pub fn is_cached(&self) -> bool {
        self.primary_key_cached || self.uniques.iter().any(|u| u.cached)
    }
}

/// Returns the path a generated file for `schema` lands at, relative to the workspace root.
pub(crate) fn output_path(kind: &str, file: &str) -> PathBuf {
    PathBuf::from("generated/src").join(kind).join(file)
}
