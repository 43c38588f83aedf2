//! The live conversation loop.
