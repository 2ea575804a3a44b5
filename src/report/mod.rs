//! Reports of a stored scan: JSON (the contract's scan result) and a self-contained HTML
//! evidence document.

pub mod html;
pub mod json;
