//! Reads the schema IR and emits one SeaORM 2 entity module per table, plus `entity/mod.rs`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::OutputFile;
use crate::schema::ir::{Column, ColumnType, Schema, Table, output_path};
use crate::schema::tokens::{render, snake_ident};

/// Emits `generated/src/entity/<table>.rs` for every table and the `mod.rs` listing them.
pub fn emit(schema: &Schema) -> Result<Vec<OutputFile>, syn::Error> {
    let mut files = Vec::new();
    let mut modules = Vec::new();
    let mut sources = Vec::new();
    for file in &schema.files {
        let source = file.path.to_string_lossy().replace('\\', "/");
        for table in &file.tables {
            let path = output_path("entity", &format!("{}.rs", table.name.snake));
            files.push(render(path, std::slice::from_ref(&source), entity(table))?);
            let module = snake_ident(&table.name);
            let doc = format!(" Table `{}`.", table.name.sql);
            modules.push(quote! {
                #[doc = #doc]
                pub mod #module;
            });
        }
        sources.push(source);
    }
    let mod_rs = quote! {
        //! SeaORM entities, one module per table.
        #(#modules)*
    };
    files.push(render(output_path("entity", "mod.rs"), &sources, mod_rs)?);
    Ok(files)
}

fn entity(table: &Table) -> TokenStream {
    let table_name = &table.name.sql;
    let has_json = table.columns.iter().any(|c| c.ty == ColumnType::Json);
    let eq = if has_json { quote!() } else { quote!(Eq,) };
    let fields = table
        .columns
        .iter()
        .enumerate()
        .map(|(index, column)| field(table, index, column));
    let doc = format!(" A row of `{table_name}`.");

    quote! {
        use sea_orm::entity::prelude::*;
        use serde::{Deserialize, Serialize};

        #[doc = #doc]
        #[derive(Clone, Debug, PartialEq, #eq DeriveEntityModel, Serialize, Deserialize)]
        #[sea_orm(table_name = #table_name)]
        pub struct Model {
            #(#fields)*
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }
}

fn field(table: &Table, index: usize, column: &Column) -> TokenStream {
    let mut options = Vec::new();
    if index == table.primary_key {
        options.push(quote!(primary_key));
        if !column.auto_increment {
            options.push(quote!(auto_increment = false));
        }
    }
    if column.name.sql != column.name.snake {
        let sql = &column.name.sql;
        options.push(quote!(column_name = #sql));
    }
    let column_type = match column.ty {
        ColumnType::String(n) => Some(format!("String(StringLen::N({n}))")),
        ColumnType::Text => Some("Text".to_owned()),
        ColumnType::Json => Some("JsonBinary".to_owned()),
        ColumnType::Bytes => Some("Blob".to_owned()),
        _ => None,
    };
    if let Some(column_type) = column_type {
        options.push(quote!(column_type = #column_type));
    }
    let single_unique = table.uniques.iter().any(|u| u.columns == [index]);
    if single_unique {
        options.push(quote!(unique));
    }
    let attribute = if options.is_empty() {
        quote!()
    } else {
        quote!(#[sea_orm(#(#options),*)])
    };

    let name = snake_ident(&column.name);
    let ty = rust_type(column.ty);
    let ty = if column.nullable {
        quote!(Option<#ty>)
    } else {
        ty
    };
    quote! {
        #attribute
        pub #name: #ty,
    }
}

/// Returns the Rust type of a column's values, as named in the sea-orm entity prelude.
pub(crate) fn rust_type(ty: ColumnType) -> TokenStream {
    match ty {
        ColumnType::SmallInt => quote!(i16),
        ColumnType::Int => quote!(i32),
        ColumnType::BigInt => quote!(i64),
        ColumnType::Bool => quote!(bool),
        ColumnType::String(_) | ColumnType::Text => quote!(String),
        ColumnType::Bytes => quote!(Vec<u8>),
        ColumnType::Json => quote!(Json),
        ColumnType::Timestamp => quote!(DateTimeUtc),
    }
}
