//! haproxy.cfg: words, the lossless document, and the API's objects in it.

mod codecs;
pub mod document;
pub mod fields;
pub mod model;
pub mod ownership;
pub mod tables;
pub mod userlist;
pub mod words;

pub use document::Document;
pub use model::{Kind, ModelError};
pub use ownership::{FIRST_BOOT_USERLIST, is_first_boot_section};
