//! Hand-written logic of the chat service.

beehive_generated::chat_logic_modules!();

/// Logic of `ChatService`; each RPC's `Handle` impl is in `logic/<rpc>.rs`.
pub struct ChatService;
