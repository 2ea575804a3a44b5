//! Helm charts, rendered by `helm template` with the app's release, namespace and values.
//! Chart dependencies must be vendored in Git (`charts/`): a scan never downloads anything.
//! When the target cluster is known, its version and served API versions are passed on, so
//! that charts testing `.Capabilities` render what they would render on that cluster.

use super::{process, RenderError, Rendered, Request, Tree};
use crate::config::RenderersConfig;

pub fn render(tree: &dyn Tree, request: &Request) -> Result<Rendered, RenderError> {
    let path = request.path;
    let program = process::locate(&request.engines.helm).ok_or_else(|| {
        RenderError::Unsupported(format!(
            "{}: rendering a Helm chart needs `{}`, which was not found (set renderers.helm)",
            super::display_path(path),
            request.engines.helm
        ))
    })?;
    let checkout = tree.checkout().map_err(RenderError::Read)?;
    let chart = checkout.join(path);
    let args = arguments(request, &chart.to_string_lossy(), &|values| {
        chart.join(values).to_string_lossy().into_owned()
    });
    let output =
        process::run(&program, &args, &checkout).map_err(|message| RenderError::Invalid {
            file: format!("{}/Chart.yaml", super::display_path(path)),
            line: 1,
            message: message.replace(&format!("{}/", checkout.display()), ""),
        })?;
    let label = format!("{} (helm template output)", super::display_path(path));
    super::decode_output(&label, &output, vec![path.to_string()])
}

/// `template RELEASE CHART --namespace NS --values … --set … --kube-version V
/// --api-versions …`; `values_path` places a values file given relative to the chart.
fn arguments(request: &Request, chart: &str, values_path: &dyn Fn(&str) -> String) -> Vec<String> {
    let helm = request.helm;
    let release = helm
        .and_then(|h| h.release.clone())
        .unwrap_or_else(|| request.app.to_string());
    let mut args = vec!["template".to_string(), release, chart.to_string()];
    if let Some(namespace) = request.namespace {
        args.push("--namespace".into());
        args.push(namespace.to_string());
    }
    if let Some(helm) = helm {
        for values in &helm.values {
            args.push("--values".into());
            args.push(values_path(values));
        }
        for (key, value) in &helm.set {
            args.push("--set".into());
            args.push(format!("{key}={value}"));
        }
    }
    if let Some(capabilities) = request.capabilities {
        if let Some(version) = &capabilities.kube_version {
            args.push("--kube-version".into());
            args.push(version.clone());
        }
        if !capabilities.api_versions.is_empty() {
            args.push("--api-versions".into());
            args.push(capabilities.api_versions.join(","));
        }
    }
    args
}

/// The configured Helm's version, part of the render cache identity: another Helm may
/// render the same chart differently.
pub fn engine_version(engines: &RenderersConfig) -> String {
    match process::locate(&engines.helm) {
        Some(program) => process::version(&program, &["version", "--short"]),
        None => format!("{} (not found)", engines.helm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HelmConfig, RenderKind};
    use crate::model::Capabilities;

    #[test]
    fn arguments_carry_values_sets_and_the_cluster_capabilities() {
        let helm = HelmConfig {
            release: Some("web".into()),
            values: vec!["values-prod.yaml".into()],
            set: [("image.tag".to_string(), "1.2.3".to_string())].into(),
        };
        let capabilities = Capabilities {
            kube_version: Some("v1.33.1".into()),
            api_versions: vec!["v1".into(), "apps/v1".into(), "apps/v1/Deployment".into()],
        };
        let engines = RenderersConfig::default();
        let request = Request {
            app: "web-prod",
            path: "charts/web",
            kind: RenderKind::Helm,
            namespace: Some("web"),
            helm: Some(&helm),
            engines: &engines,
            capabilities: Some(&capabilities),
        };
        let args = arguments(&request, "/c/charts/web", &|v| format!("/c/charts/web/{v}"));
        assert_eq!(
            args,
            [
                "template",
                "web",
                "/c/charts/web",
                "--namespace",
                "web",
                "--values",
                "/c/charts/web/values-prod.yaml",
                "--set",
                "image.tag=1.2.3",
                "--kube-version",
                "v1.33.1",
                "--api-versions",
                "v1,apps/v1,apps/v1/Deployment",
            ]
        );
    }

    #[test]
    fn without_options_the_release_is_the_app_and_nothing_else_is_passed() {
        let engines = RenderersConfig::default();
        let request = Request {
            app: "web-prod",
            path: "charts/web",
            kind: RenderKind::Helm,
            namespace: None,
            helm: None,
            engines: &engines,
            capabilities: None,
        };
        let args = arguments(&request, "chart", &|v| v.to_string());
        assert_eq!(args, ["template", "web-prod", "chart"]);
    }
}
