//! Reading the labelled Loghub samples and scoring grouping accuracy (shared by the
//! `loghub_accuracy` example and the accuracy test).

use std::collections::HashMap;
use std::path::Path;

/// The eight systems of the 2k sample set that sit beside the project.
pub const SYSTEMS: [&str; 8] = [
    "Android",
    "Apache",
    "BGL",
    "HDFS",
    "Hadoop",
    "Linux",
    "OpenStack",
    "Spark",
];

/// One labelled system: the `Content` column and the ground-truth `EventId` of each line.
pub struct Labelled {
    pub contents: Vec<String>,
    pub event_ids: Vec<String>,
}

/// Reads `<dir>/<system>/<system>_2k.log_structured.csv` with a real CSV parser.
pub fn load(dir: &Path, system: &str) -> Result<Labelled, String> {
    let path = dir
        .join(system)
        .join(format!("{system}_2k.log_structured.csv"));
    let mut reader =
        csv::Reader::from_path(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{}: no {name} column", path.display()))
    };
    let (content, event) = (col("Content")?, col("EventId")?);
    let mut out = Labelled {
        contents: Vec::new(),
        event_ids: Vec::new(),
    };
    for record in reader.records() {
        let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
        out.contents
            .push(record.get(content).unwrap_or("").to_string());
        out.event_ids
            .push(record.get(event).unwrap_or("").to_string());
    }
    Ok(out)
}

/// Mines `lines` with `config`; returns each line's final template id (a line whose
/// template later merged into another counts under the one it merged into) and the miner.
pub fn mine(
    lines: &[String],
    config: weir_summary::drain::MinerConfig,
) -> (Vec<u64>, weir_summary::drain::TemplateMiner) {
    let mut miner = weir_summary::drain::TemplateMiner::new(config);
    let mut alias: HashMap<u64, u64> = HashMap::new();
    let mut ids = Vec::with_capacity(lines.len());
    for l in lines {
        ids.push(miner.add(l).id);
        for m in miner.take_merged() {
            alias.insert(m.id, m.into_id);
        }
    }
    let resolve = |mut id: u64| {
        while let Some(&to) = alias.get(&id) {
            id = to;
        }
        id
    };
    (ids.into_iter().map(resolve).collect(), miner)
}

/// Share of lines whose predicted group holds exactly the lines of their true group.
pub fn grouping_accuracy(predicted: &[u64], truth: &[String]) -> f64 {
    assert_eq!(predicted.len(), truth.len());
    if truth.is_empty() {
        return 1.0;
    }
    let mut truth_sizes: HashMap<&str, usize> = HashMap::new();
    for t in truth {
        *truth_sizes.entry(t.as_str()).or_default() += 1;
    }
    // For each predicted group: its size and whether all its lines share one true id.
    let mut groups: HashMap<u64, (usize, Option<&str>, bool)> = HashMap::new();
    for (p, t) in predicted.iter().zip(truth) {
        let g = groups.entry(*p).or_insert((0, Some(t.as_str()), true));
        g.0 += 1;
        if g.1 != Some(t.as_str()) {
            g.2 = false;
        }
    }
    let mut correct = 0usize;
    for (size, t, pure) in groups.values() {
        if let (true, Some(t)) = (*pure, t) {
            if truth_sizes.get(t) == Some(size) {
                correct += size;
            }
        }
    }
    correct as f64 / truth.len() as f64
}

/// The settings tried by leave-one-system-out: similarity threshold x word variants.
pub fn grid() -> Vec<weir_summary::drain::MinerConfig> {
    let mut g = Vec::new();
    for t in [0.5, 0.6, 0.7] {
        for k in [0, 2, 3, 4, 6] {
            g.push(weir_summary::drain::MinerConfig {
                similarity_threshold: t,
                max_word_variants: k,
                ..Default::default()
            });
        }
    }
    g
}

/// One row of the leave-one-system-out table.
pub struct LooRow {
    pub system: &'static str,
    /// Index into [`grid`] of the settings chosen on the other seven systems.
    pub chosen: usize,
    /// Their mean on the other seven.
    pub train_mean: f64,
    /// Accuracy on the held-out system.
    pub held_out: f64,
}

/// For each system: choose the settings of [`grid`] with the best mean on the other seven
/// systems (ties: the first), then score the held-out system with them.
pub fn leave_one_out(dir: &Path) -> Result<Vec<LooRow>, String> {
    let grid = grid();
    let data: Vec<Labelled> = SYSTEMS
        .iter()
        .map(|s| load(dir, s))
        .collect::<Result<_, _>>()?;
    // scores[g][s]
    let scores: Vec<Vec<f64>> = grid
        .iter()
        .map(|c| {
            data.iter()
                .map(|d| grouping_accuracy(&mine(&d.contents, c.clone()).0, &d.event_ids))
                .collect()
        })
        .collect();
    let mut rows = Vec::new();
    for (held, system) in SYSTEMS.iter().enumerate() {
        let train = |g: usize| {
            let sum: f64 = (0..SYSTEMS.len())
                .filter(|&s| s != held)
                .map(|s| scores[g][s])
                .sum();
            sum / (SYSTEMS.len() - 1) as f64
        };
        let mut chosen = 0;
        for g in 1..grid.len() {
            if train(g) > train(chosen) + 1e-12 {
                chosen = g;
            }
        }
        rows.push(LooRow {
            system,
            chosen,
            train_mean: train(chosen),
            held_out: scores[chosen][held],
        });
    }
    Ok(rows)
}
