//! Small numeric helpers shared by the models and the evaluation.

/// Average path length of an unsuccessful search in a binary search tree of `n` points: the
/// isolation forest's normaliser c(n) = 2 H(n-1) - 2 (n-1) / n, with c(1) = 0 and c(2) = 1.
pub(crate) fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let m = (n - 1) as f64;
            // H(m) ~ ln(m) + Euler-Mascheroni; exact enough beyond m = 2.
            2.0 * (m.ln() + 0.577_215_664_901_532_9) - 2.0 * m / n as f64
        }
    }
}

/// Value at quantile `q` (0..=1) of `values` (lower nearest rank); reorders `values`.
/// Returns 0 for an empty slice.
pub(crate) fn quantile_in_place(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let rank = ((values.len() - 1) as f64 * q.clamp(0.0, 1.0)).floor() as usize;
    let (_, value, _) = values.select_nth_unstable_by(rank, f64::total_cmp);
    *value
}

/// Median of `values` (mean of the two middle values for even lengths); reorders `values`.
pub(crate) fn median_in_place(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    values.sort_unstable_by(f64::total_cmp);
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Complementary error function (Abramowitz & Stegun 7.1.26 rational approximation,
/// absolute error < 1.5e-7), used only for the normal tail of very large counts.
pub(crate) fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    poly * (-x * x).exp()
}

/// Area under the ROC curve of `scores` against `labels` (true = positive), computed as the
/// Mann-Whitney statistic with ties counted half. `None` without both classes or with
/// mismatched lengths.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() {
        return None;
    }
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of positive ranks with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + end + 1) as f64 / 2.0; // ranks are 1-based
        let tied_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Short human form of a number: integers without decimals, others with up to 3.
pub(crate) fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_and_reversed_ranking() {
        let scores = [0.1, 0.2, 0.8, 0.9];
        assert_eq!(roc_auc(&scores, &[false, false, true, true]), Some(1.0));
        assert_eq!(roc_auc(&scores, &[true, true, false, false]), Some(0.0));
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(roc_auc(&scores, &[true; 4]), None);
    }

    #[test]
    fn normaliser_matches_known_values() {
        assert_eq!(average_path_length(1), 0.0);
        assert_eq!(average_path_length(2), 1.0);
        // c(256) from the isolation forest paper is about 10.24.
        assert!((average_path_length(256) - 10.24).abs() < 0.01);
    }

    #[test]
    fn erfc_is_close_to_reference_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-6);
        assert!((erfc(1.0) - 0.157_299_207).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842_700_793).abs() < 1e-6);
    }
}
