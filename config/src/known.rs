//! Values Azure knows: the `az connectedk8s` distributions and infrastructures and the public
//! Azure regions. An unknown value is a warning, not an error: Azure adds new ones.

use arcplan_engine::diag::did_you_mean;

/// `az connectedk8s connect --distribution` values.
pub const DISTRIBUTIONS: &[&str] = &[
    "auto",
    "generic",
    "openshift",
    "rancher_rke",
    "kind",
    "k3s",
    "minikube",
    "gke",
    "eks",
    "aks",
    "aks_management",
    "aks_workload",
    "capz",
    "aks_engine",
    "tkg",
    "canonical",
    "karbon",
    "aks_edge_k3s",
    "aks_edge_k8s",
];

/// `az connectedk8s connect --infrastructure` values.
pub const INFRASTRUCTURES: &[&str] = &[
    "auto",
    "generic",
    "azure",
    "aws",
    "gcp",
    "azure_stack_hci",
    "azure_stack_hub",
    "azure_stack_edge",
    "vsphere",
    "windows_server",
];

/// Region names of the public Azure cloud (`az account list-locations --query [].name`).
pub const REGIONS: &[&str] = &[
    "australiacentral",
    "australiacentral2",
    "australiaeast",
    "australiasoutheast",
    "austriaeast",
    "belgiumcentral",
    "brazilsouth",
    "brazilsoutheast",
    "canadacentral",
    "canadaeast",
    "centralindia",
    "centralus",
    "centraluseuap",
    "chilecentral",
    "eastasia",
    "eastus",
    "eastus2",
    "eastus2euap",
    "francecentral",
    "francesouth",
    "germanynorth",
    "germanywestcentral",
    "indonesiacentral",
    "israelcentral",
    "italynorth",
    "japaneast",
    "japanwest",
    "jioindiacentral",
    "jioindiawest",
    "koreacentral",
    "koreasouth",
    "malaysiawest",
    "mexicocentral",
    "newzealandnorth",
    "northcentralus",
    "northeurope",
    "norwayeast",
    "norwaywest",
    "polandcentral",
    "qatarcentral",
    "southafricanorth",
    "southafricawest",
    "southcentralus",
    "southeastasia",
    "southindia",
    "spaincentral",
    "swedencentral",
    "swedensouth",
    "switzerlandnorth",
    "switzerlandwest",
    "uaecentral",
    "uaenorth",
    "uksouth",
    "ukwest",
    "westcentralus",
    "westeurope",
    "westindia",
    "westus",
    "westus2",
    "westus3",
];

/// For a value outside `known`: the hint ("did you mean `x`?" when one is close, and the known
/// values). `None` when the value is known.
pub fn unknown_value_hint(value: &str, known: &[&str]) -> Option<String> {
    if known.contains(&value) {
        return None;
    }
    let listed = known.join(", ");
    Some(match did_you_mean(value, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`? Known values: {listed}"),
        None => format!("known values: {listed}"),
    })
}

/// Extension types Azure offers for Arc-enabled Kubernetes (`az k8s-extension create
/// --extension-type`).
pub const EXTENSION_TYPES: &[&str] = &[
    "microsoft.azuremonitor.containers",
    "microsoft.azuremonitor.containers.metrics",
    "microsoft.policyinsights",
    "microsoft.flux",
    "microsoft.azuredefender.kubernetes",
    "microsoft.azurekeyvaultsecretsprovider",
    "microsoft.openservicemesh",
    "microsoft.dapr",
    "microsoft.azureml.kubernetes",
    "microsoft.arcdataservices",
    "microsoft.web.appservice",
    "microsoft.workloadidentity",
    "microsoft.extensiondiagnostics",
    "microsoft.iotoperations",
];

/// The protected settings a Flux configuration's Git source takes.
pub const FLUX_PROTECTED_SETTINGS: &[&str] = &["httpsKey", "sshPrivateKey"];

/// The protected settings a Flux configuration's bucket source takes.
pub const FLUX_BUCKET_PROTECTED_SETTINGS: &[&str] = &["bucketSecretKey"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_close_value() {
        let h = unknown_value_hint("aks_workloadd", DISTRIBUTIONS).unwrap();
        assert!(h.starts_with("did you mean `aks_workload`?"), "{h}");
        assert!(unknown_value_hint("generic", INFRASTRUCTURES).is_none());
        let h = unknown_value_hint("mars", REGIONS).unwrap();
        assert!(h.contains("eastus") && !h.contains("did you mean"), "{h}");
    }
}
