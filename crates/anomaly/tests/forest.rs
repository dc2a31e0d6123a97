//! Isolation forest: determinism, separation, attribution, input errors.

use dozor_anomaly::{AnomalyError, ForestParams, IsolationForest, SplitMix64, roc_auc};

fn gaussian_rows(rng: &mut SplitMix64, count: usize, width: usize, centre: f64) -> Vec<Vec<f64>> {
    (0..count)
        .map(|_| (0..width).map(|_| centre + rng.normal()).collect())
        .collect()
}

fn params(seed: u64) -> ForestParams {
    ForestParams {
        seed,
        ..ForestParams::default()
    }
}

#[test]
fn same_seed_same_scores_other_seed_other_scores() {
    let mut rng = SplitMix64::new(1);
    let rows = gaussian_rows(&mut rng, 2000, 4, 0.0);
    let probe = gaussian_rows(&mut rng, 50, 4, 0.5);
    let a = IsolationForest::fit(&rows, &params(7)).unwrap();
    let b = IsolationForest::fit(&rows, &params(7)).unwrap();
    let c = IsolationForest::fit(&rows, &params(8)).unwrap();
    let scores_a = a.score_many(&probe).unwrap();
    assert_eq!(scores_a, b.score_many(&probe).unwrap());
    assert_ne!(scores_a, c.score_many(&probe).unwrap());
}

#[test]
fn separates_an_outlier_cluster() {
    let mut rng = SplitMix64::new(2);
    let mut rows = gaussian_rows(&mut rng, 3000, 5, 0.0);
    // A tight cluster away from the bulk in every dimension, inside the training data.
    let outliers: Vec<Vec<f64>> = (0..60)
        .map(|_| (0..5).map(|_| 4.0 + 0.3 * rng.normal()).collect())
        .collect();
    rows.extend(outliers.iter().cloned());
    let forest = IsolationForest::fit(&rows, &params(3)).unwrap();
    let scores = forest.score_many(&rows).unwrap();
    let labels: Vec<bool> = (0..rows.len()).map(|i| i >= 3000).collect();
    let auc = roc_auc(&scores, &labels).unwrap();
    assert!(auc > 0.95, "AUC {auc}");
    // Scores live in (0, 1]; the cluster scores above the inliers' median.
    let inlier_mean: f64 = scores[..3000].iter().sum::<f64>() / 3000.0;
    let outlier_mean: f64 = scores[3000..].iter().sum::<f64>() / 60.0;
    assert!(
        outlier_mean > inlier_mean + 0.1,
        "{outlier_mean} vs {inlier_mean}"
    );
}

#[test]
fn attribution_names_the_perturbed_feature() {
    let mut rng = SplitMix64::new(4);
    let rows = gaussian_rows(&mut rng, 4000, 6, 10.0);
    let names = ["logons", "failed", "procs", "new_procs", "dests", "bytes"];
    let forest = IsolationForest::fit_named(&rows, &names, &params(5)).unwrap();
    for perturbed in [0, 3, 5] {
        let mut row = vec![10.0; 6];
        row[perturbed] = 18.0;
        let shares = forest.attribution(&row).unwrap();
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let top = (0..6)
            .max_by(|&a, &b| shares[a].total_cmp(&shares[b]))
            .unwrap();
        assert_eq!(top, perturbed, "shares {shares:?}");
        assert!(shares[perturbed] > 0.4, "shares {shares:?}");
        let explanation = forest.explain(&row, 2).unwrap();
        assert_eq!(explanation.features[0].name, names[perturbed]);
        assert_eq!(explanation.features[0].value, 18.0);
        assert!((explanation.features[0].median - 10.0).abs() < 0.1);
        assert!(explanation.features[0].deviation_iqr.unwrap() > 4.0);
        let centre = forest.score(&[10.0; 6]).unwrap();
        assert!(
            explanation.score > centre + 0.05,
            "score {} vs centre {centre}",
            explanation.score
        );
    }
}

#[test]
fn nan_and_infinity_are_refused_with_row_and_column() {
    let mut rows = vec![vec![1.0, 2.0, 3.0]; 10];
    rows[7][2] = f64::NAN;
    let error = IsolationForest::fit_named(&rows, &["a", "b", "c"], &params(1)).unwrap_err();
    assert_eq!(
        error,
        AnomalyError::NonFinite {
            row: 7,
            column: 2,
            name: "c".into(),
            what: "NaN"
        }
    );
    assert!(error.to_string().contains("row 7, column 2 (`c`) is NaN"));
    rows[7][2] = 0.0;
    rows[3][0] = f64::INFINITY;
    assert!(matches!(
        IsolationForest::fit(&rows, &params(1)),
        Err(AnomalyError::NonFinite {
            row: 3,
            column: 0,
            what: "infinite",
            ..
        })
    ));
}

#[test]
fn empty_ragged_and_bad_parameters_are_refused() {
    assert_eq!(
        IsolationForest::fit(&[], &params(1)).unwrap_err(),
        AnomalyError::EmptyInput
    );
    assert_eq!(
        IsolationForest::fit(&[vec![], vec![]], &params(1)).unwrap_err(),
        AnomalyError::NoFeatures
    );
    assert_eq!(
        IsolationForest::fit(&[vec![1.0, 2.0], vec![1.0]], &params(1)).unwrap_err(),
        AnomalyError::RaggedRow {
            row: 1,
            found: 1,
            expected: 2
        }
    );
    let zero_trees = ForestParams {
        n_trees: 0,
        ..params(1)
    };
    assert!(matches!(
        IsolationForest::fit(&[vec![1.0]], &zero_trees),
        Err(AnomalyError::InvalidParameter {
            name: "n_trees",
            ..
        })
    ));
    let forest = IsolationForest::fit(&[vec![1.0, 2.0], vec![2.0, 3.0]], &params(1)).unwrap();
    assert_eq!(
        forest.score(&[1.0]).unwrap_err(),
        AnomalyError::DimensionMismatch {
            expected: 2,
            found: 1
        }
    );
}

#[test]
fn constant_features_do_not_stop_isolation() {
    let mut rng = SplitMix64::new(6);
    // Column 0 and 2 constant, column 1 varies.
    let rows: Vec<Vec<f64>> = (0..1000).map(|_| vec![5.0, rng.normal(), -1.0]).collect();
    let forest = IsolationForest::fit(&rows, &params(9)).unwrap();
    let normal = forest.score(&[5.0, 0.0, -1.0]).unwrap();
    let outlier = forest.score(&[5.0, 9.0, -1.0]).unwrap();
    assert!(outlier > normal + 0.15, "{outlier} vs {normal}");
    // A change in a column that never varied is invisible to the trees; shares stay valid.
    let shares = forest.attribution(&[5.0, 9.0, -1.0]).unwrap();
    assert!(shares[1] > 0.99, "{shares:?}");

    // Everything constant: single-leaf trees, equal shares, no panic.
    let flat = vec![vec![1.0, 1.0]; 20];
    let forest = IsolationForest::fit(&flat, &params(9)).unwrap();
    assert_eq!(forest.attribution(&[3.0, 1.0]).unwrap(), vec![0.5, 0.5]);
    let single = IsolationForest::fit(&[vec![1.0]], &params(9)).unwrap();
    assert!(single.score(&[2.0]).unwrap().is_finite());
}

#[test]
fn matrix_and_nested_inputs_agree() {
    let mut rng = SplitMix64::new(10);
    let rows = gaussian_rows(&mut rng, 500, 3, 0.0);
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let nested = IsolationForest::fit(&rows, &params(2)).unwrap();
    let matrix = IsolationForest::fit_matrix(&flat, 3, &[], &params(2)).unwrap();
    assert_eq!(
        nested.score_many(&rows).unwrap(),
        matrix.score_matrix(&flat).unwrap()
    );
}
