//! The saved plan file (`plan --out`): the plan value plus what apply needs to run it again
//! exactly: the configuration file (by path and digest) and where the run goes. It never holds a
//! secret: the plan is redacted by construction and credentials are not stored.
//!
//! The file binds its contents: it carries a digest of every change and one over everything
//! else it holds (where it goes, the checks, the mode), computed when the plan is written and
//! verified by [`PlanFile::read`], the one reader `show` and `apply` share. Both therefore act
//! on the same fields, and an edited plan (a `desired` value changed by hand, a change added or
//! removed) is refused, naming what does not match.

use arcplan_engine::plan::{Plan, value_digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The plan file's own format version (1.1: contents digests).
pub const PLAN_FILE_VERSION: &str = "1.1";

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
    /// The plan was made with `--sandbox-azure-only`: the clusters are the file's own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sandbox_azure_only: bool,
    /// The digests of the contents (absent in files written before 1.1, which are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digests: Option<Digests>,
    /// The plan.
    pub plan: Plan,
}

/// What binds a plan file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// SHA-256 of each change (canonical JSON), by address.
    pub changes: BTreeMap<String, String>,
    /// SHA-256 of the whole file's contents: target, configuration digest, mode, stack, the
    /// changes in order and the checks.
    pub contents: String,
}

/// The largest plan file read (a 10,000-cluster plan is well under it).
const MAX_PLAN_FILE_BYTES: usize = 256 * 1024 * 1024;

impl PlanFile {
    /// A plan file for `plan`, its digests computed.
    pub fn new(config_file: PathBuf, sandbox_dir: Option<PathBuf>, plan: Plan) -> PlanFile {
        let mut f = PlanFile {
            format_version: PLAN_FILE_VERSION.into(),
            arcplan_version: env!("CARGO_PKG_VERSION").into(),
            config_file,
            sandbox_dir,
            sandbox_azure_only: false,
            digests: None,
            plan,
        };
        f.digests = Some(f.compute_digests());
        f
    }

    /// Records `--sandbox-azure-only` (the digests cover it).
    pub fn with_sandbox_azure_only(mut self, azure_only: bool) -> PlanFile {
        self.sandbox_azure_only = azure_only;
        self.digests = Some(self.compute_digests());
        self
    }

    /// Where the plan was made to go (the target `apply` uses).
    pub fn target(&self) -> crate::cli::TargetArgs {
        crate::cli::TargetArgs {
            sandbox: false,
            sandbox_dir: self.sandbox_dir.clone(),
            sandbox_azure_only: self.sandbox_azure_only,
            in_cluster: None,
        }
    }

    /// The command that makes this plan again into `path`, with the configuration file and the
    /// target it was made with.
    pub fn replan_line(&self, path: &Path) -> String {
        crate::cli::command_line(
            "plan",
            Some(&self.config_file),
            &self.target(),
            &["--out", &path.display().to_string()],
        )
    }

    fn compute_digests(&self) -> Digests {
        let changes = self
            .plan
            .changes
            .iter()
            .map(|c| {
                let v = serde_json::to_value(c).unwrap_or_default();
                (c.address.to_string(), value_digest(&v))
            })
            .collect();
        let mut contents = serde_json::json!({
            "config_file": self.config_file,
            "sandbox_dir": self.sandbox_dir,
            "plan": self.plan,
        });
        if self.sandbox_azure_only {
            contents["sandbox_azure_only"] = true.into();
        }
        Digests {
            changes,
            contents: value_digest(&contents),
        }
    }

    /// What does not match the recorded digests, in words (empty: the contents are intact).
    fn mismatches(&self) -> Vec<String> {
        let Some(recorded) = &self.digests else {
            return vec![
                "it carries no contents digest (written by an arcplan before 1.1?)".into(),
            ];
        };
        let now = self.compute_digests();
        let mut out = Vec::new();
        for (address, digest) in &now.changes {
            match recorded.changes.get(address) {
                None => out.push(format!("change {address} was added")),
                Some(d) if d != digest => out.push(format!(
                    "the contents of change {address} do not match its digest"
                )),
                Some(_) => {}
            }
        }
        for address in recorded.changes.keys() {
            if !now.changes.contains_key(address) {
                out.push(format!("change {address} was removed"));
            }
        }
        if out.is_empty() && now.contents != recorded.contents {
            out.push(
                "the plan's target, mode, order or checks do not match the contents digest".into(),
            );
        }
        out
    }

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

    /// Reads a plan file, refusing other major versions and contents that do not match their
    /// digests.
    pub fn read(path: &Path) -> Result<PlanFile, String> {
        let refused = |d: arcplan_engine::diag::Diagnostics| {
            let d = d
                .iter()
                .next()
                .map(|d| d.message.clone())
                .unwrap_or_default();
            format!("cannot read the plan file: {d}")
        };
        let bytes = arcplan_config::read_regular(path, MAX_PLAN_FILE_BYTES)
            .map_err(refused)?
            .ok_or_else(|| {
                format!(
                    "{} is over {} MiB, larger than any plan arcplan writes; check that this is the right file",
                    path.display(),
                    MAX_PLAN_FILE_BYTES / (1024 * 1024)
                )
            })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            format!(
                "{} is not an arcplan plan file (not UTF-8 text)",
                path.display()
            )
        })?;
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
        let file: PlanFile = serde_json::from_value(v)
            .map_err(|e| format!("{} is not a valid plan file: {e}", path.display()))?;
        let bad = file.mismatches();
        if !bad.is_empty() {
            return Err(format!(
                "{} was modified after it was written: {}. It is refused, since it may no longer be the plan that was reviewed; make the plan again with `{}`",
                path.display(),
                bad.join("; "),
                file.replan_line(path)
            ));
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcplan_engine::address::Address;
    use arcplan_engine::plan::{Action, Change, FORMAT_VERSION, PlanMode};

    fn sample() -> PlanFile {
        let mut c = Change::new(
            Address::new(arcplan_providers::kinds::CONNECTED_CLUSTER, "c1"),
            Action::Update,
        );
        c.desired = Some(serde_json::json!({"tags": {"env": "lab"}}));
        c.after = Some(serde_json::json!({"tags": {"env": "lab"}}));
        PlanFile::new(
            "/x/arcplan.yaml".into(),
            None,
            Plan {
                format_version: FORMAT_VERSION.into(),
                config_digest: "d".into(),
                stack: "s".into(),
                mode: PlanMode::Normal,
                changes: vec![c],
                checks: Vec::new(),
                shard: None,
            },
        )
    }

    fn roundtrip(edit: impl FnOnce(&mut serde_json::Value)) -> Result<PlanFile, String> {
        let dir = std::env::temp_dir().join(format!(
            "arcplan-planfile-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.plan");
        sample().write(&path).unwrap();
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(&path, v.to_string()).unwrap();
        let r = PlanFile::read(&path);
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn an_intact_plan_file_reads_back() {
        let f = roundtrip(|_| {}).expect("intact");
        assert_eq!(f.plan, sample().plan);
    }

    #[test]
    fn an_edited_desired_value_is_refused_naming_the_change() {
        let err = roundtrip(|v| {
            v["plan"]["changes"][0]["desired"]["tags"]["env"] = "prod".into();
        })
        .unwrap_err();
        assert!(
            err.contains("the contents of change arc.connectedCluster.c1 do not match its digest"),
            "{err}"
        );
    }

    #[test]
    fn edits_outside_the_changes_and_missing_digests_are_refused() {
        let err = roundtrip(|v| v["plan"]["mode"] = "destroy".into()).unwrap_err();
        assert!(err.contains("do not match the contents digest"), "{err}");
        let err = roundtrip(|v| v["sandbox_dir"] = "/elsewhere".into()).unwrap_err();
        assert!(err.contains("do not match the contents digest"), "{err}");
        let err = roundtrip(|v| {
            v.as_object_mut().unwrap().remove("digests");
        })
        .unwrap_err();
        assert!(err.contains("carries no contents digest"), "{err}");
        let err = roundtrip(|v| {
            v["plan"]["changes"].as_array_mut().unwrap().clear();
        })
        .unwrap_err();
        assert!(
            err.contains("change arc.connectedCluster.c1 was removed"),
            "{err}"
        );
    }
}
