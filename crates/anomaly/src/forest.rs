//! Isolation forest (Liu, Ting, Zhou 2008) over rows of any width, with per-feature
//! attribution.
//!
//! Trees live in one flat `Vec<Node>` in pre-order: a split's left child is the next node,
//! its right child is stored. Scoring walks indices only (no pointers, no allocation).

use serde::{Deserialize, Serialize};

use crate::AnomalyError;
use crate::rng::SplitMix64;
use crate::stats::{average_path_length, format_number, quantile_in_place};

/// Marks a leaf in the file format's `node_feature` (in memory a leaf points to itself).
const LEAF: u32 = u32::MAX;
/// Rows walked in lockstep (independent loads the CPU overlaps).
const LANES: usize = 8;
/// Far beyond any useful forest (gains flatten out after a few hundred trees); the bound keeps
/// a mistyped parameter from asking for terabytes.
const MAX_TREES: usize = 100_000;
/// Rows scored together per pass over the trees.
const BLOCK: usize = 64;

/// Training parameters. `max_depth: None` means ceil(log2(effective sample size)), the
/// paper's height limit: deeper nodes only separate normal points from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForestParams {
    pub n_trees: usize,
    pub sample_size: usize,
    pub max_depth: Option<usize>,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        Self {
            n_trees: 100,
            sample_size: 256,
            max_depth: None,
            seed: 0x0D0_2024,
        }
    }
}

/// Training distribution of one feature (used by [`IsolationForest::explain`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    /// Split value (go left to the next node when `x[feature] < threshold`). A leaf has
    /// -inf, feature 0 and `right` = itself, so a walk that reached it stays there: rows can
    /// be walked a fixed number of steps without a branch on leaves.
    threshold: f64,
    feature: u32,
    right: u32,
}

impl Node {
    fn leaf(index: usize) -> Self {
        Self {
            threshold: f64::NEG_INFINITY,
            feature: 0,
            right: index as u32,
        }
    }
}

/// One feature's part in an explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureExplanation {
    pub feature: usize,
    pub name: String,
    /// Share of the isolation credited to this feature (all features sum to 1).
    pub share: f64,
    pub value: f64,
    pub median: f64,
    pub q1: f64,
    pub q3: f64,
    /// (value - median) / IQR; `None` when the feature was constant in training.
    pub deviation_iqr: Option<f64>,
    /// e.g. "failed_logons = 40 (usual 0, middle half 0 to 1)".
    pub text: String,
}

/// Why a row scored as it did: the anomaly score and the top features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub score: f64,
    pub features: Vec<FeatureExplanation>,
}

/// A trained isolation forest. Build with [`IsolationForest::fit`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ForestData", into = "ForestData")]
pub struct IsolationForest {
    params: ForestParams,
    feature_names: Vec<String>,
    summaries: Vec<FeatureSummary>,
    /// Sample size actually used: min(sample_size, rows).
    effective_sample_size: usize,
    nodes: Vec<Node>,
    /// Training sample points that reached each node (kept apart from `nodes` so a node is
    /// 16 bytes and a whole tree stays in L1 while scoring).
    sizes: Vec<u32>,
    /// Per node: c(size) for leaves (the expected remaining path of the points the height
    /// limit left unseparated), 0 for splits.
    leaf_adjust: Vec<f64>,
    /// Deepest leaf of any tree: the lockstep walk's step count.
    depth: usize,
    /// Index of each tree's root in `nodes`; trees are contiguous and in order.
    roots: Vec<u32>,
    /// c(effective sample size), or 1 when it is 0 (a single training row).
    normaliser: f64,
}

/// Rows borrowed either as `Vec` rows or as one row-major matrix.
#[derive(Clone, Copy)]
enum Rows<'a> {
    Nested(&'a [Vec<f64>]),
    Flat(&'a [f64], usize),
}

impl<'a> Rows<'a> {
    fn len(&self) -> usize {
        match self {
            Rows::Nested(rows) => rows.len(),
            Rows::Flat(values, width) => values.len() / width,
        }
    }

    fn row(&self, index: usize) -> &'a [f64] {
        match *self {
            Rows::Nested(rows) => &rows[index],
            Rows::Flat(values, width) => &values[index * width..(index + 1) * width],
        }
    }
}

impl IsolationForest {
    /// Trains on `rows` (all the same length, finite). Feature names default to `f0`, `f1`...
    pub fn fit(rows: &[Vec<f64>], params: &ForestParams) -> Result<Self, AnomalyError> {
        Self::fit_named(rows, &[], params)
    }

    /// Trains with feature names (used in explanations and errors); `names` may be empty.
    pub fn fit_named(
        rows: &[Vec<f64>],
        names: &[&str],
        params: &ForestParams,
    ) -> Result<Self, AnomalyError> {
        let first = rows.first().ok_or(AnomalyError::EmptyInput)?;
        let width = first.len();
        for (index, row) in rows.iter().enumerate() {
            if row.len() != width {
                return Err(AnomalyError::RaggedRow {
                    row: index,
                    found: row.len(),
                    expected: width,
                });
            }
        }
        Self::fit_rows(Rows::Nested(rows), width, names, params)
    }

    /// Trains on a row-major matrix of `width` columns (no per-row allocation for big inputs).
    pub fn fit_matrix(
        values: &[f64],
        width: usize,
        names: &[&str],
        params: &ForestParams,
    ) -> Result<Self, AnomalyError> {
        if width == 0 {
            return Err(AnomalyError::NoFeatures);
        }
        if values.is_empty() {
            return Err(AnomalyError::EmptyInput);
        }
        if !values.len().is_multiple_of(width) {
            return Err(AnomalyError::RaggedRow {
                row: values.len() / width,
                found: values.len() % width,
                expected: width,
            });
        }
        Self::fit_rows(Rows::Flat(values, width), width, names, params)
    }

    fn fit_rows(
        rows: Rows<'_>,
        width: usize,
        names: &[&str],
        params: &ForestParams,
    ) -> Result<Self, AnomalyError> {
        let row_count = rows.len();
        if row_count == 0 {
            return Err(AnomalyError::EmptyInput);
        }
        if width == 0 {
            return Err(AnomalyError::NoFeatures);
        }
        if width >= LEAF as usize || row_count >= u32::MAX as usize {
            return Err(AnomalyError::InvalidParameter {
                name: "rows",
                reason: "at most 2^32 - 2 rows and columns".into(),
            });
        }
        validate_params(params)?;
        let feature_names = resolve_names(names, width)?;
        for index in 0..row_count {
            for (column, value) in rows.row(index).iter().enumerate() {
                if !value.is_finite() {
                    return Err(AnomalyError::NonFinite {
                        row: index,
                        column,
                        name: feature_names[column].clone(),
                        what: if value.is_nan() { "NaN" } else { "infinite" },
                    });
                }
            }
        }
        let summaries = summarise(rows, width);
        let sample_size = params.sample_size.min(row_count);
        let max_depth = params
            .max_depth
            .unwrap_or_else(|| (sample_size as f64).log2().ceil().max(1.0) as usize);

        // One permutation shared by all trees: a partial Fisher-Yates over its first
        // `sample_size` slots draws a uniform sample without replacement whatever order
        // earlier trees left it in, in O(sample_size) per tree.
        let mut permutation: Vec<u32> = (0..row_count as u32).collect();
        let mut sample_indices: Vec<u32> = Vec::with_capacity(sample_size);
        // A guess to avoid regrowing; capped so odd parameters cannot reserve gigabytes.
        let capacity = params
            .n_trees
            .saturating_mul((2 * sample_size).min(1 << (max_depth + 1).min(30)))
            .min(1 << 24);
        let mut builder = TreeBuilder {
            nodes: Vec::with_capacity(capacity),
            sizes: Vec::with_capacity(capacity),
            values: vec![0.0; sample_size * width],
            width,
            max_depth,
            lows: vec![0.0; width],
            highs: vec![0.0; width],
            candidates: Vec::with_capacity(width),
        };
        let mut roots = Vec::with_capacity(params.n_trees);
        for tree in 0..params.n_trees {
            let mut rng = SplitMix64::derive(params.seed, tree as u64);
            for slot in 0..sample_size {
                let pick = slot + rng.below(row_count - slot);
                permutation.swap(slot, pick);
                let row = rows.row(permutation[slot] as usize);
                builder.values[slot * width..(slot + 1) * width].copy_from_slice(row);
            }
            sample_indices.clear();
            sample_indices.extend(0..sample_size as u32);
            roots.push(builder.nodes.len() as u32);
            builder.build(&mut sample_indices, 0, &mut rng);
        }
        let (nodes, sizes) = (builder.nodes, builder.sizes);
        let (leaf_adjust, depth) = leaf_adjust_and_depth(&nodes, &sizes);
        if nodes.len() >= u32::MAX as usize {
            return Err(AnomalyError::InvalidParameter {
                name: "n_trees",
                reason: "the forest has more than 2^32 nodes".into(),
            });
        }
        Ok(Self {
            params: *params,
            feature_names,
            summaries,
            effective_sample_size: sample_size,
            nodes,
            sizes,
            leaf_adjust,
            depth,
            roots,
            normaliser: normaliser(sample_size),
        })
    }

    pub fn params(&self) -> &ForestParams {
        &self.params
    }

    pub fn dimensions(&self) -> usize {
        self.feature_names.len()
    }

    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Per-feature training distribution (min, quartiles, max).
    pub fn summaries(&self) -> &[FeatureSummary] {
        &self.summaries
    }

    /// Anomaly score s(x) = 2^(-E[h(x)] / c(n)) in (0, 1]: about 0.5 and below is normal,
    /// close to 1 is isolated much faster than the training points.
    pub fn score(&self, row: &[f64]) -> Result<f64, AnomalyError> {
        self.check_width(row)?;
        Ok(self.score_unchecked(row))
    }

    /// Scores many rows; fails on the first row of the wrong width.
    pub fn score_many(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>, AnomalyError> {
        for row in rows {
            self.check_width(row)?;
        }
        let mut scores = vec![0.0; rows.len()];
        for (block, out) in rows.chunks(BLOCK).zip(scores.chunks_mut(BLOCK)) {
            self.score_block(block.len(), |i| &block[i], out);
        }
        Ok(scores)
    }

    /// Scores a row-major matrix with the model's width.
    pub fn score_matrix(&self, values: &[f64]) -> Result<Vec<f64>, AnomalyError> {
        let width = self.dimensions();
        if !values.len().is_multiple_of(width) {
            return Err(AnomalyError::DimensionMismatch {
                expected: width,
                found: values.len() % width,
            });
        }
        let mut scores = vec![0.0; values.len() / width];
        for (block, out) in values.chunks(BLOCK * width).zip(scores.chunks_mut(BLOCK)) {
            self.score_block(out.len(), |i| &block[i * width..(i + 1) * width], out);
        }
        Ok(scores)
    }

    /// Tree-major scoring of a block of rows: each tree (a few KB) is walked for all rows of
    /// the block while it is hot in L1, instead of streaming the whole forest per row.
    fn score_block<'r>(&self, count: usize, row: impl Fn(usize) -> &'r [f64], out: &mut [f64]) {
        out.iter_mut().for_each(|total| *total = 0.0);
        for &root in &self.roots {
            let mut first = 0;
            while first + LANES <= count {
                let rows: [&[f64]; LANES] = std::array::from_fn(|k| row(first + k));
                let mut at = [root as usize; LANES];
                let mut depth = [0u32; LANES];
                for _ in 0..self.depth {
                    for lane in 0..LANES {
                        let node = self.nodes[at[lane]];
                        // A conditional move, not a branch: the direction is a coin flip for
                        // the branch predictor, and a mispredict costs more than both paths.
                        let next = std::hint::select_unpredictable(
                            rows[lane][node.feature as usize] < node.threshold,
                            at[lane] + 1,
                            node.right as usize,
                        );
                        depth[lane] += u32::from(next != at[lane]);
                        at[lane] = next;
                    }
                }
                for lane in 0..LANES {
                    out[first + lane] += f64::from(depth[lane]) + self.leaf_adjust[at[lane]];
                }
                first += LANES;
            }
            for (i, total) in out.iter_mut().enumerate().take(count).skip(first) {
                *total += self.path_length(root as usize, row(i));
            }
        }
        let trees = self.roots.len() as f64;
        for total in out.iter_mut().take(count) {
            *total = (-(*total / trees) / self.normaliser).exp2();
        }
    }

    /// Depth at which `row` leaves the tree at `root`, plus c(leaf size).
    fn path_length(&self, root: usize, row: &[f64]) -> f64 {
        let mut index = root;
        let mut depth = 0.0;
        loop {
            let node = self.nodes[index];
            if node.right as usize == index {
                return depth + self.leaf_adjust[index];
            }
            // NaN compares false and goes right: scoring never fails on a bad value.
            index = if row[node.feature as usize] < node.threshold {
                index + 1
            } else {
                node.right as usize
            };
            depth += 1.0;
        }
    }

    fn score_unchecked(&self, row: &[f64]) -> f64 {
        let total: f64 = self
            .roots
            .iter()
            .map(|&root| self.path_length(root as usize, row))
            .sum();
        let mean_depth = total / self.roots.len() as f64;
        (-mean_depth / self.normaliser).exp2()
    }

    /// Share of the isolation of `row` credited to each feature (sums to 1).
    ///
    /// Formula: on every tree, each split on the row's path credits its feature with
    /// ln(n_parent / n_child), where n are the training sample points reaching the node and
    /// the child is the side the row goes to. A split that cuts the row off from most of the
    /// sample (isolates it early) earns a large credit; a split that keeps the row with most
    /// of the sample earns almost none. Per tree the credits add up to ln(sample / leaf size),
    /// so the shares say which features did the isolating. Credits are summed over trees and
    /// normalised; when nothing was split (all features constant) the shares are equal.
    pub fn attribution(&self, row: &[f64]) -> Result<Vec<f64>, AnomalyError> {
        self.check_width(row)?;
        let mut credit = vec![0.0; self.dimensions()];
        for &root in &self.roots {
            let mut index = root as usize;
            loop {
                let node = self.nodes[index];
                if node.right as usize == index {
                    break;
                }
                let child = if row[node.feature as usize] < node.threshold {
                    index + 1
                } else {
                    node.right as usize
                };
                let parent_size = f64::from(self.sizes[index]);
                let child_size = f64::from(self.sizes[child].max(1));
                credit[node.feature as usize] += (parent_size / child_size).ln();
                index = child;
            }
        }
        let sum: f64 = credit.iter().sum();
        if sum > 0.0 {
            credit.iter_mut().for_each(|c| *c /= sum);
        } else {
            let equal = 1.0 / credit.len() as f64;
            credit.iter_mut().for_each(|c| *c = equal);
        }
        Ok(credit)
    }

    /// The score and the `top` features by attribution, each with its observed value against
    /// the training median and interquartile range.
    pub fn explain(&self, row: &[f64], top: usize) -> Result<Explanation, AnomalyError> {
        let shares = self.attribution(row)?;
        let score = self.score_unchecked(row);
        let mut order: Vec<usize> = (0..shares.len()).collect();
        order.sort_by(|&a, &b| shares[b].total_cmp(&shares[a]).then(a.cmp(&b)));
        let features = order
            .into_iter()
            .take(top)
            .map(|feature| {
                let summary = self.summaries[feature];
                let value = row[feature];
                let spread = summary.q3 - summary.q1;
                // A zero IQR (mostly-constant feature) falls back to the full range.
                let scale = if spread > 0.0 {
                    spread
                } else {
                    summary.max - summary.min
                };
                let deviation_iqr = (scale > 0.0).then(|| (value - summary.median) / scale);
                let name = self.feature_names[feature].clone();
                let text = format!(
                    "{name} = {} (usual {}, middle half {} to {})",
                    format_number(value),
                    format_number(summary.median),
                    format_number(summary.q1),
                    format_number(summary.q3)
                );
                FeatureExplanation {
                    feature,
                    name,
                    share: shares[feature],
                    value,
                    median: summary.median,
                    q1: summary.q1,
                    q3: summary.q3,
                    deviation_iqr,
                    text,
                }
            })
            .collect();
        Ok(Explanation { score, features })
    }

    fn check_width(&self, row: &[f64]) -> Result<(), AnomalyError> {
        if row.len() == self.dimensions() {
            Ok(())
        } else {
            Err(AnomalyError::DimensionMismatch {
                expected: self.dimensions(),
                found: row.len(),
            })
        }
    }
}

fn normaliser(sample_size: usize) -> f64 {
    let c = average_path_length(sample_size);
    if c > 0.0 { c } else { 1.0 }
}

fn validate_params(params: &ForestParams) -> Result<(), AnomalyError> {
    if params.n_trees == 0 {
        return Err(AnomalyError::InvalidParameter {
            name: "n_trees",
            reason: "must be at least 1".into(),
        });
    }
    if params.n_trees > MAX_TREES {
        return Err(AnomalyError::InvalidParameter {
            name: "n_trees",
            reason: format!("at most {MAX_TREES}, got {}", params.n_trees),
        });
    }
    if params.sample_size == 0 {
        return Err(AnomalyError::InvalidParameter {
            name: "sample_size",
            reason: "must be at least 1".into(),
        });
    }
    if let Some(depth) = params.max_depth
        && !(1..=64).contains(&depth)
    {
        return Err(AnomalyError::InvalidParameter {
            name: "max_depth",
            reason: format!("must be 1 to 64, got {depth}"),
        });
    }
    Ok(())
}

fn resolve_names(names: &[&str], width: usize) -> Result<Vec<String>, AnomalyError> {
    if names.is_empty() {
        return Ok((0..width).map(|i| format!("f{i}")).collect());
    }
    if names.len() != width {
        return Err(AnomalyError::InvalidParameter {
            name: "feature_names",
            reason: format!("{} names for {width} features", names.len()),
        });
    }
    Ok(names.iter().map(|n| n.to_string()).collect())
}

fn summarise(rows: Rows<'_>, width: usize) -> Vec<FeatureSummary> {
    let mut column = Vec::with_capacity(rows.len());
    (0..width)
        .map(|feature| {
            column.clear();
            column.extend((0..rows.len()).map(|i| rows.row(i)[feature]));
            let min = column.iter().copied().fold(f64::INFINITY, f64::min);
            let max = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            FeatureSummary {
                min,
                q1: quantile_in_place(&mut column, 0.25),
                median: quantile_in_place(&mut column, 0.5),
                q3: quantile_in_place(&mut column, 0.75),
                max,
            }
        })
        .collect()
}

struct TreeBuilder {
    nodes: Vec<Node>,
    sizes: Vec<u32>,
    /// The current tree's sample, row-major.
    values: Vec<f64>,
    width: usize,
    max_depth: usize,
    lows: Vec<f64>,
    highs: Vec<f64>,
    candidates: Vec<u32>,
}

impl TreeBuilder {
    /// Appends the subtree over `sample` (indices into `values`) in pre-order.
    fn build(&mut self, sample: &mut [u32], depth: usize, rng: &mut SplitMix64) {
        let size = sample.len();
        let leaf = Node::leaf(self.nodes.len());
        if size <= 1 || depth >= self.max_depth {
            self.nodes.push(leaf);
            self.sizes.push(size as u32);
            return;
        }
        // Choose among features that still vary here, so constant features (globally or
        // within this node) never end a branch early.
        self.lows.fill(f64::INFINITY);
        self.highs.fill(f64::NEG_INFINITY);
        for &index in sample.iter() {
            let row = &self.values[index as usize * self.width..(index as usize + 1) * self.width];
            for (feature, &value) in row.iter().enumerate() {
                self.lows[feature] = self.lows[feature].min(value);
                self.highs[feature] = self.highs[feature].max(value);
            }
        }
        self.candidates.clear();
        self.candidates.extend(
            (0..self.width as u32).filter(|&f| self.highs[f as usize] > self.lows[f as usize]),
        );
        if self.candidates.is_empty() {
            self.nodes.push(leaf);
            self.sizes.push(size as u32);
            return;
        }
        let feature = self.candidates[rng.below(self.candidates.len())] as usize;
        let (low, high) = (self.lows[feature], self.highs[feature]);
        let mut threshold = low + rng.next_f64() * (high - low);
        if threshold <= low {
            // Keep both sides non-empty: the minimum goes left, the maximum right.
            threshold = if low + (high - low) / 2.0 > low {
                low + (high - low) / 2.0
            } else {
                high
            };
        }
        let mut split = 0;
        for position in 0..size {
            let index = sample[position] as usize;
            if self.values[index * self.width + feature] < threshold {
                sample.swap(split, position);
                split += 1;
            }
        }
        let this = self.nodes.len();
        self.nodes.push(Node {
            threshold,
            feature: feature as u32,
            right: 0,
        });
        self.sizes.push(size as u32);
        let (left, right) = sample.split_at_mut(split);
        self.build(left, depth + 1, rng);
        self.nodes[this].right = self.nodes.len() as u32;
        self.build(right, depth + 1, rng);
    }
}

/// On-disk shape of a forest: parallel arrays (compact in JSON) validated on load so that a
/// corrupt file can never make scoring index out of bounds or loop.
#[derive(Serialize, Deserialize)]
struct ForestData {
    params: ForestParams,
    feature_names: Vec<String>,
    summaries: Vec<FeatureSummary>,
    effective_sample_size: usize,
    roots: Vec<u32>,
    node_feature: Vec<u32>,
    node_threshold: Vec<f64>,
    node_right: Vec<u32>,
    node_size: Vec<u32>,
}

impl From<IsolationForest> for ForestData {
    fn from(forest: IsolationForest) -> Self {
        let is_leaf = |index: usize, node: &Node| node.right as usize == index;
        let nodes = &forest.nodes;
        Self {
            params: forest.params,
            feature_names: forest.feature_names,
            summaries: forest.summaries,
            effective_sample_size: forest.effective_sample_size,
            node_feature: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| if is_leaf(i, n) { LEAF } else { n.feature })
                .collect(),
            // Leaves carry no threshold in the file (0 keeps it small and finite for JSON).
            node_threshold: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| if is_leaf(i, n) { 0.0 } else { n.threshold })
                .collect(),
            node_right: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| if is_leaf(i, n) { 0 } else { n.right })
                .collect(),
            node_size: forest.sizes,
            roots: forest.roots,
        }
    }
}

/// Per node c(size) for leaves and 0 for splits, and the deepest leaf's depth. Children come
/// after their parent, so one forward pass sees every node's depth before its children.
fn leaf_adjust_and_depth(nodes: &[Node], sizes: &[u32]) -> (Vec<f64>, usize) {
    let mut depths = vec![0usize; nodes.len()];
    let mut adjust = vec![0.0; nodes.len()];
    let mut deepest = 0;
    for (index, node) in nodes.iter().enumerate() {
        if node.right as usize == index {
            adjust[index] = average_path_length(sizes[index] as usize);
            deepest = deepest.max(depths[index]);
        } else {
            depths[index + 1] = depths[index] + 1;
            depths[node.right as usize] = depths[index] + 1;
        }
    }
    (adjust, deepest)
}

impl TryFrom<ForestData> for IsolationForest {
    type Error = String;

    fn try_from(data: ForestData) -> Result<Self, String> {
        let width = data.feature_names.len();
        let count = data.node_feature.len();
        if width == 0 || data.summaries.len() != width {
            return Err("feature names and summaries disagree".into());
        }
        if data.node_threshold.len() != count
            || data.node_right.len() != count
            || data.node_size.len() != count
        {
            return Err("node arrays have different lengths".into());
        }
        if data.roots.is_empty() || data.roots[0] != 0 {
            return Err("the forest has no trees or the first tree does not start at 0".into());
        }
        let mut nodes = Vec::with_capacity(count);
        for tree in 0..data.roots.len() {
            let start = data.roots[tree] as usize;
            let end = data
                .roots
                .get(tree + 1)
                .map_or(count, |&next| next as usize);
            if start >= end || end > count {
                return Err(format!("tree {tree} has an invalid node range"));
            }
            for index in start..end {
                let (feature, right) = (data.node_feature[index], data.node_right[index]);
                if feature == LEAF {
                    nodes.push(Node::leaf(index));
                    continue;
                }
                let threshold = data.node_threshold[index];
                // Children strictly after their parent and inside the tree: walks end.
                if feature as usize >= width
                    || !threshold.is_finite()
                    || index + 1 >= end
                    || (right as usize) <= index + 1
                    || right as usize >= end
                {
                    return Err(format!("node {index} of tree {tree} is invalid"));
                }
                nodes.push(Node {
                    threshold,
                    feature,
                    right,
                });
            }
        }
        let (leaf_adjust, depth) = leaf_adjust_and_depth(&nodes, &data.node_size);
        Ok(Self {
            params: data.params,
            feature_names: data.feature_names,
            summaries: data.summaries,
            effective_sample_size: data.effective_sample_size,
            nodes,
            sizes: data.node_size,
            leaf_adjust,
            depth,
            roots: data.roots,
            normaliser: normaliser(data.effective_sample_size),
        })
    }
}
