//! The Grafana dashboard (deploy/observability/grafana/dashboards/kino.json) against what
//! the services export: every query must parse as PromQL, and every metric and label it
//! uses must appear in a `/metrics` exposition of the running services (crates/e2e checks
//! this against live services), so a renamed metric cannot leave a panel silently empty.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::anyhow;
use promql_parser::parser::{self, Expr, LabelModifier};
use serde_json::Value;

/// Labels Prometheus attaches to every scraped series (the scrape configs in
/// deploy/observability/prometheus add `service`, and `pod` on Kubernetes).
pub const TARGET_LABELS: &[&str] = &["job", "instance", "service", "pod"];
/// Series Prometheus makes itself for every target.
pub const SYNTHETIC_METRICS: &[&str] = &["up", "scrape_duration_seconds", "scrape_samples_scraped"];

#[derive(Debug, Clone)]
pub struct Query {
    pub panel: String,
    pub expr: String,
}

/// Every query of every panel (rows' nested panels included) and of the templating.
pub fn queries(dashboard: &Value) -> Vec<Query> {
    fn walk(panels: &[Value], out: &mut Vec<Query>) {
        for panel in panels {
            let title = panel["title"].as_str().unwrap_or("(untitled)").to_owned();
            for target in panel["targets"].as_array().map_or(&[][..], Vec::as_slice) {
                if let Some(expr) = target["expr"].as_str() {
                    out.push(Query {
                        panel: title.clone(),
                        expr: expr.to_owned(),
                    });
                }
            }
            walk(panel["panels"].as_array().map_or(&[], Vec::as_slice), out);
        }
    }
    let mut out = Vec::new();
    walk(
        dashboard["panels"].as_array().map_or(&[], Vec::as_slice),
        &mut out,
    );
    out
}

/// Replaces Grafana's variables with what they stand for in PromQL: intervals with a
/// duration, anything else (used inside label matchers) with a regexp.
pub fn substitute_variables(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').unwrap_or(braced.len());
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        out.push_str(
            if (name.starts_with("__") && name.contains("interval")) || name == "__range" {
                "5m"
            } else {
                ".+"
            },
        );
        rest = &after[len.min(after.len())..];
    }
    out.push_str(rest);
    out
}

/// What a query needs from the exposition.
#[derive(Debug, Default)]
pub struct Needs {
    /// Metric name -> label names its matchers use.
    pub selectors: BTreeMap<String, BTreeSet<String>>,
    /// Label names of `by (...)` clauses, each with the metrics it groups.
    pub groupings: Vec<(BTreeSet<String>, BTreeSet<String>)>,
}

fn metrics_in(expr: &Expr, out: &mut BTreeSet<String>) {
    let mut needs = Needs::default();
    collect(expr, &mut needs);
    out.extend(needs.selectors.into_keys());
}

fn collect(expr: &Expr, needs: &mut Needs) {
    match expr {
        Expr::Aggregate(agg) => {
            if let Some(LabelModifier::Include(labels)) = &agg.modifier {
                let mut metrics = BTreeSet::new();
                metrics_in(&agg.expr, &mut metrics);
                needs
                    .groupings
                    .push((labels.labels.iter().cloned().collect(), metrics));
            }
            collect(&agg.expr, needs);
            if let Some(param) = &agg.param {
                collect(param, needs);
            }
        }
        Expr::Unary(u) => collect(&u.expr, needs),
        Expr::Binary(b) => {
            collect(&b.lhs, needs);
            collect(&b.rhs, needs);
        }
        Expr::Paren(p) => collect(&p.expr, needs),
        Expr::Subquery(s) => collect(&s.expr, needs),
        Expr::VectorSelector(vs) => selector(vs, needs),
        Expr::MatrixSelector(ms) => selector(&ms.vs, needs),
        Expr::Call(call) => {
            for arg in &call.args.args {
                collect(arg, needs);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector(vs: &promql_parser::parser::VectorSelector, needs: &mut Needs) {
    let name = vs.name.clone().or_else(|| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == "__name__")
            .map(|m| m.value.clone())
    });
    let labels = vs
        .matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten())
        .filter(|m| m.name != "__name__")
        .map(|m| m.name.clone());
    needs
        .selectors
        .entry(name.unwrap_or_default())
        .or_default()
        .extend(labels);
}

/// Parses a dashboard query (after [`substitute_variables`]) and lists what it needs.
pub fn needs(expr: &str) -> anyhow::Result<Needs> {
    let parsed = parser::parse(&substitute_variables(expr)).map_err(|e| anyhow!("{e}"))?;
    let mut needs = Needs::default();
    collect(&parsed, &mut needs);
    Ok(needs)
}

/// Metric sample names in a Prometheus text exposition, with the label names each has.
pub fn exposition(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut metrics: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let entry = metrics.entry(line[..name_end].to_owned()).or_default();
        if line[name_end..].starts_with('{') {
            let labels = &line[name_end + 1..line.rfind('}').unwrap_or(line.len())];
            // Label values are quoted and may contain commas or '=': walk name="value" pairs.
            let mut rest = labels;
            while let Some(eq) = rest.find('=') {
                entry.insert(rest[..eq].trim().trim_start_matches(',').trim().to_owned());
                let value = &rest[eq + 1..];
                let mut escaped = false;
                let mut close = None;
                for (i, c) in value.char_indices().skip(1) {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => {
                            close = Some(i);
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                rest = close.map_or("", |i| &value[i + 1..]);
            }
        }
    }
    metrics
}

/// Every problem of the dashboard against an exposition (empty = every panel has data).
pub fn check(dashboard: &Value, exposed: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    let all = queries(dashboard);
    if all.is_empty() {
        problems.push("the dashboard has no queries".to_owned());
    }
    let known_label = |metric: &str, label: &str| {
        TARGET_LABELS.contains(&label) || exposed.get(metric).is_some_and(|l| l.contains(label))
    };
    for Query { panel, expr } in all {
        let needs = match needs(&expr) {
            Ok(needs) => needs,
            Err(e) => {
                problems.push(format!("panel {panel:?}: {expr:?} does not parse: {e}"));
                continue;
            }
        };
        for (metric, labels) in &needs.selectors {
            if SYNTHETIC_METRICS.contains(&metric.as_str()) {
                continue;
            }
            if metric.is_empty() {
                problems.push(format!("panel {panel:?}: a selector without a metric name"));
                continue;
            }
            if !exposed.contains_key(metric) {
                problems.push(format!("panel {panel:?}: no service exports {metric}"));
                continue;
            }
            for label in labels {
                if !known_label(metric, label) {
                    problems.push(format!("panel {panel:?}: {metric} has no label {label:?}"));
                }
            }
        }
        for (labels, metrics) in &needs.groupings {
            for label in labels {
                let somewhere = metrics
                    .iter()
                    .any(|m| known_label(m, label) || SYNTHETIC_METRICS.contains(&m.as_str()));
                if !somewhere {
                    problems.push(format!(
                        "panel {panel:?}: grouped by {label:?}, which none of {metrics:?} has"
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/a,b=\"c\"",status="200"} 3
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{method="GET",route="/a",le="0.1"} 1
queue_messages_ready{queue="transcode.jobs"} 0
websocket_connections 0
"#;

    fn dashboard(exprs: &[&str]) -> Value {
        serde_json::json!({"panels": [{"type": "row", "title": "r", "panels": [
            {"title": "p", "targets": exprs.iter().map(|e| serde_json::json!({"expr": e})).collect::<Vec<_>>()}
        ]}]})
    }

    #[test]
    fn exposition_labels_survive_quoted_commas() {
        let exposed = exposition(EXPOSITION);
        assert_eq!(
            exposed["http_requests_total"],
            ["method", "route", "status"].map(String::from).into()
        );
        assert!(exposed["websocket_connections"].is_empty());
    }

    #[test]
    fn variables_become_valid_promql() {
        assert_eq!(
            substitute_variables(r#"rate(x{service=~"$service"}[$__rate_interval])"#),
            r#"rate(x{service=~".+"}[5m])"#
        );
        assert_eq!(substitute_variables("x{a=~\"${a}\"}"), "x{a=~\".+\"}");
    }

    #[test]
    fn exported_metrics_and_labels_pass() {
        let d = dashboard(&[
            r#"histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket{service=~"$service"}[$__rate_interval])))"#,
            r#"sum by (status) (rate(http_requests_total{status=~"5.."}[5m]))"#,
            "max by (queue) (queue_messages_ready)",
            "sum(websocket_connections)",
            "sum by (service) (up)",
        ]);
        assert_eq!(check(&d, &exposition(EXPOSITION)), Vec::<String>::new());
    }

    #[test]
    fn a_missing_metric_label_or_bad_query_fails() {
        let exposed = exposition(EXPOSITION);
        for expr in [
            "sum(rate(http_requests_totl[5m]))",
            r#"sum(rate(http_requests_total{outcome="ok"}[5m]))"#,
            "sum by (consumer) (queue_messages_ready)",
            "sum(rate(http_requests_total[5m])",
        ] {
            let problems = check(&dashboard(&[expr]), &exposed);
            assert!(!problems.is_empty(), "{expr} passed");
        }
        assert!(!check(&serde_json::json!({"panels": []}), &exposed).is_empty());
    }
}
