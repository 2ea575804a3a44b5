//! Reports of a stored scan: JSON (the contract's scan result), a self-contained HTML
//! evidence document, SARIF 2.1.0 for code scanning and JUnit XML for CI systems.

pub mod html;
pub mod json;
pub mod junit;
pub mod sarif;
