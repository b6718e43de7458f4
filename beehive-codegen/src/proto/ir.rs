//! The proto IR: plain data lowered from the descriptor pool, which the emitters read.

use std::collections::BTreeSet;

/// Everything the emitters need from a set of proto files.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtoIr {
    /// Packages in name order, each with the messages and services it declares.
    pub packages: Vec<Package>,
    /// Groups of services whose protos share a top folder (`proto/user/...` → `user`), which map
    /// to one service crate `services/<name>` and one logic-modules macro.
    pub service_groups: Vec<ServiceGroup>,
}

/// One proto package.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    /// Dotted proto name, e.g. `acme.chat.v1`.
    pub name: String,
    /// Rust module path segments (prost-build's), e.g. `["acme", "chat", "v1"]`.
    pub module: Vec<String>,
    /// Source proto files declaring the package, relative to the proto root.
    pub files: Vec<String>,
    pub messages: Vec<Message>,
    pub services: Vec<Service>,
}

/// A message (nested ones flattened into the package's list), without map-entry messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub full_name: String,
    pub rust_path: RustPath,
    pub fields: Vec<Field>,
    /// Whether some RPC takes this message as its request.
    pub is_request: bool,
    /// Whether the message or any message it contains declares a rule.
    pub needs_validation: bool,
}

/// A Rust path below `crate::pb` (module segments and the type name), or a type outside it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RustPath {
    /// A prost-generated item: `crate::pb::<segments>`.
    Pb(Vec<String>),
    /// `()`, prost's mapping of `google.protobuf.Empty`.
    Unit,
    /// A `::prost_types::<name>` well-known type.
    ProstTypes(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Proto name, used in violation paths.
    pub name: String,
    /// Prost's Rust field name (sanitized, maybe raw).
    pub rust_name: String,
    pub number: u32,
    pub kind: FieldKind,
    pub cardinality: Cardinality,
    /// Set when the field belongs to a real (non-synthetic) oneof.
    pub oneof: Option<OneofMember>,
    pub rules: Rules,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OneofMember {
    /// Prost's Rust field name of the oneof.
    pub field: String,
    /// Path of the oneof enum.
    pub enum_path: RustPath,
    /// The variant's name.
    pub variant: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    /// A plain proto3 field (default value when absent); messages are `Option<T>` in Rust.
    Single,
    /// proto3 `optional`: `Option<T>`.
    Optional,
    Repeated,
    Map,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    String,
    Bytes,
    Bool,
    /// Signed or unsigned integers of any width.
    Integer,
    Float,
    /// An enum field (`i32` in Rust) with the enum's path.
    Enum(RustPath),
    /// A message field with the message's full proto name and Rust path.
    Message {
        full_name: String,
        path: RustPath,
    },
}

/// Input rules declared with `(beehive.rules)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub min_chars: Option<u32>,
    pub max_chars: Option<u32>,
    pub min_bytes: Option<u32>,
    pub max_bytes: Option<u32>,
    pub gte: Option<i64>,
    pub lte: Option<i64>,
    pub required: bool,
    pub email: bool,
    pub pattern: Option<String>,
    pub one_of: Vec<String>,
    pub defined_enum: bool,
    pub min_items: Option<u32>,
    pub max_items: Option<u32>,
    pub http_url: bool,
    pub json_object_or_array: bool,
    pub no_control_chars: bool,
    pub skip_if_empty: bool,
}

impl Rules {
    /// Whether any rule is declared.
    pub fn is_empty(&self) -> bool {
        *self == Rules::default()
    }

    /// Whether a rule applies to each item (every rule except the item counts).
    pub fn has_item_rules(&self) -> bool {
        let item_rules = Rules {
            min_items: None,
            max_items: None,
            skip_if_empty: false,
            ..self.clone()
        };
        !item_rules.is_empty()
    }
}

/// Who may call an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Authenticated,
    Service,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Proto name, e.g. `UserService`.
    pub name: String,
    /// Fully qualified name, e.g. `user.UserService`.
    pub full_name: String,
    /// The proto file declaring it, relative to the proto root.
    pub file: String,
    /// tonic's server trait name (prost's upper camel of `name`).
    pub trait_name: String,
    /// tonic's server and client module names (`user_service_server`, `user_service_client`).
    pub server_module: String,
    pub client_module: String,
    /// Beehive's typed client name: `UserService` → `UserClient`.
    pub client_name: String,
    /// The module holding the service's glue inside its package module, or `None` when the
    /// package has one service and its glue sits in the package module itself.
    pub module: Option<String>,
    pub rpcs: Vec<Rpc>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rpc {
    /// Proto name, e.g. `GetUserInfo`.
    pub name: String,
    /// Marker type name, e.g. `GetUserInfo`.
    pub marker: String,
    /// tonic's trait method name (prost's snake case), e.g. `get_user_info`.
    pub method: String,
    /// Logic file stem, e.g. `get_user_info`.
    pub file_stem: String,
    pub input: TypeRef,
    pub output: TypeRef,
    pub server_streaming: bool,
    pub access: Access,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypeRef {
    /// Fully qualified proto name without the leading dot.
    pub full_name: String,
    pub path: RustPath,
}

/// Services whose protos live under `proto/<name>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceGroup {
    pub name: String,
    /// Services as (package name, service name) pairs, in declaration order.
    pub services: Vec<(String, String)>,
    /// Logic file stems of all RPCs, to detect two RPCs sharing a file.
    pub file_stems: BTreeSet<String>,
}
