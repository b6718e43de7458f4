//! Reads a package's [`Message`]s and emits their input checks: `ValidateFields` for every
//! message that declares a rule (directly or in a nested message), and `Validate` for every
//! request message.

use proc_macro2::TokenStream;
use quote::quote;

use super::rust_type;
use crate::naming::ident;
use crate::proto::ir::{Cardinality, Field, FieldKind, Message, Rules, RustPath};

/// The `ValidateFields` and `Validate` impls of one message (nothing when it needs neither).
pub fn message_impls(message: &Message, needs_validation: &dyn Fn(&str) -> bool) -> TokenStream {
    let ty = rust_type(&message.rust_path);
    let fields_impl = if message.needs_validation {
        let checks = message
            .fields
            .iter()
            .map(|field| field_checks(field, needs_validation));
        quote! {
            impl ::beehive_runtime::validate::ValidateFields for #ty {
                #[allow(unused_variables)]
                fn validate_fields(&self, prefix: &str) -> ::std::result::Result<(), ::beehive_runtime::ServiceError> {
                    #[allow(unused_imports)]
                    use ::beehive_runtime::validate::{check, item_violation, violation, ValidateFields as _};
                    #(#checks)*
                    Ok(())
                }
            }
        }
    } else {
        quote!()
    };
    let validate_impl = if !message.is_request {
        quote!()
    } else if message.needs_validation {
        quote! {
            impl ::beehive_runtime::rpc::Validate for #ty {
                fn validate(&self) -> ::std::result::Result<(), ::beehive_runtime::ServiceError> {
                    ::beehive_runtime::validate::ValidateFields::validate_fields(self, "")
                }
            }
        }
    } else {
        quote! {
            impl ::beehive_runtime::rpc::Validate for #ty {
                fn validate(&self) -> ::std::result::Result<(), ::beehive_runtime::ServiceError> {
                    Ok(())
                }
            }
        }
    };
    quote! {
        #fields_impl
        #validate_impl
    }
}

/// Checks of one field, in rule order, or nothing.
fn field_checks(field: &Field, needs_validation: &dyn Fn(&str) -> bool) -> TokenStream {
    let rules = &field.rules;
    let rust_name = ident(&field.rust_name);
    let name = &field.name;
    let nested = match &field.kind {
        FieldKind::Message { full_name, .. } => needs_validation(full_name),
        _ => false,
    };
    if rules.is_empty() && !nested {
        return quote!();
    }

    let single_error = quote!(|reason| violation(prefix, #name, reason));
    let item_error = quote!(|reason| item_violation(prefix, #name, index, reason));

    if let Some(oneof) = &field.oneof {
        let oneof_field = ident(&oneof.field);
        let enum_type = rust_type(&oneof.enum_path);
        let variant = ident(&oneof.variant);
        let checks = value_checks(field, &single_error, nested, quote!(None::<usize>));
        return quote! {
            if let Some(#enum_type::#variant(value)) = &self.#oneof_field {
                #checks
            }
        };
    }

    let body = match field.cardinality {
        Cardinality::Map => quote!(),
        Cardinality::Repeated => {
            let count = items_check(rules, &rust_name, &single_error);
            let each = if rules.has_item_rules() || nested {
                let checks = value_checks(field, &item_error, nested, quote!(Some(index)));
                quote! {
                    for (index, value) in self.#rust_name.iter().enumerate() {
                        #checks
                    }
                }
            } else {
                quote!()
            };
            quote! {
                #count
                #each
            }
        }
        Cardinality::Optional => {
            let required = if rules.required {
                quote! {
                    if self.#rust_name.is_none() {
                        return Err(violation(prefix, #name, check::REQUIRED.to_owned()));
                    }
                }
            } else {
                quote!()
            };
            let checks = value_checks_without_required(field, &single_error, nested);
            quote! {
                #required
                if let Some(value) = &self.#rust_name {
                    #checks
                }
            }
        }
        Cardinality::Single => match &field.kind {
            FieldKind::Message { .. } => {
                let required = if rules.required {
                    quote! {
                        if self.#rust_name.is_none() {
                            return Err(violation(prefix, #name, check::REQUIRED.to_owned()));
                        }
                    }
                } else {
                    quote!()
                };
                let recurse = if nested {
                    quote! {
                        if let Some(value) = &self.#rust_name {
                            value.validate_fields(&check::nested(prefix, #name, None))?;
                        }
                    }
                } else {
                    quote!()
                };
                quote! {
                    #required
                    #recurse
                }
            }
            _ => {
                let checks = value_checks(field, &single_error, false, quote!(None::<usize>));
                quote! {
                    {
                        let value = &self.#rust_name;
                        #checks
                    }
                }
            }
        },
    };

    if rules.skip_if_empty {
        let empty = empty_test(field, &rust_name);
        quote! {
            if !(#empty) {
                #body
            }
        }
    } else {
        body
    }
}

/// Builds an expression that is true when the field contains its empty value.
fn empty_test(field: &Field, rust_name: &proc_macro2::Ident) -> TokenStream {
    match (field.cardinality, &field.kind) {
        (Cardinality::Repeated | Cardinality::Map, _) => quote!(self.#rust_name.is_empty()),
        (Cardinality::Optional, _) | (_, FieldKind::Message { .. }) => {
            quote!(self.#rust_name.is_none())
        }
        (_, FieldKind::String | FieldKind::Bytes) => quote!(self.#rust_name.is_empty()),
        (_, FieldKind::Bool) => quote!(!self.#rust_name),
        (_, FieldKind::Float) => quote!(self.#rust_name == 0.0),
        (_, FieldKind::Integer | FieldKind::Enum(_)) => quote!(self.#rust_name == 0),
    }
}

fn items_check(rules: &Rules, rust_name: &proc_macro2::Ident, error: &TokenStream) -> TokenStream {
    let min = option_u32(rules.min_items.or(rules.required.then_some(1)));
    let max = option_u32(rules.max_items);
    if rules.min_items.is_none() && rules.max_items.is_none() && !rules.required {
        return quote!();
    }
    quote! {
        check::items(self.#rust_name.len(), #min, #max).map_err(#error)?;
    }
}

fn option_u32(value: Option<u32>) -> TokenStream {
    match value {
        Some(value) => quote!(Some(#value)),
        None => quote!(None),
    }
}

fn option_i64(value: Option<i64>) -> TokenStream {
    match value {
        Some(value) => quote!(Some(#value)),
        None => quote!(None),
    }
}

/// Checks of one value bound to `value` (a reference), including `required`.
fn value_checks(
    field: &Field,
    error: &TokenStream,
    nested: bool,
    index: TokenStream,
) -> TokenStream {
    let required = if field.rules.required && field.cardinality != Cardinality::Repeated {
        required_check(&field.kind, error)
    } else {
        quote!()
    };
    let rest = value_rule_checks(field, error);
    let name = &field.name;
    let recurse = if nested {
        quote! {
            value.validate_fields(&check::nested(prefix, #name, #index))?;
        }
    } else {
        quote!()
    };
    quote! {
        #required
        #rest
        #recurse
    }
}

fn value_checks_without_required(field: &Field, error: &TokenStream, nested: bool) -> TokenStream {
    let rest = value_rule_checks(field, error);
    let name = &field.name;
    let recurse = if nested {
        quote! {
            value.validate_fields(&check::nested(prefix, #name, None))?;
        }
    } else {
        quote!()
    };
    quote! {
        #rest
        #recurse
    }
}

fn required_check(kind: &FieldKind, error: &TokenStream) -> TokenStream {
    match kind {
        FieldKind::String => quote!(check::required_len(value.len()).map_err(#error)?;),
        FieldKind::Bytes => quote!(check::required_len(value.len()).map_err(#error)?;),
        FieldKind::Bool => quote!(check::required_bool(*value).map_err(#error)?;),
        FieldKind::Float => quote!(check::required_float(f64::from(*value)).map_err(#error)?;),
        FieldKind::Integer | FieldKind::Enum(_) => {
            quote!(check::required_int(i128::from(*value)).map_err(#error)?;)
        }
        // A message value bound here is always present (a oneof member or a list item).
        FieldKind::Message { .. } => quote!(),
    }
}

/// Every rule except `required`, `min_items`, `max_items` and `skip_if_empty`, in the order
/// the rules message declares them.
fn value_rule_checks(field: &Field, error: &TokenStream) -> TokenStream {
    let rules = &field.rules;
    let mut checks = Vec::new();
    if rules.min_chars.is_some() || rules.max_chars.is_some() {
        let min = option_u32(rules.min_chars);
        let max = option_u32(rules.max_chars);
        checks.push(quote!(check::chars(value, #min, #max).map_err(#error)?;));
    }
    if rules.min_bytes.is_some() || rules.max_bytes.is_some() {
        let min = option_u32(rules.min_bytes);
        let max = option_u32(rules.max_bytes);
        let bytes = match field.kind {
            FieldKind::String => quote!(value.as_bytes()),
            _ => quote!(value),
        };
        checks.push(quote!(check::bytes(#bytes, #min, #max).map_err(#error)?;));
    }
    if rules.gte.is_some() || rules.lte.is_some() {
        let gte = option_i64(rules.gte);
        let lte = option_i64(rules.lte);
        match field.kind {
            FieldKind::Float => checks
                .push(quote!(check::float_range(f64::from(*value), #gte, #lte).map_err(#error)?;)),
            _ => checks
                .push(quote!(check::int_range(i128::from(*value), #gte, #lte).map_err(#error)?;)),
        }
    }
    if rules.email {
        checks.push(quote!(check::email(value).map_err(#error)?;));
    }
    if let Some(pattern) = &rules.pattern {
        checks.push(quote! {
            static PATTERN: check::Pattern = check::Pattern::new(#pattern);
            check::pattern(value, &PATTERN).map_err(#error)?;
        });
    }
    if !rules.one_of.is_empty() {
        let allowed = &rules.one_of;
        checks.push(quote!(check::one_of(value, &[#(#allowed),*]).map_err(#error)?;));
    }
    if rules.defined_enum
        && let FieldKind::Enum(path) = &field.kind
    {
        let enum_type = rust_type(path);
        let enum_name = match path {
            RustPath::Pb(segments) => segments.last().cloned().unwrap_or_default(),
            _ => String::new(),
        };
        checks.push(quote! {
            check::defined_enum(#enum_type::try_from(*value).is_ok(), #enum_name).map_err(#error)?;
        });
    }
    if rules.http_url {
        checks.push(quote!(check::http_url(value).map_err(#error)?;));
    }
    if rules.json_object_or_array {
        checks.push(quote!(check::json_object_or_array(value).map_err(#error)?;));
    }
    if rules.no_control_chars {
        checks.push(quote!(check::no_control_chars(value).map_err(#error)?;));
    }
    quote!(#(#checks)*)
}
