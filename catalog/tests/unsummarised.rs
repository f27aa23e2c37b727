//! A volume partly counted without being read (an edge whose summariser was too busy,
//! `unsummarised`): shares are of the part read, estimates and savings are scaled up to the
//! whole volume (and say so), the API shows the unread part, and a summary read whole gives
//! the figures it always gave.
//!
//! The service `api` logs 1000 records (100000 bytes); 500 of them (50000 bytes) were counted
//! unread. The other 500 were read: 400 DEBUG records of one template and 100 ERROR records
//! of another, 100 bytes each, over exactly one hour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use weir_catalog::advice::Advice;
use weir_catalog::analysis::{Finding, WasteKind};
use weir_catalog::control::ControlPlane;
use weir_summary::summary::{
    template_id, CatalogSummary, Seen, ServiceSummary, SeverityMix, TemplateSummary, Volume,
};

const T0: u64 = 1_700_000_000_000_000_000;
const HOUR: u64 = 3600 * 1_000_000_000;
/// The window is one hour: per day is 24 times the window.
const PER_DAY: f64 = 24.0;
const DEBUG_TPL: &str = "cache lookup key <*> hit";
const ERROR_TPL: &str = "payment failed for order <*>";

fn template(text: &str, count: u64, class: &str, severity: SeverityMix) -> TemplateSummary {
    let mut severities = BTreeMap::new();
    severities.insert(
        class.to_string(),
        Volume {
            items: count,
            bytes: count * 100,
        },
    );
    TemplateSummary {
        template: text.into(),
        count,
        bytes: count * 100,
        severity,
        seen: Seen {
            first_unix_nano: T0,
            last_unix_nano: T0 + HOUR,
        },
        severities,
        peak_per_second: 1,
        ..Default::default()
    }
}

/// The read part (500 records, 50000 bytes), plus `unread` counted without being read.
fn service(unread: Volume) -> ServiceSummary {
    let mut s = ServiceSummary::default();
    let debug = SeverityMix {
        debug: 400,
        ..Default::default()
    };
    let error = SeverityMix {
        error: 100,
        ..Default::default()
    };
    s.logs.templates.insert(
        template_id(DEBUG_TPL),
        template(DEBUG_TPL, 400, "5|DEBUG", debug),
    );
    s.logs.templates.insert(
        template_id(ERROR_TPL),
        template(ERROR_TPL, 100, "17|ERROR", error),
    );
    s.logs.severity = SeverityMix {
        debug: 400,
        error: 100,
        ..Default::default()
    };
    s.logs.volume = Volume {
        items: 500 + unread.items,
        bytes: 50_000 + unread.bytes,
    };
    s.logs.unsummarised = unread;
    s
}

fn catalog(services: &[(&str, ServiceSummary)]) -> (tempfile::TempDir, ControlPlane) {
    let dir = tempfile::tempdir().unwrap();
    let c = ControlPlane::open(&dir.path().join("c.db"))
        .unwrap()
        .with_policy_check(weir_catalog::component::policy_check());
    let mut summary = CatalogSummary::default();
    for (name, s) in services {
        summary.services.insert(name.to_string(), s.clone());
    }
    let errors = weir_summary::validate::validate(&summary, &Default::default());
    assert!(errors.is_empty(), "{errors:?}");
    c.ingest(&summary).unwrap();
    (dir, c)
}

fn one(a: &Advice, kind: WasteKind) -> &Finding {
    let f: Vec<&Finding> = a.findings.iter().filter(|f| f.kind == kind).collect();
    assert_eq!(f.len(), 1, "{:#?}", a.findings);
    f[0]
}

const HALF: Volume = Volume {
    items: 500,
    bytes: 50_000,
};

#[test]
fn shares_are_of_the_part_read_and_savings_are_scaled_to_the_whole_volume() {
    let (_d, c) = catalog(&[("api", service(HALF))]);
    let a = c.advice().unwrap();

    // The DEBUG template is 400 of the 500 records read: 80%, not 40% of the volume.
    let dominant = one(&a, WasteKind::DominantTemplate);
    assert_eq!(dominant.title, "one template is 80% of api's logs");
    assert_eq!(
        dominant.evidence[0],
        format!("template \"{DEBUG_TPL}\": 400 of 500 records read")
    );
    let debug = one(&a, WasteKind::DebugLogs);
    assert_eq!(
        debug.evidence[0],
        "400 of 500 log records read (80.0%) have severity text DEBUG or TRACE"
    );

    // Dropping DEBUG saves its 40000 bytes read scaled by 100000 / 50000: 80000 bytes in
    // the hour, 1920000 per day; 800 records in the hour.
    assert_eq!(debug.gross_saving_bytes_per_day, 80_000.0 * PER_DAY);
    assert_eq!(debug.saving_bytes_per_day, 80_000.0 * PER_DAY);
    assert_eq!(debug.bytes_per_day, 80_000.0 * PER_DAY);
    assert_eq!(debug.items_per_day, 800.0 * PER_DAY);
    assert_eq!(debug.would_drop.by_severity["DEBUG"].items, 800.0);
    assert_eq!(debug.would_drop.by_severity["DEBUG"].bytes, 80_000.0);
    // And it says so.
    assert_eq!(debug.read_share, Some(0.5));
    assert!(
        debug.evidence.iter().any(|e| e.starts_with(
            "estimated from 50% of records read (the edge counted the rest without reading them)"
        )),
        "{:?}",
        debug.evidence
    );
    // The dominant template's sample covers the same records: counted once, in the ledger.
    assert_eq!(dominant.saving_bytes_per_day, 0.0);
    assert_eq!(dominant.gross_saving_bytes_per_day, 72_000.0 * PER_DAY);
    assert_eq!(dominant.overlaps, vec![format!("finding {}", debug.id)]);
    assert_eq!(a.saving_bytes_per_day, 80_000.0 * PER_DAY);
    // Never more than the volume: 80% of 100000 bytes.
    assert!(a.saving_bytes_per_day <= a.bytes_per_day);
    assert_eq!(a.bytes_per_day, 100_000.0 * PER_DAY);

    // ERROR records are never suggested for dropping.
    for f in &a.findings {
        assert!(!f.would_drop.by_severity.contains_key("ERROR"), "{f:#?}");
        assert!(!f.title.contains("payment failed"), "{f:#?}");
    }

    // The ledger says how much was read.
    let l = &a.services[0];
    assert_eq!(l.unsummarised.logs.items, 500);
    assert_eq!(l.unsummarised.logs.bytes, 50_000);
    assert_eq!(l.unsummarised.logs.share_of_items, 0.5);
    assert_eq!(l.notes.len(), 1, "{:?}", l.notes);
    assert!(
        l.notes[0].starts_with("logs: 500 of the 1000 log records were read (50%"),
        "{:?}",
        l.notes
    );

    // Accepted: the estimate stays scaled and marked.
    c.accept(&debug.id, false, "test").unwrap();
    let b = c.advice().unwrap();
    let acc = b.accepted.iter().find(|f| f.id == debug.id).unwrap();
    let m = acc.measured.as_ref().unwrap();
    assert_eq!(m.estimated_bytes_per_day, 80_000.0 * PER_DAY);
    assert_eq!(m.estimated_items_per_day, 800.0 * PER_DAY);
    assert_eq!(acc.read_share, Some(0.5));
    assert_eq!(b.services[0].covered_bytes_per_day, 80_000.0 * PER_DAY);
}

#[test]
fn the_api_shows_the_unread_part_and_shares_of_the_part_read() {
    let (_d, c) = catalog(&[("api", service(HALF))]);
    let v = weir_catalog::views::service("api", &c.service("api").unwrap());
    assert_eq!(v["logs"]["items"], 1000);
    assert_eq!(v["logs"]["bytes"], 100_000);
    assert_eq!(v["logs"]["unsummarised"]["items"], 500);
    assert_eq!(v["logs"]["unsummarised"]["bytes"], 50_000);
    assert_eq!(v["logs"]["unsummarised"]["share_of_items"], 0.5);
    assert_eq!(v["traces"]["unsummarised"]["items"], 0);
    assert_eq!(v["traces"]["unsummarised"]["share_of_items"], 0.0);
    let t = &v["logs"]["templates"][0];
    assert_eq!(t["template"], DEBUG_TPL);
    assert_eq!(t["share"], 0.8);
    assert_eq!(v["logs"]["templates"][1]["share"], 0.2);
    assert_eq!(v["notes"].as_array().unwrap().len(), 1);

    let o = weir_catalog::views::overview(&c).unwrap();
    let svc = &o["services"][0];
    assert_eq!(svc["signals"]["logs"]["items"], 1000);
    assert_eq!(
        svc["signals"]["logs"]["unsummarised"]["share_of_items"],
        0.5
    );
    assert_eq!(svc["signals"]["metrics"]["unsummarised"]["items"], 0);

    let list = serde_json::to_value(c.services().unwrap()).unwrap();
    assert_eq!(list[0]["logs_items"], 1000);
    assert_eq!(list[0]["unsummarised"]["logs"]["items"], 500);
    assert_eq!(list[0]["unsummarised"]["logs"]["share_of_items"], 0.5);

    let f = weir_catalog::views::findings(&c).unwrap();
    assert_eq!(f["services"][0]["unsummarised"]["logs"]["items"], 500);
    let debug = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "debug_logs")
        .unwrap();
    assert_eq!(debug["read_share"], 0.5);

    let report = weir_catalog::cli::report_text(&c, 10).unwrap();
    assert!(
        report.contains("ESTIMATE api: logs: 500 of the 1000 log records were read"),
        "{report}"
    );
}

#[test]
fn a_summary_read_whole_gives_the_figures_it_gave_before() {
    let (_d, c) = catalog(&[("api", service(Volume::default()))]);
    let a = c.advice().unwrap();
    let debug = one(&a, WasteKind::DebugLogs);
    assert_eq!(
        debug.evidence,
        vec!["400 of 500 log records (80.0%) have severity text DEBUG or TRACE".to_string()]
    );
    assert_eq!(debug.saving_bytes_per_day, 40_000.0 * PER_DAY);
    assert_eq!(debug.items_per_day, 400.0 * PER_DAY);
    assert_eq!(debug.read_share, None);
    let dominant = one(&a, WasteKind::DominantTemplate);
    assert_eq!(dominant.title, "one template is 80% of api's logs");
    assert_eq!(
        dominant.evidence,
        vec![format!("template \"{DEBUG_TPL}\": 400 of 500 records")]
    );
    assert_eq!(dominant.gross_saving_bytes_per_day, 36_000.0 * PER_DAY);
    assert_eq!(a.saving_bytes_per_day, 40_000.0 * PER_DAY);
    assert!(a.services[0].notes.is_empty());
    let json = serde_json::to_value(debug).unwrap();
    assert!(json.get("read_share").is_none(), "{json}");
    let v = weir_catalog::views::service("api", &c.service("api").unwrap());
    assert_eq!(v["logs"]["unsummarised"]["items"], 0);
    assert_eq!(v["logs"]["templates"][0]["share"], 0.8);

    // The same records read, with as many counted unread: every figure of every finding
    // is the whole-read one times the volume over the part read (here 2), shares alike.
    let (_d2, c2) = catalog(&[("api", service(HALF))]);
    let b = c2.advice().unwrap();
    assert_eq!(a.findings.len(), b.findings.len());
    for f in &a.findings {
        let g = b.findings.iter().find(|g| g.id == f.id).unwrap();
        assert_eq!(g.title, f.title);
        assert_eq!(g.items_per_day, 2.0 * f.items_per_day);
        assert_eq!(g.bytes_per_day, 2.0 * f.bytes_per_day);
        assert_eq!(g.saving_bytes_per_day, 2.0 * f.saving_bytes_per_day);
        assert_eq!(
            g.gross_saving_bytes_per_day,
            2.0 * f.gross_saving_bytes_per_day
        );
    }
}

#[test]
fn items_and_bytes_scale_by_their_own_unread_parts() {
    // 1500 records counted unread but only 50000 bytes (small records): records scale by
    // 2000 / 500 = 4, bytes by 100000 / 50000 = 2.
    let (_d, c) = catalog(&[(
        "api",
        service(Volume {
            items: 1500,
            bytes: 50_000,
        }),
    )]);
    let a = c.advice().unwrap();
    let debug = one(&a, WasteKind::DebugLogs);
    assert_eq!(debug.items_per_day, 1600.0 * PER_DAY);
    assert_eq!(debug.saving_bytes_per_day, 80_000.0 * PER_DAY);
    assert_eq!(debug.read_share, Some(0.25));
    assert!(debug
        .evidence
        .iter()
        .any(|e| e.starts_with("estimated from 25% of records read")));
}

#[test]
fn nothing_read_nothing_suggested_and_it_says_why() {
    let mut idle = ServiceSummary::default();
    idle.logs.volume = Volume {
        items: 300,
        bytes: 30_000,
    };
    idle.logs.unsummarised = idle.logs.volume;
    let (_d, c) = catalog(&[("idle", idle), ("api", service(HALF))]);
    let a = c.advice().unwrap();
    assert!(a.findings.iter().all(|f| f.service != "idle"));
    assert!(a.withheld.iter().all(|f| f.service != "idle"));
    let l = a.services.iter().find(|l| l.service == "idle").unwrap();
    assert_eq!(l.saving_bytes_per_day, 0.0);
    assert_eq!(
        l.notes,
        vec!["logs: none of the 300 log records were read (the edge counted them without reading them): nothing is suggested from their content".to_string()]
    );
    assert_eq!(l.unsummarised.logs.share_of_items, 1.0);
    let v = weir_catalog::views::service("idle", &c.service("idle").unwrap());
    assert_eq!(v["logs"]["unsummarised"]["share_of_items"], 1.0);
    assert_eq!(v["notes"][0], l.notes[0].as_str());
}

#[test]
fn the_unread_part_survives_a_restart_and_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    {
        let c = ControlPlane::open(&path).unwrap();
        let mut summary = CatalogSummary::default();
        summary.services.insert("api".into(), service(HALF));
        c.ingest(&summary).unwrap();
        c.ingest(&summary).unwrap();
    }
    let c = ControlPlane::open(&path).unwrap();
    let s = c.service("api").unwrap();
    assert_eq!(
        s.logs.unsummarised,
        Volume {
            items: 1000,
            bytes: 100_000
        }
    );
    assert_eq!(s.logs.volume.items, 2000);
    let v = weir_catalog::views::service("api", &s);
    assert_eq!(v["logs"]["unsummarised"]["share_of_items"], 0.5);
    assert_eq!(v["logs"]["templates"][0]["share"], 0.8);
}

#[test]
fn a_partly_read_template_is_guarded_by_severity_since_the_unread_part_may_hold_errors() {
    // Only INFO records of the template were read; the 400 counted unread may be ERRORs
    // (an edge is saturated during incidents): the suggestion must match below-WARN
    // severity texts only, never the template alone.
    let mut s = ServiceSummary::default();
    let info = SeverityMix {
        info: 100,
        ..Default::default()
    };
    s.logs.templates.insert(
        template_id(ERROR_TPL),
        template(ERROR_TPL, 100, "9|INFO", info),
    );
    s.logs.severity = info;
    s.logs.unsummarised = Volume {
        items: 400,
        bytes: 40_000,
    };
    s.logs.volume = Volume {
        items: 500,
        bytes: 50_000,
    };
    let (_d, c) = catalog(&[("api", s.clone())]);
    let a = c.advice().unwrap();
    let dominant = one(&a, WasteKind::DominantTemplate);
    let text = dominant.policy.to_string();
    assert!(text.contains("severity_text"), "{text}");
    assert!(
        dominant
            .evidence
            .iter()
            .any(|e| e.starts_with("part of the service's logs was counted without being read")),
        "{:?}",
        dominant.evidence
    );
    // Read whole, the same template is suggested without the guard (as before).
    s.logs.unsummarised = Volume::default();
    s.logs.volume = Volume {
        items: 100,
        bytes: 10_000,
    };
    let (_d2, c2) = catalog(&[("api", s)]);
    let b = c2.advice().unwrap();
    let whole = one(&b, WasteKind::DominantTemplate);
    assert!(
        !whole.policy.to_string().contains("severity_text"),
        "{}",
        whole.policy
    );
}

#[test]
fn the_window_covers_batches_counted_unread() {
    // 300 records counted unread over one hour of receive times, none read: the volume per
    // day is 24 times the volume, not 1440 times (a one-minute window).
    let mut idle = ServiceSummary::default();
    idle.logs.volume = Volume {
        items: 300,
        bytes: 30_000,
    };
    idle.logs.unsummarised = idle.logs.volume;
    idle.unsummarised_seen = Seen {
        first_unix_nano: T0,
        last_unix_nano: T0 + HOUR,
    };
    assert_eq!(weir_catalog::units::window_seconds(&idle), 3600.0);
    let (_d, c) = catalog(&[("idle", idle)]);
    let a = c.advice().unwrap();
    assert_eq!(a.bytes_per_day, 30_000.0 * PER_DAY);
}
