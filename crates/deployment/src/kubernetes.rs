//! k8s/: every overlay rendered by the real kustomize (`kubectl kustomize`), every rendered
//! resource validated offline against its schema (kubernetes-validate, strict, for the
//! built-in kinds; the @kubernetes-models validators for Traefik, KEDA, Istio and
//! CloudNativePG), and the rendered whole checked for what the deployment promises (probes,
//! resources, non-root, a Service/PDB/NetworkPolicy per service, autoscaling, mesh policies
//! mirroring the network policies, the clustered stores' settings Kino depends on).

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
pub const CRD_GROUPS: &[&str] = &["traefik.io", "keda.sh", "istio.io", "postgresql.cnpg.io"];
/// API groups of components/clustered-stores' operators that no packaged CRD model or
/// schema covers (RabbitMQ Cluster Operator, MongoDB Community Operator, MinIO Operator,
/// OT-CONTAINER-KIT redis-operator). [`validate`] refuses them (nothing passes it
/// unvalidated): callers leave them out and check them with [`clustered_stores`], which
/// looks at the fields Kino depends on, not at the operators' whole schemas.
pub const UNMODELLED_GROUPS: &[&str] = &[
    "rabbitmq.com",
    "mongodbcommunity.mongodb.com",
    "minio.min.io",
    "redis.redis.opstreelabs.in",
];
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

/// Whether `resource` is of an [`UNMODELLED_GROUPS`] kind.
pub fn is_unmodelled(resource: &Value) -> bool {
    UNMODELLED_GROUPS.contains(&group(resource))
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

/// RabbitMQ's `consumer_timeout` (ms) must outlast the longest transcode:
/// TRANSCODE_TIMEOUT_MAX_SECS (6 h) plus its transfers (README, "Broker settings").
pub const CONSUMER_TIMEOUT_MILLIS: u64 = 25_200_000;
/// The PostgreSQL databases of Kino's services (their DATABASE_URLs).
pub const DATABASES: &[&str] = &["auth", "media", "video", "recommend", "webhooks"];
/// DATABASE_MAX_CONNECTIONS when nothing sets it (platform::postgres).
const DEFAULT_POOL: u64 = 10;
/// PostgreSQL's superuser_reserved_connections when the Cluster does not set it.
const DEFAULT_RESERVED: u64 = 3;

/// A count written as a number or as a string (PostgreSQL parameters are strings).
fn count(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str()?.trim().parse().ok())
}

/// A setting of ConfigMap kino-config (generated, so its name has a hash suffix).
fn kino_config<'a>(resources: &'a [Value], key: &str) -> Option<&'a str> {
    of_kind(resources, "ConfigMap")
        .filter(|c| name(c).starts_with("kino-config"))
        .find_map(|c| c["data"][key].as_str())
}

/// A container's `env` entry for `var`.
fn env_var<'a>(container: &'a Value, var: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == var)
}

/// The PostgreSQL connections Kino's pools may hold at once (README, "Scaling"): for every
/// Deployment given a DATABASE_URL, its most pods (the autoscaler's maxReplicas, else its
/// `replicas`) plus the extra pods of a rolling update (maxSurge), times its
/// DATABASE_MAX_CONNECTIONS (its own env, else the ConfigMaps it takes its env from).
pub fn postgres_connections(resources: &[Value]) -> u64 {
    let mut total = 0;
    for deployment in of_kind(resources, "Deployment") {
        let deployment_name = name(deployment);
        let spec = &deployment["spec"];
        let most = of_kind(resources, "HorizontalPodAutoscaler")
            .find(|h| {
                h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
                    && h["spec"]["scaleTargetRef"]["name"] == deployment_name
            })
            .and_then(|h| h["spec"]["maxReplicas"].as_u64())
            .or_else(|| {
                of_kind(resources, "ScaledObject")
                    .find(|s| s["spec"]["scaleTargetRef"]["name"] == deployment_name)
                    .and_then(|s| s["spec"]["maxReplicaCount"].as_u64())
            })
            .unwrap_or_else(|| spec["replicas"].as_u64().unwrap_or(1));
        let surge = if spec["strategy"]["type"] == "Recreate" {
            0
        } else {
            match &spec["strategy"]["rollingUpdate"]["maxSurge"] {
                Value::Number(n) => n.as_u64().unwrap_or(0),
                Value::String(s) => s
                    .strip_suffix('%')
                    .and_then(|p| p.parse::<u64>().ok())
                    .map_or(0, |p| (most * p).div_ceil(100)),
                // Kubernetes' default: 25 %.
                _ => (most * 25).div_ceil(100),
            }
        };
        for container in spec["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if env_var(container, "DATABASE_URL").is_none() {
                continue;
            }
            let pool = env_var(container, "DATABASE_MAX_CONNECTIONS")
                .and_then(|e| count(&e["value"]))
                .or_else(|| {
                    container["envFrom"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find_map(|from| {
                            let map = from["configMapRef"]["name"].as_str()?;
                            let config =
                                of_kind(resources, "ConfigMap").find(|c| name(c) == map)?;
                            count(&config["data"]["DATABASE_MAX_CONNECTIONS"])
                        })
                })
                .unwrap_or(DEFAULT_POOL);
            total += (most + surge) * pool;
        }
    }
    total
}

/// The one resource of `kind` in API group `api_group`, or a problem saying why not.
fn the_one<'a>(
    resources: &'a [Value],
    api_group: &str,
    kind: &str,
    problems: &mut Vec<String>,
) -> Option<&'a Value> {
    let found: Vec<&Value> = resources
        .iter()
        .filter(|r| r["kind"] == kind && group(r) == api_group)
        .collect();
    match found.as_slice() {
        [one] => Some(*one),
        [] => {
            problems.push(format!("no {kind} ({api_group})"));
            None
        }
        many => {
            problems.push(format!(
                "{} {kind}s ({api_group}), one expected",
                many.len()
            ));
            None
        }
    }
}

/// Whether a PodDisruptionBudget selects pods labelled `label=value`.
fn disruption_budget_for(resources: &[Value], label: &str, value: &str) -> bool {
    of_kind(resources, "PodDisruptionBudget")
        .any(|p| p["spec"]["selector"]["matchLabels"][label] == value)
}

/// `key = value` lines of a rabbitmq.conf.
fn rabbitmq_conf(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// An odd number of at least 3: a majority survives the loss of one.
fn quorum_size(n: Option<u64>) -> bool {
    n.is_some_and(|n| n >= 3 && n % 2 == 1)
}

/// What components/clustered-stores must declare for Kino, in a render that includes it:
/// RabbitMQ (3 or another odd number of nodes, consumer_timeout, pause_minority, a PDB),
/// PostgreSQL (3+ instances, max_connections for [`postgres_connections`], every database
/// of [`DATABASES`]), MongoDB (an odd replica set of 3+ members, 7.x, a user of
/// MONGODB_DATABASE, a PDB), MinIO (pools of 4+ servers, the bucket S3_BUCKET), Redis (one
/// Redis Cluster of 3+ masters with a replica each, persistent, whose nodes evict nothing,
/// keep an AOF and stop below their memory limit; kino-config's REDIS_CLUSTER telling the
/// services so; no other Redis form beside it: see `redis_cluster`).
pub fn clustered_stores(resources: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();

    if let Some(rabbit) = the_one(resources, "rabbitmq.com", "RabbitmqCluster", &mut problems) {
        let n = name(rabbit);
        if !quorum_size(rabbit["spec"]["replicas"].as_u64()) {
            problems.push(format!(
                "RabbitmqCluster {n}: replicas must be an odd number of at least 3 (quorum queues)"
            ));
        }
        let conf = rabbitmq_conf(
            rabbit["spec"]["rabbitmq"]["additionalConfig"]
                .as_str()
                .unwrap_or_default(),
        );
        let timeout = conf
            .get("consumer_timeout")
            .and_then(|v| v.parse::<u64>().ok());
        if timeout.is_none_or(|ms| ms < CONSUMER_TIMEOUT_MILLIS) {
            problems.push(format!(
                "RabbitmqCluster {n}: additionalConfig's consumer_timeout is {timeout:?}, at least {CONSUMER_TIMEOUT_MILLIS} needed (README, \"Broker settings\")"
            ));
        }
        if conf.get("cluster_partition_handling") != Some(&"pause_minority") {
            problems.push(format!(
                "RabbitmqCluster {n}: additionalConfig must set cluster_partition_handling = pause_minority"
            ));
        }
        // The operator makes none.
        if !disruption_budget_for(resources, "app.kubernetes.io/name", n) {
            problems.push(format!("RabbitmqCluster {n}: no PodDisruptionBudget"));
        }
    }

    if let Some(pg) = the_one(resources, "postgresql.cnpg.io", "Cluster", &mut problems) {
        let n = name(pg);
        if pg["spec"]["instances"].as_u64().is_none_or(|i| i < 3) {
            problems.push(format!("Cluster {n}: fewer than 3 instances"));
        }
        let parameters = &pg["spec"]["postgresql"]["parameters"];
        let reserved =
            count(&parameters["superuser_reserved_connections"]).unwrap_or(DEFAULT_RESERVED);
        let needed = postgres_connections(resources);
        match count(&parameters["max_connections"]) {
            Some(max) if max >= needed + reserved => {}
            max => problems.push(format!(
                "Cluster {n}: max_connections {max:?}, but Kino's pools may open {needed} (+ {reserved} reserved for superusers)"
            )),
        }
        if pg["spec"]["enablePDB"] == false {
            problems.push(format!("Cluster {n}: enablePDB is false"));
        }
        let mut databases: BTreeSet<&str> = of_kind(resources, "Database")
            .filter(|d| group(d) == "postgresql.cnpg.io" && d["spec"]["cluster"]["name"] == n)
            .filter(|d| d["spec"]["ensure"] != "absent")
            .filter_map(|d| d["spec"]["name"].as_str())
            .collect();
        databases.extend(pg["spec"]["bootstrap"]["initdb"]["database"].as_str());
        for database in DATABASES {
            if !databases.contains(database) {
                problems.push(format!("Cluster {n}: no database {database}"));
            }
        }
    }

    if let Some(mongo) = the_one(
        resources,
        "mongodbcommunity.mongodb.com",
        "MongoDBCommunity",
        &mut problems,
    ) {
        let n = name(mongo);
        if !quorum_size(mongo["spec"]["members"].as_u64()) || mongo["spec"]["type"] != "ReplicaSet"
        {
            problems.push(format!(
                "MongoDBCommunity {n}: must be a replica set of an odd number (3+) of members"
            ));
        }
        if !mongo["spec"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("7."))
        {
            problems.push(format!("MongoDBCommunity {n}: not MongoDB 7"));
        }
        let database = kino_config(resources, "MONGODB_DATABASE").unwrap_or("media");
        let user = mongo["spec"]["users"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|u| u["roles"].as_array().into_iter().flatten())
            .any(|r| r["db"] == database && (r["name"] == "readWrite" || r["name"] == "dbOwner"));
        if !user {
            problems.push(format!(
                "MongoDBCommunity {n}: no user with readWrite on {database}"
            ));
        }
        if !disruption_budget_for(resources, "app", &format!("{n}-svc")) {
            problems.push(format!("MongoDBCommunity {n}: no PodDisruptionBudget"));
        }
    }

    if let Some(tenant) = the_one(resources, "minio.min.io", "Tenant", &mut problems) {
        let n = name(tenant);
        let pools: Vec<&Value> = tenant["spec"]["pools"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        if pools.is_empty()
            || pools
                .iter()
                .any(|p| p["servers"].as_u64().is_none_or(|s| s < 4))
        {
            problems.push(format!(
                "Tenant {n}: every pool needs at least 4 servers (erasure coding across servers)"
            ));
        }
        if let Some(bucket) = kino_config(resources, "S3_BUCKET") {
            let declared = tenant["spec"]["buckets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|b| b["name"] == bucket);
            if !declared {
                problems.push(format!("Tenant {n}: no bucket {bucket} (S3_BUCKET)"));
            }
        }
    }

    redis_cluster(resources, &mut problems);
    problems
}

/// `directive value` lines of a redis.conf, directives lowercased (Redis reads them
/// case-insensitively); a later line replaces an earlier one, as in Redis.
fn redis_conf(text: &str) -> BTreeMap<String, &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().trim_matches('"')))
        .collect()
}

/// Bytes of a redis.conf memory size: `3gb` (1024-based), `3g` (1000-based), `1024`.
fn redis_bytes(size: &str) -> Option<u64> {
    let size = size.trim().to_ascii_lowercase();
    let digits = size
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(size.len());
    let (number, unit) = size.split_at(digits);
    let unit: u64 = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(unit)
}

/// Bytes of a Kubernetes memory quantity: `4Gi`, `512Mi`, `4G`, `4294967296`.
fn quantity_bytes(quantity: &Value) -> Option<u64> {
    if let Some(n) = quantity.as_u64() {
        return Some(n);
    }
    let quantity = quantity.as_str()?.trim();
    let digits = quantity
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(quantity.len());
    let (number, unit) = quantity.split_at(digits);
    let unit: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "Ki" => 1 << 10,
        "M" => 1_000_000,
        "Mi" => 1 << 20,
        "G" => 1_000_000_000,
        "Gi" => 1 << 30,
        "T" => 1_000_000_000_000,
        "Ti" => 1 << 40,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(unit)
}

/// Whether kino-config turns the services' Redis Cluster mode on, read as
/// platform::redis reads REDIS_CLUSTER.
fn redis_cluster_mode(resources: &[Value]) -> bool {
    kino_config(resources, "REDIS_CLUSTER")
        .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
}

/// components/clustered-stores' Redis: exactly one RedisCluster (OT-CONTAINER-KIT
/// redis-operator) and nothing else of that operator, since Kino has one REDIS_URL; and
/// REDIS_CLUSTER on in kino-config, without which the services would take the cluster's
/// Service for one server and fail on every key another master holds. The cluster must
/// survive a master's loss (3+ masters, each with a replica to promote: the operator
/// attaches follower i to leader i mod leaders, so followers must be a non-zero multiple of
/// the leaders), keep its data across restarts (persistenceEnabled with storage, which
/// mounts the volume, and appendonly yes in the configuration the nodes include last) and
/// never evict (noeviction, with a maxmemory below the container's limit, so a full node
/// refuses writes before the kernel kills it). The configuration is checked for both roles:
/// a follower becomes a master when promoted.
fn redis_cluster(resources: &[Value], problems: &mut Vec<String>) {
    let redis_group = "redis.redis.opstreelabs.in";
    if let Some(cluster) = the_one(resources, redis_group, "RedisCluster", problems) {
        let n = name(cluster);
        let spec = &cluster["spec"];
        let size = spec["clusterSize"].as_u64();
        // The operator's counts: a role's own `replicas`, else clusterSize.
        let leaders = spec["redisLeader"]["replicas"].as_u64().or(size);
        let followers = spec["redisFollower"]["replicas"].as_u64().or(size);
        if size.is_none_or(|s| s < 3) || leaders.is_none_or(|l| l < 3) {
            problems.push(format!(
                "RedisCluster {n}: clusterSize {size:?} and {leaders:?} leaders, 3 masters at least (a majority of masters must survive to promote a replica)"
            ));
        }
        match (leaders, followers) {
            (Some(l), Some(f)) if l > 0 && f >= l && f.is_multiple_of(l) => {}
            _ => problems.push(format!(
                "RedisCluster {n}: {followers:?} followers for {leaders:?} leaders; every master needs a replica to promote (followers a non-zero multiple of the leaders)"
            )),
        }
        if spec["persistenceEnabled"] != true || !spec["storage"]["volumeClaimTemplate"].is_object()
        {
            problems.push(format!(
                "RedisCluster {n}: not persistent (persistenceEnabled and storage.volumeClaimTemplate)"
            ));
        }
        let limit = quantity_bytes(&spec["kubernetesConfig"]["resources"]["limits"]["memory"]);
        for role in ["redisLeader", "redisFollower"] {
            let config_map = spec[role]["redisConfig"]["additionalRedisConfig"].as_str();
            let text = config_map
                .and_then(|c| of_kind(resources, "ConfigMap").find(|m| name(m) == c))
                .and_then(|m| m["data"]["redis-additional.conf"].as_str());
            let Some(text) = text else {
                problems.push(format!(
                    "RedisCluster {n}: {role}'s additionalRedisConfig {config_map:?} names no rendered ConfigMap with redis-additional.conf"
                ));
                continue;
            };
            let conf = redis_conf(text);
            let setting = |key: &str| conf.get(key).copied();
            if setting("maxmemory-policy") != Some("noeviction") {
                problems.push(format!(
                    "RedisCluster {n}: {role}'s maxmemory-policy is {:?}, noeviction needed (revocations and the ranker's sets are not a cache)",
                    setting("maxmemory-policy")
                ));
            }
            if setting("appendonly") != Some("yes") {
                problems.push(format!(
                    "RedisCluster {n}: {role}'s configuration does not set appendonly yes"
                ));
            }
            let maxmemory = setting("maxmemory").and_then(redis_bytes);
            match (maxmemory, limit) {
                (Some(max), Some(limit)) if max > 0 && max < limit => {}
                _ => problems.push(format!(
                    "RedisCluster {n}: {role}'s maxmemory {:?} must be set below the container's memory limit {limit:?} (bytes)",
                    setting("maxmemory")
                )),
            }
        }
    }
    for kind in ["RedisReplication", "RedisSentinel", "Redis"] {
        let beside = resources
            .iter()
            .filter(|r| r["kind"] == kind && group(r) == redis_group)
            .count();
        if beside > 0 {
            problems.push(format!(
                "{beside} {kind} rendered beside the RedisCluster: the services use one Redis (REDIS_URL), the cluster"
            ));
        }
    }
    if !redis_cluster_mode(resources) {
        problems.push(
            "kino-config does not set REDIS_CLUSTER=true: the services would take the Redis Cluster's Service for one server"
                .to_owned(),
        );
    }
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
        assert!(is_crd(&r("postgresql.cnpg.io/v1")));
        assert!(!is_crd(&r("rabbitmq.com/v1beta1")));
        assert!(is_unmodelled(&r("rabbitmq.com/v1beta1")));
        assert!(is_unmodelled(&r("redis.redis.opstreelabs.in/v1beta2")));
        assert!(!is_unmodelled(&r("postgresql.cnpg.io/v1")));
    }

    #[test]
    fn rabbitmq_conf_lines() {
        let conf = rabbitmq_conf(
            "# comment\nconsumer_timeout = 25200000\n  cluster_partition_handling=pause_minority\n",
        );
        assert_eq!(conf.get("consumer_timeout"), Some(&"25200000"));
        assert_eq!(
            conf.get("cluster_partition_handling"),
            Some(&"pause_minority")
        );
        assert_eq!(conf.len(), 2);
    }

    #[test]
    fn redis_conf_lines_and_sizes() {
        let conf = redis_conf(
            "# comment\nmaxmemory 3gb\nMaxmemory-Policy   noeviction\n\nappendonly no\nappendonly yes\n",
        );
        assert_eq!(conf.get("maxmemory"), Some(&"3gb"));
        assert_eq!(conf.get("maxmemory-policy"), Some(&"noeviction"));
        // The later line wins, as in Redis.
        assert_eq!(conf.get("appendonly"), Some(&"yes"));
        assert_eq!(conf.len(), 3);

        assert_eq!(redis_bytes("3gb"), Some(3 << 30));
        assert_eq!(redis_bytes("3G"), Some(3_000_000_000));
        assert_eq!(redis_bytes("512mb"), Some(512 << 20));
        assert_eq!(redis_bytes("1024"), Some(1024));
        assert_eq!(redis_bytes("3 gb"), None);
        assert_eq!(redis_bytes("gb"), None);

        let q = |v: Value| quantity_bytes(&v);
        assert_eq!(q(serde_json::json!("4Gi")), Some(4 << 30));
        assert_eq!(q(serde_json::json!("4G")), Some(4_000_000_000));
        assert_eq!(q(serde_json::json!("512Mi")), Some(512 << 20));
        assert_eq!(q(serde_json::json!(1024)), Some(1024));
        assert_eq!(q(serde_json::json!("4.5Gi")), None);
        assert_eq!(q(Value::Null), None);
        // Below the manifest's limit, as components/clustered-stores/redis-cluster.yaml has it.
        assert!(redis_bytes("3gb") < q(serde_json::json!("4Gi")));
    }
}
