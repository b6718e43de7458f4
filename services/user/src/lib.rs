//! Hand-written logic of the user service.
