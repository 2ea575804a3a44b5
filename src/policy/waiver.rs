//! Accepted risk: waivers from `plumbline.yaml` and from object annotations.
//!
//! A waived violation is still reported (with `waived: true` and who accepted it): an
//! auditor has to see the accepted risks, not just the open ones.

use globset::{GlobBuilder, GlobMatcher};

use super::{AppliedWaiver, WaiverSource};
use crate::config::Waiver;
use crate::model::ExpiredWaiverNote;

/// Annotation listing the policy ids an object waives, comma-separated.
pub(super) const WAIVE_ANNOTATION: &str = "plumbline.dev/waive";
/// Annotation giving the reason for [`WAIVE_ANNOTATION`].
pub(super) const REASON_ANNOTATION: &str = "plumbline.dev/waive-reason";

/// A configured waiver with its globs compiled.
pub(super) struct Compiled<'w> {
    waiver: &'w Waiver,
    policy: Option<GlobMatcher>,
    kind: Option<GlobMatcher>,
    namespace: Option<GlobMatcher>,
    name: Option<GlobMatcher>,
    pub expired: bool,
}

fn glob(pattern: &str) -> Option<GlobMatcher> {
    // The config loader already rejected invalid globs; one that still fails matches
    // nothing rather than everything.
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

fn matches(m: &Option<GlobMatcher>, pattern: &Option<String>, value: &str) -> bool {
    match (pattern, m) {
        (None, _) => true,
        (Some(_), Some(m)) => m.is_match(value),
        (Some(_), None) => false,
    }
}

impl<'w> Compiled<'w> {
    pub(super) fn new(waiver: &'w Waiver, today: chrono::NaiveDate) -> Compiled<'w> {
        Compiled {
            policy: glob(&waiver.policy),
            kind: waiver.kind.as_deref().and_then(glob),
            namespace: waiver.namespace.as_deref().and_then(glob),
            name: waiver.name.as_deref().and_then(glob),
            expired: waiver.expires.is_some_and(|d| today > d),
            waiver,
        }
    }

    /// Whether it covers this policy on this object; cluster-scoped objects have the
    /// namespace `""`.
    pub(super) fn covers(&self, policy: &str, kind: &str, namespace: &str, name: &str) -> bool {
        self.policy.as_ref().is_some_and(|m| m.is_match(policy))
            && matches(&self.kind, &self.waiver.kind, kind)
            && matches(&self.namespace, &self.waiver.namespace, namespace)
            && matches(&self.name, &self.waiver.name, name)
    }

    pub(super) fn applied(&self) -> AppliedWaiver {
        AppliedWaiver {
            source: WaiverSource::Config,
            reason: Some(self.waiver.reason.clone()),
            approved_by: Some(self.waiver.approved_by.clone()),
            expires: self.waiver.expires,
        }
    }

    pub(super) fn expired_report(&self, would_cover: usize) -> Option<ExpiredWaiverNote> {
        let expires = self.waiver.expires.filter(|_| self.expired)?;
        Some(ExpiredWaiverNote {
            policy: self.waiver.policy.clone(),
            kind: self.waiver.kind.clone(),
            namespace: self.waiver.namespace.clone(),
            name: self.waiver.name.clone(),
            reason: self.waiver.reason.clone(),
            approved_by: self.waiver.approved_by.clone(),
            expires: expires.to_string(),
            would_cover,
        })
    }
}

/// The waiver an object's own annotations grant for `policy`, if any.
pub(super) fn from_annotations(object: &serde_json::Value, policy: &str) -> Option<AppliedWaiver> {
    let annotations = object.get("metadata")?.get("annotations")?;
    let ids = annotations.get(WAIVE_ANNOTATION)?.as_str()?;
    if !ids.split(',').any(|id| id.trim() == policy) {
        return None;
    }
    let reason = annotations
        .get(REASON_ANNOTATION)
        .and_then(|r| r.as_str())
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    Some(AppliedWaiver {
        source: WaiverSource::Annotation,
        reason,
        approved_by: None,
        expires: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use serde_json::json;

    fn waiver(policy: &str, ns: Option<&str>, expires: Option<NaiveDate>) -> Waiver {
        Waiver {
            policy: policy.to_string(),
            kind: Some("Deployment".to_string()),
            namespace: ns.map(str::to_string),
            name: None,
            reason: "legacy".to_string(),
            approved_by: "sec".to_string(),
            expires,
        }
    }

    #[test]
    fn globs_and_expiry() {
        let day = |d| NaiveDate::from_ymd_opt(2025, 1, d).unwrap();
        let w = waiver("no-*", Some("team-*"), Some(day(10)));
        let on_last_day = Compiled::new(&w, day(10));
        assert!(!on_last_day.expired);
        assert!(on_last_day.covers("no-privileged", "Deployment", "team-a", "web"));
        assert!(!on_last_day.covers("drop-all-capabilities", "Deployment", "team-a", "web"));
        assert!(!on_last_day.covers("no-privileged", "StatefulSet", "team-a", "web"));
        assert!(!on_last_day.covers("no-privileged", "Deployment", "", "web"));
        let after = Compiled::new(&w, day(11));
        assert!(after.expired);
        assert_eq!(after.expired_report(2).map(|e| e.would_cover), Some(2));
    }

    #[test]
    fn annotation_lists_ids() {
        let obj = json!({"metadata": {"annotations": {
            WAIVE_ANNOTATION: "no-latest-tag, run-as-non-root",
            REASON_ANNOTATION: "vendor image"
        }}});
        let w = from_annotations(&obj, "run-as-non-root").unwrap();
        assert_eq!(w.source, WaiverSource::Annotation);
        assert_eq!(w.reason.as_deref(), Some("vendor image"));
        assert!(from_annotations(&obj, "no-privileged").is_none());
        assert!(from_annotations(&json!({}), "no-privileged").is_none());
    }
}
