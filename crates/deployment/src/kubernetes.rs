//! k8s/: every overlay rendered by the real kustomize (`kubectl kustomize`), every rendered
//! resource validated offline against its schema (kubernetes-validate, strict, for the
//! built-in kinds; the @kubernetes-models validators for Traefik, KEDA and Istio), and the
//! rendered whole checked for what the deployment promises (probes, resources, non-root,
//! a Service/PDB/NetworkPolicy per service, autoscaling, mesh policies mirroring the
//! network policies).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Component, Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::tools;

/// The oldest Kubernetes the manifests must be valid for.
pub const KUBERNETES_VERSION: &str = "1.30.0";
/// API groups validated with the CRD models instead of kubernetes-validate.
pub const CRD_GROUPS: &[&str] = &["traefik.io", "keda.sh", "istio.io"];
/// The HTTP services that scale on CPU.
pub const AUTOSCALED: &[&str] = &["auth", "media", "video"];

/// `kubectl kustomize dir`, as resources.
pub fn render(dir: &Path) -> anyhow::Result<Vec<Value>> {
    let output = tools::run_ok(
        Command::new(tools::kubectl()).arg("kustomize").arg(dir),
        None,
    )?;
    crate::yaml_documents(&output.stdout).context("kustomize printed unparsable YAML")
}

/// `path` relative to `from` (both absolute), for kustomize, which refuses absolute paths.
fn relative(path: &Path, from: &Path) -> PathBuf {
    let ups = from
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    let mut out = PathBuf::new();
    for _ in 0..ups {
        out.push("..");
    }
    out.push(path.strip_prefix("/").unwrap_or(path));
    out
}

/// Renders `overlay` with `components` added, through a kustomization of its own.
pub fn render_with(overlay: &Path, components: &[PathBuf]) -> anyhow::Result<Vec<Value>> {
    if components.is_empty() {
        return render(overlay);
    }
    let dir = crate::scratch_dir("kustomize");
    let mut text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\ncomponents:\n",
        relative(overlay, &dir).display()
    );
    for component in components {
        text.push_str(&format!("  - {}\n", relative(component, &dir).display()));
    }
    std::fs::write(dir.join("kustomization.yaml"), text)?;
    render(&dir)
}

fn group(resource: &Value) -> &str {
    let api = resource["apiVersion"].as_str().unwrap_or_default();
    api.rsplit_once('/').map_or("", |(group, _)| group)
}

fn is_crd(resource: &Value) -> bool {
    let group = group(resource);
    CRD_GROUPS
        .iter()
        .any(|g| group == *g || group.ends_with(&format!(".{g}")))
}

fn describe(resource: &Value) -> String {
    format!(
        "{} {}",
        resource["kind"].as_str().unwrap_or("?"),
        resource["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Validates every resource against its schema. `Ok(problems)`: one line per invalid
/// resource (empty = all valid); `Err` when a validator could not run.
pub fn validate(resources: &[Value]) -> anyhow::Result<Vec<String>> {
    let (crds, core): (Vec<&Value>, Vec<&Value>) = resources.iter().partition(|r| is_crd(r));
    let mut problems = Vec::new();
    if !core.is_empty() {
        // One JSON document per line is YAML too; kubernetes-validate reads the stream.
        let mut input = String::new();
        for resource in &core {
            input.push_str("---\n");
            input.push_str(&serde_json::to_string(resource)?);
            input.push('\n');
        }
        let output = tools::run(
            Command::new(tools::kubernetes_validate()).args([
                "--strict",
                "--quiet",
                "--kubernetes-version",
                KUBERNETES_VERSION,
                "-",
            ]),
            Some(input.as_bytes()),
        )?;
        // --quiet prints only failures and warnings (a kind without a schema is a
        // warning, and counts as a failure here: nothing passes unvalidated).
        let report: Vec<&str> = output
            .stdout
            .lines()
            .chain(output.stderr.lines())
            .filter(|l| !l.trim().is_empty())
            .collect();
        if !output.success || !report.is_empty() {
            if report.is_empty() {
                bail!("kubernetes-validate failed without saying why");
            }
            problems.extend(report.iter().map(|l| format!("kubernetes-validate: {l}")));
        }
    }
    if !crds.is_empty() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("validate/validate-crds.mjs");
        let output = tools::run(
            Command::new("node")
                .arg(&script)
                .env("KINO_MANIFEST_TOOLS", tools::manifest_tools()),
            Some(serde_json::to_string(&crds)?.as_bytes()),
        )?;
        let failed: Vec<&str> = output
            .stdout
            .lines()
            .filter(|l| !l.starts_with("ok "))
            .collect();
        let passed = output
            .stdout
            .lines()
            .filter(|l| l.starts_with("ok "))
            .count();
        if !output.success && failed.is_empty() {
            bail!(
                "the CRD validator could not run:\n{}",
                output.stderr.trim_end()
            );
        }
        problems.extend(failed.iter().map(|l| format!("CRD schema: {l}")));
        if output.success && passed != crds.len() {
            bail!(
                "the CRD validator checked {passed} of {} resources",
                crds.len()
            );
        }
    }
    Ok(problems)
}

fn name(resource: &Value) -> &str {
    resource["metadata"]["name"].as_str().unwrap_or_default()
}

fn of_kind<'a>(resources: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    resources.iter().filter(move |r| r["kind"] == kind)
}

/// The label value selecting a workload (`app.kubernetes.io/name`).
fn selects(selector: &Value) -> Option<&str> {
    selector["matchLabels"]["app.kubernetes.io/name"].as_str()
}

/// What a deployment of Kino must have, beyond schema validity. `services` are the service
/// crates (each needs a Deployment); `keda`/`istio` say which components were rendered in.
pub fn policy(resources: &[Value], services: &[String], keda: bool, istio: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let deployments: BTreeMap<&str, &Value> = of_kind(resources, "Deployment")
        .filter(|d| d["metadata"]["labels"]["app.kubernetes.io/component"] == "service")
        .map(|d| (name(d), d))
        .collect();
    for service in services {
        if !deployments.contains_key(service.as_str()) {
            problems.push(format!("no Deployment for {service}"));
        }
    }
    for (name, deployment) in &deployments {
        let pod = &deployment["spec"]["template"]["spec"];
        if pod["securityContext"]["runAsNonRoot"] != true {
            problems.push(format!(
                "{name}: pod securityContext.runAsNonRoot is not true"
            ));
        }
        for container in pod["containers"].as_array().into_iter().flatten() {
            let c = container["name"].as_str().unwrap_or("?");
            let probe_path = |probe: &str| {
                container[probe]["httpGet"]["path"]
                    .as_str()
                    .map(str::to_owned)
            };
            let grpc_port = container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == "grpc")
                .and_then(|p| p["containerPort"].as_u64());
            match grpc_port {
                // A gRPC server: probed natively, through the standard health service
                // (rpc::server): readiness by the whole server's status (its stores),
                // liveness by `liveness` (the process serves at all).
                Some(port) => {
                    let readiness = &container["readinessProbe"]["grpc"];
                    if readiness["port"].as_u64() != Some(port)
                        || readiness.get("service").is_some_and(|s| s != "")
                    {
                        problems.push(format!(
                            "{name}/{c}: readinessProbe must be a grpc probe of port {port}"
                        ));
                    }
                    let liveness = &container["livenessProbe"]["grpc"];
                    if liveness["port"].as_u64() != Some(port) || liveness["service"] != "liveness"
                    {
                        problems.push(format!(
                            "{name}/{c}: livenessProbe must be a grpc probe of port {port}, service liveness"
                        ));
                    }
                    problems.extend(grpc_reachability(resources, name));
                }
                None => {
                    if probe_path("readinessProbe").as_deref() != Some("/readyz") {
                        problems.push(format!("{name}/{c}: readinessProbe must GET /readyz"));
                    }
                    if probe_path("livenessProbe").as_deref() != Some("/healthz") {
                        problems.push(format!("{name}/{c}: livenessProbe must GET /healthz"));
                    }
                }
            }
            let resources = &container["resources"];
            for field in ["/requests/cpu", "/requests/memory", "/limits/memory"] {
                if resources.pointer(field).is_none() {
                    problems.push(format!(
                        "{name}/{c}: resources{} is not set",
                        field.replace('/', ".")
                    ));
                }
            }
            let sc = &container["securityContext"];
            if sc["allowPrivilegeEscalation"] != false {
                problems.push(format!("{name}/{c}: allowPrivilegeEscalation is not false"));
            }
            if sc["readOnlyRootFilesystem"] != true {
                problems.push(format!("{name}/{c}: readOnlyRootFilesystem is not true"));
            }
        }
        let selected = |kind: &str, path: &str| {
            of_kind(resources, kind).any(|r| {
                r.pointer(path)
                    .and_then(|s| s.as_object())
                    .is_some_and(|m| {
                        m.get("app.kubernetes.io/name").and_then(Value::as_str) == Some(name)
                    })
            })
        };
        if !selected("Service", "/spec/selector") {
            problems.push(format!("{name}: no Service"));
        }
        if !selected("PodDisruptionBudget", "/spec/selector/matchLabels") {
            problems.push(format!("{name}: no PodDisruptionBudget"));
        }
        if !selected("NetworkPolicy", "/spec/podSelector/matchLabels") {
            problems.push(format!("{name}: no NetworkPolicy"));
        }
    }
    for service in AUTOSCALED {
        let hpa = of_kind(resources, "HorizontalPodAutoscaler").find(|h| {
            h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
                && h["spec"]["scaleTargetRef"]["name"] == *service
        });
        match hpa {
            None => problems.push(format!("{service}: no HorizontalPodAutoscaler")),
            Some(_) => {
                if deployments
                    .get(service)
                    .is_some_and(|d| d["spec"].get("replicas").is_some())
                {
                    problems.push(format!(
                        "{service}: the Deployment sets replicas, which its autoscaler owns"
                    ));
                }
            }
        }
    }
    let scaled = of_kind(resources, "ScaledObject")
        .find(|s| s["spec"]["scaleTargetRef"]["name"] == "transcoder");
    if keda {
        match scaled {
            None => problems.push("keda: no ScaledObject for the transcoder".to_owned()),
            Some(s) => {
                let queue_trigger =
                    s["spec"]["triggers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|t| {
                            t["type"] == "rabbitmq"
                                && t["metadata"]["queueName"]
                                    .as_str()
                                    .is_some_and(|q| q.ends_with("transcode.jobs"))
                        });
                if !queue_trigger {
                    problems
                        .push("keda: the transcoder does not scale on transcode.jobs".to_owned());
                }
                if deployments
                    .get("transcoder")
                    .is_some_and(|d| d["spec"].get("replicas").is_some())
                {
                    problems.push("keda: the transcoder Deployment still sets replicas".to_owned());
                }
            }
        }
    } else if scaled.is_some() {
        problems.push("a ScaledObject without the keda component".to_owned());
    }
    if istio {
        problems.extend(mesh_mirrors_network_policies(resources));
    }
    problems
}

/// The gRPC port of `app` (internal APIs, crates/rpc): a headless Service exposes it (so
/// clients resolve every replica and spread their long-lived HTTP/2 connections over
/// them), as gRPC, and the NetworkPolicy admits only media to it.
fn grpc_reachability(resources: &[Value], app: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let headless = of_kind(resources, "Service").any(|s| {
        selects_app(&s["spec"]["selector"]) == Some(app)
            && s["spec"]["clusterIP"] == "None"
            && s["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["targetPort"] == "grpc" && p["appProtocol"] == "grpc")
    });
    if !headless {
        problems.push(format!(
            "{app}: no headless Service exposes its grpc port with appProtocol grpc"
        ));
    }
    for policy in of_kind(resources, "NetworkPolicy")
        .filter(|p| selects(&p["spec"]["podSelector"]) == Some(app))
    {
        let mut admitted = false;
        for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
            let ports: Vec<&Value> = rule["ports"].as_array().into_iter().flatten().collect();
            // A rule without ports admits its sources to every port.
            if !(ports.is_empty() || ports.iter().any(|p| p["port"] == "grpc")) {
                continue;
            }
            for from in rule["from"].as_array().into_iter().flatten() {
                if selects(&from["podSelector"]) == Some("media")
                    && from.get("namespaceSelector").is_none()
                {
                    admitted = true;
                } else {
                    problems.push(format!(
                        "{app}: NetworkPolicy admits {from} to its grpc port (only media may call it)"
                    ));
                }
            }
        }
        if !admitted {
            problems.push(format!(
                "{app}: NetworkPolicy does not admit media to its grpc port"
            ));
        }
    }
    problems
}

/// What a Service's plain selector selects (`app.kubernetes.io/name`).
fn selects_app(selector: &Value) -> Option<&str> {
    selector["app.kubernetes.io/name"].as_str()
}

/// The callers a NetworkPolicy admits, as the workload identities Istio sees
/// (`cluster.local/ns/<namespace>/sa/<name>`, service accounts named like their apps).
fn network_policy_callers(policy: &Value) -> BTreeSet<String> {
    let namespace = policy["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let mut callers = BTreeSet::new();
    for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
        for from in rule["from"].as_array().into_iter().flatten() {
            let ns = from["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                .as_str()
                .unwrap_or(namespace);
            let app = selects(&from["podSelector"]).unwrap_or("*");
            callers.insert(format!("cluster.local/ns/{ns}/sa/{app}"));
        }
    }
    callers
}

fn authorization_policy_callers(policy: &Value) -> BTreeSet<String> {
    let mut callers = BTreeSet::new();
    for rule in policy["spec"]["rules"].as_array().into_iter().flatten() {
        for from in rule["from"].as_array().into_iter().flatten() {
            for principal in from["source"]["principals"]
                .as_array()
                .into_iter()
                .flatten()
            {
                callers.insert(principal.as_str().unwrap_or_default().to_owned());
            }
        }
    }
    callers
}

/// With the istio component: STRICT mTLS, injection on, and for every NetworkPolicy an
/// ALLOW AuthorizationPolicy for the same workload admitting the same callers.
pub fn mesh_mirrors_network_policies(resources: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let strict = of_kind(resources, "PeerAuthentication")
        .any(|p| p["spec"]["mtls"]["mode"] == "STRICT" && p["spec"].get("selector").is_none());
    if !strict {
        problems.push("istio: no namespace-wide STRICT PeerAuthentication".to_owned());
    }
    let injected = of_kind(resources, "Namespace")
        .any(|n| n["metadata"]["labels"]["istio-injection"] == "enabled");
    if !injected {
        problems.push("istio: the namespace is not labelled for sidecar injection".to_owned());
    }
    let policies: BTreeMap<&str, &Value> = of_kind(resources, "AuthorizationPolicy")
        .filter_map(|p| Some((selects(&p["spec"]["selector"])?, p)))
        .collect();
    for network in of_kind(resources, "NetworkPolicy") {
        let Some(app) = selects(&network["spec"]["podSelector"]) else {
            continue; // not one workload's policy (the dev stores' shared one)
        };
        let wanted = network_policy_callers(network);
        match policies.get(app) {
            None => problems.push(format!(
                "istio: no AuthorizationPolicy mirrors NetworkPolicy {app}"
            )),
            Some(policy) => {
                if policy["spec"]["action"] != "ALLOW" {
                    problems.push(format!("istio: AuthorizationPolicy {app} is not ALLOW"));
                }
                let have = authorization_policy_callers(policy);
                if have != wanted {
                    problems.push(format!(
                        "istio: AuthorizationPolicy {app} admits {have:?}, NetworkPolicy {wanted:?}"
                    ));
                }
            }
        }
    }
    problems
}

/// Resources by `kind/name`, for tests that edit one.
pub fn find<'a>(resources: &'a mut [Value], kind: &str, name: &str) -> Option<&'a mut Value> {
    resources
        .iter_mut()
        .find(|r| r["kind"] == kind && r["metadata"]["name"] == name)
}

/// A one-line description of each resource (for failure messages).
pub fn summary(resources: &[Value]) -> Vec<String> {
    resources.iter().map(describe).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_to_the_root() {
        assert_eq!(
            relative(Path::new("/work/k8s/base"), Path::new("/tmp/x")),
            PathBuf::from("../../work/k8s/base")
        );
    }

    #[test]
    fn crd_groups() {
        let r = |api: &str| serde_json::json!({ "apiVersion": api });
        assert!(is_crd(&r("traefik.io/v1alpha1")));
        assert!(is_crd(&r("security.istio.io/v1")));
        assert!(is_crd(&r("keda.sh/v1alpha1")));
        assert!(!is_crd(&r("apps/v1")));
        assert!(!is_crd(&r("v1")));
        assert!(!is_crd(&r("networking.k8s.io/v1")));
    }
}
