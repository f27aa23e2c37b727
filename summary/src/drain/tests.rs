//! Unit tests of the template miner.
use super::*;

fn miner() -> TemplateMiner {
    TemplateMiner::new(MinerConfig::default())
}

#[test]
fn groups_lines_of_one_statement_and_separates_others() {
    let mut m = miner();
    let lines = [
        "Connected to 10.0.0.1:5432 in 12 ms",
        "login accepted for alice from web",
        "Connected to 10.0.0.7:5432 in 3 ms",
        "login accepted for bob from web",
        "Disk /dev/sda1 is 91% full",
        "login accepted for carol from web",
        "login accepted for dave from web",
    ];
    let ids: Vec<u64> = lines.iter().map(|l| m.add(l).id).collect();
    // alice, bob and carol could be kinds of login (sibling templates 2, 3, 5); the
    // fourth word makes the position a variable: the siblings merge into the oldest (2).
    assert_eq!(ids, vec![1, 2, 1, 3, 4, 5, 2]);
    let merged: Vec<(u64, u64)> = m.take_merged().map(|g| (g.id, g.into_id)).collect();
    assert_eq!(merged, vec![(3, 2), (5, 2)]);
    let t: Vec<(u64, u64, String)> = m
        .templates()
        .into_iter()
        .map(|(_, id, n, t)| (id, n, t))
        .collect();
    assert_eq!(
        t,
        vec![
            (1, 2, "Connected to <*> in <*> ms".to_string()),
            (2, 4, "login accepted for <*> from web".to_string()),
            (4, 1, "Disk /dev/<*> is <*> full".to_string()),
        ]
    );
}

#[test]
fn lines_differing_in_most_words_stay_apart() {
    let mut m = miner();
    let a = m.add("[instance: 3edec1e4-9678-4a3a-a21b-a145a4ee5e61] Claim successful");
    let b = m.add("[instance: 3edec1e4-9678-4a3a-a21b-a145a4ee5e61] Creating image");
    let c = m.add("[instance: 96abccce-8d1f-4e07-b6d1-4b2ab87e23b4] Creating image");
    assert_ne!(a.id, b.id);
    assert_eq!(b.id, c.id);
    assert!(!c.created);
}

#[test]
fn a_widened_template_does_not_swallow_other_statements() {
    let mut m = TemplateMiner::new(MinerConfig {
        max_word_variants: 0,
        ..MinerConfig::default()
    });
    let a = m.add("Jul combo ftpd connection from alpha");
    let b = m.add("Jul combo ftpd connection from beta");
    assert_eq!(a.id, b.id);
    assert_eq!(
        m.raw_template(a.slot).unwrap(),
        "<*> combo ftpd connection from <*>"
    );
    // 3 of 6 words agree; the template's <*> is no agreement.
    let c = m.add("Jul combo ftpd closed by peer");
    assert!(c.created);
    assert_eq!(
        m.raw_template(a.slot).unwrap(),
        "<*> combo ftpd connection from <*>"
    );
}

#[test]
fn eviction_keeps_the_cap_and_counts() {
    let mut m = TemplateMiner::new(MinerConfig {
        max_templates: 3,
        ..MinerConfig::default()
    });
    m.add("alpha one happened");
    m.add("beta two happened twice");
    m.add("gamma three happened here now");
    // Seeing "alpha" again makes "beta" the least recently seen.
    m.add("alpha one happened");
    assert_eq!(m.evictions(), 0);
    m.add("delta four x y z w");
    assert_eq!(m.len(), 3);
    assert_eq!(m.evictions(), 1);
    let evicted = m.take_evicted().unwrap();
    assert_eq!(evicted.template, "beta two happened twice");
    assert_eq!(evicted.id, 2);
    assert_eq!(m.take_evicted(), None);
    m.add("epsilon five a b c d e f");
    assert_eq!(m.evictions(), 2);
    assert_eq!(
        m.take_evicted().unwrap().template,
        "gamma three happened here now"
    );
    let kept: Vec<String> = m.templates().into_iter().map(|t| t.3).collect();
    assert_eq!(kept.len(), 3);
    assert!(kept.contains(&"alpha one happened".to_string()));
    // A new line of an evicted statement starts a fresh template with a new id.
    let again = m.add("beta two happened twice");
    assert!(again.created);
    assert_eq!(again.id, 6);
    assert_eq!(m.evictions(), 3);
}

#[test]
fn tree_stays_bounded_under_unbounded_distinct_input() {
    let mut m = TemplateMiner::new(MinerConfig {
        max_templates: 10,
        ..MinerConfig::default()
    });
    let word = |i: u32| -> String {
        // Digit-free distinct words, so nothing is masked.
        let mut s = String::new();
        let mut n = i;
        loop {
            s.push((b'a' + (n % 26) as u8) as char);
            n /= 26;
            if n == 0 {
                break s;
            }
        }
    };
    for i in 0..20_000u32 {
        let len = 1 + (i % 7) as usize;
        let line = (0..len).map(|k| word(i * 7 + k as u32)).collect::<Vec<_>>();
        m.add(&line.join(" "));
    }
    assert_eq!(m.len(), 10);
    assert_eq!(m.evictions(), 20_000 - 10);
    // Evicting the only template of a leaf and creating one in the same leaf.
    let mut one = TemplateMiner::new(MinerConfig {
        max_templates: 1,
        ..MinerConfig::default()
    });
    let a = one.add("same head alpha beta");
    let b = one.add("same head gamma delta");
    assert!(b.created);
    assert_eq!(one.raw_template(b.slot).unwrap(), "same head gamma delta");
    let c = one.add("same head gamma delta");
    assert_eq!((c.id, c.created), (b.id, false));
    assert_ne!(a.id, b.id);
    // Each held template needs at most depth - 1 nodes (length root, two levels).
    assert!(m.node_count() <= 10 * 3, "{} nodes", m.node_count());
}

#[test]
fn long_lines_are_capped() {
    let mut m = TemplateMiner::new(MinerConfig {
        max_tokens: 4,
        ..MinerConfig::default()
    });
    let a = m.add("list of items: a b c d e");
    let b = m.add("list of items: x y");
    assert_eq!(a.id, b.id);
    assert_eq!(m.raw_template(a.slot).unwrap(), "list of items: <*>");
}

#[test]
fn config_problems_are_reported() {
    let bad = MinerConfig {
        depth: 2,
        similarity_threshold: 1.5,
        max_children: 1,
        max_templates: 0,
        max_tokens: 1,
        max_word_variants: 0,
    };
    let fields: Vec<&str> = bad.problems().into_iter().map(|p| p.0).collect();
    assert_eq!(
        fields,
        vec![
            "depth",
            "similarity_threshold",
            "max_children",
            "max_templates",
            "max_tokens"
        ]
    );
    assert!(MinerConfig::default().problems().is_empty());
}

#[test]
fn free_text_tails_of_any_length_make_one_template() {
    let mut m = miner();
    let a = m.add("worker 3 job failed: disk is full");
    let b = m.add("worker 7 job failed: connection reset by peer");
    let c = m.add("worker 9 job failed: timeout");
    let d = m.add("worker 5 job failed: out of memory");
    assert_eq!(
        b.id, a.id,
        "the first template took the tail and kept its id"
    );
    assert_eq!(c.id, a.id);
    assert_eq!(d.id, a.id);
    assert_eq!(m.len(), 1);
    assert_eq!(
        m.raw_template(a.slot).as_deref(),
        Some("worker <*> job failed: <*>")
    );
    // Lines with more structure after the label are not free text.
    let e = m.add("worker 5 job failed: code 17 at /var/lib/x");
    assert_ne!(e.id, a.id);
}

#[test]
fn words_after_a_common_prefix_without_a_label_stay_apart() {
    let mut m = miner();
    let a = m.add("[instance: 42] Took 19.84 seconds to build instance.");
    let b = m.add("[instance: 42] Took 0.48 seconds to deallocate network for instance.");
    assert_ne!(a.id, b.id);
    assert_eq!(m.len(), 2);
}
