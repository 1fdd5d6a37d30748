//! The rules of the Qingpu District E-Government Cloud Management Interim
//! Measures and the value types Yunzhi speaks in.
//!
//! Nothing here does I/O: every rule is a pure function over values, so it
//! can be unit- and property-tested without a database or a server. Values
//! are parsed at the edge into types that cannot hold a wrong value
//! (`parse(..) -> Result<_, Invalid>`), and each refusal names the field,
//! the rule and, where one applies, the article of the regulation.

pub mod access;
pub mod calendar;
pub mod catalog;
pub mod clock;
pub mod document;
pub mod efficiency;
pub mod finding;
pub mod ids;
pub mod invalid;
pub mod monitoring;
pub mod password;
pub mod platform;
pub mod request;
pub mod resource;
pub mod role;
pub mod system;
pub mod text;
pub mod unit;
pub mod user;
pub mod warning;

pub use invalid::{FieldError, Invalid};
