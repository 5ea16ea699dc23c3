//! What the ARM emulator knows without any state: api-versions, regions and the resource
//! provider catalogue.

/// Registration state of a resource provider in a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// Not registered.
    NotRegistered,
    /// `register` was called; not finished yet.
    Registering,
    /// Registered.
    Registered,
    /// `unregister` was called; not finished yet.
    Unregistering,
}

impl RegistrationState {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationState::NotRegistered => "NotRegistered",
            RegistrationState::Registering => "Registering",
            RegistrationState::Registered => "Registered",
            RegistrationState::Unregistering => "Unregistering",
        }
    }
}

/// Api-versions ARM accepts for `Microsoft.Resources` types (subscriptions, resource groups,
/// providers, resources, operation results).
pub(crate) const RESOURCES_VERSIONS: &[&str] = &[
    "2025-04-01",
    "2025-03-01",
    "2025-01-01",
    "2024-11-01",
    "2024-07-01",
    "2024-03-01",
    "2023-07-01",
    "2022-12-01",
    "2022-09-01",
    "2022-01-01",
    "2021-04-01",
    "2021-01-01",
    "2020-10-01",
    "2020-08-01",
    "2020-06-01",
    "2020-01-01",
    "2019-11-01",
    "2019-10-01",
    "2019-08-01",
    "2019-07-01",
    "2019-06-01",
    "2019-05-10",
    "2019-05-01",
    "2019-03-01",
    "2018-06-01",
    "2018-05-01",
    "2018-02-01",
    "2017-05-10",
    "2016-09-01",
    "2016-07-01",
    "2016-06-01",
    "2016-02-01",
    "2015-11-01",
    "2015-01-01",
];
/// Api-versions of `Microsoft.ExtendedLocation/customLocations`.
pub(crate) const CUSTOM_LOCATION_VERSIONS: &[&str] =
    &["2021-08-15", "2021-08-31-preview", "2024-09-15-preview"];
/// Api-versions of `Microsoft.KubernetesConfiguration/extensions`.
pub(crate) const EXTENSION_VERSIONS: &[&str] =
    &["2025-03-01", "2024-11-01", "2023-05-01", "2022-11-01"];
/// Api-versions of `Microsoft.KubernetesConfiguration/fluxConfigurations`.
pub(crate) const FLUX_VERSIONS: &[&str] = &["2025-04-01", "2024-11-01", "2023-05-01", "2022-11-01"];
/// Api-versions of `Microsoft.Kubernetes/connectedClusters` (stable and preview).
pub(crate) const KUBERNETES_VERSIONS: &[&str] = &[
    "2026-05-01",
    "2026-02-01-preview",
    "2025-12-01-preview",
    "2025-08-01-preview",
    "2024-12-01-preview",
    "2024-07-01-preview",
    "2024-06-01-preview",
    "2024-02-01-preview",
    "2024-01-01",
    "2023-11-01-preview",
    "2022-10-01-preview",
    "2022-05-01-preview",
    "2021-10-01",
    "2021-04-01-preview",
    "2021-03-01",
    "2020-01-01-preview",
];
/// Api-versions of role assignments.
pub(crate) const ROLE_ASSIGNMENT_VERSIONS: &[&str] = &[
    "2022-04-01",
    "2022-01-01-preview",
    "2021-04-01-preview",
    "2020-10-01-preview",
    "2020-10-01",
    "2020-08-01-preview",
    "2020-04-01-preview",
    "2020-03-01-preview",
    "2018-09-01-preview",
    "2018-07-01",
    "2018-01-01-preview",
    "2017-10-01-preview",
    "2015-07-01",
    "2015-06-01",
];
/// Api-versions of role definitions and permissions.
pub(crate) const ROLE_DEFINITION_VERSIONS: &[&str] = &[
    "2022-05-01-preview",
    "2022-04-01",
    "2018-01-01-preview",
    "2015-07-01",
];
/// Api-versions of the cloud metadata document.
pub(crate) const METADATA_VERSIONS: &[&str] =
    &["2022-09-01", "2020-06-01", "2019-05-01", "2015-01-01"];

/// Display names of the regions Arc-enabled Kubernetes is offered in.
pub(crate) const ARC_LOCATIONS: &[&str] = &[
    "East US",
    "East US 2",
    "West US",
    "West US 2",
    "West US 3",
    "Central US",
    "North Central US",
    "South Central US",
    "West Central US",
    "Canada Central",
    "Brazil South",
    "North Europe",
    "West Europe",
    "UK South",
    "France Central",
    "Germany West Central",
    "Switzerland North",
    "Sweden Central",
    "Norway East",
    "Australia East",
    "Japan East",
    "Korea Central",
    "Southeast Asia",
    "East Asia",
    "Central India",
    "UAE North",
    "South Africa North",
    "Italy North",
    "Poland Central",
];
/// Further regions where resource groups may live.
pub(crate) const OTHER_LOCATIONS: &[&str] = &[
    "Canada East",
    "UK West",
    "Japan West",
    "Australia Southeast",
    "Australia Central",
    "South India",
    "West India",
    "Korea South",
    "France South",
    "Germany North",
    "Norway West",
    "Switzerland West",
    "UAE Central",
    "South Africa West",
    "Brazil Southeast",
    "Qatar Central",
    "Israel Central",
    "Mexico Central",
    "Spain Central",
    "New Zealand North",
];

/// `East US` → `eastus`.
pub(crate) fn normalize_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A provider namespace the sandbox knows.
pub(crate) struct ProviderInfo {
    pub namespace: &'static str,
    pub always_registered: bool,
    pub types: &'static [(&'static str, bool, &'static [&'static str])],
}

/// The provider catalogue: (type, located in Arc regions?, api-versions).
pub(crate) static PROVIDERS: &[ProviderInfo] = &[
    ProviderInfo {
        namespace: "Microsoft.Kubernetes",
        always_registered: false,
        types: &[
            ("connectedClusters", true, KUBERNETES_VERSIONS),
            ("locations", false, KUBERNETES_VERSIONS),
            ("locations/operationStatuses", true, KUBERNETES_VERSIONS),
            ("registeredSubscriptions", false, KUBERNETES_VERSIONS),
            ("operations", false, KUBERNETES_VERSIONS),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.KubernetesConfiguration",
        always_registered: false,
        types: &[
            ("extensions", true, EXTENSION_VERSIONS),
            ("fluxConfigurations", true, FLUX_VERSIONS),
            (
                "sourceControlConfigurations",
                true,
                &["2023-05-01", "2022-11-01", "2021-03-01"],
            ),
            (
                "operations",
                false,
                &["2025-04-01", "2025-03-01", "2023-05-01"],
            ),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.ExtendedLocation",
        always_registered: false,
        types: &[
            ("customLocations", true, CUSTOM_LOCATION_VERSIONS),
            (
                "customLocations/enabledResourceTypes",
                true,
                &["2021-08-15", "2021-08-31-preview"],
            ),
            ("locations", false, &["2021-08-15"]),
            ("operations", false, &["2021-08-15"]),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.HybridCompute",
        always_registered: false,
        types: &[
            ("machines", true, &["2024-07-10", "2022-12-27"]),
            ("operations", false, &["2024-07-10"]),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.Insights",
        always_registered: false,
        types: &[
            ("alertrules", true, &["2016-03-01"]),
            ("operations", false, &["2015-04-01"]),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.Authorization",
        always_registered: true,
        types: &[
            ("roleAssignments", false, ROLE_ASSIGNMENT_VERSIONS),
            ("roleDefinitions", false, ROLE_DEFINITION_VERSIONS),
            ("permissions", false, ROLE_DEFINITION_VERSIONS),
        ],
    },
    ProviderInfo {
        namespace: "Microsoft.Resources",
        always_registered: true,
        types: &[
            ("subscriptions", false, RESOURCES_VERSIONS),
            ("resourceGroups", true, RESOURCES_VERSIONS),
            ("resources", false, RESOURCES_VERSIONS),
            ("subscriptions/operationresults", false, RESOURCES_VERSIONS),
            ("deployments", false, RESOURCES_VERSIONS),
            ("tags", false, RESOURCES_VERSIONS),
        ],
    },
];
