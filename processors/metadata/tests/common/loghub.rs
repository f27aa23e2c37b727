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
