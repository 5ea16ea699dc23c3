//! A loaded configuration with the tree it came from, shared by loading and validation.

use super::Config;
use super::yaml::{Node, Path, Pos, Seg};
use arcplan_engine::diag::{Diagnostics, SourceLocation};
use std::collections::BTreeMap;

/// The files a document was read from: the desired-state file first, then the inventories its
/// `clusterSets` name, in the order they were read (a [`Pos`] names one by index).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Files(pub Vec<String>);

impl Files {
    /// The location of a position, in the file it is in.
    pub fn location(&self, pos: Pos) -> SourceLocation {
        SourceLocation {
            file: self
                .0
                .get(usize::from(pos.file))
                .or(self.0.first())
                .cloned()
                .unwrap_or_default(),
            line: pos.line.max(1),
            column: pos.column.max(1),
        }
    }
}

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
    /// SHA-256 of the source text (hex), to tie a saved plan to the file it came from (and of
    /// every inventory it read).
    pub digest: String,
    /// The files read: the desired-state file and its inventories.
    pub files: Files,
    /// Where each cluster generated from a cluster set came from (by index in `clusters`), as
    /// `file:line` of its inventory row or the kubeconfig context it was found as.
    pub origins: BTreeMap<usize, String>,
}

impl Loaded {
    /// The source location of a key path, for diagnostics raised after loading.
    pub fn location(&self, path: &Path) -> Option<SourceLocation> {
        Some(self.files.location(self.tree.pos_of(path)))
    }
}

/// The key path of a node in the document, for diagnostics raised on typed values: the
/// `index`-th cluster.
pub(crate) fn cluster_path(index: usize) -> Path {
    Path(vec![Seg::Key("clusters".into()), Seg::Index(index)])
}
