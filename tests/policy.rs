//! The shipped packs load from `policies/` as a user's config would name them, and list
//! with their crosswalk.

use std::path::PathBuf;

use plumbline::policy::{PolicySet, Severity};

fn policies_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies")
}

#[test]
fn policies_directory_matches_the_builtin_packs() {
    let from_dir = match PolicySet::load(&[policies_dir()]) {
        Ok(set) => set,
        Err(problems) => panic!(
            "{}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    let builtin = PolicySet::builtin().expect("built-in packs load");
    let ids = |s: &PolicySet| s.policies().into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(&from_dir), ids(&builtin));

    let listed = from_dir.policies();
    assert!(listed.iter().filter(|p| p.pack == "baseline").count() >= 28);
    for p in &listed {
        assert!(!p.controls.soc2.is_empty(), "{} has no SOC 2 mapping", p.id);
        assert!(
            p.controls
                .cis
                .iter()
                .all(|c| c.benchmark == "cis-kubernetes" && c.version == "1.10"),
            "{}",
            p.id
        );
    }
    let drift = listed
        .iter()
        .find(|p| p.id == "drift-sla-exceeded")
        .expect("gitops pack listed");
    assert_eq!(drift.severity, Severity::High);
    assert!(drift.controls.soc2.contains(&"CC7.1".to_string()));
}

#[test]
fn policies_test_reports_every_case() {
    let reports = PolicySet::test_paths(&[policies_dir()]).expect("packs compile");
    assert!(reports.len() >= 31);
    for r in &reports {
        assert!(r.passed(), "{}: {:?}", r.policy, r.outcomes);
        assert!(
            r.outcomes.iter().any(|o| o.expect == "pass")
                && r.outcomes.iter().any(|o| o.expect == "fail")
        );
    }
}
