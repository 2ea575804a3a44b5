//! plumbline: drift detection and compliance auditing for GitOps on Kubernetes.
//!
//! A scan flows through stages, each a module with one job; only [`scan`] knows their order:
//! [`config`] -> [`source`] (Git) -> [`render`] -> [`live`] -> [`diff`] -> [`store`].

pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod diff;
pub mod heal;
pub mod kinds;
pub mod live;
pub mod manifest;
pub mod model;
pub mod notify;
pub mod policy;
pub mod render;
pub mod report;
pub mod scan;
pub mod source;
pub mod store;
