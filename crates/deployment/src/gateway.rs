//! The gateway exists three times: Traefik's dynamic configuration (docker-compose),
//! Traefik's Kubernetes resources (k8s/base/gateway) and the local Caddyfile that plays
//! Traefik in tests. Each is reduced here to the same [`Gateway`] model (which paths go to
//! which service, which routes strip client identity headers and pass the ForwardAuth hop
//! first, where that hop goes and which identity headers it copies, how large a request
//! body each route takes), so that any difference between the three is a failing
//! comparison.
//!
//! Upstreams are compared by service name and port: Caddy's are given as `auth:8081` etc.
//! when the Caddyfile is adapted ([`caddy`]), Kubernetes' fully qualified names are cut
//! to their first label.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::Path,
    process::Command,
};

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use crate::{host_of, port_of, tools};

/// Which requests a route takes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathMatch {
    /// Exactly this path.
    Exact(String),
    /// Any path starting with this.
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Upstream {
    pub service: String,
    pub port: u16,
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service, self.port)
    }
}

/// The ForwardAuth hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardAuth {
    pub upstream: Upstream,
    /// The path asked, e.g. `/user/token_verify`.
    pub path: String,
    /// Headers of auth's answer copied onto the upstream request (lower case).
    pub copied_headers: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub paths: BTreeSet<PathMatch>,
    /// Client-sent request headers removed (lower case).
    pub stripped_headers: BTreeSet<String>,
    /// Whether the headers are stripped before the ForwardAuth hop (so the hop's copies
    /// are the only ones that reach the upstream).
    pub strips_before_auth: bool,
    pub forward_auth: Option<ForwardAuth>,
    /// The largest request body the gateway passes on (larger: 413 at the gateway).
    /// Traefik's `buffering` middleware; Caddy's `body_limit` snippet.
    pub max_body_bytes: Option<u64>,
    pub upstream: Upstream,
}

/// What a browser on another origin is allowed (Traefik's `headers` middleware with
/// `accessControl*`; Caddy's `cors` snippet, checked against it in the deployment tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub origins: BTreeSet<String>,
    /// Request headers a preflight may ask for (lower case).
    pub allow_headers: BTreeSet<String>,
    /// Response headers a script may read (lower case).
    pub expose_headers: BTreeSet<String>,
}

/// Routes keyed by their sorted path matchers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gateway {
    pub routes: BTreeMap<String, Route>,
    /// Traefik: the CORS middleware every route starts with (one for all routes). Not
    /// modelled for Caddy, whose `cors` snippet is site-wide.
    pub cors: Option<Cors>,
    /// Whether every path no route takes is the web app: Traefik's lowest-priority
    /// ``PathPrefix(`/`)`` router to the `web` service (the static image), Caddy's
    /// catch-all `file_server` (it serves web/dist itself).
    pub web_app: bool,
}

impl Gateway {
    /// Every route starts with the same CORS middleware, so a preflight is answered before
    /// anything else (the ForwardAuth hop would refuse it: a preflight has no token).
    fn set_cors(&mut self, route: &str, first: Option<&Middleware>) -> anyhow::Result<()> {
        let Some(Middleware::Cors(cors)) = first else {
            bail!("route {route}: the CORS middleware must come first");
        };
        match &self.cors {
            Some(seen) if seen != cors => bail!("route {route}: another CORS middleware"),
            _ => self.cors = Some(cors.clone()),
        }
        Ok(())
    }

    /// Takes a Traefik router that is the web app's catch-all (``PathPrefix(`/`)``), and
    /// says so; any other router is left for [`Gateway::add`]. The catch-all must have
    /// the lowest priority (1), or it would shadow the API's routes whose rules are shorter
    /// than its own, must go to `web`, and needs no ForwardAuth (static files, no identity).
    fn take_web_app(
        &mut self,
        rule: &str,
        priority: Option<u64>,
        middlewares: &[&Middleware],
        upstream: &Upstream,
    ) -> anyhow::Result<bool> {
        if rule.trim() != "PathPrefix(`/`)" {
            return Ok(false);
        }
        if priority != Some(1) {
            bail!("the web app's catch-all PathPrefix(`/`) must have priority 1 (the lowest)");
        }
        if upstream.service != "web" {
            bail!("the catch-all PathPrefix(`/`) goes to {upstream}, not the web app");
        }
        if middlewares
            .iter()
            .any(|m| matches!(m, Middleware::ForwardAuth(_)))
        {
            bail!("the web app's catch-all passes a ForwardAuth hop: its files are public");
        }
        if self.web_app {
            bail!("two catch-all routes");
        }
        self.web_app = true;
        Ok(true)
    }

    fn add(&mut self, route: Route) -> anyhow::Result<()> {
        let key = route
            .paths
            .iter()
            .map(|m| match m {
                PathMatch::Exact(p) => p.clone(),
                PathMatch::Prefix(p) => format!("{p}*"),
            })
            .collect::<Vec<_>>()
            .join(" ");
        if self.routes.insert(key.clone(), route).is_some() {
            bail!("two routes match {key}");
        }
        Ok(())
    }
}

/// The differences between two gateways, one line each (empty when they agree).
pub fn differences(a_name: &str, a: &Gateway, b_name: &str, b: &Gateway) -> Vec<String> {
    let mut problems = Vec::new();
    if a.web_app != b.web_app {
        problems.push(format!(
            "the web app at every other path: {a_name} {}, {b_name} {}",
            a.web_app, b.web_app
        ));
    }
    if let (Some(x), Some(y)) = (&a.cors, &b.cors)
        && x != y
    {
        problems.push(format!(
            "CORS differs:\n  {a_name}: {x:?}\n  {b_name}: {y:?}"
        ));
    }
    for (key, route) in &a.routes {
        match b.routes.get(key) {
            None => problems.push(format!("route {key} is in {a_name} but not in {b_name}")),
            Some(other) if other != route => problems.push(format!(
                "route {key} differs:\n  {a_name}: {route:?}\n  {b_name}: {other:?}"
            )),
            Some(_) => {}
        }
    }
    for key in b.routes.keys() {
        if !a.routes.contains_key(key) {
            problems.push(format!("route {key} is in {b_name} but not in {a_name}"));
        }
    }
    problems
}

/// Traefik rules of the form ``Path(`/a`) || PathPrefix(`/a/`)``; anything else (hosts,
/// `&&`, regexps) is refused rather than half-understood.
pub fn parse_traefik_rule(rule: &str) -> anyhow::Result<BTreeSet<PathMatch>> {
    let mut paths = BTreeSet::new();
    for part in rule.split("||") {
        let part = part.trim();
        let (kind, rest) = part
            .split_once('(')
            .ok_or_else(|| anyhow!("unsupported rule part {part:?} in {rule:?}"))?;
        let arg = rest
            .strip_suffix(')')
            .and_then(|a| a.trim().strip_prefix('`'))
            .and_then(|a| a.strip_suffix('`'))
            .ok_or_else(|| anyhow!("unsupported rule part {part:?} in {rule:?}"))?;
        paths.insert(match kind.trim() {
            "Path" => PathMatch::Exact(arg.to_owned()),
            "PathPrefix" => PathMatch::Prefix(arg.to_owned()),
            other => bail!("unsupported matcher {other} in {rule:?}"),
        });
    }
    Ok(paths)
}

fn str_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn lower(names: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    names.into_iter().map(|n| n.to_ascii_lowercase()).collect()
}

/// A Traefik middleware definition (`forwardAuth`, `headers`, `buffering` or `errors`), as
/// far as the model goes.
enum Middleware {
    Cors(Cors),
    ForwardAuth(ForwardAuth),
    Strip(BTreeSet<String>),
    BodyLimit(u64),
    /// An `errors` middleware: whether it replaces the body of a 413 (Traefik's own is
    /// plain text; Caddy's `handle_errors 413` writes problem+json for every route).
    ErrorPages {
        covers_413: bool,
    },
}

/// Whether Traefik `errors` status entries (`"413"`, `"400-499"`) include 413.
fn covers_413(statuses: &[String]) -> bool {
    statuses.iter().any(|entry| match entry.split_once('-') {
        Some((low, high)) => {
            matches!((low.trim().parse::<u16>(), high.trim().parse::<u16>()), (Ok(l), Ok(h)) if l <= 413 && 413 <= h)
        }
        None => entry.trim() == "413",
    })
}

fn traefik_middleware(name: &str, spec: &Value) -> anyhow::Result<Middleware> {
    if let Some(fa) = spec.get("forwardAuth") {
        let address = fa["address"]
            .as_str()
            .ok_or_else(|| anyhow!("middleware {name}: forwardAuth without address"))?;
        let host = host_of(address).ok_or_else(|| anyhow!("middleware {name}: bad address"))?;
        let port = port_of(address)
            .ok_or_else(|| anyhow!("middleware {name}: address {address} names no port"))?;
        let path = address
            .split_once("://")
            .map_or(address, |(_, r)| r)
            .split_once('/')
            .map(|(_, p)| format!("/{p}"))
            .unwrap_or_default();
        if fa.get("trustForwardHeader").and_then(Value::as_bool) == Some(true) {
            bail!("middleware {name}: trustForwardHeader would let clients forge X-Forwarded-*");
        }
        return Ok(Middleware::ForwardAuth(ForwardAuth {
            upstream: Upstream {
                service: host.split('.').next().unwrap_or(host).to_owned(),
                port,
            },
            path,
            copied_headers: lower(str_list(&fa["authResponseHeaders"])),
        }));
    }
    if let Some(origins) = spec.pointer("/headers/accessControlAllowOriginList") {
        let headers = &spec["headers"];
        return Ok(Middleware::Cors(Cors {
            origins: str_list(origins).into_iter().collect(),
            allow_headers: lower(str_list(&headers["accessControlAllowHeaders"])),
            expose_headers: lower(str_list(&headers["accessControlExposeHeaders"])),
        }));
    }
    if let Some(custom) = spec
        .pointer("/headers/customRequestHeaders")
        .and_then(Value::as_object)
    {
        // An empty value removes the header.
        let stripped = custom
            .iter()
            .filter(|(_, v)| v.as_str() == Some(""))
            .map(|(k, _)| k.clone());
        return Ok(Middleware::Strip(lower(stripped)));
    }
    if let Some(errors) = spec.get("errors") {
        return Ok(Middleware::ErrorPages {
            covers_413: covers_413(&str_list(&errors["status"])),
        });
    }
    if let Some(buffering) = spec.get("buffering") {
        let max = buffering["maxRequestBodyBytes"]
            .as_u64()
            .ok_or_else(|| anyhow!("middleware {name}: buffering without maxRequestBodyBytes"))?;
        return Ok(Middleware::BodyLimit(max));
    }
    bail!("middleware {name}: neither forwardAuth, headers, buffering nor errors")
}

/// Builds a route from its middlewares in order. Refuses a body limit whose 413 would go
/// out as Traefik's plain text: an `errors` middleware covering 413 must come first.
fn traefik_route(
    paths: BTreeSet<PathMatch>,
    middlewares: &[&Middleware],
    upstream: Upstream,
) -> anyhow::Result<Route> {
    let mut route = Route {
        paths,
        stripped_headers: BTreeSet::new(),
        strips_before_auth: false,
        forward_auth: None,
        max_body_bytes: None,
        upstream,
    };
    let mut problem_413 = false;
    for middleware in middlewares {
        match middleware {
            Middleware::Strip(headers) => {
                route.stripped_headers.extend(headers.iter().cloned());
                if route.forward_auth.is_none() {
                    route.strips_before_auth = true;
                }
            }
            Middleware::ForwardAuth(fa) => route.forward_auth = Some(fa.clone()),
            Middleware::BodyLimit(max) => {
                if !problem_413 {
                    bail!(
                        "route {:?}: its body limit answers 413 in plain text; put an `errors` \
                         middleware for 413 (auth's /errors/{{status}}) before it",
                        route.paths
                    );
                }
                route.max_body_bytes = Some(*max);
            }
            Middleware::ErrorPages { covers_413 } => problem_413 |= covers_413,
            // Checked by Gateway::set_cors.
            Middleware::Cors(_) => {}
        }
    }
    if route.forward_auth.is_none() {
        route.strips_before_auth = false;
    }
    Ok(route)
}

/// traefik/dynamic/*.yml (the file provider's `http` section).
pub fn traefik_file(dynamic: &Value) -> anyhow::Result<Gateway> {
    let http = &dynamic["http"];
    let mut middlewares = BTreeMap::new();
    if let Some(defs) = http["middlewares"].as_object() {
        for (name, spec) in defs {
            middlewares.insert(name.clone(), traefik_middleware(name, spec)?);
        }
    }
    let mut gateway = Gateway::default();
    let routers = http["routers"]
        .as_object()
        .ok_or_else(|| anyhow!("no http.routers"))?;
    for (name, router) in routers {
        let rule = router["rule"]
            .as_str()
            .ok_or_else(|| anyhow!("router {name}: no rule"))?;
        let service = router["service"]
            .as_str()
            .ok_or_else(|| anyhow!("router {name}: no service"))?;
        let servers = http["services"][service]["loadBalancer"]["servers"]
            .as_array()
            .ok_or_else(|| anyhow!("router {name}: service {service} has no servers"))?;
        let [server] = servers.as_slice() else {
            bail!("service {service}: expected one server (the compose service name)");
        };
        let url = server["url"].as_str().unwrap_or_default();
        let upstream = Upstream {
            service: host_of(url).unwrap_or_default().to_owned(),
            port: port_of(url)
                .ok_or_else(|| anyhow!("service {service}: url {url} has no port"))?,
        };
        let used: Vec<&Middleware> = str_list(&router["middlewares"])
            .iter()
            .map(|m| {
                middlewares
                    .get(m)
                    .ok_or_else(|| anyhow!("router {name}: unknown middleware {m}"))
            })
            .collect::<anyhow::Result<_>>()?;
        if gateway.take_web_app(rule, router["priority"].as_u64(), &used, &upstream)? {
            continue;
        }
        gateway.set_cors(name, used.first().copied())?;
        gateway.add(traefik_route(parse_traefik_rule(rule)?, &used, upstream)?)?;
    }
    Ok(gateway)
}

/// The IngressRoute and Middleware resources of a rendered kustomization.
pub fn traefik_kubernetes(resources: &[Value]) -> anyhow::Result<Gateway> {
    let mut middlewares = BTreeMap::new();
    for r in resources.iter().filter(|r| r["kind"] == "Middleware") {
        let name = r["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        middlewares.insert(name.clone(), traefik_middleware(&name, &r["spec"])?);
    }
    let mut gateway = Gateway::default();
    let mut found = false;
    for ingress in resources.iter().filter(|r| r["kind"] == "IngressRoute") {
        found = true;
        let routes = ingress["spec"]["routes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for route in routes {
            let rule = route["match"]
                .as_str()
                .ok_or_else(|| anyhow!("a route without match"))?;
            let services = route["services"].as_array().cloned().unwrap_or_default();
            let [service] = services.as_slice() else {
                bail!("route {rule}: expected one service");
            };
            let upstream = Upstream {
                service: service["name"].as_str().unwrap_or_default().to_owned(),
                port: service["port"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| anyhow!("route {rule}: service port must be a number"))?,
            };
            let used: Vec<&Middleware> = route["middlewares"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|m| {
                    let name = m["name"].as_str().unwrap_or_default();
                    middlewares
                        .get(name)
                        .ok_or_else(|| anyhow!("route {rule}: unknown middleware {name}"))
                })
                .collect::<anyhow::Result<_>>()?;
            if gateway.take_web_app(rule, route["priority"].as_u64(), &used, &upstream)? {
                continue;
            }
            gateway.set_cors(rule, used.first().copied())?;
            gateway.add(traefik_route(parse_traefik_rule(rule)?, &used, upstream)?)?;
        }
    }
    if !found {
        bail!("no IngressRoute among the resources");
    }
    Ok(gateway)
}

/// Adapts a Caddyfile to Caddy's JSON with the real `caddy adapt`, upstreams set to the
/// compose service names (`auth:8081`, ...) so they compare with Traefik's directly.
pub fn caddy_adapt(caddyfile: &Path) -> anyhow::Result<Value> {
    let output = tools::run_ok(
        Command::new(tools::caddy())
            .args(["adapt", "--adapter", "caddyfile", "--config"])
            .arg(caddyfile)
            .env("KINO_AUTH_UPSTREAM", "auth:8081")
            .env("KINO_MEDIA_UPSTREAM", "media:8082")
            .env("KINO_VIDEO_UPSTREAM", "video:8083")
            .env("KINO_WEBHOOKS_UPSTREAM", "webhooks:8087")
            .env("KINO_GATEWAY_PORT", "8080"),
        None,
    )?;
    serde_json::from_str(&output.stdout).context("caddy adapt printed no JSON")
}

/// Handlers of a route in execution order, subroutes flattened. The one matcher allowed
/// inside a route is the `body_limit` snippet's Content-Length check (`@oversized` →
/// `error 413`); its limit is added to `prechecks`. Any other is refused.
fn flatten_handlers(
    handlers: &[Value],
    out: &mut Vec<Value>,
    prechecks: &mut Vec<u64>,
) -> anyhow::Result<()> {
    for handler in handlers {
        if handler["handler"] == "subroute" {
            for route in handler["routes"].as_array().cloned().unwrap_or_default() {
                if let Some(matchers) = route.get("match") {
                    prechecks.push(content_length_precheck(matchers, &route["handle"])?);
                    continue;
                }
                flatten_handlers(
                    route["handle"].as_array().map_or(&[], Vec::as_slice),
                    out,
                    prechecks,
                )?;
            }
        } else {
            out.push(handler.clone());
        }
    }
    Ok(())
}

/// The limit of a `Content-Length > N` → 413 check, the only matched subroute modelled.
fn content_length_precheck(matchers: &Value, handle: &Value) -> anyhow::Result<u64> {
    let expr = matchers
        .pointer("/0/expression/expr")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("a matcher inside a route's subroute: not modelled"))?;
    let limit = expr
        .rsplit_once('>')
        .and_then(|(head, n)| {
            head.contains("int({http.request.header.Content-Length})")
                .then(|| n.trim().parse::<u64>().ok())
                .flatten()
        })
        .ok_or_else(|| anyhow!("matcher {expr:?}: not a Content-Length limit"))?;
    let refuses = handle.as_array().is_some_and(|h| {
        h.len() == 1 && h[0]["handler"] == "error" && h[0]["status_code"].as_u64() == Some(413)
    });
    if !refuses {
        bail!("the Content-Length check {expr:?} must answer 413 and nothing else");
    }
    Ok(limit)
}

fn dial_upstream(proxy: &Value) -> anyhow::Result<Upstream> {
    let upstreams = proxy["upstreams"].as_array().cloned().unwrap_or_default();
    let [upstream] = upstreams.as_slice() else {
        bail!("reverse_proxy: expected one upstream");
    };
    let dial = upstream["dial"].as_str().unwrap_or_default();
    Ok(Upstream {
        service: host_of(dial).unwrap_or_default().to_owned(),
        port: port_of(dial).ok_or_else(|| anyhow!("upstream {dial} has no port"))?,
    })
}

/// The headers a forward_auth's `handle_response` copies from auth's answer.
fn copied_headers(proxy: &Value) -> BTreeSet<String> {
    let mut copied = BTreeSet::new();
    for response in proxy["handle_response"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        for route in response["routes"].as_array().cloned().unwrap_or_default() {
            for handler in route["handle"].as_array().cloned().unwrap_or_default() {
                if let Some(set) = handler.pointer("/request/set").and_then(Value::as_object) {
                    for (name, values) in set {
                        let copies = str_list(values).iter().any(|v| {
                            v.eq_ignore_ascii_case(&format!("{{http.reverse_proxy.header.{name}}}"))
                        });
                        if copies {
                            copied.insert(name.to_ascii_lowercase());
                        }
                    }
                }
            }
        }
    }
    copied
}

/// The adapted Caddy JSON of the local gateway.
pub fn caddy(config: &Value) -> anyhow::Result<Gateway> {
    let servers = config
        .pointer("/apps/http/servers")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no apps.http.servers"))?;
    let [server] = servers.values().collect::<Vec<_>>()[..] else {
        bail!("expected one Caddy server");
    };
    let mut gateway = Gateway::default();
    for route in server["routes"].as_array().cloned().unwrap_or_default() {
        let Some(matchers) = route["match"].as_array() else {
            // The catch-all: the web app's files when it serves them, else 404 problem+json.
            gateway.web_app |= route.to_string().contains(r#""handler":"file_server""#);
            continue;
        };
        let [matcher] = matchers.as_slice() else {
            bail!("a route with several matcher sets: not modelled");
        };
        if matcher.pointer("/header_regexp/Origin").is_some() {
            continue; // the `cors` snippet, site-wide (see Gateway::cors)
        }
        if matcher.as_object().map(|m| m.len()) != Some(1) || matcher.get("path").is_none() {
            bail!("a route matched on more than its path: {matcher}");
        }
        let paths = str_list(&matcher["path"])
            .into_iter()
            .map(|p| match p.strip_suffix('*') {
                Some(prefix) => PathMatch::Prefix(prefix.to_owned()),
                None => PathMatch::Exact(p),
            })
            .collect();
        let mut handlers = Vec::new();
        let mut prechecks = Vec::new();
        flatten_handlers(
            route["handle"].as_array().map_or(&[], Vec::as_slice),
            &mut handlers,
            &mut prechecks,
        )?;
        let mut stripped = BTreeSet::new();
        let mut strips_before_auth = false;
        let mut forward_auth = None;
        let mut upstream = None;
        let mut max_body_bytes = None;
        for handler in &handlers {
            match handler["handler"].as_str() {
                Some("request_body") => max_body_bytes = handler["max_size"].as_u64(),
                Some("headers") => {
                    let deleted = str_list(&handler["request"]["delete"]);
                    if !deleted.is_empty() && forward_auth.is_none() {
                        strips_before_auth = true;
                    }
                    stripped.extend(lower(deleted));
                }
                Some("reverse_proxy") if handler.get("rewrite").is_some() => {
                    let uri = handler["rewrite"]["uri"].as_str().unwrap_or_default();
                    forward_auth = Some(ForwardAuth {
                        upstream: dial_upstream(handler)?,
                        path: uri.split('?').next().unwrap_or_default().to_owned(),
                        copied_headers: copied_headers(handler),
                    });
                }
                Some("reverse_proxy") => {
                    // A limited body must be buffered whole before the upstream sees it,
                    // or a streamed oversized body reaches the service half-sent.
                    if let Some(max) = max_body_bytes {
                        let buffers = handler["request_buffers"].as_u64().unwrap_or(0);
                        if buffers <= max {
                            bail!(
                                "reverse_proxy buffers {buffers} bytes of a body limited to {max}: must be more"
                            );
                        }
                    }
                    upstream = Some(dial_upstream(handler)?);
                }
                other => bail!("handler {other:?} in a gateway route: not modelled"),
            }
        }
        if prechecks.iter().any(|&n| Some(n) != max_body_bytes) {
            bail!(
                "a Content-Length check {prechecks:?} differs from request_body's max_size {max_body_bytes:?}"
            );
        }
        if forward_auth.is_none() {
            strips_before_auth = false;
        }
        gateway.add(Route {
            paths,
            stripped_headers: stripped,
            strips_before_auth,
            forward_auth,
            max_body_bytes,
            upstream: upstream.ok_or_else(|| anyhow!("a route without reverse_proxy"))?,
        })?;
    }
    Ok(gateway)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let paths = parse_traefik_rule("Path(`/auth`) || PathPrefix(`/auth/`)").unwrap();
        assert_eq!(
            paths,
            [
                PathMatch::Exact("/auth".into()),
                PathMatch::Prefix("/auth/".into())
            ]
            .into()
        );
        assert!(parse_traefik_rule("Host(`x`) && PathPrefix(`/a`)").is_err());
        assert!(parse_traefik_rule("PathRegexp(`^/a`)").is_err());
    }

    fn dynamic(yaml: &str) -> Gateway {
        traefik_file(&crate::yaml(yaml).unwrap()).unwrap()
    }

    const DYNAMIC: &str = r#"
http:
  middlewares:
    fa: { forwardAuth: { address: "http://auth:8081/user/token_verify", authResponseHeaders: [X-User-Id] } }
    strip: { headers: { customRequestHeaders: { X-User-Id: "" } } }
    limit: { buffering: { maxRequestBodyBytes: 65536 } }
    problem: { errors: { status: ["400-499"], service: auth, query: "/errors/{status}" } }
    cors: { headers: { accessControlAllowOriginList: ["http://localhost:5173"], accessControlAllowHeaders: [Authorization] } }
  routers:
    media: { rule: "PathPrefix(`/media/`)", middlewares: [cors, strip, fa], service: media }
  services:
    media: { loadBalancer: { servers: [{ url: "http://media:8082" }] } }
"#;

    #[test]
    fn the_web_app_catch_all_is_lowest_priority_public_and_goes_to_web() {
        let with_web = |router: &str, service_url: &str| {
            let text = DYNAMIC
                .replace(
                    "  services:\n",
                    &format!("    web: {router}\n  services:\n"),
                )
                .replace(
                    "media: { loadBalancer",
                    &format!("web: {{ loadBalancer: {{ servers: [{{ url: \"{service_url}\" }}] }} }}\n    media: {{ loadBalancer"),
                );
            traefik_file(&crate::yaml(&text).unwrap())
        };
        let good = with_web(
            "{ rule: \"PathPrefix(`/`)\", priority: 1, service: web }",
            "http://web:8080",
        )
        .unwrap();
        assert!(good.web_app);
        assert!(!dynamic(DYNAMIC).web_app);
        assert!(!differences("a", &good, "b", &dynamic(DYNAMIC)).is_empty());
        for (router, url) in [
            // Without priority 1 it would outrank /media/ (a longer rule wins by default).
            (
                "{ rule: \"PathPrefix(`/`)\", service: web }",
                "http://web:8080",
            ),
            (
                "{ rule: \"PathPrefix(`/`)\", priority: 1, middlewares: [fa], service: web }",
                "http://web:8080",
            ),
            (
                "{ rule: \"PathPrefix(`/`)\", priority: 1, service: web }",
                "http://media:8082",
            ),
        ] {
            assert!(with_web(router, url).is_err(), "{router} {url}");
        }
    }

    #[test]
    fn middleware_order_matters() {
        let good = dynamic(DYNAMIC);
        let route = good.routes.values().next().unwrap();
        assert!(route.strips_before_auth);
        assert_eq!(
            route.forward_auth.as_ref().unwrap().path,
            "/user/token_verify"
        );
        let reordered = dynamic(&DYNAMIC.replace("[cors, strip, fa]", "[cors, fa, strip]"));
        assert!(!differences("a", &good, "b", &reordered).is_empty());
    }

    #[test]
    fn a_changed_upstream_or_header_is_a_difference() {
        let good = dynamic(DYNAMIC);
        for drifted in [
            DYNAMIC.replace("http://media:8082", "http://video:8083"),
            DYNAMIC.replace(
                "authResponseHeaders: [X-User-Id]",
                "authResponseHeaders: [X-User]",
            ),
            DYNAMIC.replace("/user/token_verify", "/user/verify"),
            DYNAMIC.replace("PathPrefix(`/media/`)", "PathPrefix(`/media`)"),
            DYNAMIC.replace("[cors, strip, fa]", "[cors, strip, fa, problem, limit]"),
        ] {
            assert!(
                !differences("a", &good, "b", &dynamic(&drifted)).is_empty(),
                "{drifted}"
            );
        }
    }

    #[test]
    fn a_body_limit_needs_problem_pages_before_it() {
        let parse = |chain: &str| {
            traefik_file(&crate::yaml(&DYNAMIC.replace("[cors, strip, fa]", chain)).unwrap())
        };
        assert!(parse("[cors, problem, limit, strip, fa]").is_ok());
        assert!(parse("[cors, limit, strip, fa]").is_err());
        assert!(parse("[cors, limit, problem, strip, fa]").is_err());
        let only_404 = DYNAMIC.replace("400-499", "404");
        let yaml = only_404.replace("[cors, strip, fa]", "[problem, limit, strip, fa]");
        assert!(traefik_file(&crate::yaml(&yaml).unwrap()).is_err());
    }

    #[test]
    fn cors_comes_first_and_a_changed_list_is_a_difference() {
        assert!(
            traefik_file(
                &crate::yaml(&DYNAMIC.replace("[cors, strip, fa]", "[strip, cors, fa]")).unwrap()
            )
            .is_err()
        );
        assert!(
            traefik_file(
                &crate::yaml(&DYNAMIC.replace("[cors, strip, fa]", "[strip, fa]")).unwrap()
            )
            .is_err()
        );
        let other = dynamic(&DYNAMIC.replace("http://localhost:5173", "http://localhost:3000"));
        assert!(!differences("a", &dynamic(DYNAMIC), "b", &other).is_empty());
    }

    #[test]
    fn trusting_client_forwarded_headers_is_refused() {
        let yaml = DYNAMIC.replace("address:", "trustForwardHeader: true, address:");
        assert!(traefik_file(&crate::yaml(&yaml).unwrap()).is_err());
    }
}
