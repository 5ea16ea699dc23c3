//! What every Azure kind works with: the ARM client, the provider's settings, the
//! subscription-wide lists read once per plan, and what each kind's changes need of the
//! credential (for `azure.roleCheck`).

use super::arm::{ArmClient, ArmError, ArmRequest};
use super::cloud::ApiKind;
use super::kinds::role_check::{Needs, NeedsOf};
use arcplan_engine::address::ResourceType;
use arcplan_engine::plan::Change;
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the Azure provider.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// The stack (ownership tag value).
    pub stack: String,
    /// The subscription id (`azure.subscription`).
    pub subscription: String,
    /// Every subscription the file works in, `subscription` first (discovery lists each).
    pub subscriptions: Vec<String>,
    /// How long to wait for a provider registration.
    pub registration_timeout: Duration,
    /// How long to wait for a long-running operation.
    pub operation_timeout: Duration,
    /// How often to poll registration and connectivity.
    pub poll_interval: Duration,
    /// Where secret references of resources (extension protected settings) are read from.
    pub secrets: SecretSource,
}

/// An environment: a variable's value, if it is set.
pub type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where secret references are read: environment variables through `env`, files relative to
/// `base_dir` (the configuration file's directory).
#[derive(Clone)]
pub struct SecretSource {
    /// The directory relative file references are resolved against.
    pub base_dir: std::path::PathBuf,
    /// The environment.
    pub env: EnvFn,
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSource")
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

impl Default for SecretSource {
    fn default() -> Self {
        Self {
            base_dir: ".".into(),
            env: Arc::new(super::credential::process_env),
        }
    }
}

impl SecretSource {
    /// The secret a reference names. Errors name the variable or file, never a value.
    pub fn read(
        &self,
        r: &arcplan_config::SecretRef,
    ) -> Result<String, super::credential::CredentialError> {
        super::credential::read_secret(r, &self.base_dir, &*self.env).map(|s| s.secret().to_owned())
    }
}

impl AzureSettings {
    /// Defaults for a stack and subscription.
    pub fn new(stack: &str, subscription: &str) -> Self {
        Self {
            stack: stack.to_owned(),
            subscription: subscription.to_owned(),
            subscriptions: vec![subscription.to_owned()],
            registration_timeout: Duration::from_secs(20 * 60),
            operation_timeout: Duration::from_secs(30 * 60),
            poll_interval: Duration::from_secs(5),
            secrets: SecretSource::default(),
        }
    }

    /// The file's subscriptions (`azure.subscription` is always among them, first).
    pub fn with_subscriptions<S: AsRef<str>>(mut self, subs: &[S]) -> Self {
        let mut all = vec![self.subscription.clone()];
        for s in subs.iter().map(AsRef::as_ref) {
            if !all.iter().any(|a| a.eq_ignore_ascii_case(s)) {
                all.push(s.to_owned());
            }
        }
        self.subscriptions = all;
        self
    }

    /// Secret references read from this environment and directory.
    pub fn with_secrets(mut self, base_dir: &std::path::Path, env: EnvFn) -> Self {
        self.secrets = SecretSource {
            base_dir: base_dir.to_path_buf(),
            env,
        };
        self
    }
}

/// A subscription-wide list, or why it could not be read.
type ListResult = Result<Arc<Vec<Value>>, ArmError>;

/// A list and where each name is in it.
struct NameIndex {
    list: Arc<Vec<Value>>,
    positions: HashMap<String, Vec<usize>>,
}

/// The shared context of the Azure kinds.
pub struct AzureCx {
    /// The ARM client.
    pub arm: Arc<ArmClient>,
    /// The provider's settings.
    pub settings: AzureSettings,
    /// Subscription-wide lists read once per plan (providers, resource groups, connected
    /// clusters), cleared by any apply. Failures are kept too, so 500 readers do not retry a
    /// forbidden list 500 times.
    lists: tokio::sync::Mutex<HashMap<String, ListResult>>,
    /// For a list under a key, its items' positions by name in lower case (built on the first
    /// lookup by name, so 10,000 reads do not each scan a 10,000-item list).
    by_name: std::sync::Mutex<HashMap<String, Arc<NameIndex>>>,
    /// What a change of each kind needs of the credential, by type.
    needs: HashMap<ResourceType, NeedsOf>,
}

impl AzureCx {
    /// A context over an ARM client, with each kind's permission needs.
    pub fn new(
        arm: Arc<ArmClient>,
        settings: AzureSettings,
        needs: &[(ResourceType, NeedsOf)],
    ) -> Self {
        Self {
            arm,
            settings,
            lists: tokio::sync::Mutex::new(HashMap::new()),
            by_name: std::sync::Mutex::new(HashMap::new()),
            needs: needs.iter().cloned().collect(),
        }
    }

    /// `/subscriptions/<id>`.
    pub fn sub_path(&self, sub: &str) -> String {
        format!("/subscriptions/{sub}")
    }

    /// A resource group's ARM path.
    pub fn rg_path(&self, sub: &str, rg: &str) -> String {
        format!("{}/resourcegroups/{rg}", self.sub_path(sub))
    }

    /// The name of the address of a subscription-level resource (a group, a registration):
    /// `name` in the file's subscription, `<subscription>/<name>` in another.
    pub fn scoped(&self, sub: &str, name: &str) -> String {
        super::shared::scoped_name(&self.settings.subscription, sub, name)
    }

    /// The subscription and the name an address's name holds (see [`AzureCx::scoped`]).
    pub fn unscoped<'a>(&'a self, name: &'a str) -> (&'a str, &'a str) {
        super::shared::unscoped_name(&self.settings.subscription, name)
    }

    /// An ARM request.
    pub fn req(&self, method: Method, path: &str, api: ApiKind, body: Option<Value>) -> ArmRequest {
        self.arm.request(method, path, api, body)
    }

    /// A list under `key` (subscription-wide, or one cluster's extensions), read once per plan.
    pub async fn cached_list(
        &self,
        key: &str,
        path: &str,
        api: ApiKind,
    ) -> Result<Arc<Vec<Value>>, ArmError> {
        let mut lists = self.lists.lock().await;
        if let Some(r) = lists.get(key) {
            return r.clone();
        }
        let req = self.req(Method::GET, path, api, None);
        let result = self.arm.list_all(&req).await.map(Arc::new);
        lists.insert(key.to_owned(), result.clone());
        result
    }

    /// The items of the list under `key` (read once per plan, as [`AzureCx::cached_list`])
    /// whose `name` is `name`, compared without case.
    pub async fn cached_named(
        &self,
        key: &str,
        path: &str,
        api: ApiKind,
        name: &str,
    ) -> Result<Vec<Value>, ArmError> {
        let list = self.cached_list(key, path, api).await?;
        let index = {
            let mut all = self.by_name.lock().unwrap_or_else(|e| e.into_inner());
            match all.get(key) {
                Some(i) if Arc::ptr_eq(&i.list, &list) => i.clone(),
                _ => {
                    let mut positions: HashMap<String, Vec<usize>> = HashMap::new();
                    for (i, item) in list.iter().enumerate() {
                        let n = item.get("name").and_then(Value::as_str).unwrap_or_default();
                        positions.entry(n.to_ascii_lowercase()).or_default().push(i);
                    }
                    let i = Arc::new(NameIndex { list, positions });
                    all.insert(key.to_owned(), i.clone());
                    i
                }
            }
        };
        Ok(index
            .positions
            .get(&name.to_ascii_lowercase())
            .map(|at| at.iter().map(|&i| index.list[i].clone()).collect())
            .unwrap_or_default())
    }

    /// Forgets the lists (an apply changes what they hold).
    pub async fn forget_cached_reads(&self) {
        self.lists.lock().await.clear();
        self.by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// What a planned change needs of the credential (nothing for a kind that declares no
    /// needs).
    pub fn needs_of(&self, change: &Change) -> Needs {
        self.needs
            .get(&change.address.rtype)
            .map(|n| n(&change.address, change.action))
            .unwrap_or_default()
    }

    /// What the owner of another shard's change needs (whether it creates a scope, for one).
    pub fn owner_needs(&self, change: &Change) -> Option<Needs> {
        let owner = change.owner.as_ref()?;
        Some(
            self.needs
                .get(&change.address.rtype)
                .map(|n| n(&change.address, owner.action))
                .unwrap_or_default(),
        )
    }
}
