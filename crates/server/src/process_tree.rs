//! Builds the process tree of an event from the stored process events: ancestors up the
//! parent links, the parent's other children and the process's own children.
//!
//! Every step is one bounded search (a time window around the event, a row limit), so a
//! tree costs at most [`MAX_ANCESTORS`] + 2 searches.

use dozor_model::process_tree::{ProcessNode, ProcessTree, is_process_start, process_node};
use dozor_model::{EventQuery, StoredEvent};
use dozor_store::{Store, StoreError};

/// Levels looked up above the process.
pub const MAX_ANCESTORS: usize = 8;
/// Children and siblings listed at most.
pub const MAX_KIN: u32 = 50;
/// How far back a parent's start is looked for by pid (pids are reused; entity ids are not
/// and are looked for however old: a service may have started months before its child).
const ANCESTOR_WINDOW_MS: i64 = 30 * 86_400_000;
/// How far after the process its children are looked for.
const CHILD_WINDOW_MS: i64 = 86_400_000;

/// Process start events: Sysmon 1, Security 4688, the agent's `event.type: start`.
const START_EVENTS: &str = "(event.code:1 OR event.code:4688 OR event.type:start)";

/// How a process is found: by entity id, else by pid on its host.
fn identity(entity_id: Option<&str>, pid: Option<u64>, host: Option<&str>) -> Option<String> {
    let pid = pid.map(|p| p.to_string());
    dozor_ui::url::process_query("process", entity_id, pid.as_deref(), host)
}

/// How the children of a process are found: by its entity id, else by its pid on its host.
fn children_query(node: &ProcessNode, host: Option<&str>) -> Option<String> {
    let pid = node.pid.map(|p| p.to_string());
    dozor_ui::url::process_query(
        "process.parent",
        node.entity_id.as_deref(),
        pid.as_deref(),
        host,
    )
}

async fn starts(
    store: &dyn Store,
    query: String,
    from: Option<i64>,
    to: i64,
    limit: u32,
) -> Result<Vec<ProcessNode>, StoreError> {
    // Only start events: a busy process has many other events (image loads, files) that would
    // crowd its start out of the page.
    let query = format!("({query}) AND {START_EVENTS}");
    let page = store
        .search_events(&EventQuery {
            from,
            to: Some(to),
            query: Some(query),
            limit,
            ..EventQuery::default()
        })
        .await?;
    let mut nodes: Vec<ProcessNode> = page
        .events
        .iter()
        .filter(|e| is_process_start(&e.doc))
        .filter_map(|e| process_node(&e.doc, e.ts, &e.id.to_string()))
        .collect();
    nodes.sort_by_key(|n| n.ts);
    Ok(nodes)
}

fn host_of(e: &StoredEvent) -> Option<String> {
    dozor_model::event_host(&e.doc).map(str::to_owned)
}

fn same_process(a: &ProcessNode, b: &ProcessNode) -> bool {
    match (&a.entity_id, &b.entity_id) {
        (Some(x), Some(y)) => x == y,
        _ => a.pid.is_some() && a.pid == b.pid && a.ts == b.ts,
    }
}

/// The tree of the first of `events` that names a process; `None` when none does.
pub async fn build(
    store: &dyn Store,
    events: &[StoredEvent],
) -> Result<Option<ProcessTree>, StoreError> {
    let Some((event, focus)) = events
        .iter()
        .find_map(|e| process_node(&e.doc, e.ts, &e.id.to_string()).map(|n| (e, n)))
    else {
        return Ok(None);
    };
    let host = host_of(event);
    let host = host.as_deref();
    let at = event.ts;

    // Up the parent links, each parent's start before its child's.
    let mut ancestors = Vec::new();
    let mut child = focus.clone();
    while ancestors.len() < MAX_ANCESTORS {
        let Some(q) = identity(child.parent_entity_id.as_deref(), child.parent_pid, host) else {
            break;
        };
        let from = child
            .parent_entity_id
            .is_none()
            .then(|| child.ts - ANCESTOR_WINDOW_MS);
        let found = starts(store, q, from, child.ts + 1, 20).await?;
        // The latest start before the child: pids are reused, entity ids are not.
        let Some(parent) = found.into_iter().rev().find(|p| p.ts <= child.ts) else {
            break;
        };
        if ancestors.iter().any(|a| same_process(a, &parent)) || same_process(&parent, &focus) {
            break;
        }
        ancestors.push(parent.clone());
        child = parent;
    }
    ancestors.reverse();

    let children = match children_query(&focus, host) {
        Some(q) => starts(store, q, Some(at), at + CHILD_WINDOW_MS, MAX_KIN).await?,
        None => Vec::new(),
    };
    let siblings = match ancestors.last().and_then(|p| children_query(p, host)) {
        Some(q) => starts(
            store,
            q,
            Some(at - CHILD_WINDOW_MS),
            at + CHILD_WINDOW_MS,
            MAX_KIN + 1,
        )
        .await?
        .into_iter()
        .filter(|s| !same_process(s, &focus))
        .take(MAX_KIN as usize)
        .collect(),
        None => Vec::new(),
    };
    Ok(Some(ProcessTree {
        ancestors,
        focus,
        siblings,
        children,
    }))
}
