//! The names of the columns `samplemix_weights`' plan makes between its stages (none of them
//! reaches the output, whose columns are named in `output.rs`).

/// The scored rows, typed: `id` and these four.
pub(crate) const QUALITY: &str = "__quality";
pub(crate) const CLUSTER: &str = "__cluster";
pub(crate) const DISTANCE: &str = "__distance";
pub(crate) const TOKENS: &str = "__tokens";

/// The statistics pass, one row per cluster: its id, rows, tokens, Σ distance, top quality and
/// S(j) (the cluster's part of the softmax denominator).
pub(crate) const K_CLUSTER: &str = "__kcl";
pub(crate) const ROWS: &str = "__n";
pub(crate) const TOKEN_SUM: &str = "__t";
pub(crate) const DISTANCE_SUM: &str = "__dsum";
pub(crate) const TOP_QUALITY: &str = "__qmax_j";
pub(crate) const ROW_FACTOR_SUM: &str = "__s";
/// ... then its separation, compactness, the smallest positive compactness of all clusters,
/// its diversity and that diversity's range over the clusters.
pub(crate) const SEPARATION: &str = "__sep";
pub(crate) const COMPACTNESS: &str = "__comp";
pub(crate) const MIN_COMPACTNESS: &str = "__gcmin";
pub(crate) const DIVERSITY: &str = "__div";
pub(crate) const MEDIAN_BIG: &str = "__dmed_big";
pub(crate) const MEDIAN_ALL: &str = "__dmed_all";
pub(crate) const DIVERSITY_MIN: &str = "__gdmin";
pub(crate) const DIVERSITY_MAX: &str = "__gdmax";
pub(crate) const DIVERSITY_NORM: &str = "__dn";

/// What each row gets from its cluster (the fields of [`FIGURES`]): diversity, normalised
/// diversity, the softmax factor a(j), its logarithm, the reference quality r of b(x), and
/// κ·a(j) (the expected count's per-cluster factor without a cap).
pub(crate) const FIGURES: &str = "__fig";
pub(crate) const FACTOR: &str = "__a";
pub(crate) const LOG_FACTOR: &str = "__ln_a";
pub(crate) const REFERENCE: &str = "__ref";
pub(crate) const COUNT_FACTOR: &str = "__ka";
/// The figures in the order the packed table holds them.
pub(crate) const FIGURE_NAMES: [&str; 6] = [
    DIVERSITY,
    DIVERSITY_NORM,
    FACTOR,
    LOG_FACTOR,
    REFERENCE,
    COUNT_FACTOR,
];

/// Per row: normalised quality, weight, softmax numerator e(x) = a(j)·b(x), its logarithm,
/// the expected count and the integer count of systematic rounding.
pub(crate) const QUALITY_NORM: &str = "__qn";
pub(crate) const WEIGHT: &str = "__w";
pub(crate) const NUMERATOR: &str = "__e";
pub(crate) const LOG_NUMERATOR: &str = "__ln_e";
pub(crate) const EXPECTED: &str = "__c";
pub(crate) const SYSTEMATIC_COUNT: &str = "__count";

/// Systematic rounding over buckets (`buckets.rs`): a row's bucket, and per bucket its key,
/// Σ units and the units of the buckets before it.
pub(crate) const BUCKET: &str = "__bucket";
pub(crate) const BUCKET_KEY: &str = "__bucket_key";
pub(crate) const BUCKET_UNITS: &str = "__bucket_units";
pub(crate) const BUCKET_BEFORE: &str = "__bucket_before";
