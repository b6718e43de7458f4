//! Checks a parsed schema and lowers it to the IR: types, defaults, keys and Rust names.

use std::collections::HashMap;
use std::path::PathBuf;

use heck::{ToSnakeCase, ToUpperCamelCase};

use super::ir::{
    Column, ColumnType, DefaultValue, Index, Name, Schema, SchemaFile, SortOrder, Table, UniqueKey,
};
use super::parse::{ColumnAst, Literal, Modifier, Pos, Spanned, TableAst};
use super::{SchemaError, TYPE_HINT};

/// Maximum index name length in PostgreSQL, in bytes (MySQL allows 64).
const MAX_INDEX_NAME_LEN: usize = 63;
/// Longest `string(N)`: MySQL rows hold at most 65,535 bytes and utf8mb4 takes 4 per character.
const MAX_STRING_LEN: u32 = 16_383;
/// Largest index key InnoDB accepts, in bytes.
const MAX_INDEX_KEY_BYTES: u32 = 3_072;

/// Words that must be written as raw identifiers (`r#type`) in Rust 2024.
const RUST_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];
/// Keywords that cannot be raw identifiers; a suffix is appended instead.
const NON_RAW_KEYWORDS: &[&str] = &["self", "super", "crate"];

type Parsed = Vec<(PathBuf, String, Vec<TableAst>)>;

/// Validates every parsed file and builds the IR.
pub fn validate(parsed: Parsed) -> Result<Schema, SchemaError> {
    let mut files = Vec::new();
    let mut table_names: HashMap<String, (String, Pos)> = HashMap::new();
    let mut module_names: HashMap<String, String> = HashMap::new();
    let mut index_names: HashMap<String, String> = HashMap::new();
    let mut services: HashMap<String, String> = HashMap::new();

    for (path, file, tables) in parsed {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let origin = Pos { line: 1, col: 1 };
        let service = rust_name(&stem, "service").ok_or_else(|| {
            SchemaError::at(
                &file,
                origin,
                &stem,
                "the file name gives no Rust name for its service",
                "name schema files after their service, such as `user.schema`",
            )
        })?;
        if let Some(other) = services.insert(service.camel.clone(), file.clone()) {
            return Err(SchemaError::at(
                &file,
                origin,
                &stem,
                format!("service name `{}` is also used by {other}", service.snake),
                "give each schema file a distinct name",
            ));
        }

        let mut ir_tables = Vec::new();
        for table in tables {
            let ir = table_ir(&file, &table)?;
            let location = format!("{file}:{}:{}", table.name.pos.line, table.name.pos.col);
            if let Some((other, _)) =
                table_names.insert(ir.name.sql.clone(), (location.clone(), table.name.pos))
            {
                return Err(err(
                    &file,
                    &table.name,
                    format!("table `{}` is already defined at {other}", ir.name.sql),
                    "table names are global: rename one of them",
                ));
            }
            if let Some(other) = module_names.insert(ir.name.snake.clone(), location.clone()) {
                return Err(err(
                    &file,
                    &table.name,
                    format!(
                        "table `{}` gives the same Rust module `{}` as the table at {other}",
                        ir.name.sql, ir.name.snake
                    ),
                    "rename one of the tables",
                ));
            }
            for name in ir
                .uniques
                .iter()
                .map(|u| &u.name)
                .chain(ir.indexes.iter().map(|i| &i.name))
            {
                if let Some(other) = index_names.insert(name.clone(), location.clone()) {
                    return Err(err(
                        &file,
                        &table.name,
                        format!("index name `{name}` is already used by the table at {other}"),
                        "index names are global in PostgreSQL: name the key with `as NAME`",
                    ));
                }
            }
            ir_tables.push(ir);
        }
        files.push(SchemaFile {
            path,
            service,
            tables: ir_tables,
        });
    }
    Ok(Schema { files })
}

fn err(
    file: &str,
    at: &Spanned<impl Sized>,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> SchemaError {
    SchemaError::at(file, at.pos, &at.text, message, hint)
}

/// Derives the Rust spellings of a name, or `None` when no letter or digit is left.
pub fn rust_name(sql: &str, kind: &str) -> Option<Name> {
    let cleaned: String = sql
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let mut snake = cleaned.to_snake_case();
    if snake.is_empty() {
        return None;
    }
    if snake.starts_with(|c: char| c.is_ascii_digit()) {
        snake = format!("{kind}_{snake}");
    }
    if NON_RAW_KEYWORDS.contains(&snake.as_str()) {
        snake = format!("{snake}_{kind}");
    }
    let raw = RUST_KEYWORDS.contains(&snake.as_str());
    let camel = snake.to_upper_camel_case();
    Some(Name {
        sql: sql.to_owned(),
        snake,
        raw,
        camel,
    })
}

fn table_ir(file: &str, table: &TableAst) -> Result<Table, SchemaError> {
    let name = rust_name(&table.name.value, "table").ok_or_else(|| {
        err(
            file,
            &table.name,
            "the table name gives no Rust name",
            "use at least one ASCII letter or digit",
        )
    })?;
    if table.columns.is_empty() {
        return Err(err(
            file,
            &table.name,
            format!("table `{}` has no columns", name.sql),
            "add a primary key such as `id bigint pk auto`",
        ));
    }

    let mut columns = Vec::new();
    let mut by_sql: HashMap<&str, usize> = HashMap::new();
    let mut by_snake: HashMap<String, &str> = HashMap::new();
    let mut by_camel: HashMap<String, &str> = HashMap::new();
    let mut primary_key = None;
    let mut primary_key_cached = false;
    let mut uniques = Vec::new();

    for ast in &table.columns {
        let column = column_ir(file, ast)?;
        let index = columns.len();
        if by_sql.insert(&ast.name.value, index).is_some() {
            return Err(err(
                file,
                &ast.name,
                format!("column `{}` is defined twice", ast.name.value),
                "remove or rename one of them",
            ));
        }
        for (map, spelling) in [
            (&mut by_snake, &column.name.snake),
            (&mut by_camel, &column.name.camel),
        ] {
            if let Some(other) = map.insert(spelling.clone(), &ast.name.value) {
                return Err(err(
                    file,
                    &ast.name,
                    format!(
                        "columns `{other}` and `{}` both become `{spelling}` in Rust",
                        ast.name.value
                    ),
                    "rename one of them",
                ));
            }
        }

        let has = |m: &Modifier| ast.modifiers.iter().any(|s| &s.value == m);
        if has(&Modifier::Pk) {
            if let Some(previous) = primary_key {
                let previous: &Column = &columns[previous];
                return Err(err(
                    file,
                    &ast.name,
                    format!(
                        "column `{}` is a second primary key after `{}`",
                        ast.name.value, previous.name.sql
                    ),
                    "composite primary keys are not supported: use an `id` column and a `unique (...)` key",
                ));
            }
            primary_key = Some(index);
            primary_key_cached = has(&Modifier::Cached);
        } else if let Some(unique) = ast.modifiers.iter().find(|m| m.value == Modifier::Unique) {
            let at = spanned(unique.pos, &unique.text);
            let cached = has(&Modifier::Cached);
            check_key(file, &at, &[(&column, &ast.name)], cached)?;
            uniques.push(UniqueKey {
                name: key_name(file, &at, "uq", &name, &[&column.name], None)?,
                columns: vec![index],
                cached,
            });
        }
        columns.push(column);
    }

    let Some(primary_key) = primary_key else {
        return Err(err(
            file,
            &table.name,
            format!("table `{}` has no primary key", name.sql),
            "mark one column `pk`, such as `id bigint pk auto`",
        ));
    };

    let lookup = |column: &Spanned<String>| {
        by_sql.get(column.value.as_str()).copied().ok_or_else(|| {
            err(
                file,
                column,
                format!(
                    "unknown column `{}` in table `{}`",
                    column.value, table.name.value
                ),
                "list only columns defined in this table",
            )
        })
    };

    for unique in &table.uniques {
        let mut indexes = Vec::new();
        for column in &unique.columns {
            let index = lookup(column)?;
            if indexes.contains(&index) {
                return Err(err(
                    file,
                    column,
                    format!("column `{}` appears twice in the key", column.value),
                    "list each column once",
                ));
            }
            indexes.push(index);
        }
        let at = spanned(unique.pos, "unique");
        let parts: Vec<(&Column, &Spanned<String>)> = indexes
            .iter()
            .map(|&i| &columns[i])
            .zip(&unique.columns)
            .collect();
        check_key(file, &at, &parts, unique.cached)?;
        let names: Vec<&Name> = indexes.iter().map(|&i| &columns[i].name).collect();
        uniques.push(UniqueKey {
            name: key_name(file, &at, "uq", &name, &names, unique.name.as_ref())?,
            columns: indexes,
            cached: unique.cached,
        });
    }

    let mut indexes = Vec::new();
    for index in &table.indexes {
        let mut parts = Vec::new();
        for (column, descending) in &index.columns {
            let position = lookup(column)?;
            if parts.iter().any(|(p, _)| *p == position) {
                return Err(err(
                    file,
                    column,
                    format!("column `{}` appears twice in the index", column.value),
                    "list each column once",
                ));
            }
            let order = if *descending {
                SortOrder::Desc
            } else {
                SortOrder::Asc
            };
            parts.push((position, order));
        }
        let at = spanned(index.pos, "index");
        let checked: Vec<(&Column, &Spanned<String>)> = parts
            .iter()
            .map(|&(i, _)| &columns[i])
            .zip(index.columns.iter().map(|(c, _)| c))
            .collect();
        check_key(file, &at, &checked, false)?;
        let names: Vec<&Name> = parts.iter().map(|&(i, _)| &columns[i].name).collect();
        indexes.push(Index {
            name: key_name(file, &at, "idx", &name, &names, index.name.as_ref())?,
            columns: parts,
        });
    }

    let table_ir = Table {
        name,
        columns,
        primary_key,
        primary_key_cached,
        uniques,
        indexes,
    };
    check_primary_key(file, table, &table_ir)?;
    Ok(table_ir)
}

fn spanned(pos: Pos, text: &str) -> Spanned<String> {
    Spanned {
        value: text.to_owned(),
        pos,
        text: text.to_owned(),
    }
}

fn key_name(
    file: &str,
    key: &Spanned<String>,
    prefix: &str,
    table_name: &Name,
    columns: &[&Name],
    explicit: Option<&Spanned<String>>,
) -> Result<String, SchemaError> {
    let (name, at) = match explicit {
        Some(explicit) => (explicit.value.clone(), explicit),
        None => {
            let columns: Vec<&str> = columns.iter().map(|c| c.snake.as_str()).collect();
            (
                format!("{prefix}_{}_{}", table_name.snake, columns.join("_")),
                key,
            )
        }
    };
    if name.len() > MAX_INDEX_NAME_LEN {
        return Err(err(
            file,
            at,
            format!("index name `{name}` is longer than {MAX_INDEX_NAME_LEN} bytes"),
            "name the key with `as NAME` after its column list",
        ));
    }
    Ok(name)
}

/// Checks that the primary key is a non-null integer or string.
fn check_primary_key(file: &str, ast: &TableAst, table: &Table) -> Result<(), SchemaError> {
    let pk_ast = &ast.columns[table.primary_key];
    let pk = table.pk();
    if !(pk.ty.is_integer() || matches!(pk.ty, ColumnType::String(_))) {
        return Err(err(
            file,
            &pk_ast.ty,
            "a primary key must be an integer or a string(N)",
            "use `bigint pk auto` or `string(N) pk`",
        ));
    }
    if pk.nullable {
        return Err(err(
            file,
            &pk_ast.name,
            "a primary key cannot be `null`",
            "remove `null`",
        ));
    }
    Ok(())
}

/// Checks that a key's columns can be indexed on every database and, for a cached key, that a
/// cache key can spell their values.
fn check_key(
    file: &str,
    key: &Spanned<String>,
    columns: &[(&Column, &Spanned<String>)],
    cached: bool,
) -> Result<(), SchemaError> {
    let mut bytes = 0;
    for (column, at) in columns {
        let Some(size) = key_bytes(column.ty) else {
            return Err(err(
                file,
                at,
                format!(
                    "column `{}` cannot be part of a key or index",
                    column.name.sql
                ),
                "text, bytes and json cannot be indexed on MySQL: use string(N)",
            ));
        };
        bytes += size;
        let cacheable =
            column.ty.is_integer() || matches!(column.ty, ColumnType::String(_) | ColumnType::Bool);
        if cached && !cacheable {
            return Err(err(
                file,
                at,
                format!(
                    "column `{}` cannot be part of a cached key",
                    column.name.sql
                ),
                "cached keys use integer, string(N) and bool columns",
            ));
        }
    }
    if bytes > MAX_INDEX_KEY_BYTES {
        return Err(err(
            file,
            key,
            format!("the key takes {bytes} bytes, more than MySQL's {MAX_INDEX_KEY_BYTES}"),
            "shorten the string(N) columns of the key (4 bytes per character)",
        ));
    }
    Ok(())
}

fn key_bytes(ty: ColumnType) -> Option<u32> {
    match ty {
        ColumnType::SmallInt => Some(2),
        ColumnType::Int => Some(4),
        ColumnType::BigInt | ColumnType::Timestamp => Some(8),
        ColumnType::Bool => Some(1),
        ColumnType::String(n) => Some(n * 4),
        ColumnType::Text | ColumnType::Bytes | ColumnType::Json => None,
    }
}

fn column_ir(file: &str, ast: &ColumnAst) -> Result<Column, SchemaError> {
    let name = rust_name(&ast.name.value, "column").ok_or_else(|| {
        err(
            file,
            &ast.name,
            "the column name gives no Rust name",
            "use at least one ASCII letter or digit",
        )
    })?;
    let ty = column_type(file, ast)?;

    let mut seen: Vec<&Modifier> = Vec::new();
    for modifier in &ast.modifiers {
        let same_kind = seen
            .iter()
            .any(|s| std::mem::discriminant(*s) == std::mem::discriminant(&modifier.value));
        if same_kind {
            return Err(err(
                file,
                modifier,
                "modifier given twice",
                "write each modifier once",
            ));
        }
        seen.push(&modifier.value);
    }
    let has = |m: &Modifier| seen.contains(&m);
    let find = |m: &Modifier| ast.modifiers.iter().find(|s| &s.value == m);

    let nullable = has(&Modifier::Null);
    let auto_increment = has(&Modifier::Auto);
    if let Some(auto) = find(&Modifier::Auto)
        && (!has(&Modifier::Pk) || !ty.is_integer())
    {
        return Err(err(
            file,
            auto,
            "`auto` needs an integer primary key",
            "write `bigint pk auto`",
        ));
    }
    if let (Some(unique), true) = (find(&Modifier::Unique), has(&Modifier::Pk)) {
        return Err(err(
            file,
            unique,
            "a primary key is already unique",
            "remove `unique`",
        ));
    }
    if let Some(cached) = find(&Modifier::Cached)
        && !has(&Modifier::Pk)
        && !has(&Modifier::Unique)
    {
        return Err(err(
            file,
            cached,
            "`cached` needs a unique column",
            "add `unique` or `pk`, or cache a composite key with `unique (a, b) cached`",
        ));
    }

    let mut default = None;
    for modifier in &ast.modifiers {
        if let Modifier::Default(literal) = &modifier.value {
            if auto_increment {
                return Err(err(
                    file,
                    modifier,
                    "an `auto` column cannot have a default",
                    "remove the default",
                ));
            }
            default = Some(default_value(file, modifier, literal, ty)?);
        }
    }

    Ok(Column {
        name,
        ty,
        nullable,
        default,
        auto_increment,
    })
}

fn column_type(file: &str, ast: &ColumnAst) -> Result<ColumnType, SchemaError> {
    let ty = match ast.ty.value.as_str() {
        "smallint" => ColumnType::SmallInt,
        "int" => ColumnType::Int,
        "bigint" => ColumnType::BigInt,
        "bool" => ColumnType::Bool,
        "text" => ColumnType::Text,
        "bytes" => ColumnType::Bytes,
        "json" => ColumnType::Json,
        "timestamp" => ColumnType::Timestamp,
        "string" => {
            let Some(length) = &ast.length else {
                return Err(err(
                    file,
                    &ast.ty,
                    "`string` needs a maximum length",
                    "write `string(N)`, or `text` for unbounded text",
                ));
            };
            let n = length
                .value
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_STRING_LEN).contains(n));
            let Some(n) = n else {
                return Err(err(
                    file,
                    length,
                    format!("string length must be between 1 and {MAX_STRING_LEN}"),
                    "use `text` for longer values",
                ));
            };
            return Ok(ColumnType::String(n));
        }
        other => {
            return Err(err(
                file,
                &ast.ty,
                format!("unknown type `{other}`"),
                TYPE_HINT,
            ));
        }
    };
    if let Some(length) = &ast.length {
        return Err(err(
            file,
            length,
            format!("type `{}` takes no length", ast.ty.value),
            "only `string(N)` takes a length",
        ));
    }
    Ok(ty)
}

fn default_value(
    file: &str,
    at: &Spanned<Modifier>,
    literal: &Literal,
    ty: ColumnType,
) -> Result<DefaultValue, SchemaError> {
    let mismatch = |expected: &str| {
        err(
            file,
            at,
            format!("default does not fit the column type: expected {expected}"),
            "a default is an integer, 'text in single quotes', true, false or now, matching the type",
        )
    };
    match (literal, ty) {
        (Literal::Int(digits), ty) if ty.is_integer() => {
            let range = match ty {
                ColumnType::SmallInt => i64::from(i16::MIN)..=i64::from(i16::MAX),
                ColumnType::Int => i64::from(i32::MIN)..=i64::from(i32::MAX),
                _ => i64::MIN..=i64::MAX,
            };
            match digits.parse::<i64>().ok().filter(|v| range.contains(v)) {
                Some(value) => Ok(DefaultValue::Int(value)),
                None => Err(err(
                    file,
                    at,
                    "default is out of range for the column type",
                    "use a smaller number or a wider integer type",
                )),
            }
        }
        (Literal::Bool(value), ColumnType::Bool) => Ok(DefaultValue::Bool(*value)),
        (Literal::Str(value), ColumnType::String(n)) => {
            if value.chars().count() > n as usize {
                return Err(err(
                    file,
                    at,
                    format!("default is longer than {n} characters"),
                    "shorten the default or widen the column",
                ));
            }
            Ok(DefaultValue::Str(value.clone()))
        }
        (Literal::Now, ColumnType::Timestamp) => Ok(DefaultValue::Now),
        (_, ColumnType::Text | ColumnType::Bytes | ColumnType::Json) => Err(err(
            file,
            at,
            "text, bytes and json columns cannot have a default",
            "MySQL rejects such defaults: set the value on insert",
        )),
        (_, ty) if ty.is_integer() => Err(mismatch("an integer")),
        (_, ColumnType::Bool) => Err(mismatch("true or false")),
        (_, ColumnType::String(_)) => Err(mismatch("'text in single quotes'")),
        _ => Err(mismatch("now")),
    }
}
