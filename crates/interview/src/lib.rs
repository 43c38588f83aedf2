//! The interview engine.
