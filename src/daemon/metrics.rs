//! The daemon's Prometheus metrics: what the last scan found (gauges replaced after every
//! scan) and what the daemon did (counters), in the OpenMetrics text format.

use super::lock;
use crate::model::{ScanResult, Status};
use crate::store::Delivery;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Metric, Registry};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Severities of the policy contract, always exported so a dashboard sees zeros, not gaps.
const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    status: String,
    cluster: String,
    app: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SeverityLabels {
    severity: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TickLabels {
    trigger: String,
    outcome: String,
}

/// Every metric of the daemon, registered under the `plumbline_` prefix.
pub struct Metrics {
    registry: Mutex<Registry>,
    scan_duration: Histogram,
    scan_running: Gauge,
    findings: Family<FindingLabels, Gauge>,
    policy_violations: Family<SeverityLabels, Gauge>,
    cluster_reachable: Family<ClusterLabels, Gauge>,
    notification_attempts: Family<ChannelLabels, Counter>,
    notification_failures: Family<ChannelLabels, Counter>,
    last_scan: Gauge,
    last_success: Gauge,
    ticks: Family<TickLabels, Counter>,
    render_cache_hits: Counter,
    render_cache_misses: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let metrics = Metrics {
            registry: Mutex::new(Registry::with_prefix("plumbline")),
            // 0.25 s to about 34 min: a loopback scan to a large fleet.
            scan_duration: Histogram::new(exponential_buckets(0.25, 2.0, 14)),
            scan_running: Gauge::default(),
            findings: Family::default(),
            policy_violations: Family::default(),
            cluster_reachable: Family::default(),
            notification_attempts: Family::default(),
            notification_failures: Family::default(),
            last_scan: Gauge::default(),
            last_success: Gauge::default(),
            ticks: Family::default(),
            render_cache_hits: Counter::default(),
            render_cache_misses: Counter::default(),
        };
        metrics.register(
            "scan_duration_seconds",
            "Wall time of each scan the daemon ran",
            metrics.scan_duration.clone(),
        );
        metrics.register(
            "scan_running",
            "1 while a scan is running",
            metrics.scan_running.clone(),
        );
        metrics.register(
            "findings",
            "Resources of the last scan by status, cluster and app",
            metrics.findings.clone(),
        );
        metrics.register(
            "policy_violations",
            "Policy violations of the last scan that no waiver covers, by severity",
            metrics.policy_violations.clone(),
        );
        metrics.register(
            "cluster_reachable",
            "1 when the last scan read the cluster, 0 when it was unreachable or refused",
            metrics.cluster_reachable.clone(),
        );
        metrics.register(
            "notification_attempts",
            "Alert delivery attempts, retries included, by channel",
            metrics.notification_attempts.clone(),
        );
        metrics.register(
            "notification_failures",
            "Alert deliveries that failed after their retries, by channel",
            metrics.notification_failures.clone(),
        );
        metrics.register(
            "last_scan_timestamp_seconds",
            "When the last recorded scan finished (Unix time)",
            metrics.last_scan.clone(),
        );
        metrics.register(
            "last_successful_scan_timestamp_seconds",
            "When the last recorded scan without errors finished (Unix time)",
            metrics.last_success.clone(),
        );
        metrics.register(
            "ticks",
            "Runs by trigger (schedule, api) and outcome (ran, skipped, failed, missed)",
            metrics.ticks.clone(),
        );
        metrics.register(
            "render_cache_hits",
            "Apps whose render came from the render cache",
            metrics.render_cache_hits.clone(),
        );
        metrics.register(
            "render_cache_misses",
            "Apps rendered afresh",
            metrics.render_cache_misses.clone(),
        );
        for severity in SEVERITIES {
            metrics
                .policy_violations
                .get_or_create(&SeverityLabels {
                    severity: severity.to_string(),
                })
                .set(0);
        }
        metrics
    }

    /// Registers a metric under the `plumbline_` prefix and hands back a handle to it, so a
    /// new metric is one line where it is counted, e.g.
    /// `let hits = metrics.register("render_cache_hits", "Renders served from the cache", Counter::default());`
    pub fn register<M: Metric + Clone>(&self, name: &str, help: &str, metric: M) -> M {
        lock(&self.registry).register(name, help, metric.clone());
        metric
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &lock(&self.registry));
        text
    }

    pub fn scan_started(&self) {
        self.scan_running.set(1);
    }

    pub fn scan_ended(&self, seconds: f64) {
        self.scan_running.set(0);
        self.scan_duration.observe(seconds);
    }

    pub fn tick(&self, trigger: &str, outcome: &str) {
        self.ticks
            .get_or_create(&TickLabels {
                trigger: trigger.to_string(),
                outcome: outcome.to_string(),
            })
            .inc_by(1);
    }

    /// Replaces the gauges of the last scan with those of `result`, and counts its alert
    /// deliveries.
    pub fn scan_recorded(&self, result: &ScanResult, deliveries: &[Delivery]) {
        self.render_cache_hits
            .inc_by(result.summary.render_cache_hits as u64);
        self.render_cache_misses
            .inc_by(result.summary.render_cache_misses as u64);
        let mut counts: BTreeMap<(Status, &str, &str), i64> = BTreeMap::new();
        for f in &result.findings {
            *counts
                .entry((f.status, f.cluster.as_str(), f.app.as_str()))
                .or_default() += 1;
        }
        self.findings.clear();
        for ((status, cluster, app), n) in counts {
            self.findings
                .get_or_create(&FindingLabels {
                    status: status.as_str().to_string(),
                    cluster: cluster.to_string(),
                    app: app.to_string(),
                })
                .set(n);
        }
        self.policy_violations.clear();
        for severity in SEVERITIES {
            let n = result
                .policy_results
                .iter()
                .filter(|p| !p.waived && p.severity == *severity)
                .count();
            self.policy_violations
                .get_or_create(&SeverityLabels {
                    severity: severity.to_string(),
                })
                .set(n as i64);
        }
        self.cluster_reachable.clear();
        for cluster in &result.clusters {
            self.cluster_reachable
                .get_or_create(&ClusterLabels {
                    cluster: cluster.name.clone(),
                })
                .set(i64::from(cluster.status == "ok"));
        }
        for delivery in deliveries {
            let labels = ChannelLabels {
                channel: delivery.channel.clone(),
            };
            self.notification_attempts
                .get_or_create(&labels)
                .inc_by(u64::from(delivery.attempts));
            if !delivery.ok {
                self.notification_failures.get_or_create(&labels).inc();
            }
        }
        if let Ok(finished) = chrono::DateTime::parse_from_rfc3339(&result.finished_at) {
            self.last_scan.set(finished.timestamp());
            if result.errors.is_empty() {
                self.last_success.set(finished.timestamp());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Finding;

    fn finding(app: &str, status: Status) -> Finding {
        serde_json::from_value(serde_json::json!({
            "app": app, "cluster": "prod", "group": "apps", "version": "v1",
            "kind": "Deployment", "namespace": "web", "name": app,
            "status": status.as_str(), "changes": [], "managers": []
        }))
        .expect("finding")
    }

    #[test]
    fn gauges_follow_the_last_scan() {
        let metrics = Metrics::new();
        let mut result: ScanResult = serde_json::from_value(serde_json::json!({
            "scan_id": 1, "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:00:10Z",
            "sources": [], "clusters": [{"name": "prod", "status": "ok", "error": null}],
            "summary": crate::model::Summary::default(), "findings": [], "policy_results": [], "errors": []
        }))
        .expect("result");
        result.findings = vec![
            finding("web", Status::Modified),
            finding("web", Status::Modified),
            finding("api", Status::InSync),
        ];
        metrics.scan_recorded(
            &result,
            &[Delivery {
                channel: "webhook".into(),
                ok: false,
                attempts: 3,
            }],
        );
        let text = metrics.encode();
        assert!(text
            .contains("plumbline_findings{status=\"modified\",cluster=\"prod\",app=\"web\"} 2\n"));
        assert!(text.contains("plumbline_cluster_reachable{cluster=\"prod\"} 1\n"));
        assert!(text.contains("plumbline_policy_violations{severity=\"critical\"} 0\n"));
        assert!(text.contains("plumbline_notification_attempts_total{channel=\"webhook\"} 3\n"));
        assert!(text.contains("plumbline_last_successful_scan_timestamp_seconds 1767225610\n"));

        // The drift is gone in the next scan: its series goes too.
        result.findings.truncate(0);
        result.clusters[0].status = "unreachable".into();
        metrics.scan_recorded(&result, &[]);
        let text = metrics.encode();
        assert!(!text.contains("status=\"modified\""));
        assert!(text.contains("plumbline_cluster_reachable{cluster=\"prod\"} 0\n"));
    }
}
