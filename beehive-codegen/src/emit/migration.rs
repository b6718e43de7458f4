//! Reads the schema IR and emits one sea-orm-migration per table, plus `migration/mod.rs` with a
//! migrator per service and one for all tables.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

use crate::OutputFile;
use crate::schema::ir::{Column, ColumnType, DefaultValue, Schema, SortOrder, Table, output_path};
use crate::schema::tokens::{render, snake_ident};

/// Table in which the migrator for all tables records what it applied.
const ALL_MIGRATIONS_TABLE: &str = "beehive_migrations";

/// Emits `generated/src/migration/<table>.rs` for every table and the `mod.rs` with migrators.
pub fn emit(schema: &Schema) -> Result<Vec<OutputFile>, syn::Error> {
    let mut files = Vec::new();
    let mut modules = Vec::new();
    let mut migrators = Vec::new();
    let mut all = Vec::new();
    let mut sources = Vec::new();

    for file in &schema.files {
        let source = file.path.to_string_lossy().replace('\\', "/");
        let mut service_migrations = Vec::new();
        for table in &file.tables {
            let path = output_path("migration", &format!("{}.rs", table.name.snake));
            files.push(render(
                path,
                std::slice::from_ref(&source),
                migration(table),
            )?);
            let module = snake_ident(&table.name);
            modules.push(quote!(pub mod #module;));
            service_migrations.push(quote!(Box::new(#module::Migration)));
        }
        let migrator = Ident::new(
            &format!("{}Migrator", file.service.camel),
            Span::call_site(),
        );
        let tracking = format!("{ALL_MIGRATIONS_TABLE}_{}", file.service.snake);
        let doc = format!(
            " Creates the tables of {source}; records its progress in `{tracking}`, so services sharing a database migrate independently."
        );
        migrators.push(migrator_tokens(
            &migrator,
            &doc,
            &tracking,
            &service_migrations,
        ));
        all.extend(service_migrations);
        sources.push(source);
    }

    let all_doc =
        format!(" Creates every table; records its progress in `{ALL_MIGRATIONS_TABLE}`.");
    let all_migrator = migrator_tokens(
        &Ident::new("Migrator", Span::call_site()),
        &all_doc,
        ALL_MIGRATIONS_TABLE,
        &all,
    );
    let mod_rs = quote! {
        //! Migrations that create the tables, one module per table, and their migrators.
        //!
        //! Every statement is portable across SQLite, PostgreSQL and MySQL/MariaDB; tables and
        //! indexes are created only when missing, so migrators whose tables overlap can share a
        //! database.

        use sea_orm_migration::prelude::*;
        use sea_orm_migration::sea_orm::DbBackend;

        #(#modules)*

        #(#migrators)*

        #all_migrator

        /// Starts a timestamp column: `timestamp with time zone` on PostgreSQL, RFC 3339 text on
        /// SQLite and `datetime(6)` on MySQL, whose `timestamp` ends in 2038 and gains an
        /// implicit `ON UPDATE` clause on older servers.
        fn timestamp(backend: DbBackend, name: &'static str) -> ColumnDef {
            let mut column = ColumnDef::new(name);
            match backend {
                DbBackend::MySql => column.custom("datetime(6)"),
                _ => column.timestamp_with_time_zone(),
            };
            column
        }

        /// Returns the current time as a column default, in the same text format sqlx writes on
        /// SQLite so that stored times sort correctly.
        fn now(backend: DbBackend) -> Expr {
            match backend {
                DbBackend::MySql => Expr::Keyword(Keyword::Custom("CURRENT_TIMESTAMP(6)".into_iden())),
                DbBackend::Sqlite => Expr::cust("strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"),
                _ => Expr::current_timestamp(),
            }
        }

        /// Makes MySQL store text as utf8mb4 and compare it byte by byte, as the other databases do.
        fn table_options(backend: DbBackend, table: &mut TableCreateStatement) -> TableCreateStatement {
            if backend == DbBackend::MySql {
                table.character_set("utf8mb4").collate("utf8mb4_bin");
            }
            table.to_owned()
        }

        /// Creates an index unless one of that name already exists on the table.
        async fn create_index(manager: &SchemaManager<'_>, table: &str, name: &str, index: IndexCreateStatement) -> Result<(), DbErr> {
            if !manager.has_index(table, name).await? {
                manager.create_index(index).await?;
            }
            Ok(())
        }
    };
    files.push(render(
        output_path("migration", "mod.rs"),
        &sources,
        mod_rs,
    )?);
    Ok(files)
}

fn migrator_tokens(
    name: &Ident,
    doc: &str,
    tracking: &str,
    migrations: &[TokenStream],
) -> TokenStream {
    quote! {
        #[doc = #doc]
        pub struct #name;

        #[async_trait::async_trait]
        impl MigratorTrait for #name {
            fn migrations() -> Vec<Box<dyn MigrationTrait>> {
                vec![#(#migrations),*]
            }

            fn migration_table_name() -> DynIden {
                #tracking.into_iden()
            }
        }
    }
}

fn migration(table: &Table) -> TokenStream {
    let table_name = &table.name.sql;
    let migration_name = format!("create_{}", table.name.snake);
    let columns = table.columns.iter().map(|column| column_def(table, column));

    let unique_indexes = table.uniques.iter().map(|unique| {
        let name = &unique.name;
        let columns = unique.columns.iter().map(|&i| &table.columns[i].name.sql);
        quote! {
            super::create_index(manager, #table_name, #name, Index::create()
                .name(#name)
                .table(#table_name)
                #(.col(#columns))*
                .unique()
                .to_owned()).await?;
        }
    });
    let indexes = table.indexes.iter().map(|index| {
        let name = &index.name;
        let columns = index.columns.iter().map(|&(i, order)| {
            let column = &table.columns[i].name.sql;
            match order {
                SortOrder::Asc => quote!(.col(#column)),
                SortOrder::Desc => quote!(.col((#column, IndexOrder::Desc))),
            }
        });
        quote! {
            super::create_index(manager, #table_name, #name, Index::create()
                .name(#name)
                .table(#table_name)
                #(#columns)*
                .to_owned()).await?;
        }
    });
    let doc = format!(" Creates table `{table_name}` and its indexes.");

    quote! {
        use sea_orm_migration::prelude::*;

        #[doc = #doc]
        pub struct Migration;

        impl MigrationName for Migration {
            fn name(&self) -> &str {
                #migration_name
            }
        }

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                let backend = manager.get_database_backend();
                let table = super::table_options(backend, Table::create()
                    .table(#table_name)
                    .if_not_exists()
                    #(.col(#columns))*);
                manager.create_table(table).await?;
                #(#unique_indexes)*
                #(#indexes)*
                Ok(())
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                manager.drop_table(Table::drop().table(#table_name).if_exists().to_owned()).await
            }
        }
    }
}

fn column_def(table: &Table, column: &Column) -> TokenStream {
    let name = &column.name.sql;
    let start = match column.ty {
        ColumnType::Timestamp => quote!(super::timestamp(backend, #name)),
        ty => {
            let kind = match ty {
                ColumnType::SmallInt => quote!(small_integer()),
                ColumnType::Int => quote!(integer()),
                ColumnType::BigInt => quote!(big_integer()),
                ColumnType::Bool => quote!(boolean()),
                ColumnType::String(n) => {
                    let n = Literal::u32_unsuffixed(n);
                    quote!(string_len(#n))
                }
                ColumnType::Text => quote!(text()),
                ColumnType::Bytes => quote!(blob()),
                ColumnType::Json => quote!(json_binary()),
                ColumnType::Timestamp => quote!(timestamp_with_time_zone()),
            };
            quote!(ColumnDef::new(#name).#kind)
        }
    };
    let null = if column.nullable {
        quote!(.null())
    } else {
        quote!(.not_null())
    };
    let default = match &column.default {
        None => quote!(),
        Some(DefaultValue::Int(v)) => {
            let v = Literal::i64_unsuffixed(*v);
            quote!(.default(#v))
        }
        Some(DefaultValue::Bool(v)) => quote!(.default(#v)),
        Some(DefaultValue::Str(v)) => quote!(.default(#v)),
        Some(DefaultValue::Now) => quote!(.default(super::now(backend))),
    };
    let is_pk = table.pk().name == column.name;
    let auto = if column.auto_increment {
        quote!(.auto_increment())
    } else {
        quote!()
    };
    let pk = if is_pk {
        quote!(.primary_key())
    } else {
        quote!()
    };
    quote!(#start #null #default #auto #pk)
}
