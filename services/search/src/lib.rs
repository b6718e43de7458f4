//! Hand-written logic of the search service.
