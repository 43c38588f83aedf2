//! The interview engine.
pub mod embedding;
pub mod html;
pub mod interviewer;
pub mod job;
pub mod judge;
pub mod llm;
pub mod policy;
pub mod report;
pub mod scoring;
pub mod transcript;
