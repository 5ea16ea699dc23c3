//! The saved plan file (`plan --out`): the plan value plus what apply needs to run it again
//! exactly: the configuration file (by path and digest) and where the run goes. It never holds a
//! secret: the plan is redacted by construction and credentials are not stored.

use arcplan_engine::plan::Plan;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The plan file's own format version.
pub const PLAN_FILE_VERSION: &str = "1.0";

/// A saved plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    /// [`PLAN_FILE_VERSION`].
    pub format_version: String,
    /// The arcplan version that wrote it.
    pub arcplan_version: String,
    /// The configuration file, absolute.
    pub config_file: PathBuf,
    /// A running sandbox the plan was made against (`--sandbox-dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_dir: Option<PathBuf>,
    /// The plan.
    pub plan: Plan,
}

impl PlanFile {
    /// Writes the file (mode 0600 on Unix: it describes infrastructure).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        opts.open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("cannot write the plan to {}: {e}", path.display()))
    }

    /// Reads a plan file, refusing other major versions.
    pub fn read(path: &Path) -> Result<PlanFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the plan file {}: {e}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|_| format!("{} is not an arcplan plan file (not JSON); make one with `arcplan plan --out FILE`", path.display()))?;
        let version = v
            .get("format_version")
            .and_then(|x| x.as_str())
            .unwrap_or("");
        if version.split('.').next() != PLAN_FILE_VERSION.split('.').next() {
            return Err(format!(
                "{} has plan file format `{version}`; this arcplan reads {PLAN_FILE_VERSION}: make the plan again with this version",
                path.display()
            ));
        }
        let plan_text = v.get("plan").map(|p| p.to_string()).unwrap_or_default();
        Plan::from_json(&plan_text).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_value(v)
            .map_err(|e| format!("{} is not a valid plan file: {e}", path.display()))
    }
}
