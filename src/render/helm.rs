//! Helm charts, rendered by `helm template` with the app's release, namespace and values.
//! Chart dependencies must be vendored in Git (`charts/`): a scan never downloads anything.

use super::{process, RenderError, Rendered, Tree};
use crate::config::HelmConfig;

pub fn render(
    tree: &dyn Tree,
    path: &str,
    app: &str,
    namespace: Option<&str>,
    helm: Option<&HelmConfig>,
) -> Result<Rendered, RenderError> {
    let program = process::which("helm").ok_or_else(|| {
        RenderError::Unsupported(format!(
            "{}: rendering a Helm chart needs `helm` on PATH",
            super::display_path(path)
        ))
    })?;
    let checkout = tree.checkout().map_err(RenderError::Read)?;
    let chart = checkout.join(path);
    let release = helm
        .and_then(|h| h.release.clone())
        .unwrap_or_else(|| app.to_string());
    let mut args = vec![
        "template".to_string(),
        release,
        chart.to_string_lossy().into_owned(),
    ];
    if let Some(namespace) = namespace {
        args.push("--namespace".into());
        args.push(namespace.to_string());
    }
    if let Some(helm) = helm {
        for values in &helm.values {
            args.push("--values".into());
            args.push(chart.join(values).to_string_lossy().into_owned());
        }
        for (key, value) in &helm.set {
            args.push("--set".into());
            args.push(format!("{key}={value}"));
        }
    }
    let output =
        process::run(&program, &args, &checkout).map_err(|message| RenderError::Invalid {
            file: format!("{}/Chart.yaml", super::display_path(path)),
            line: 1,
            message: message.replace(&format!("{}/", checkout.display()), ""),
        })?;
    let label = format!("{} (helm template output)", super::display_path(path));
    super::decode_output(&label, &output, vec![path.to_string()])
}
