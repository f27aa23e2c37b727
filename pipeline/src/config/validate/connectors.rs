//! Connectors between pipelines: each connector must be an exporter of one pipeline and a
//! receiver of another with signals it supports, and the pipelines they join must not
//! form a cycle.

use std::collections::BTreeMap;

use weir_api::{ComponentId, ConfigErrors, Signal};

use super::{PipelineSpec, ValidConnector};

/// The pipelines a connector joins: for a pipeline that exports to it, every pipeline that
/// receives from it with a signal pair the connector supports.
pub fn connector_targets<'a>(
    pipelines: &'a [PipelineSpec],
    connector: &ComponentId,
    pairs: &[(Signal, Signal)],
    from: Signal,
) -> Vec<&'a PipelineSpec> {
    pipelines
        .iter()
        .filter(|q| q.receivers.contains(connector) && pairs.contains(&(from, q.signal)))
        .collect()
}

fn pair_list(pairs: &[(Signal, Signal)]) -> String {
    pairs
        .iter()
        .map(|(a, b)| format!("{a} to {b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rules of connectors: each one used as an exporter feeds at least one pipeline it
/// supports, each one used as a receiver is fed by one, the pipelines a connector's config
/// names are pipelines it feeds, and no chain of connectors leads a pipeline back to itself.
pub(super) fn check_connectors(
    pipelines: &[PipelineSpec],
    connectors: &BTreeMap<ComponentId, ValidConnector>,
    configured: &[ComponentId],
    errors: &mut ConfigErrors,
) {
    for p in pipelines {
        for (i, id) in p.exporters.iter().enumerate() {
            if !configured.contains(id) {
                continue;
            }
            let Some(c) = connectors.get(id) else {
                continue; // its own parse error is reported
            };
            if connector_targets(pipelines, id, &c.pairs, p.signal).is_empty() {
                errors.push(
                    format!("service.pipelines.{}.exporters[{i}]", p.id),
                    format!(
                        "connector \"{id}\" is used as an exporter in a {} pipeline but no pipeline of a signal it supports from {} lists it as a receiver (it joins: {})",
                        p.signal,
                        p.signal,
                        pair_list(&c.pairs)
                    ),
                );
            }
        }
        for (i, id) in p.receivers.iter().enumerate() {
            if !configured.contains(id) {
                continue;
            }
            let Some(c) = connectors.get(id) else {
                continue;
            };
            let fed = pipelines
                .iter()
                .any(|up| up.exporters.contains(id) && c.pairs.contains(&(up.signal, p.signal)));
            if !fed {
                errors.push(
                    format!("service.pipelines.{}.receivers[{i}]", p.id),
                    format!(
                        "connector \"{id}\" is used as a receiver in a {} pipeline but no pipeline of a signal it supports to {} lists it as an exporter (it joins: {})",
                        p.signal,
                        p.signal,
                        pair_list(&c.pairs)
                    ),
                );
            }
        }
    }
    for (id, c) in connectors {
        for (path, pipeline) in c.config.named_pipelines() {
            match pipelines.iter().find(|p| p.id == pipeline) {
                None => errors.push(path, format!("pipeline \"{pipeline}\" does not exist")),
                Some(p) if !p.receivers.contains(id) => errors.push(
                    path,
                    format!(
                        "pipeline \"{pipeline}\" does not list connector \"{id}\" as a receiver"
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    if let Some(cycle) = find_cycle(pipelines, connectors) {
        errors.push(
            "service.pipelines",
            format!("connectors make a cycle: {}", cycle.join(" -> ")),
        );
    }
}

/// A cycle of pipelines through connectors, written `logs/a -> [forward] -> logs/b -> ...`.
fn find_cycle(
    pipelines: &[PipelineSpec],
    connectors: &BTreeMap<ComponentId, ValidConnector>,
) -> Option<Vec<String>> {
    // Edges: pipeline index -> (connector id, pipeline index).
    let edges: Vec<Vec<(&ComponentId, usize)>> = pipelines
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            for id in &p.exporters {
                if let Some(c) = connectors.get(id) {
                    for q in connector_targets(pipelines, id, &c.pairs, p.signal) {
                        if let Some(j) = pipelines.iter().position(|x| x.id == q.id) {
                            out.push((id, j));
                        }
                    }
                }
            }
            out
        })
        .collect();
    // 0 unvisited, 1 on the stack, 2 done.
    let mut state = vec![0u8; pipelines.len()];
    let mut stack: Vec<(usize, Option<&ComponentId>)> = Vec::new();
    fn visit<'a>(
        i: usize,
        via: Option<&'a ComponentId>,
        edges: &[Vec<(&'a ComponentId, usize)>],
        state: &mut [u8],
        stack: &mut Vec<(usize, Option<&'a ComponentId>)>,
    ) -> Option<(usize, &'a ComponentId)> {
        state[i] = 1;
        stack.push((i, via));
        for &(c, j) in &edges[i] {
            if state[j] == 1 {
                return Some((j, c));
            }
            if state[j] == 0 {
                if let Some(found) = visit(j, Some(c), edges, state, stack) {
                    return Some(found);
                }
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    for start in 0..pipelines.len() {
        if state[start] != 0 {
            continue;
        }
        if let Some((back_to, closing)) = visit(start, None, &edges, &mut state, &mut stack) {
            let from = stack.iter().position(|(i, _)| *i == back_to).unwrap_or(0);
            let mut out = Vec::new();
            for (k, (i, via)) in stack[from..].iter().enumerate() {
                if k > 0 {
                    if let Some(c) = via {
                        out.push(format!("[{c}]"));
                    }
                }
                out.push(pipelines[*i].id.clone());
            }
            out.push(format!("[{closing}]"));
            out.push(pipelines[back_to].id.clone());
            return Some(out);
        }
    }
    None
}
