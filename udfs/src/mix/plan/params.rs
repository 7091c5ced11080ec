//! The arguments of `samplemix_weights(scored, centroids, alpha, tau, budget_tokens [, seed [,
//! mode [, separation [, options]]]])`, checked while the query is planned.

use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;

use super::NAME;
use crate::args::{
    choice_arg, choice_of, choice_traits, literal_f64, literal_seed, literal_str, show, table_name,
    Choice,
};
use crate::mix::counts::{Mode, Separation};

/// Every argument of one call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params {
    pub scored: String,
    pub centroids: String,
    /// The weight of diversity, in [0, 1].
    pub alpha: f64,
    /// The softmax temperature, > 0.
    pub tau: f64,
    /// The budget, in tokens.
    pub budget: f64,
    pub seed: i64,
    pub mode: Mode,
    pub separation: Separation,
    pub options: Options,
}

/// How expected counts become integer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Rounding {
    /// n = ⌊c⌋ + 1[u(x) < c − ⌊c⌋], each document on its own (the paper's).
    Independent,
    /// Systematic rounding (`samplemix_systematic_round`,
    /// [`crate::kernels::systematic_counts`]): E[n] = c still holds for every document; in
    /// 'documents' mode Σ n = round(Σ c) exactly, in 'tokens' mode long documents are balanced
    /// against shorter ones first, so realised tokens miss the budget by about one short
    /// document.
    Systematic,
}

impl Choice for Rounding {
    const WHAT: &'static str = "rounding";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("independent", Rounding::Independent),
        ("systematic", Rounding::Systematic),
    ];
}
choice_traits!(Rounding);

/// The options of the 9th argument, `'key=value, ...'`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Options {
    pub rounding: Rounding,
    pub max_copies: Option<i64>,
    pub min_cluster_size: i64,
    /// Buckets of systematic rounding (`systematic_buckets`); None: one per
    /// [`super::buckets::ROWS_PER_BUCKET`] rows.
    pub systematic_buckets: Option<i64>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rounding: Rounding::Independent,
            max_copies: None,
            min_cluster_size: 1,
            systematic_buckets: None,
        }
    }
}

const OPTION_KEYS: [&str; 4] = [
    "rounding",
    "max_copies",
    "min_cluster_size",
    "systematic_buckets",
];

/// The options string, parsed (unknown, repeated or malformed items are planning errors).
pub(crate) fn parse_options(text: &str) -> Result<Options> {
    let mut o = Options::default();
    for (key, value) in crate::args::parse_options(NAME, text, &OPTION_KEYS)? {
        let positive = |what: &str| -> Result<i64> {
            match value.parse::<i64>() {
                Ok(v) if v >= 1 => Ok(v),
                _ => plan_err!(
                    "{NAME}: argument 'options': {what} must be a positive integer, got '{value}'"
                ),
            }
        };
        match key.as_str() {
            "rounding" => o.rounding = choice_of(&value, NAME, "options: rounding")?,
            "max_copies" => o.max_copies = Some(positive("max_copies")?),
            "systematic_buckets" => {
                let b = positive("systematic_buckets")?;
                if b > super::buckets::MAX_BUCKETS {
                    return plan_err!(
                        "{NAME}: argument 'options': systematic_buckets must be at most {}, got {b}",
                        super::buckets::MAX_BUCKETS
                    );
                }
                o.systematic_buckets = Some(b);
            }
            _ => o.min_cluster_size = positive("min_cluster_size")?,
        }
    }
    Ok(o)
}

/// The call's arguments, checked.
pub(crate) fn parse(exprs: &[Expr]) -> Result<Params> {
    if !(5..=9).contains(&exprs.len()) {
        return plan_err!(
            "{NAME}: expected 5 to 9 arguments (scored, centroids, alpha, tau, budget_tokens [, seed [, mode [, separation [, options]]]]), got {}",
            exprs.len()
        );
    }
    let alpha = literal_f64(&exprs[2], NAME, "alpha")?;
    if !(0.0..=1.0).contains(&alpha) {
        return plan_err!(
            "{NAME}: argument 'alpha' must be in [0, 1] (the weight of diversity), got {alpha}"
        );
    }
    let tau = literal_f64(&exprs[3], NAME, "tau")?;
    if !(tau > 0.0 && tau.is_finite()) {
        return plan_err!(
            "{NAME}: argument 'tau' (softmax temperature) must be a positive number, got {tau}"
        );
    }
    let budget = literal_f64(&exprs[4], NAME, "budget_tokens")?;
    if !(budget > 0.0 && budget.is_finite()) {
        return plan_err!(
            "{NAME}: argument 'budget_tokens' must be a positive number of tokens, got {}",
            show(budget)
        );
    }
    Ok(Params {
        scored: table_name(&exprs[0], NAME, "scored")?,
        centroids: table_name(&exprs[1], NAME, "centroids")?,
        alpha,
        tau,
        budget,
        seed: exprs
            .get(5)
            .map_or(Ok(0), |e| literal_seed(e, NAME, "seed"))?,
        mode: choice_arg(exprs.get(6), Mode::Tokens, NAME, "mode")?,
        separation: choice_arg(exprs.get(7), Separation::Mean, NAME, "separation")?,
        options: match exprs.get(8) {
            Some(e) => parse_options(&literal_str(e, NAME, "options")?)?,
            None => Options::default(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn arguments_and_options_are_checked() {
        let call = |extra: Vec<Expr>| {
            let mut args = vec![col("s"), col("c"), lit(0.8), lit(0.2), lit(1000)];
            args.extend(extra);
            parse(&args)
        };
        let p = call(vec![]).unwrap();
        assert_eq!((p.scored.as_str(), p.alpha, p.seed), ("s", 0.8, 0));
        assert_eq!(p.options, Options::default());
        let p = call(vec![
            lit(7),
            lit("documents"),
            lit("min"),
            lit("rounding=systematic, max_copies=3, min_cluster_size=5"),
        ])
        .unwrap();
        assert_eq!((p.mode, p.separation), (Mode::Documents, Separation::Min));
        assert_eq!(
            p.options,
            Options {
                rounding: Rounding::Systematic,
                max_copies: Some(3),
                min_cluster_size: 5,
                systematic_buckets: None,
            }
        );
        for (options, error) in [
            ("max_copies=0", "max_copies must be a positive integer"),
            ("rounding=up", "unknown rounding 'up'"),
            ("max_copy=2", "unknown key 'max_copy'"),
            (
                "systematic_buckets=0",
                "systematic_buckets must be a positive integer",
            ),
            (
                "systematic_buckets=1000000",
                "systematic_buckets must be at most",
            ),
            ("rounding=systematic, rounding=independent", "given twice"),
        ] {
            let e = parse_options(options).unwrap_err().to_string();
            assert!(e.contains(error), "{options}: {e}");
        }
        let e = call(vec![lit(0), lit("words")]).unwrap_err().to_string();
        assert!(e.contains("unknown mode 'words'"), "{e}");
    }
}
