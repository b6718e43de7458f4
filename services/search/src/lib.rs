//! Hand-written logic of the search service.

beehive_generated::search_logic_modules!();

/// Logic of `SearchService`; each RPC's `Handle` impl is in `logic/<rpc>.rs`.
pub struct SearchService;
