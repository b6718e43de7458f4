//! Reads the schema IR and emits a cache-aside model per table with cached keys, plus
//! `model/mod.rs`. The models are thin: `beehive_runtime::cache::ModelStore` contains the semantics.
//! They name the entities by relative path (`super::super::entity`), so the `entity` and `model`
//! modules can sit under any parent module.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use super::entity::rust_type;
use crate::OutputFile;
use crate::schema::ir::{ColumnType, Schema, Table, output_path};
use crate::schema::tokens::{render, snake_ident};

/// Emits `generated/src/model/<table>.rs` for every table with cached keys and the `mod.rs`.
pub fn emit(schema: &Schema) -> Result<Vec<OutputFile>, syn::Error> {
    let mut files = Vec::new();
    let mut modules = Vec::new();
    let mut sources = Vec::new();
    for file in &schema.files {
        let source = file.path.to_string_lossy().replace('\\', "/");
        for table in file.tables.iter().filter(|t| t.is_cached()) {
            let path = output_path("model", &format!("{}.rs", table.name.snake));
            files.push(render(path, std::slice::from_ref(&source), model(table))?);
            let module = snake_ident(&table.name);
            let model = model_ident(table);
            modules.push(quote! {
                pub mod #module;
                pub use #module::#model;
            });
        }
        sources.push(source);
    }
    let mod_rs = quote! {
        //! Cache-aside models, one module per table with cached keys.
        #(#modules)*
    };
    files.push(render(output_path("model", "mod.rs"), &sources, mod_rs)?);
    Ok(files)
}

fn model_ident(table: &Table) -> Ident {
    Ident::new(&format!("{}Model", table.name.camel), Span::call_site())
}

/// Returns the key's column names as they appear in cache keys: SQL names joined by `,`.
fn key_columns(table: &Table, key: &[usize]) -> String {
    let names: Vec<&str> = key
        .iter()
        .map(|&i| table.columns[i].name.sql.as_str())
        .collect();
    names.join(",")
}

fn model(table: &Table) -> TokenStream {
    let table_name = &table.name.sql;
    let entity_module = snake_ident(&table.name);
    let model = model_ident(table);
    let cache_keys = cache_keys_body(table);
    let find_one = find_one(table);
    let finders = table
        .uniques
        .iter()
        .filter(|u| u.cached)
        .map(|u| find_one_by(table, &u.columns));
    let cached_by: Vec<String> = table
        .cached_keys()
        .iter()
        .map(|key| format!("({})", key_columns(table, key).replace(',', ", ")))
        .collect();
    let doc = format!(
        " Cache-aside access to `{table_name}` rows, cached by {}.",
        cached_by.join(", ")
    );
    let imports = if table.uniques.iter().any(|u| u.cached) {
        quote! {
            use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

            use super::super::entity::#entity_module::{ActiveModel, Column, Entity, Model};
        }
    } else {
        quote! {
            use sea_orm::{DatabaseConnection, EntityTrait};

            use super::super::entity::#entity_module::{ActiveModel, Entity, Model};
        }
    };

    quote! {
        use beehive_runtime::cache::{CacheAside, CachedEntity, ModelError, ModelStore};
        #imports

        impl CachedEntity for Entity {
            const TABLE: &'static str = #table_name;

            fn cache_keys(cache: &CacheAside, row: &Model) -> Vec<String> {
                #cache_keys
            }
        }

        #[doc = #doc]
        #[derive(Clone)]
        pub struct #model {
            store: ModelStore<Entity>,
        }

        impl #model {
            pub fn new(db: DatabaseConnection, cache: CacheAside) -> Self {
                Self { store: ModelStore::new(db, cache) }
            }

            /// Returns the store, for its connection and cache.
            pub fn store(&self) -> &ModelStore<Entity> {
                &self.store
            }

            #find_one

            #(#finders)*

            /// Inserts a row and clears the not-found placeholders of all its cached keys.
            pub async fn insert(&self, row: ActiveModel) -> Result<Model, ModelError> {
                self.store.insert(row).await
            }

            /// Writes the columns where `new` differs from `old`, then invalidates the cached keys
            /// of the old and the new values.
            pub async fn update(&self, old: &Model, new: Model) -> Result<Model, ModelError> {
                self.store.update(old, new).await
            }

            /// Deletes the row; returns whether it existed. Invalidates all its cached keys.
            pub async fn delete(&self, row: &Model) -> Result<bool, ModelError> {
                self.store.delete(row).await
            }

            /// Invalidates the cached keys of `row` after a write committed outside this model.
            pub async fn invalidate(&self, row: &Model) {
                self.store.invalidate(row).await;
            }
        }
    }
}

/// Returns the body of `cache_keys`: the keys over non-null columns in one list, then a push for
/// each key over nullable columns when they hold values.
fn cache_keys_body(table: &Table) -> TokenStream {
    let keys = table.cached_keys();
    let nullable = |key: &Vec<usize>| key.iter().any(|&i| table.columns[i].nullable);
    let always: Vec<TokenStream> = keys
        .iter()
        .filter(|key| !nullable(key))
        .map(|key| cache_key_expr(table, key))
        .collect();
    let pushes: Vec<TokenStream> = keys
        .iter()
        .filter(|key| nullable(key))
        .map(|key| cache_key_push(table, key))
        .collect();
    if pushes.is_empty() {
        return quote!(Vec::from([#(#always),*]));
    }
    let start = if always.is_empty() {
        quote!(Vec::new())
    } else {
        quote!(Vec::from([#(#always),*]))
    };
    quote! {
        let mut keys = #start;
        #(#pushes)*
        keys
    }
}

/// Returns the cache key of a key over non-null columns.
fn cache_key_expr(table: &Table, key: &[usize]) -> TokenStream {
    let table_name = &table.name.sql;
    let columns = key_columns(table, key);
    let values = key.iter().map(|&i| {
        let field = snake_ident(&table.columns[i].name);
        quote!(&row.#field)
    });
    quote!(cache.key(#table_name, #columns, &[#(#values),*]))
}

/// Pushes the cache key of a key over nullable columns onto `keys` when all its columns hold
/// values.
fn cache_key_push(table: &Table, key: &[usize]) -> TokenStream {
    let table_name = &table.name.sql;
    let columns = key_columns(table, key);
    let mut bindings = Vec::new();
    let mut sources = Vec::new();
    let mut values = Vec::new();
    for &index in key {
        let column = &table.columns[index];
        let field = snake_ident(&column.name);
        if column.nullable {
            let binding = Ident::new(&format!("value_{}", column.name.snake), Span::call_site());
            bindings.push(quote!(Some(#binding)));
            sources.push(quote!(&row.#field));
            values.push(quote!(#binding));
        } else {
            values.push(quote!(&row.#field));
        }
    }
    let push = quote! {
        keys.push(cache.key(#table_name, #columns, &[#(#values),*]));
    };
    if bindings.len() == 1 {
        quote! {
            if let #(#bindings)* = #(#sources)* {
                #push
            }
        }
    } else {
        quote! {
            if let (#(#bindings,)*) = (#(#sources,)*) {
                #push
            }
        }
    }
}

/// Returns the parameter type of a key column: `&str` for strings, the value type otherwise.
fn param_type(ty: ColumnType) -> TokenStream {
    match ty {
        ColumnType::String(_) | ColumnType::Text => quote!(&str),
        other => rust_type(other),
    }
}

fn find_one(table: &Table) -> TokenStream {
    let pk = table.pk();
    let name = snake_ident(&pk.name);
    let ty = param_type(pk.ty);
    let table_name = &table.name.sql;
    let column = &pk.name.sql;
    if table.primary_key_cached {
        quote! {
            /// Returns the row with this primary key, through the cache.
            pub async fn find_one(&self, #name: #ty) -> Result<Option<Model>, ModelError> {
                self.store
                    .find_by_key(self.store.cache().key(#table_name, #column, &[&#name]), || Entity::find_by_id(#name))
                    .await
            }
        }
    } else {
        quote! {
            /// Returns the row with this primary key from the database (the key is not cached).
            pub async fn find_one(&self, #name: #ty) -> Result<Option<Model>, ModelError> {
                Ok(Entity::find_by_id(#name).one(self.store.db()).await?)
            }
        }
    }
}

fn find_one_by(table: &Table, key: &[usize]) -> TokenStream {
    let table_name = &table.name.sql;
    let columns = key_columns(table, key);
    let snake_names: Vec<&str> = key
        .iter()
        .map(|&i| table.columns[i].name.snake.as_str())
        .collect();
    let method = Ident::new(
        &format!("find_one_by_{}", snake_names.join("_and_")),
        Span::call_site(),
    );
    let params = key.iter().map(|&i| {
        let column = &table.columns[i];
        let name = snake_ident(&column.name);
        let ty = param_type(column.ty);
        quote!(#name: #ty)
    });
    let names: Vec<Ident> = key
        .iter()
        .map(|&i| snake_ident(&table.columns[i].name))
        .collect();
    let filters = key.iter().map(|&i| {
        let column = &table.columns[i];
        let variant = Ident::new(&column.name.camel, Span::call_site());
        let name = snake_ident(&column.name);
        quote!(.filter(Column::#variant.eq(#name)))
    });
    let doc = format!(
        " Returns the row with this ({}), through the cache.",
        columns.replace(',', ", ")
    );
    quote! {
        #[doc = #doc]
        pub async fn #method(&self, #(#params),*) -> Result<Option<Model>, ModelError> {
            // No local bindings: a column may be named like any of them.
            self.store
                .find_by_key(self.store.cache().key(#table_name, #columns, &[#(&#names),*]), || Entity::find()#(#filters)*)
                .await
        }
    }
}
