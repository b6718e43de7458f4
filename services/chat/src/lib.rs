//! Hand-written logic of the chat service.
