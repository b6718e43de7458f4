//! Lowering: descriptor pool → [`ProtoIr`], rejecting what the generator does not support.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ServiceDescriptor, Value,
};

use super::Error;
use super::ir::{
    Access, Cardinality, Field, FieldKind, Message, OneofMember, Package, ProtoIr, Rpc, Rules,
    RustPath, Service, ServiceGroup, TypeRef,
};
use crate::naming::{file_stem, naive_snake_case, to_snake, to_upper_camel};

/// Full name of the method option holding an RPC's access rule.
pub const ACCESS_OPTION: &str = "beehive.access";
/// Full name of the field option holding a field's input rules.
pub const RULES_OPTION: &str = "beehive.rules";

/// Top-level modules of the generated crate that no package may take.
const RESERVED_MODULES: &[&str] = &["pb", "entity", "migration", "model", "logic_modules"];

/// Well-known types an RPC may take as its request (the runtime implements `Validate` for them).
const WELL_KNOWN_REQUESTS: &[&str] = &["Empty", "Timestamp", "Duration"];
/// Well-known types an RPC may return (prost-types defines them, or prost maps them to `()`).
const WELL_KNOWN_RESPONSES: &[&str] = &[
    "Empty",
    "Timestamp",
    "Duration",
    "Any",
    "Struct",
    "Value",
    "ListValue",
    "FieldMask",
];

struct Options {
    access: Option<ExtensionDescriptor>,
    rules: Option<ExtensionDescriptor>,
}

/// Lowers the files named in `paths` (and only those) to the IR.
pub fn lower(pool: &DescriptorPool, paths: &[String]) -> Result<ProtoIr, Error> {
    let options = Options {
        access: pool.get_extension_by_name(ACCESS_OPTION),
        rules: pool.get_extension_by_name(RULES_OPTION),
    };
    let wanted: BTreeSet<&str> = paths.iter().map(String::as_str).collect();

    let mut packages: BTreeMap<String, Package> = BTreeMap::new();
    let mut groups: BTreeMap<String, ServiceGroup> = BTreeMap::new();
    let mut requests: BTreeSet<String> = BTreeSet::new();

    for file in pool.files() {
        if !wanted.contains(file.name()) {
            continue;
        }
        let package_name = file.package_name().to_owned();
        if package_name.is_empty() {
            return Err(Error::Unsupported(format!(
                "{}: a proto file without a `package` declaration",
                file.name()
            )));
        }
        let module: Vec<String> = package_name.split('.').map(to_snake).collect();
        if let Some(first) = module.first()
            && RESERVED_MODULES.contains(&first.as_str())
        {
            return Err(Error::Invalid(format!(
                "{}: package `{package_name}` would take the generated crate's module `{first}`; \
                 rename the package",
                file.name()
            )));
        }
        let package = packages
            .entry(package_name.clone())
            .or_insert_with(|| Package {
                name: package_name.clone(),
                module,
                files: Vec::new(),
                messages: Vec::new(),
                services: Vec::new(),
            });
        package.files.push(file.name().to_owned());

        let mut stack: Vec<MessageDescriptor> = file.messages().collect();
        stack.reverse();
        while let Some(message) = stack.pop() {
            if message.is_map_entry() {
                continue;
            }
            package.messages.push(lower_message(&message, &options)?);
            let mut children: Vec<MessageDescriptor> = message.child_messages().collect();
            children.reverse();
            stack.extend(children);
        }

        for service in file.services() {
            let lowered = lower_service(&service, file.name(), &options)?;
            for rpc in &lowered.rpcs {
                requests.insert(rpc.input.full_name.clone());
            }
            let group_name = group_name(file.name());
            let group = groups
                .entry(group_name.clone())
                .or_insert_with(|| ServiceGroup {
                    name: group_name,
                    services: Vec::new(),
                    file_stems: BTreeSet::new(),
                });
            for rpc in &lowered.rpcs {
                if !group.file_stems.insert(rpc.file_stem.clone()) {
                    return Err(Error::Invalid(format!(
                        "{}: RPC `{}` of `{}` needs logic file `{}.rs`, which another RPC of the \
                         same service folder already uses; rename one of the RPCs",
                        file.name(),
                        rpc.name,
                        lowered.full_name,
                        rpc.file_stem
                    )));
                }
            }
            group
                .services
                .push((package_name.clone(), lowered.name.clone()));
            package.services.push(lowered);
        }
    }

    for package in packages.values_mut() {
        if package.services.len() > 1 {
            for service in &mut package.services {
                service.module = Some(naive_snake_case(&service.trait_name));
            }
        }
        for message in &mut package.messages {
            message.is_request = requests.contains(&message.full_name);
        }
    }
    mark_needs_validation(&mut packages);

    Ok(ProtoIr {
        packages: packages.into_values().collect(),
        service_groups: groups.into_values().collect(),
    })
}

/// The service folder of a proto path: `user/v1/user.proto` → `user`, `greet.proto` → `greet`.
fn group_name(path: &str) -> String {
    let first = path.split('/').next().unwrap_or(path);
    let stem = first.strip_suffix(".proto").unwrap_or(first);
    heck::ToSnakeCase::to_snake_case(stem)
}

/// Marks messages that declare rules, or contain (at any depth) a message that does.
fn mark_needs_validation(packages: &mut BTreeMap<String, Package>) {
    let mut needs: BTreeSet<String> = BTreeSet::new();
    loop {
        let before = needs.len();
        for package in packages.values() {
            for message in &package.messages {
                let own = message.fields.iter().any(|field| {
                    !field.rules.is_empty()
                        || matches!(&field.kind, FieldKind::Message { full_name, .. }
                            if needs.contains(full_name) && field.cardinality != Cardinality::Map)
                });
                if own {
                    needs.insert(message.full_name.clone());
                }
            }
        }
        if needs.len() == before {
            break;
        }
    }
    for package in packages.values_mut() {
        for message in &mut package.messages {
            message.needs_validation = needs.contains(&message.full_name);
        }
    }
}

fn lower_service(
    service: &ServiceDescriptor,
    file: &str,
    options: &Options,
) -> Result<Service, Error> {
    let trait_name = to_upper_camel(service.name());
    let client_stem = trait_name
        .strip_suffix("Service")
        .filter(|stem| !stem.is_empty())
        .unwrap_or(&trait_name);
    let mut rpcs = Vec::new();
    let mut markers = BTreeSet::new();
    for method in service.methods() {
        let rpc = lower_rpc(&method, file, options)?;
        if !markers.insert(rpc.marker.clone()) {
            return Err(Error::Invalid(format!(
                "{file}: RPCs of `{}` map to the same Rust name `{}`; rename one of them",
                service.full_name(),
                rpc.marker
            )));
        }
        rpcs.push(rpc);
    }
    Ok(Service {
        name: service.name().to_owned(),
        full_name: service.full_name().to_owned(),
        file: file.to_owned(),
        server_module: format!("{}_server", naive_snake_case(&trait_name)),
        client_module: format!("{}_client", naive_snake_case(&trait_name)),
        client_name: format!("{client_stem}Client"),
        trait_name,
        module: None,
        rpcs,
        comment: leading_comment(service.parent_file_descriptor_proto(), service.path()),
    })
}

fn lower_rpc(method: &MethodDescriptor, file: &str, options: &Options) -> Result<Rpc, Error> {
    let name = method.name().to_owned();
    if method.is_client_streaming() {
        let kind = if method.is_server_streaming() {
            "bidirectional streaming"
        } else {
            "client streaming"
        };
        return Err(Error::Unsupported(format!(
            "{file}: RPC `{}` is {kind}; the generator supports unary and server-streaming RPCs \
             only",
            method.full_name()
        )));
    }
    let stem = file_stem(&name);
    if matches!(
        stem.as_str(),
        "self" | "super" | "crate" | "extern" | "_" | "mod"
    ) {
        return Err(Error::Unsupported(format!(
            "{file}: RPC `{}` would need a logic module named `{stem}`, which Rust cannot declare; \
             rename the RPC",
            method.full_name()
        )));
    }
    let input = type_ref(
        &method.input(),
        WELL_KNOWN_REQUESTS,
        "request",
        method,
        file,
    )?;
    let output = type_ref(
        &method.output(),
        WELL_KNOWN_RESPONSES,
        "response",
        method,
        file,
    )?;
    Ok(Rpc {
        marker: to_upper_camel(&name),
        method: to_snake(&name),
        file_stem: stem,
        input,
        output,
        server_streaming: method.is_server_streaming(),
        access: read_access(&method.options(), options, method, file)?,
        comment: leading_comment(
            method.parent_service().parent_file_descriptor_proto(),
            method.path(),
        ),
        name,
    })
}

/// The trimmed leading comment of the element at `path`, from the file's source info.
fn leading_comment(file: &prost_types::FileDescriptorProto, path: &[i32]) -> Option<String> {
    let info = file.source_code_info.as_ref()?;
    let location = info
        .location
        .iter()
        .find(|location| location.path == path)?;
    let text: Vec<&str> = location
        .leading_comments()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    (!text.is_empty()).then(|| text.join("\n"))
}

fn type_ref(
    message: &MessageDescriptor,
    allowed_well_known: &[&str],
    role: &str,
    method: &MethodDescriptor,
    file: &str,
) -> Result<TypeRef, Error> {
    let full_name = message.full_name().to_owned();
    if let Some(short) = full_name.strip_prefix("google.protobuf.")
        && !allowed_well_known.contains(&short)
    {
        return Err(Error::Unsupported(format!(
            "{file}: RPC `{}` uses well-known type `{full_name}` as its {role}; supported \
             here: {}",
            method.full_name(),
            allowed_well_known.join(", ")
        )));
    }
    Ok(TypeRef {
        path: message_path(message),
        full_name,
    })
}

fn read_access(
    method_options: &DynamicMessage,
    options: &Options,
    method: &MethodDescriptor,
    file: &str,
) -> Result<Access, Error> {
    let Some(extension) = &options.access else {
        return Ok(Access::Authenticated);
    };
    if !method_options.has_extension(extension) {
        return Ok(Access::Authenticated);
    }
    match method_options.get_extension(extension).as_ref() {
        Value::EnumNumber(0) => Ok(Access::Authenticated),
        Value::EnumNumber(1) => Ok(Access::Public),
        Value::EnumNumber(2) => Ok(Access::Service),
        other => Err(Error::Invalid(format!(
            "{file}: RPC `{}` has an unknown `({ACCESS_OPTION})` value {other:?}",
            method.full_name()
        ))),
    }
}

/// The Rust path prost-build gives a message or enum: package modules, one snake-case module per
/// enclosing message, then the upper-camel type name.
pub fn message_path(message: &MessageDescriptor) -> RustPath {
    let full_name = message.full_name();
    if let Some(short) = full_name.strip_prefix("google.protobuf.") {
        return if short == "Empty" {
            RustPath::Unit
        } else {
            RustPath::ProstTypes(short.to_owned())
        };
    }
    let mut parents = Vec::new();
    let mut parent = message.parent_message();
    while let Some(outer) = parent {
        parents.push(to_snake(outer.name()));
        parent = outer.parent_message();
    }
    parents.reverse();
    nested_path(message.package_name(), parents, message.name())
}

fn enum_path(descriptor: &prost_reflect::EnumDescriptor) -> RustPath {
    let mut parents = Vec::new();
    let mut parent = descriptor.parent_message();
    while let Some(outer) = parent {
        parents.push(to_snake(outer.name()));
        parent = outer.parent_message();
    }
    parents.reverse();
    nested_path(descriptor.package_name(), parents, descriptor.name())
}

fn nested_path(package: &str, parents: Vec<String>, name: &str) -> RustPath {
    let mut segments: Vec<String> = package
        .split('.')
        .filter(|part| !part.is_empty())
        .map(to_snake)
        .collect();
    segments.extend(parents);
    segments.push(to_upper_camel(name));
    RustPath::Pb(segments)
}

fn lower_message(message: &MessageDescriptor, options: &Options) -> Result<Message, Error> {
    let mut fields = Vec::new();
    for field in message.fields() {
        fields.push(lower_field(message, &field, options)?);
    }
    Ok(Message {
        full_name: message.full_name().to_owned(),
        rust_path: message_path(message),
        fields,
        is_request: false,
        needs_validation: false,
    })
}

fn lower_field(
    message: &MessageDescriptor,
    field: &FieldDescriptor,
    options: &Options,
) -> Result<Field, Error> {
    let kind = match field.kind() {
        Kind::String => FieldKind::String,
        Kind::Bytes => FieldKind::Bytes,
        Kind::Bool => FieldKind::Bool,
        Kind::Double | Kind::Float => FieldKind::Float,
        Kind::Enum(descriptor) => FieldKind::Enum(enum_path(&descriptor)),
        Kind::Message(descriptor) => FieldKind::Message {
            full_name: descriptor.full_name().to_owned(),
            path: message_path(&descriptor),
        },
        _ => FieldKind::Integer,
    };

    let real_oneof = field
        .containing_oneof()
        .filter(|oneof| !oneof.is_synthetic());
    let cardinality = if field.is_map() {
        Cardinality::Map
    } else if field.is_list() {
        Cardinality::Repeated
    } else if field.field_descriptor_proto().proto3_optional() {
        Cardinality::Optional
    } else if real_oneof.is_none()
        && field.supports_presence()
        && !matches!(kind, FieldKind::Message { .. })
    {
        // proto2 `optional` scalars, which prost also maps to `Option<T>`.
        Cardinality::Optional
    } else {
        Cardinality::Single
    };

    let oneof = real_oneof.map(|oneof| {
        let oneof_type = oneof_type_name(message, oneof.name());
        let mut segments = match message_path(message) {
            RustPath::Pb(segments) => segments,
            _ => Vec::new(),
        };
        segments.pop();
        segments.push(to_snake(message.name()));
        segments.push(oneof_type);
        OneofMember {
            field: to_snake(oneof.name()),
            enum_path: RustPath::Pb(segments),
            variant: to_upper_camel(field.name()),
        }
    });

    let rules = read_rules(field, options)?;
    let lowered = Field {
        name: field.name().to_owned(),
        rust_name: to_snake(field.name()),
        number: field.number(),
        kind,
        cardinality,
        oneof,
        rules,
    };
    check_rules(&lowered, field.full_name())?;
    Ok(lowered)
}

/// prost-build's oneof enum name, suffixed `OneOf` when a nested type has the same name.
fn oneof_type_name(message: &MessageDescriptor, oneof: &str) -> String {
    let name = to_upper_camel(oneof);
    let conflict = message
        .child_messages()
        .map(|child| to_upper_camel(child.name()))
        .chain(
            message
                .child_enums()
                .map(|child| to_upper_camel(child.name())),
        )
        .any(|child| child == name);
    if conflict {
        format!("{name}OneOf")
    } else {
        name
    }
}

fn read_rules(field: &FieldDescriptor, options: &Options) -> Result<Rules, Error> {
    let Some(extension) = &options.rules else {
        return Ok(Rules::default());
    };
    let field_options = field.options();
    if !field_options.has_extension(extension) {
        return Ok(Rules::default());
    }
    let value = field_options.get_extension(extension);
    let Value::Message(rules) = value.as_ref() else {
        return Err(Error::Invalid(format!(
            "field `{}`: `({RULES_OPTION})` is not a message",
            field.full_name()
        )));
    };
    let u32_of = |name: &str| -> Option<u32> {
        if !rules.has_field_by_name(name) {
            return None;
        }
        rules
            .get_field_by_name(name)
            .and_then(|value| value.as_u32())
    };
    let i64_of = |name: &str| -> Option<i64> {
        if !rules.has_field_by_name(name) {
            return None;
        }
        rules
            .get_field_by_name(name)
            .and_then(|value| value.as_i64())
    };
    let bool_of = |name: &str| -> bool {
        rules
            .get_field_by_name(name)
            .and_then(|value| value.as_bool())
            .unwrap_or(false)
    };
    let pattern = rules
        .get_field_by_name("pattern")
        .and_then(|value| value.as_str().map(str::to_owned))
        .filter(|pattern| !pattern.is_empty());
    let one_of = rules
        .get_field_by_name("one_of")
        .and_then(|value| {
            value.as_list().map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default();

    Ok(Rules {
        min_chars: u32_of("min_chars"),
        max_chars: u32_of("max_chars"),
        min_bytes: u32_of("min_bytes"),
        max_bytes: u32_of("max_bytes"),
        gte: i64_of("gte"),
        lte: i64_of("lte"),
        required: bool_of("required"),
        email: bool_of("email"),
        pattern,
        one_of,
        defined_enum: bool_of("defined_enum"),
        min_items: u32_of("min_items"),
        max_items: u32_of("max_items"),
        http_url: bool_of("http_url"),
        json_object_or_array: bool_of("json_object_or_array"),
        no_control_chars: bool_of("no_control_chars"),
        skip_if_empty: bool_of("skip_if_empty"),
    })
}

/// Rejects rules that do not fit the field's type, and patterns that do not compile.
fn check_rules(field: &Field, full_name: &str) -> Result<(), Error> {
    let rules = &field.rules;
    if rules.is_empty() {
        return Ok(());
    }
    let reject = |rule: &str, why: &str| {
        Err(Error::Invalid(format!(
            "field `{full_name}`: rule `{rule}` {why}"
        )))
    };
    if field.cardinality == Cardinality::Map {
        return reject("(any)", "is not supported on map fields");
    }
    let is_string = field.kind == FieldKind::String;
    let is_bytes = field.kind == FieldKind::Bytes;
    let is_number = matches!(field.kind, FieldKind::Integer | FieldKind::Float);
    let string_rules = [
        ("min_chars", rules.min_chars.is_some()),
        ("max_chars", rules.max_chars.is_some()),
        ("email", rules.email),
        ("pattern", rules.pattern.is_some()),
        ("one_of", !rules.one_of.is_empty()),
        ("http_url", rules.http_url),
        ("json_object_or_array", rules.json_object_or_array),
        ("no_control_chars", rules.no_control_chars),
    ];
    for (rule, set) in string_rules {
        if set && !is_string {
            return reject(rule, "applies to string fields only");
        }
    }
    for (rule, set) in [
        ("min_bytes", rules.min_bytes.is_some()),
        ("max_bytes", rules.max_bytes.is_some()),
    ] {
        if set && !(is_string || is_bytes) {
            return reject(rule, "applies to string and bytes fields only");
        }
    }
    for (rule, set) in [("gte", rules.gte.is_some()), ("lte", rules.lte.is_some())] {
        if set && !is_number {
            return reject(rule, "applies to numeric fields only");
        }
    }
    if rules.defined_enum && !matches!(field.kind, FieldKind::Enum(_)) {
        return reject("defined_enum", "applies to enum fields only");
    }
    for (rule, set) in [
        ("min_items", rules.min_items.is_some()),
        ("max_items", rules.max_items.is_some()),
    ] {
        if set && field.cardinality != Cardinality::Repeated {
            return reject(rule, "applies to repeated fields only");
        }
    }
    if let FieldKind::Message { .. } = field.kind
        && rules.has_item_rules()
        && !rules.required
    {
        return reject(
            "(scalar rule)",
            "cannot apply to a message field; declare rules on the message's own fields",
        );
    }
    if field.oneof.is_some() && rules.required {
        return reject(
            "required",
            "cannot apply to a oneof member; a oneof sets at most one member",
        );
    }
    if let Some(pattern) = &rules.pattern
        && let Err(err) = regex::Regex::new(pattern)
    {
        return reject("pattern", &format!("does not compile: {err}"));
    }
    if let (Some(min), Some(max)) = (rules.min_chars, rules.max_chars)
        && min > max
    {
        return reject("min_chars", "is greater than max_chars");
    }
    if let (Some(min), Some(max)) = (rules.min_bytes, rules.max_bytes)
        && min > max
    {
        return reject("min_bytes", "is greater than max_bytes");
    }
    if let (Some(min), Some(max)) = (rules.gte, rules.lte)
        && min > max
    {
        return reject("gte", "is greater than lte");
    }
    Ok(())
}
