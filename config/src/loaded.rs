//! A loaded configuration with the tree it came from, shared by loading and validation.

use super::Config;
use super::yaml::{Node, Path, Seg};
use arcplan_engine::diag::{Diagnostics, SourceLocation};

/// A loaded and validated configuration, with the tree it came from (for later diagnostics).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file name as given (used in diagnostics).
    pub file: String,
    /// The typed configuration.
    pub config: Config,
    /// The parsed tree with positions.
    pub tree: Node,
    /// Warnings found while loading (errors make loading fail instead).
    pub warnings: Diagnostics,
    /// SHA-256 of the source text (hex), to tie a saved plan to the file it came from.
    pub digest: String,
}

impl Loaded {
    /// The source location of a key path, for diagnostics raised after loading.
    pub fn location(&self, path: &Path) -> Option<SourceLocation> {
        let pos = self.tree.pos_of(path);
        Some(SourceLocation {
            file: self.file.clone(),
            line: pos.line.max(1),
            column: pos.column.max(1),
        })
    }
}

/// The key path of a node in the document, for diagnostics raised on typed values: the
/// `index`-th cluster.
pub(crate) fn cluster_path(index: usize) -> Path {
    Path(vec![Seg::Key("clusters".into()), Seg::Index(index)])
}
