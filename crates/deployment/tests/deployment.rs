//! The deployment files, checked with the real tools (installed by deploy/local/deps):
//! docker-compose.yml by `docker-compose config`, every kustomize overlay (with and without
//! the optional components) rendered by `kubectl kustomize` and validated offline, the three
//! gateway definitions compared, the Grafana dashboard parsed. Each check is also fed a
//! broken copy and must fail, so none of them passes by not looking.

use std::path::{Path, PathBuf};

use deployment::{compose, dashboard, gateway, kino_services, kubernetes, repo_root, yaml};
use serde_json::{Value, json};

fn read(path: impl AsRef<Path>) -> String {
    let path = repo_root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_none(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

// --- docker-compose ---------------------------------------------------------------------

fn compose_problems(config: &Value, dockerfile: &str, prometheus: &str) -> Vec<String> {
    compose::check(
        config,
        &kino_services(&repo_root()),
        dockerfile,
        &yaml(prometheus).unwrap(),
        &yaml(&read("traefik/dynamic/kino.yml")).unwrap(),
    )
}

fn compose_config(compose_text: &str, env_text: &str) -> anyhow::Result<Value> {
    let dir = deployment::scratch_dir("compose");
    std::fs::write(dir.join("docker-compose.yml"), compose_text)?;
    std::fs::write(dir.join("env"), env_text)?;
    // Paths in the file stay relative to the repository, as for the real one.
    compose::config(
        &repo_root(),
        &dir.join("docker-compose.yml"),
        &dir.join("env"),
    )
}

#[test]
fn compose_file_is_accepted_and_keeps_its_promises() {
    let root = repo_root();
    let config = compose::config(
        &root,
        &root.join("docker-compose.yml"),
        &root.join("deploy/docker/env.example"),
    )
    .unwrap();
    assert_none(
        "docker-compose.yml",
        &compose_problems(
            &config,
            &read("deploy/docker/Dockerfile"),
            &read("deploy/observability/prometheus/prometheus.yml"),
        ),
    );
    // Every Kino service and store is there.
    let services = config["services"].as_object().unwrap();
    for name in kino_services(&root).iter().map(String::as_str).chain([
        "traefik",
        "postgres",
        "mongodb",
        "redis",
        "rabbitmq",
        "minio",
        "prometheus",
        "grafana",
    ]) {
        assert!(
            services.contains_key(name),
            "no {name} in docker-compose.yml"
        );
    }
}

#[test]
fn compose_checks_catch_broken_files() {
    let compose_text = read("docker-compose.yml");
    let env = read("deploy/docker/env.example");
    let dockerfile = read("deploy/docker/Dockerfile");
    let prometheus = read("deploy/observability/prometheus/prometheus.yml");
    let without_secret: String = env
        .lines()
        .filter(|l| !l.starts_with("GRAFANA_ADMIN_PASSWORD="))
        .map(|l| format!("{l}\n"))
        .collect();

    // Each variant through docker-compose (in parallel: each run is a Python start-up).
    let variants = [
        // Rejected by docker-compose itself: an unknown start-up condition, a secret the
        // env file does not set, a variable nobody documented (a warning, so a failure).
        (
            "an unknown start-up condition",
            true,
            compose_text.replacen("condition: service_healthy", "condition: service_ready", 1),
            env.clone(),
        ),
        (
            "a missing secret",
            true,
            compose_text.replacen("\n", "\n\n", 1),
            without_secret,
        ),
        (
            "an undocumented variable",
            true,
            compose_text.replacen(
                "      BIND_ADDR: 0.0.0.0:8081\n",
                "      BIND_ADDR: 0.0.0.0:8081\n      EXTRA: ${KINO_UNDOCUMENTED}\n",
                1,
            ),
            env.clone(),
        ),
        // Accepted by docker-compose, refused by the deployment's own promises.
        (
            "a store publishing a host port",
            false,
            compose_text.replacen(
                "    image: postgres:16\n",
                "    image: postgres:16\n    ports: [\"5432:5432\"]\n",
                1,
            ),
            env.clone(),
        ),
        (
            "a service started before its dependency is healthy",
            false,
            compose_text.replacen(
                "condition: service_healthy",
                "condition: service_started",
                2,
            ),
            env.clone(),
        ),
        (
            "a transcoder image without ffmpeg",
            false,
            compose_text.replace(
                "args: { SERVICE: transcoder, RUNTIME: ffmpeg }",
                "args: { SERVICE: transcoder }",
            ),
            env.clone(),
        ),
        (
            "a runtime stage the Dockerfile lacks",
            false,
            compose_text.replace(
                "args: { SERVICE: ranker }",
                "args: { SERVICE: ranker, RUNTIME: gpu }",
            ),
            env.clone(),
        ),
        (
            "a service listening elsewhere than Traefik sends it",
            false,
            compose_text.replace("BIND_ADDR: 0.0.0.0:8082", "BIND_ADDR: 0.0.0.0:9082"),
            env.clone(),
        ),
    ];
    let results: Vec<(&str, bool, anyhow::Result<Value>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = variants
            .iter()
            .map(|(what, compose_rejects, text, env)| {
                assert_ne!(text, &compose_text, "{what}: the edit did not apply");
                scope.spawn(move || (*what, *compose_rejects, compose_config(text, env)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (what, compose_rejects, result) in results {
        match (compose_rejects, result) {
            (true, result) => assert!(result.is_err(), "docker-compose accepted {what}"),
            (false, Err(e)) => panic!("{what}: docker-compose refused the variant itself: {e}"),
            (false, Ok(config)) => assert!(
                !compose_problems(&config, &dockerfile, &prometheus).is_empty(),
                "{what} passed"
            ),
        }
    }

    // The real file with a Dockerfile or a Prometheus config that forgot a service.
    let root = repo_root();
    let config = compose::config(
        &root,
        &root.join("docker-compose.yml"),
        &root.join("deploy/docker/env.example"),
    )
    .unwrap();
    // ranker taken out of ARG SERVICES, wherever it stands in the list.
    let forgotten_image: String = dockerfile
        .lines()
        .map(|l| match l.strip_prefix("ARG SERVICES=") {
            Some(list) => format!("ARG SERVICES={}\n", list.replace(" ranker", "")),
            None => format!("{l}\n"),
        })
        .collect();
    let unscraped = prometheus.replace(
        "      - { names: [transcoder], type: A, port: 8084, refresh_interval: 30s }\n",
        "",
    );
    assert!(!compose::dockerfile_services(&forgotten_image).contains("ranker"));
    assert_ne!(unscraped, prometheus);
    assert!(
        !compose_problems(&config, &forgotten_image, &prometheus).is_empty(),
        "a service missing from the Dockerfile passed"
    );
    assert!(
        !compose_problems(&config, &dockerfile, &unscraped).is_empty(),
        "an unscraped service passed"
    );
}

// --- Kubernetes -------------------------------------------------------------------------

fn k8s(path: &str) -> PathBuf {
    repo_root().join("k8s").join(path)
}

/// Renders an overlay alone and with both optional components, validates every resource
/// of both renders (one run of each validator) and checks the deployment's promises. The
/// clustered stores' resources no packaged CRD model covers are left to
/// `kubernetes::clustered_stores` (prod-operators' own test).
fn check_overlay(overlay: &str) {
    let services = kino_services(&repo_root());
    let plain = kubernetes::render(&k8s(overlay)).unwrap();
    let full = kubernetes::render_with(
        &k8s(overlay),
        &[k8s("components/keda"), k8s("components/istio")],
    )
    .unwrap();
    assert_none(
        &format!("{overlay}: policy"),
        &kubernetes::policy(&plain, &services, false, false),
    );
    assert_none(
        &format!("{overlay} + keda + istio: policy"),
        &kubernetes::policy(&full, &services, true, true),
    );
    // Every namespaced resource lands in Kino's namespace, the components' too: one
    // without a namespace goes wherever the applying context points.
    const CLUSTER_SCOPED: &[&str] = &[
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
        "IngressClass",
    ];
    let stray: Vec<String> = full
        .iter()
        .filter(|r| !CLUSTER_SCOPED.contains(&r["kind"].as_str().unwrap_or_default()))
        .filter(|r| r["metadata"]["namespace"] != "kino")
        .map(|r| {
            let (kind, name) = (&r["kind"], &r["metadata"]["name"]);
            format!(
                "{} {}",
                kind.as_str().unwrap_or_default(),
                name.as_str().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        stray.is_empty(),
        "{overlay} + keda + istio: outside namespace kino: {stray:?}"
    );
    let all: Vec<Value> = plain
        .iter()
        .chain(&full)
        .filter(|r| !kubernetes::is_unmodelled(r))
        .cloned()
        .collect();
    assert_none(
        &format!("{overlay}: schemas"),
        &kubernetes::validate(&all).unwrap(),
    );
    let kinds = kubernetes::summary(&full);
    for kind in [
        "IngressRoute",
        "Middleware",
        "ScaledObject",
        "AuthorizationPolicy",
        "PeerAuthentication",
    ] {
        assert!(
            kinds.iter().any(|k| k.starts_with(kind)),
            "{overlay}: no {kind} rendered"
        );
    }
}

#[test]
fn dev_overlay_renders_and_validates() {
    check_overlay("overlays/dev");
    // The dev overlay carries its own stores.
    let kinds = kubernetes::summary(&kubernetes::render(&k8s("overlays/dev")).unwrap());
    for store in ["postgres", "mongodb", "redis", "rabbitmq", "minio"] {
        assert!(
            kinds.contains(&format!("StatefulSet {store}")),
            "dev has no {store}"
        );
    }
}

#[test]
fn prod_overlay_renders_and_validates() {
    check_overlay("overlays/prod");
    let kinds = kubernetes::summary(&kubernetes::render(&k8s("overlays/prod")).unwrap());
    assert!(
        !kinds.iter().any(|k| k.starts_with("StatefulSet")),
        "prod runs its own stores"
    );
    assert!(
        !kinds.iter().any(|k| k.starts_with("Secret")),
        "prod must not carry secrets"
    );
}

#[test]
fn prod_operators_overlay_declares_what_kino_needs() {
    check_overlay("overlays/prod-operators");
    let rendered = kubernetes::render(&k8s("overlays/prod-operators")).unwrap();
    assert_none(
        "prod-operators: clustered stores",
        &kubernetes::clustered_stores(&rendered),
    );
    // prod's most pods, each with one more during a rolling update: auth 10 + 1, media
    // 20 + 1, video 10 + 1, recommender 2 + 1, webhooks 2 + 1; 8 connections each
    // (components/clustered-stores/postgres.yaml shows the same sum).
    assert_eq!(kubernetes::postgres_connections(&rendered), 49 * 8);
    let kinds = kubernetes::summary(&rendered);
    for store in [
        "Cluster postgres",
        "RabbitmqCluster rabbitmq",
        "MongoDBCommunity mongodb",
        "Tenant minio",
        "RedisCluster redis-cluster",
        "ConfigMap redis-kino",
    ] {
        assert!(
            kinds.contains(&store.to_owned()),
            "prod-operators has no {store}"
        );
    }
    // One Redis: the cluster, not also the primary + Sentinel form it replaced.
    assert!(
        !kinds
            .iter()
            .any(|k| k.starts_with("RedisReplication") || k.starts_with("RedisSentinel")),
        "prod-operators renders a second Redis beside the cluster: {kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| k.starts_with("Secret")),
        "prod-operators must not carry secrets"
    );
    // Kino's services follow the tenant.
    let config = rendered
        .iter()
        .find(|r| {
            r["kind"] == "ConfigMap"
                && r["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("kino-config"))
        })
        .expect("kino-config is rendered");
    assert_eq!(config["data"]["S3_ENDPOINT"], "http://minio");
    // ... and take REDIS_URL's one URL (the leader Service) as the cluster's seed.
    assert_eq!(config["data"]["REDIS_CLUSTER"], "true");
    // The Redis Cluster is the component's Redis: 3 masters x 1 replica.
    let component = read("k8s/components/clustered-stores/kustomization.yaml");
    let listed = |file: &str| component.lines().any(|l| l.trim() == format!("- {file}"));
    assert!(
        listed("redis-cluster.yaml"),
        "redis-cluster.yaml must be in the component"
    );
    assert!(
        !listed("redis.yaml"),
        "the primary + Sentinel form must stay out of the component"
    );
    let cluster = rendered
        .iter()
        .find(|r| r["kind"] == "RedisCluster")
        .expect("a RedisCluster is rendered");
    assert_eq!(cluster["spec"]["clusterSize"], 3);
    assert_eq!(cluster["spec"]["redisLeader"]["replicas"], 3);
    assert_eq!(cluster["spec"]["redisFollower"]["replicas"], 3);
}

#[test]
fn clustered_stores_without_kino_settings_are_rejected() {
    let rendered = kubernetes::render(&k8s("overlays/prod-operators")).unwrap();

    // CloudNativePG's resources go through its CRD models.
    let mut copy = rendered.clone();
    let mut cluster = kubernetes::find(&mut copy, "Cluster", "postgres")
        .expect("a Cluster postgres")
        .clone();
    cluster["spec"]["instances"] = json!("three");
    cluster["metadata"]["name"] = json!("broken-instances");
    let problems = kubernetes::validate(&[cluster]).unwrap();
    assert!(
        problems.iter().any(|p| p.contains("broken-instances")),
        "{problems:?}"
    );

    // Valid resources without what Kino needs.
    type Edit = Box<dyn Fn(&mut Vec<Value>)>;
    let broker_config = |r: &mut Vec<Value>, edit: &dyn Fn(&str) -> String| {
        let c = kubernetes::find(r, "RabbitmqCluster", "rabbitmq").unwrap();
        let config = edit(c["spec"]["rabbitmq"]["additionalConfig"].as_str().unwrap());
        c["spec"]["rabbitmq"]["additionalConfig"] = json!(config);
    };
    // The Redis nodes' configuration (every node's: leaders and followers share it).
    let redis_config = |r: &mut Vec<Value>, edit: &dyn Fn(&str) -> String| {
        let m = kubernetes::find(r, "ConfigMap", "redis-kino").unwrap();
        let config = edit(m["data"]["redis-additional.conf"].as_str().unwrap());
        assert_ne!(
            m["data"]["redis-additional.conf"], config,
            "the edit changed nothing"
        );
        m["data"]["redis-additional.conf"] = json!(config);
    };
    let cases: Vec<(&str, Edit)> = vec![
        (
            "a broker without consumer_timeout",
            Box::new(move |r| {
                broker_config(r, &|c: &str| -> String {
                    c.lines()
                        .filter(|l| !l.contains("consumer_timeout"))
                        .map(|l| format!("{l}\n"))
                        .collect()
                })
            }),
        ),
        (
            "the broker's default consumer_timeout (30 min)",
            Box::new(move |r| broker_config(r, &|c: &str| c.replace("25200000", "1800000"))),
        ),
        (
            "a broker without pause_minority",
            Box::new(move |r| broker_config(r, &|c: &str| c.replace("pause_minority", "ignore"))),
        ),
        (
            "a single-node broker",
            Box::new(|r| {
                kubernetes::find(r, "RabbitmqCluster", "rabbitmq").unwrap()["spec"]["replicas"] =
                    json!(1);
            }),
        ),
        (
            "a broker without a PodDisruptionBudget",
            Box::new(|r| {
                r.retain(|x| {
                    !(x["kind"] == "PodDisruptionBudget" && x["metadata"]["name"] == "rabbitmq")
                })
            }),
        ),
        (
            "PostgreSQL without replicas",
            Box::new(|r| {
                kubernetes::find(r, "Cluster", "postgres").unwrap()["spec"]["instances"] = json!(1);
            }),
        ),
        (
            "PostgreSQL's default max_connections",
            Box::new(|r| {
                let pg = kubernetes::find(r, "Cluster", "postgres").unwrap();
                pg["spec"]["postgresql"]["parameters"]["max_connections"] = json!("100");
            }),
        ),
        (
            "more media replicas than max_connections serves",
            Box::new(|r| {
                let hpa = kubernetes::find(r, "HorizontalPodAutoscaler", "media").unwrap();
                hpa["spec"]["maxReplicas"] = json!(60);
            }),
        ),
        (
            "a service's database declared nowhere",
            Box::new(|r| {
                r.retain(|x| !(x["kind"] == "Database" && x["spec"]["name"] == "webhooks"))
            }),
        ),
        (
            "a one-member MongoDB",
            Box::new(|r| {
                kubernetes::find(r, "MongoDBCommunity", "mongodb").unwrap()["spec"]["members"] =
                    json!(1);
            }),
        ),
        (
            "a MinIO pool of 2 servers",
            Box::new(|r| {
                kubernetes::find(r, "Tenant", "minio").unwrap()["spec"]["pools"][0]["servers"] =
                    json!(2);
            }),
        ),
        (
            "no Redis at all",
            Box::new(|r| r.retain(|x| x["kind"] != "RedisCluster")),
        ),
        (
            "a one-master Redis Cluster (clusterSize 1)",
            Box::new(|r| {
                let c = kubernetes::find(r, "RedisCluster", "redis-cluster").unwrap();
                c["spec"]["clusterSize"] = json!(1);
            }),
        ),
        (
            "a Redis Cluster without replicas",
            Box::new(|r| {
                let c = kubernetes::find(r, "RedisCluster", "redis-cluster").unwrap();
                c["spec"]["redisFollower"]["replicas"] = json!(0);
            }),
        ),
        (
            "a Redis Cluster with fewer replicas than masters",
            Box::new(|r| {
                let c = kubernetes::find(r, "RedisCluster", "redis-cluster").unwrap();
                c["spec"]["redisFollower"]["replicas"] = json!(2);
            }),
        ),
        (
            "a Redis Cluster without persistence",
            Box::new(|r| {
                let c = kubernetes::find(r, "RedisCluster", "redis-cluster").unwrap();
                c["spec"]["persistenceEnabled"] = json!(false);
            }),
        ),
        (
            "an evicting Redis",
            Box::new(move |r| redis_config(r, &|c: &str| c.replace("noeviction", "allkeys-lru"))),
        ),
        (
            "a Redis without its AOF",
            Box::new(move |r| {
                redis_config(r, &|c: &str| c.replace("appendonly yes", "appendonly no"))
            }),
        ),
        (
            "a Redis maxmemory above the container's limit",
            Box::new(move |r| {
                redis_config(r, &|c: &str| c.replace("maxmemory 3gb", "maxmemory 5gb"))
            }),
        ),
        (
            "a Redis primary with Sentinels beside the cluster",
            Box::new(|r| {
                for kind in ["RedisReplication", "RedisSentinel"] {
                    r.push(json!({
                        "apiVersion": "redis.redis.opstreelabs.in/v1beta2",
                        "kind": kind,
                        "metadata": { "name": "redis", "namespace": "kino" },
                        "spec": { "clusterSize": 3 },
                    }));
                }
            }),
        ),
        (
            "services not told REDIS_CLUSTER=true",
            Box::new(|r| {
                for c in r.iter_mut().filter(|x| {
                    x["kind"] == "ConfigMap"
                        && x["metadata"]["name"]
                            .as_str()
                            .is_some_and(|n| n.starts_with("kino-config"))
                }) {
                    c["data"].as_object_mut().unwrap().remove("REDIS_CLUSTER");
                }
            }),
        ),
    ];
    assert_none(
        "the intact render",
        &kubernetes::clustered_stores(&rendered),
    );
    for (what, edit) in &cases {
        let mut copy = rendered.clone();
        edit(&mut copy);
        assert!(
            !kubernetes::clustered_stores(&copy).is_empty(),
            "{what} passed"
        );
    }
}

#[test]
fn broken_manifests_are_rejected() {
    let rendered = kubernetes::render_with(
        &k8s("overlays/prod"),
        &[k8s("components/keda"), k8s("components/istio")],
    )
    .unwrap();
    let get = |kind: &str, name: &str| {
        let mut copy = rendered.clone();
        kubernetes::find(&mut copy, kind, name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
            .clone()
    };

    // Schema violations, each in a resource renamed so its report can be told apart.
    let mut broken = Vec::new();
    let mut expect = |mut resource: Value, label: &str, edit: &dyn Fn(&mut Value)| {
        edit(&mut resource);
        let name = format!("broken-{label}");
        resource["metadata"]["name"] = json!(name);
        broken.push(resource);
        name
    };
    let names = [
        expect(get("Deployment", "auth"), "unknown-field", &|d| {
            d["spec"]["template"]["spec"]["containers"][0]["portz"] = json!(1);
        }),
        expect(get("Deployment", "media"), "wrong-type", &|d| {
            d["spec"]["replicas"] = json!("two")
        }),
        expect(
            get("HorizontalPodAutoscaler", "video"),
            "missing-required",
            &|h| {
                h["spec"].as_object_mut().unwrap().remove("maxReplicas");
            },
        ),
        expect(get("IngressRoute", "kino"), "route-without-match", &|r| {
            r["spec"]["routes"][0]
                .as_object_mut()
                .unwrap()
                .remove("match");
        }),
        expect(
            get("Middleware", "kino-auth"),
            "address-not-a-string",
            &|m| {
                m["spec"]["forwardAuth"]["address"] = json!(8081);
            },
        ),
        expect(
            get("ScaledObject", "transcoder"),
            "triggers-not-a-list",
            &|s| {
                s["spec"]["triggers"] = json!("rabbitmq");
            },
        ),
        expect(
            get("AuthorizationPolicy", "auth"),
            "rules-not-a-list",
            &|p| {
                p["spec"]["rules"] = json!({ "from": [] });
            },
        ),
        expect(get("IngressRoute", "kino"), "unknown-kind", &|r| {
            r["kind"] = json!("IngressWidget")
        }),
    ];
    let problems = kubernetes::validate(&broken).unwrap();
    for name in names {
        assert!(
            problems.iter().any(|p| p.contains(&name)),
            "{name} was not reported:\n{}",
            problems.join("\n")
        );
    }

    // Valid resources that break the deployment's own promises.
    let services = kino_services(&repo_root());
    type Edit = Box<dyn Fn(&mut Vec<Value>)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "no readiness probe",
            Box::new(|r| {
                let d = kubernetes::find(r, "Deployment", "video").unwrap();
                d["spec"]["template"]["spec"]["containers"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("readinessProbe");
            }),
        ),
        (
            "running as root",
            Box::new(|r| {
                let d = kubernetes::find(r, "Deployment", "ranker").unwrap();
                d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = json!(false);
            }),
        ),
        (
            "no memory limit",
            Box::new(|r| {
                let d = kubernetes::find(r, "Deployment", "auth").unwrap();
                d["spec"]["template"]["spec"]["containers"][0]["resources"]
                    .as_object_mut()
                    .unwrap()
                    .remove("limits");
            }),
        ),
        (
            "no NetworkPolicy",
            Box::new(|r| {
                r.retain(|x| !(x["kind"] == "NetworkPolicy" && x["metadata"]["name"] == "media"))
            }),
        ),
        (
            "no PodDisruptionBudget",
            Box::new(|r| {
                r.retain(|x| {
                    !(x["kind"] == "PodDisruptionBudget" && x["metadata"]["name"] == "transcoder")
                })
            }),
        ),
        (
            "no autoscaler",
            Box::new(|r| {
                r.retain(|x| {
                    !(x["kind"] == "HorizontalPodAutoscaler" && x["metadata"]["name"] == "auth")
                })
            }),
        ),
        (
            "replicas fighting the autoscaler",
            Box::new(|r| {
                kubernetes::find(r, "Deployment", "media").unwrap()["spec"]["replicas"] = json!(3);
            }),
        ),
        (
            "a service without a Deployment",
            Box::new(|r| {
                r.retain(|x| !(x["kind"] == "Deployment" && x["metadata"]["name"] == "ranker"))
            }),
        ),
        (
            "no ScaledObject",
            Box::new(|r| r.retain(|x| x["kind"] != "ScaledObject")),
        ),
        (
            "mesh policy narrower than the network policy",
            Box::new(|r| {
                let p = kubernetes::find(r, "AuthorizationPolicy", "auth").unwrap();
                p["spec"]["rules"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|rule| !rule.to_string().contains("sa/media"));
            }),
        ),
        (
            "a gRPC server probed over HTTP",
            Box::new(|r| {
                let d = kubernetes::find(r, "Deployment", "recommender").unwrap();
                d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
                    json!({ "httpGet": { "path": "/readyz", "port": "http" } });
            }),
        ),
        (
            "a gRPC liveness probe that follows the stores",
            Box::new(|r| {
                let d = kubernetes::find(r, "Deployment", "auth").unwrap();
                d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] =
                    json!({ "grpc": { "port": 9081 } });
            }),
        ),
        (
            "a gRPC API behind a virtual IP only",
            Box::new(|r| {
                r.retain(|x| !(x["kind"] == "Service" && x["metadata"]["name"] == "auth-grpc"))
            }),
        ),
        (
            "a gRPC port open to the gateway",
            Box::new(|r| {
                let p = kubernetes::find(r, "NetworkPolicy", "recommender").unwrap();
                p["spec"]["ingress"][0]["from"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({ "podSelector": { "matchLabels": { "app.kubernetes.io/name": "video" } } }));
            }),
        ),
        (
            "mTLS not strict",
            Box::new(|r| {
                kubernetes::find(r, "PeerAuthentication", "default").unwrap()["spec"]["mtls"]["mode"] =
                    json!("PERMISSIVE");
            }),
        ),
    ];
    assert_none(
        "the intact render",
        &kubernetes::policy(&rendered, &services, true, true),
    );
    for (what, edit) in &cases {
        let mut copy = rendered.clone();
        edit(&mut copy);
        assert!(
            !kubernetes::policy(&copy, &services, true, true).is_empty(),
            "{what} passed"
        );
    }
    // The gRPC ports' own rule, without the mesh mirror's (which also notices a new caller).
    let mut copy = rendered.clone();
    let p = kubernetes::find(&mut copy, "NetworkPolicy", "auth").unwrap();
    let grpc_rule = p["spec"]["ingress"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|rule| rule["ports"][0]["port"] == "grpc")
        .expect("auth's NetworkPolicy has a rule for its grpc port");
    grpc_rule["from"].as_array_mut().unwrap().push(
        json!({ "podSelector": { "matchLabels": { "app.kubernetes.io/name": "webhooks" } } }),
    );
    let problems = kubernetes::policy(&copy, &services, true, false);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("grpc port") && p.contains("webhooks")),
        "{problems:?}"
    );
}

// --- the gateway's three definitions ----------------------------------------------------

fn traefik_file() -> gateway::Gateway {
    gateway::traefik_file(&yaml(&read("traefik/dynamic/kino.yml")).unwrap()).unwrap()
}

fn caddy(caddyfile_text: &str) -> gateway::Gateway {
    let dir = deployment::scratch_dir("caddy");
    let path = dir.join("Caddyfile");
    std::fs::write(&path, caddyfile_text).unwrap();
    gateway::caddy(&gateway::caddy_adapt(&path).unwrap()).unwrap()
}

#[test]
fn gateway_definitions_agree() {
    let traefik = traefik_file();
    let local = caddy(&read("deploy/local/Caddyfile"));
    let kubernetes =
        gateway::traefik_kubernetes(&kubernetes::render(&k8s("base")).unwrap()).unwrap();
    assert_none(
        "traefik/ vs Caddyfile",
        &gateway::differences("traefik/", &traefik, "Caddyfile", &local),
    );
    assert_none(
        "traefik/ vs k8s/base",
        &gateway::differences("traefik/", &traefik, "k8s/base", &kubernetes),
    );

    // CORS: Traefik's lists are the local stack's (CORS_ALLOWED_ORIGINS' default in
    // deploy/local/lib.sh; the Caddyfile's `cors` snippet, imported for the whole site).
    let cors = traefik.cors.clone().expect("Traefik has a CORS middleware");
    let lib = read("deploy/local/lib.sh");
    let default_origins = lib
        .lines()
        .find_map(|l| l.strip_prefix("export CORS_ALLOWED_ORIGINS=${CORS_ALLOWED_ORIGINS:-"))
        .and_then(|rest| rest.strip_suffix('}'))
        .expect("lib.sh sets CORS_ALLOWED_ORIGINS' default");
    assert_eq!(
        cors.origins,
        default_origins
            .split_whitespace()
            .map(String::from)
            .collect(),
        "Traefik's origins vs CORS_ALLOWED_ORIGINS' default"
    );
    let caddyfile = read("deploy/local/Caddyfile");
    let caddy_list = |name: &str| -> std::collections::BTreeSet<String> {
        let line = caddyfile
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("the Caddyfile sets {name}"));
        line.trim()
            .trim_matches('"')
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect()
    };
    assert_eq!(
        cors.allow_headers,
        caddy_list("Access-Control-Allow-Headers")
    );
    assert_eq!(
        cors.expose_headers,
        caddy_list("Access-Control-Expose-Headers")
    );
    assert!(
        caddyfile.contains("\n\timport cors\n"),
        "the site imports cors"
    );

    // And they say what DESIGN.md says.
    assert_eq!(traefik.routes.len(), 5, "{:?}", traefik.routes.keys());
    for (key, route) in &traefik.routes {
        // Each identity header, also spelt with `_` for either `-`.
        let stripped: std::collections::BTreeSet<String> = ["id", "name", "roles"]
            .iter()
            .flat_map(|n| ["x-user-", "x_user_", "x-user_", "x_user-"].map(|p| format!("{p}{n}")))
            .collect();
        assert_eq!(route.stripped_headers, stripped, "{key}");
        let protected = !key.starts_with("/auth");
        match (&route.forward_auth, protected) {
            (Some(fa), true) => {
                assert_eq!(fa.path, "/user/token_verify");
                assert_eq!(fa.upstream.to_string(), "auth:8081");
                assert_eq!(
                    fa.copied_headers,
                    ["x-user-id", "x-user-name", "x-user-roles"]
                        .map(String::from)
                        .into()
                );
                assert!(route.strips_before_auth, "{key}");
            }
            (None, false) => {}
            (fa, _) => panic!("{key}: forward auth {fa:?}"),
        }
    }
    // Every other path is the web app, in all three (the comparisons above hold them equal).
    assert!(traefik.web_app, "Traefik routes the rest to the web app");
}

#[test]
fn gateway_drift_is_detected() {
    let traefik = traefik_file();
    let caddyfile = read("deploy/local/Caddyfile");
    let drifts = [
        (
            "an identity header not copied",
            caddyfile.replace(
                "copy_headers X-User-Id X-User-Name X-User-Roles",
                "copy_headers X-User-Id X-User-Name",
            ),
        ),
        (
            "another ForwardAuth path",
            caddyfile.replace("uri /user/token_verify", "uri /user/verify"),
        ),
        (
            "a route without its exact path",
            caddyfile.replace("@video path /video /video/*", "@video path /video/*"),
        ),
        (
            "a route to another service",
            caddyfile.replace(
                "reverse_proxy {$KINO_MEDIA_UPSTREAM:127.0.0.1:8082}",
                "reverse_proxy {$KINO_VIDEO_UPSTREAM:127.0.0.1:8083}",
            ),
        ),
        (
            "an identity header not stripped",
            caddyfile.replacen("\trequest_header -X_User_Roles\n", "", 1),
        ),
        (
            "no web app at the other paths",
            caddyfile.replace("file_server", "respond 404"),
        ),
        (
            "a protected route without ForwardAuth",
            caddyfile.replacen(
                "\t\t\timport authenticated\n\t\t\treverse_proxy {$KINO_VIDEO_UPSTREAM",
                "\t\t\treverse_proxy {$KINO_VIDEO_UPSTREAM",
                1,
            ),
        ),
    ];
    for (what, text) in drifts {
        assert_ne!(text, caddyfile, "{what}: the edit did not apply");
        let drifted = caddy(&text);
        assert!(
            !gateway::differences("traefik/", &traefik, "Caddyfile", &drifted).is_empty(),
            "{what} went unnoticed"
        );
    }
    // The other way round: Traefik drifting from the Caddyfile.
    let local = caddy(&caddyfile);
    let dynamic = read("traefik/dynamic/kino.yml");
    for (what, text) in [
        (
            "a response header not copied",
            dynamic.replacen("          - X-User-Name\n", "", 1),
        ),
        (
            "no web app behind the catch-all",
            dynamic.replacen(
                "    web:\n      rule: PathPrefix(`/`)\n      priority: 1\n      entryPoints: [web]\n      service: web\n",
                "",
                1,
            ),
        ),
        (
            "a router without strip-identity",
            dynamic.replacen(
                "middlewares: [cors, strip-identity, kino-auth]",
                "middlewares: [cors, kino-auth]",
                1,
            ),
        ),
    ] {
        assert_ne!(text, dynamic, "{what}: the edit did not apply");
        let drifted = gateway::traefik_file(&yaml(&text).unwrap()).unwrap();
        assert!(
            !gateway::differences("traefik/", &drifted, "Caddyfile", &local).is_empty(),
            "{what} went unnoticed"
        );
    }
}

// --- Grafana --------------------------------------------------------------------------

#[test]
fn dashboard_parses_and_every_query_is_promql() {
    let text = read("deploy/observability/grafana/dashboards/kino.json");
    let board: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let queries = dashboard::queries(&board);
    assert!(queries.len() >= 10, "{} queries", queries.len());
    for query in &queries {
        dashboard::needs(&query.expr)
            .unwrap_or_else(|e| panic!("panel {:?}: {}: {e}", query.panel, query.expr));
    }
    // What the issue asks the dashboard to show.
    let all: String = queries.iter().map(|q| q.expr.as_str()).collect();
    for metric in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "queue_messages_ready",
        "transcode_duration_seconds_bucket",
        "websocket_connections",
    ] {
        assert!(all.contains(metric), "no panel queries {metric}");
    }
}
