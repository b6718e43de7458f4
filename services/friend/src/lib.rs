//! Hand-written logic of the friend service.
