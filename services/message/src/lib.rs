//! Hand-written logic of the message service.
