//! The desired-state configuration: types, loading and validation.
//!
//! Loading never stops at the first problem. [`load_str`] runs four stages and collects every
//! diagnostic it can before giving up:
//!
//! 1. guards: size limit, text (UTF-8, no NUL bytes), non-empty;
//! 2. YAML parsing with serde-saphyr into a position-carrying tree ([`yaml::Node`]), under a
//!    parser budget that bounds depth, nodes and alias expansion;
//! 3. structural validation of the tree against the generated JSON Schema ([`schema`]):
//!    unknown keys (with "did you mean"), missing keys, types, enums, formats; inline secrets;
//! 4. typed deserialisation into [`Config`] and semantic validation ([`validate`]): GUIDs,
//!    ARM naming rules, references between resources, duplicates, locations; unknown
//!    distributions, infrastructures and regions are warnings. When stage 3 found errors, the
//!    rejected paths are set aside ([`salvage`]) and stage 4 still runs over the rest, so one
//!    run shows structural and semantic problems together.
//!
//! Between 2 and 3, a fleet's `clusterDefaults` and `clusterSets` are expanded into `clusters`
//! ([`fleet`]): every later stage sees the expanded clusters, and a cluster read from an
//! inventory points at its row (`inventory.csv:13:1`).
//!
//! Every diagnostic carries `file:line:column` and the key path.

pub mod conventions;
pub mod extensions;
mod fleet;
pub mod flux;
mod flux_types;
pub mod known;
mod load;
mod loaded;
mod salvage;
pub mod schema;
mod subscriptions;
mod types;
pub mod validate;
pub mod yaml;

pub use flux_types::*;
pub use load::{load_bytes, load_file, load_str, read_file, read_regular, read_source};
pub use loaded::{Files, Loaded};
pub use types::*;
