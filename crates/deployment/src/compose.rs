//! docker-compose.yml: accepted by the real `docker-compose config` with the documented
//! env file, and shaped the way the deployment promises (every service built, health-checked
//! and ordered; only the gateway and the dashboards on host ports; every service scraped).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
};

use anyhow::bail;
use serde_json::Value;

use crate::{port_of, tools};

/// `docker-compose config` of `compose_file` with `env_file`, as JSON. Fails on any error
/// and on any warning (an unset variable would silently become an empty string).
pub fn config(project_dir: &Path, compose_file: &Path, env_file: &Path) -> anyhow::Result<Value> {
    let output = tools::run_ok(
        Command::new(tools::docker_compose())
            .arg("--project-directory")
            .arg(project_dir)
            .arg("--file")
            .arg(compose_file)
            .arg("--env-file")
            .arg(env_file)
            .arg("config")
            // No .env of the developer's may fill in what the example leaves out.
            .env_remove("COMPOSE_FILE")
            .current_dir(project_dir),
        None,
    )?;
    // docker-compose says nothing on stderr when all is well; anything there is a warning
    // such as "The X variable is not set. Defaulting to a blank string."
    if !output.stderr.trim().is_empty() {
        bail!(
            "docker-compose config warned:\n{}",
            output.stderr.trim_end()
        );
    }
    crate::yaml(&output.stdout)
}

/// Host ports that may be published, per service (container ports): the gateway and the
/// dashboards.
pub const PUBLISHED: &[(&str, u16)] = &[
    ("traefik", 8080),
    ("grafana", 3000),
    ("prometheus", 9090),
    ("rabbitmq", 15672),
];

/// The services the image list of `ARG SERVICES="..."` in the Dockerfile names.
pub fn dockerfile_services(dockerfile: &str) -> BTreeSet<String> {
    dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG SERVICES="))
        .map(|list| {
            list.trim_matches('"')
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The container port each Kino service listens on (its BIND_ADDR, or else the first port
/// it exposes), by compose service.
pub fn service_ports(config: &Value) -> BTreeMap<String, u16> {
    let mut ports = BTreeMap::new();
    for (name, service) in config["services"].as_object().into_iter().flatten() {
        // A service without BIND_ADDR (the web app's static server) names its port in
        // `expose`.
        let port = service["environment"]["BIND_ADDR"]
            .as_str()
            .and_then(port_of)
            .or_else(|| service["expose"][0].as_str().and_then(|p| p.parse().ok()));
        if let Some(port) = port {
            ports.insert(name.clone(), port);
        }
    }
    ports
}

/// Everything the rendered compose configuration must satisfy. `kino_services` are the
/// service crates, `dockerfile` the Dockerfile's text, `prometheus` its parsed config,
/// `traefik_dynamic` Traefik's parsed dynamic configuration.
pub fn check(
    config: &Value,
    kino_services: &[String],
    dockerfile: &str,
    prometheus: &Value,
    traefik_dynamic: &Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = serde_json::Map::new();
    let services = config["services"].as_object().unwrap_or(&empty);
    let ports = service_ports(config);

    // Every service crate is an image and a container.
    let in_dockerfile = dockerfile_services(dockerfile);
    for name in kino_services {
        if !in_dockerfile.contains(name) {
            problems.push(format!(
                "{name} is missing from the Dockerfile's ARG SERVICES"
            ));
        }
        let Some(service) = services.get(name) else {
            problems.push(format!("{name} has no service in docker-compose.yml"));
            continue;
        };
        let build = &service["build"];
        if !build["dockerfile"]
            .as_str()
            .is_some_and(|d| d.ends_with("deploy/docker/Dockerfile"))
            || build["args"]["SERVICE"].as_str() != Some(name)
        {
            problems.push(format!(
                "{name} is not built from deploy/docker/Dockerfile with SERVICE={name}"
            ));
        }
        if !ports.contains_key(name) {
            problems.push(format!("{name} sets no BIND_ADDR"));
        }
        // The runtime stage it asks for exists (the transcoder's must carry ffmpeg).
        let runtime = build["args"]["RUNTIME"].as_str().unwrap_or("slim");
        if !dockerfile
            .lines()
            .any(|l| l.trim_end().ends_with(&format!(" AS runtime-{runtime}")))
        {
            problems.push(format!(
                "{name}: the Dockerfile has no runtime-{runtime} stage"
            ));
        }
        if name == "transcoder" && runtime != "ffmpeg" {
            problems.push("transcoder: its image must be built with RUNTIME=ffmpeg".to_owned());
        }
    }
    for name in &in_dockerfile {
        if !kino_services.contains(name) {
            problems.push(format!(
                "the Dockerfile builds {name}, which services/ does not have"
            ));
        }
    }

    // One-shot set-up containers: what others wait on to complete.
    let mut one_shots = BTreeSet::new();
    for service in services.values() {
        for (dependency, how) in service["depends_on"].as_object().into_iter().flatten() {
            if how["condition"] == "service_completed_successfully" {
                one_shots.insert(dependency.clone());
            }
        }
    }

    for (name, service) in services {
        // Host ports: the gateway and the dashboards only.
        for port in service["ports"].as_array().into_iter().flatten() {
            let spec = port
                .as_str()
                .map_or_else(|| port.to_string(), str::to_owned);
            let target = spec
                .split('/')
                .next()
                .and_then(|s| s.rsplit(':').next())
                .and_then(|t| t.parse::<u16>().ok());
            let allowed = PUBLISHED
                .iter()
                .any(|(service, container)| service == name && Some(*container) == target);
            if !allowed {
                problems.push(format!(
                    "{name} publishes {spec}: only the gateway and dashboards may"
                ));
            }
        }
        // Health and ordering.
        if !one_shots.contains(name) && service.get("healthcheck").is_none() {
            problems.push(format!("{name} has no healthcheck"));
        }
        for (dependency, how) in service["depends_on"].as_object().into_iter().flatten() {
            match how["condition"].as_str() {
                Some("service_healthy") => {
                    if services
                        .get(dependency)
                        .is_some_and(|d| d.get("healthcheck").is_none())
                    {
                        problems.push(format!(
                            "{name} waits for {dependency} to be healthy, which has no healthcheck"
                        ));
                    }
                }
                Some("service_completed_successfully") => {}
                other => problems.push(format!(
                    "{name} starts after {dependency} on {other:?}: wait for it to be healthy"
                )),
            }
        }
    }

    // Prometheus scrapes every service on its port.
    let mut scraped = BTreeMap::new();
    for job in prometheus["scrape_configs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for sd in job["dns_sd_configs"].as_array().into_iter().flatten() {
            for target in sd["names"].as_array().into_iter().flatten() {
                if let (Some(target), Some(port)) = (target.as_str(), sd["port"].as_u64()) {
                    scraped.insert(target.to_owned(), port);
                }
            }
        }
        for sc in job["static_configs"].as_array().into_iter().flatten() {
            for target in sc["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if let (Some(host), Some(port)) = (crate::host_of(target), port_of(target)) {
                    scraped.insert(host.to_owned(), u64::from(port));
                }
            }
        }
    }
    for name in kino_services {
        match (scraped.get(name), ports.get(name)) {
            (Some(scraped), Some(port)) if *scraped == u64::from(*port) => {}
            (Some(scraped), port) => problems.push(format!(
                "Prometheus scrapes {name} on {scraped}, it listens on {port:?}"
            )),
            (None, _) => problems.push(format!("Prometheus does not scrape {name}")),
        }
    }

    // Traefik sends each route to the port its service listens on.
    for (name, service) in traefik_dynamic["http"]["services"]
        .as_object()
        .into_iter()
        .flatten()
    {
        for server in service["loadBalancer"]["servers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let url = server["url"].as_str().unwrap_or_default();
            let host = crate::host_of(url).unwrap_or_default();
            if port_of(url) != ports.get(host).copied() {
                problems.push(format!(
                    "Traefik service {name} goes to {url}, but {host} listens on {:?}",
                    ports.get(host)
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_service_list() {
        let list = dockerfile_services("FROM x\nARG SERVICES=\"auth media\"\nRUN y\n");
        assert_eq!(list, ["auth", "media"].map(String::from).into());
    }
}
