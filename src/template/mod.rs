//! TEMPORARY shim until the template branch merges.
#![allow(missing_docs, clippy::pedantic)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode { Command, Data }
pub fn is_template(text: &str) -> bool { text.contains("{{") }
pub struct Reference { pub path: Vec<String>, pub raw: bool, pub offset: usize, pub length: usize }
#[derive(Debug, thiserror::Error)]
pub enum TemplateError { #[error("x")] Syntax { offset: Option<usize> } }
impl TemplateError { pub fn offset(&self) -> Option<usize> { None } pub fn hints(&self) -> Vec<String> { vec![] } }
pub fn references(_t: &str) -> Result<Vec<Reference>, TemplateError> { Ok(vec![]) }
pub fn shell_quote(t: &str) -> String { t.to_string() }
pub struct Renderer;
impl Renderer { pub fn new() -> Self { Renderer } pub fn render(&self, _m: Mode, t: &str, _c: &serde_json::Value) -> Result<String, TemplateError> { Ok(t.into()) } pub fn condition(&self, _t: &str, _c: &serde_json::Value) -> Result<bool, TemplateError> { Ok(true) } }
