//! Hand-written logic of the friend service.

beehive_generated::friend_logic_modules!();

/// Logic of `FriendService`; each RPC's `Handle` impl is in `logic/<rpc>.rs`.
pub struct FriendService;
