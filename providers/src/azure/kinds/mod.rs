//! The Azure resource kinds, one module each (typed attributes, lowering, verbs).

pub mod connected_cluster;
pub mod connectivity;
pub mod custom_location;
pub mod extension;
pub mod flux;
pub mod resource_group;
pub mod resource_provider;
pub mod role_check;
pub mod subscription;
