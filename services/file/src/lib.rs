//! Hand-written logic of the file service.
