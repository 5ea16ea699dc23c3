//! `arcplan sandbox`: run the emulators in the foreground until Ctrl-C.

use super::{Error, Outcome, context};
use crate::cli::{SandboxArgs, TargetArgs, command_line};
use crate::views::Output;
use arcplan_sandbox::arm::PrincipalRole;
use arcplan_sandbox::{Sandbox, SandboxOptions};

pub fn run(args: &SandboxArgs, out: &Output) -> Result<Outcome, Error> {
    super::runtime()?.block_on(async {
        // (cluster, subscription, resource group) of the file's clusters, for `copy-onboarding`.
        let mut clusters: Vec<(String, String, String)> = Vec::new();
        let mut opts = match &args.file {
            Some(f) => match context::load(out, f) {
                Ok(l) => {
                    let cfg = &l.config;
                    clusters = (cfg.clusters.iter())
                        .map(|c| {
                            let sub = cfg.cluster_subscription(c).to_owned();
                            (c.name.clone(), sub, c.resource_group.clone())
                        })
                        .collect();
                    context::sandbox_options(&l)
                }
                Err(_) => return Ok(Outcome::Failed),
            },
            None => SandboxOptions::default(),
        };
        opts.seed = args.seed;
        opts.agents.interval = args.agents_interval;
        opts.latency = args.latency;
        opts.fault_rate = args.fault_rate;
        if args.throttle {
            opts.throttle = arcplan_sandbox::faults::ThrottleOptions::arm_like();
        }
        opts.principal_role = match PrincipalRole::parse(&args.role) {
            Some(r) => r,
            None => {
                out.error(&format!("--role `{}`: use owner, contributor, arc-onboarding, reader or none", args.role));
                return Ok(Outcome::Failed);
            }
        };
        opts.log_path = args.log.clone();
        opts.entra_port = args.entra_port;
        opts.arm_port = args.arm_port;
        opts.kube_port = args.kube_port;
        let sb = match Sandbox::start(opts).await {
            Ok(sb) => sb,
            Err(e) => {
                out.error(&format!("cannot start the sandbox: {e}"));
                return Ok(Outcome::Failed);
            }
        };
        let [ca, kubeconfig, env] = match sb.write_files(&args.dir) {
            Ok(p) => p,
            Err(e) => {
                out.error(&format!("cannot write the sandbox files: {e}"));
                return Ok(Outcome::Failed);
            }
        };
        out.stdout(&format!(
            "arcplan sandbox is running (Ctrl-C to stop).\n\n  Entra:       {}\n  ARM:         {}\n  Kubernetes:  {}\n  tenant:      {}\n  subscription: {}\n\n  CA bundle:   {}\n  kubeconfig:  {}\n  environment: {}\n\nTry:\n  {}\n  kubectl --kubeconfig {} -n azure-arc get deployments,pods\n",
            sb.authority_host(),
            sb.resource_manager(),
            sb.kube_server(),
            sb.tenant_id(),
            sb.subscription_ids().join(", "),
            ca.display(),
            kubeconfig.display(),
            env.display(),
            try_line(args),
            kubeconfig.display(),
        ));
        if args.control {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = control(&sb, &clusters) => {}
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
        sb.shutdown().await;
        out.stdout("sandbox stopped; its state is gone");
        Ok(Outcome::Ok)
    })
}

/// `--control`: answers commands on stdin, one line each, until its end.
async fn control(sb: &Sandbox, clusters: &[(String, String, String)]) {
    use std::io::Write as _;
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["copy-onboarding", from] => {
                let to: Vec<(String, String, String)> =
                    clusters.iter().filter(|c| c.0 != *from).cloned().collect();
                match sb
                    .copy_onboarding(from, &to, std::time::Duration::from_secs(1800))
                    .await
                {
                    Ok(()) => format!("ok {} clusters", to.len()),
                    Err(e) => format!("error {e}"),
                }
            }
            ["faults", latency, throttle] => match crate::cli::parse_duration(latency) {
                Ok(l) => {
                    sb.faults().set_latency(l, std::time::Duration::ZERO);
                    sb.faults().set_throttle(if *throttle == "on" {
                        arcplan_sandbox::faults::ThrottleOptions::arm_like()
                    } else {
                        Default::default()
                    });
                    "ok".to_string()
                }
                Err(e) => format!("error {e}"),
            },
            ["requests"] => {
                let c = sb.request_counts();
                serde_json::json!({"entra": c.entra, "arm": c.arm, "kube": c.kube}).to_string()
            }
            _ => format!("error unknown command `{line}`"),
        };
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{answer}");
        let _ = stdout.flush();
    }
}

/// The command the banner suggests: apply the file the sandbox serves, against this sandbox.
fn try_line(args: &SandboxArgs) -> String {
    let target = TargetArgs {
        sandbox: false,
        sandbox_dir: Some(args.dir.clone()),
        sandbox_azure_only: false,
        in_cluster: None,
    };
    match &args.file {
        Some(f) => command_line("apply", Some(f), &target, &[]),
        // Without -f the sandbox serves its own subscription: a file must name it.
        None => format!(
            "{}    # a file whose azure.subscription is the one above; or restart with -f FILE to serve yours",
            command_line("apply", Some(std::path::Path::new("FILE")), &target, &[])
        ),
    }
}
