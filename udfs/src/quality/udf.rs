//! SQL glue for `quality_score(text)` and `quality_signals(text)`.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, StructArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::signals::{compute, Signals};
use crate::args::{check_arity, check_text, map_text_arg, pass_through, signature, udf_singleton};

udf_singleton!(
    /// `quality_score(text)`.
    quality_score_udf,
    QualityScore::default()
);
udf_singleton!(
    /// `quality_signals(text)`.
    quality_signals_udf,
    QualitySignals::default()
);

fn text_signature() -> Signature {
    signature(vec![TypeSignature::String(1)], Volatility::Immutable)
}

/// Planning checks shared by the one-argument text functions.
fn text_only(function: &str, arg_types: &[DataType]) -> Result<()> {
    check_arity(function, arg_types.len(), 1..=1, "text")?;
    check_text(function, "text", &arg_types[0])
}

/// Calibrated 0-10 quality score from heuristic signals.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QualityScore {
    signature: Signature,
}

impl Default for QualityScore {
    fn default() -> Self {
        Self {
            signature: text_signature(),
        }
    }
}

static SCORE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Model-free quality score in [0, 10] (SampleMix q(x)): 10 · exp(−Σ wᵢ·pᵢ) over the Gopher, \
         C4 and FineWeb signals of quality_signals, each penalty 0 while comfortably inside its rule, \
         0.5 at the rule's threshold, growing past it, plus boilerplate penalties from 0 \
         (3·ln(1 + nav_run_chars/100) + 40·nav_run_char_frac: menus, buttons, link lists), so \
         pages that pass every rule still rank by their boilerplate and more of it scores lower. \
         10 = clears every rule comfortably and has no navigation run. English-only signals are scaled by how English the text is. \
         NULL text gives NULL.",
        "quality_score(text)",
    )
    .with_sql_example("SELECT id, quality_score(text) AS quality FROM docs ORDER BY quality DESC;")
    .with_argument("text", "Document text (Utf8, LargeUtf8 or Utf8View).")
    .with_related_udf("quality_signals")
    .build()
});

impl ScalarUDFImpl for QualityScore {
    fn name(&self) -> &str {
        "quality_score"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        text_only(self.name(), arg_types)?;
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_text_arg(&args, self.name(), super::quality_score, |scores| {
            Ok(Arc::new(Float64Array::from(scores)))
        })
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&SCORE_DOC)
    }
}

/// Every raw heuristic signal as a struct.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QualitySignals {
    signature: Signature,
}

impl Default for QualitySignals {
    fn default() -> Self {
        Self {
            signature: text_signature(),
        }
    }
}

enum Col {
    Int(fn(&Signals) -> u64),
    Float(fn(&Signals) -> f64),
    Bool(fn(&Signals) -> bool),
    Str(fn(&Signals) -> Option<&'static str>),
}

/// Output struct fields, in order. Names are the SQL field names.
static COLUMNS: LazyLock<Vec<(&'static str, Col)>> = LazyLock::new(|| {
    use Col::*;
    vec![
        ("chars", Int(|s| s.chars)),
        ("lines", Int(|s| s.lines)),
        ("words", Int(|s| s.words)),
        ("tokens", Int(|s| s.tokens)),
        ("mean_word_length", Float(|s| s.mean_word_length)),
        ("hash_ratio", Float(|s| s.hash_ratio)),
        ("ellipsis_ratio", Float(|s| s.ellipsis_ratio)),
        ("bullet_lines_ratio", Float(|s| s.bullet_lines_ratio)),
        ("ellipsis_lines_ratio", Float(|s| s.ellipsis_lines_ratio)),
        ("alpha_words_ratio", Float(|s| s.alpha_words_ratio)),
        ("stop_words", Int(|s| s.stop_words)),
        ("dup_line_frac", Float(|s| s.dup_line_frac)),
        ("dup_para_frac", Float(|s| s.dup_para_frac)),
        ("dup_line_char_frac", Float(|s| s.dup_line_char_frac)),
        ("dup_para_char_frac", Float(|s| s.dup_para_char_frac)),
        ("top_2gram_char_frac", Float(|s| s.top_ngram_char_frac[0])),
        ("top_3gram_char_frac", Float(|s| s.top_ngram_char_frac[1])),
        ("top_4gram_char_frac", Float(|s| s.top_ngram_char_frac[2])),
        ("dup_5gram_char_frac", Float(|s| s.dup_ngram_char_frac[0])),
        ("dup_6gram_char_frac", Float(|s| s.dup_ngram_char_frac[1])),
        ("dup_7gram_char_frac", Float(|s| s.dup_ngram_char_frac[2])),
        ("dup_8gram_char_frac", Float(|s| s.dup_ngram_char_frac[3])),
        ("dup_9gram_char_frac", Float(|s| s.dup_ngram_char_frac[4])),
        ("dup_10gram_char_frac", Float(|s| s.dup_ngram_char_frac[5])),
        (
            "terminal_punct_lines_ratio",
            Float(|s| s.terminal_punct_lines_ratio),
        ),
        ("sentences", Int(|s| s.sentences)),
        ("lorem_ipsum", Bool(|s| s.lorem_ipsum)),
        ("curly_bracket", Bool(|s| s.curly_bracket)),
        ("javascript_lines", Int(|s| s.javascript_lines)),
        ("policy_lines", Int(|s| s.policy_lines)),
        ("line_punct_ratio", Float(|s| s.line_punct_ratio)),
        ("short_line_ratio", Float(|s| s.short_line_ratio)),
        ("dup_line_char_ratio", Float(|s| s.dup_line_char_ratio)),
        ("newline_ratio", Float(|s| s.newline_ratio)),
        ("prose_line_char_frac", Float(|s| s.prose_line_char_frac)),
        ("nav_run_line_frac", Float(|s| s.nav_run_line_frac)),
        ("nav_run_char_frac", Float(|s| s.nav_run_char_frac)),
        ("nav_run_chars", Int(|s| s.nav_run_chars)),
        ("language", Str(|s| s.language)),
        ("language_confidence", Float(|s| s.language_confidence)),
        ("gopher_quality_pass", Bool(Signals::passes_gopher_quality)),
        (
            "gopher_repetition_pass",
            Bool(Signals::passes_gopher_repetition),
        ),
        ("c4_pass", Bool(Signals::passes_c4)),
        ("fineweb_pass", Bool(Signals::passes_fineweb)),
    ]
});

fn signal_fields() -> Fields {
    COLUMNS
        .iter()
        .map(|(name, col)| {
            let t = match col {
                Col::Int(_) => DataType::Int64,
                Col::Float(_) => DataType::Float64,
                Col::Bool(_) => DataType::Boolean,
                Col::Str(_) => DataType::Utf8,
            };
            Field::new(*name, t, true)
        })
        .collect()
}

static SIGNALS_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::doc_section(),
        "Raw heuristic quality signals of a text as a struct: Gopher quality (words, mean_word_length, \
         hash/ellipsis ratios, bullet/ellipsis lines, alpha_words_ratio, stop_words), Gopher repetition \
         (duplicate line/paragraph fractions, top 2-4-gram and duplicated 5-10-gram character fractions), \
         C4 (terminal_punct_lines_ratio, sentences, lorem_ipsum, curly_bracket, javascript_lines, \
         policy_lines), FineWeb (line_punct_ratio, short_line_ratio, dup_line_char_ratio, newline_ratio), \
         boilerplate (prose_line_char_frac, nav_run_line_frac, nav_run_char_frac, nav_run_chars: \
         prose lines, and lines in runs of 3+ short capitalised unpunctuated lines), \
         language + language_confidence (whatlang, ISO 639-3) and pass/fail of each rule set with \
         datatrove's default thresholds. NULL text gives NULL.",
        "quality_signals(text)",
    )
    .with_sql_example(
        "SELECT quality_signals(text)['words'], quality_signals(text)['c4_pass'] FROM docs;",
    )
    .with_argument("text", "Document text (Utf8, LargeUtf8 or Utf8View).")
    .with_related_udf("quality_score")
    .build()
});

impl ScalarUDFImpl for QualitySignals {
    fn name(&self) -> &str {
        "quality_signals"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(pass_through(arg_types))
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        text_only(self.name(), arg_types)?;
        Ok(DataType::Struct(signal_fields()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        map_text_arg(&args, self.name(), compute, |signals| {
            let present = || signals.iter().map(|s| s.as_ref());
            let columns: Vec<ArrayRef> = COLUMNS
                .iter()
                .map(|(_, col)| -> ArrayRef {
                    match col {
                        Col::Int(f) => Arc::new(
                            present()
                                .map(|s| s.map(|s| f(s) as i64))
                                .collect::<Int64Array>(),
                        ),
                        Col::Float(f) => {
                            Arc::new(present().map(|s| s.map(f)).collect::<Float64Array>())
                        }
                        Col::Bool(f) => {
                            Arc::new(present().map(|s| s.map(f)).collect::<BooleanArray>())
                        }
                        Col::Str(f) => {
                            Arc::new(present().map(|s| s.and_then(f)).collect::<StringArray>())
                        }
                    }
                })
                .collect();
            let nulls = NullBuffer::from(signals.iter().map(Option::is_some).collect::<Vec<_>>());
            Ok(Arc::new(StructArray::try_new(
                signal_fields(),
                columns,
                Some(nulls),
            )?))
        })
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(&SIGNALS_DOC)
    }
}

/// Every numeric and boolean signal of `s` as a number, in `quality_signals`' field order
/// (the language name is left out): the dense features a learned quality model can use.
pub(crate) fn signal_values(s: &Signals) -> Vec<f64> {
    COLUMNS
        .iter()
        .filter_map(|(_, col)| match col {
            Col::Int(f) => Some(f(s) as f64),
            Col::Float(f) => Some(f(s)),
            Col::Bool(f) => Some(f64::from(u8::from(f(s)))),
            Col::Str(_) => None,
        })
        .collect()
}
