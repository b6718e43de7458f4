//! The breaking-change gate: compares the checked-in descriptor set with a new one and lists
//! what would break clients built from the old contracts.

use std::collections::BTreeMap;
use std::fmt;

use ::prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};

use super::Error;

/// One change that breaks the wire contract.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum BreakingChange {
    RemovedMessage {
        message: String,
    },
    RemovedField {
        message: String,
        field: String,
        number: i32,
    },
    RenumberedField {
        message: String,
        field: String,
        old: i32,
        new: i32,
    },
    RetypedField {
        message: String,
        field: String,
        old: String,
        new: String,
    },
    RemovedRpc {
        service: String,
        rpc: String,
    },
    RetypedRpc {
        service: String,
        rpc: String,
        old: String,
        new: String,
    },
}

impl fmt::Display for BreakingChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RemovedMessage { message } => write!(f, "removed message `{message}`"),
            Self::RemovedField {
                message,
                field,
                number,
            } => write!(f, "removed field `{message}.{field}` (number {number})"),
            Self::RenumberedField {
                message,
                field,
                old,
                new,
            } => write!(
                f,
                "renumbered field `{message}.{field}` from {old} to {new}"
            ),
            Self::RetypedField {
                message,
                field,
                old,
                new,
            } => write!(f, "retyped field `{message}.{field}` from {old} to {new}"),
            Self::RemovedRpc { service, rpc } => write!(f, "removed RPC `{service}.{rpc}`"),
            Self::RetypedRpc {
                service,
                rpc,
                old,
                new,
            } => write!(
                f,
                "changed the signature of RPC `{service}.{rpc}` from {old} to {new}"
            ),
        }
    }
}

/// Lists the breaking changes from `old` to `new` (both encoded `FileDescriptorSet`s), sorted.
pub fn compare(old: &[u8], new: &[u8]) -> Result<Vec<BreakingChange>, Error> {
    let old = decode(old, "checked-in")?;
    let new = decode(new, "new")?;
    let old_messages = messages(&old);
    let new_messages = messages(&new);
    let mut changes = Vec::new();

    for (name, old_message) in &old_messages {
        let Some(new_message) = new_messages.get(name) else {
            changes.push(BreakingChange::RemovedMessage {
                message: name.clone(),
            });
            continue;
        };
        for old_field in &old_message.field {
            let field = old_field.name().to_owned();
            let Some(new_field) = new_message.field.iter().find(|f| f.name() == field) else {
                changes.push(BreakingChange::RemovedField {
                    message: name.clone(),
                    field,
                    number: old_field.number(),
                });
                continue;
            };
            if new_field.number() != old_field.number() {
                changes.push(BreakingChange::RenumberedField {
                    message: name.clone(),
                    field: field.clone(),
                    old: old_field.number(),
                    new: new_field.number(),
                });
            }
            let (old_type, new_type) = (field_type(old_field), field_type(new_field));
            if old_type != new_type {
                changes.push(BreakingChange::RetypedField {
                    message: name.clone(),
                    field,
                    old: old_type,
                    new: new_type,
                });
            }
        }
    }

    let new_services: BTreeMap<String, &prost_types::ServiceDescriptorProto> = services(&new);
    for (name, old_service) in services(&old) {
        for old_method in &old_service.method {
            let rpc = old_method.name().to_owned();
            let new_method = new_services
                .get(&name)
                .and_then(|service| service.method.iter().find(|m| m.name() == rpc));
            let Some(new_method) = new_method else {
                changes.push(BreakingChange::RemovedRpc {
                    service: name.clone(),
                    rpc,
                });
                continue;
            };
            let (old_sig, new_sig) = (signature(old_method), signature(new_method));
            if old_sig != new_sig {
                changes.push(BreakingChange::RetypedRpc {
                    service: name.clone(),
                    rpc,
                    old: old_sig,
                    new: new_sig,
                });
            }
        }
    }

    changes.sort();
    Ok(changes)
}

fn decode(bytes: &[u8], which: &str) -> Result<FileDescriptorSet, Error> {
    FileDescriptorSet::decode(bytes)
        .map_err(|err| Error::Invalid(format!("the {which} descriptor set does not decode: {err}")))
}

fn messages(set: &FileDescriptorSet) -> BTreeMap<String, &DescriptorProto> {
    let mut out = BTreeMap::new();
    for file in &set.file {
        let mut stack: Vec<(String, &DescriptorProto)> = file
            .message_type
            .iter()
            .map(|message| (qualify(file.package(), message.name()), message))
            .collect();
        while let Some((name, message)) = stack.pop() {
            for nested in &message.nested_type {
                stack.push((format!("{name}.{}", nested.name()), nested));
            }
            out.insert(name, message);
        }
    }
    out
}

fn services(set: &FileDescriptorSet) -> BTreeMap<String, &prost_types::ServiceDescriptorProto> {
    set.file
        .iter()
        .flat_map(|file| {
            file.service
                .iter()
                .map(move |service| (qualify(file.package(), service.name()), service))
        })
        .collect()
}

fn qualify(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}.{name}")
    }
}

/// The wire-relevant type of a field: label and scalar type or type name.
fn field_type(field: &FieldDescriptorProto) -> String {
    let label = match field.label() {
        Label::Repeated => "repeated ",
        Label::Optional | Label::Required => "",
    };
    let ty = match field.r#type() {
        Type::Message | Type::Enum | Type::Group => {
            field.type_name().trim_start_matches('.').to_owned()
        }
        other => other
            .as_str_name()
            .trim_start_matches("TYPE_")
            .to_lowercase(),
    };
    format!("{label}{ty}")
}

fn signature(method: &prost_types::MethodDescriptorProto) -> String {
    let stream = |yes: bool| if yes { "stream " } else { "" };
    format!(
        "({}{}) returns ({}{})",
        stream(method.client_streaming()),
        method.input_type().trim_start_matches('.'),
        stream(method.server_streaming()),
        method.output_type().trim_start_matches('.')
    )
}
