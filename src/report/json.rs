//! The scan result as JSON (CONTRACT section 3), exactly as `scan --format json` and
//! `report --format json` print it.

use crate::model::{ScanResult, Status};

/// Pretty JSON with a trailing newline; in-sync findings only when asked for.
pub fn render(result: &ScanResult, include_in_sync: bool) -> String {
    let text = if include_in_sync {
        serde_json::to_string_pretty(result)
    } else {
        let mut shown = result.clone();
        shown.findings.retain(|f| f.status != Status::InSync);
        serde_json::to_string_pretty(&shown)
    };
    text.unwrap_or_default() + "\n"
}
