//! near_duplicates on real text: documents of the sample corpus, edited copies of some of them
//! (words deleted or swapped, whitespace and case changed, a boilerplate line added, the end
//! cut), all mixed with the corpus's distinct documents. Recall and precision are measured
//! against the true Jaccard similarity of 5-word shingles, computed here independently of the
//! library's word splitter and hashes.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use common::{context, sql, strings};

const BOILERPLATE: &[&str] = &[
    "Share this article on Facebook, Twitter and LinkedIn.",
    "Subscribe to our newsletter to get the latest updates in your inbox.",
    "This page was last edited on 12 March 2021, at 14:05.",
    "We use cookies to improve your experience. By continuing you agree to our cookie policy.",
];

/// SplitMix64 as a small deterministic generator for the edits.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn shingles(text: &str) -> HashSet<Vec<String>> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let k = 5.min(words.len()).max(1);
    words.windows(k).map(<[String]>::to_vec).collect()
}

fn jaccard(a: &HashSet<Vec<String>>, b: &HashSet<Vec<String>>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 1.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// One edited copy of `text`; `kind` picks the edit.
fn edit(text: &str, kind: usize, rng: &mut Rng) -> String {
    let mut words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    let n = words.len();
    match kind {
        0 => {
            for _ in 0..3 {
                let i = rng.below(words.len());
                words.remove(i);
            }
            words.join(" ")
        }
        1 => {
            for _ in 0..2 {
                let i = rng.below(n - 1);
                words.swap(i, i + 1);
            }
            words.join(" ")
        }
        2 => words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i % 3 == 0 {
                    w.to_uppercase()
                } else {
                    w.to_lowercase()
                }
            })
            .collect::<Vec<_>>()
            .join(if rng.below(2) == 0 { "  " } else { "\n" }),
        3 => format!("{text}\n{}", BOILERPLATE[rng.below(BOILERPLATE.len())]),
        4 => format!("{}\n{text}", BOILERPLATE[rng.below(BOILERPLATE.len())]),
        5 => {
            let keep = text.len() * 95 / 100;
            let cut = (0..=keep)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text[..cut].to_string()
        }
        _ => {
            for _ in 0..2 {
                let i = rng.below(words.len());
                words.remove(i);
            }
            format!(
                "{}\n{}",
                words.join(" "),
                BOILERPLATE[rng.below(BOILERPLATE.len())]
            )
        }
    }
}

struct Case {
    ids: Vec<String>,
    texts: Vec<String>,
    /// (copy id, original id, edit kind)
    copies: Vec<(String, String, usize)>,
}

async fn build_case() -> Case {
    let ctx = context(2).await;
    let batches = sql(
        &ctx,
        &["SELECT id, text FROM 'data/sample.parquet' WHERE text IS NOT NULL ORDER BY id"],
    )
    .await;
    let (mut ids, mut texts) = (strings(&batches, "id"), strings(&batches, "text"));
    let mut rng = Rng(2024);
    let mut copies = Vec::new();
    let originals: Vec<(String, String)> = ids
        .iter()
        .zip(&texts)
        .filter(|(_, t)| t.split_whitespace().count() >= 40)
        .step_by(3)
        .map(|(i, t)| (i.clone(), t.clone()))
        .collect();
    for (j, (id, text)) in originals.iter().enumerate() {
        let kind = j % 7;
        let copy = format!("zz-copy-{j:03}-of-{id}");
        texts.push(edit(text, kind, &mut rng));
        ids.push(copy.clone());
        copies.push((copy, id.clone(), kind));
    }
    // One exact duplicate.
    let (first_id, first_text) = originals[0].clone();
    ids.push(format!("zz-exact-of-{first_id}"));
    texts.push(first_text);
    copies.push((format!("zz-exact-of-{first_id}"), first_id, 99));
    Case { ids, texts, copies }
}

/// near_duplicates over the rows in the given order with `partitions` partitions:
/// id -> group_id, and the ids kept.
async fn groups(
    case: &Case,
    order: &[usize],
    partitions: usize,
) -> BTreeMap<String, (String, bool)> {
    let ctx = context(partitions).await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, true),
    ]));
    // Several batches, so that partitions see different slices.
    let chunk = order.len().div_ceil(7);
    let batches: Vec<RecordBatch> = order
        .chunks(chunk)
        .map(|rows| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from_iter_values(
                        rows.iter().map(|i| &case.ids[*i]),
                    )),
                    Arc::new(StringArray::from_iter_values(
                        rows.iter().map(|i| &case.texts[*i]),
                    )),
                ],
            )
            .unwrap()
        })
        .collect();
    let table = datafusion::datasource::MemTable::try_new(schema, vec![batches]).unwrap();
    ctx.register_table("docs", Arc::new(table)).unwrap();
    let out = sql(
        &ctx,
        &["SELECT id, group_id, CAST(keep AS VARCHAR) AS keep FROM near_duplicates(docs, 'id', 'text') ORDER BY id"],
    )
    .await;
    let (id, group, keep) = (
        strings(&out, "id"),
        strings(&out, "group_id"),
        strings(&out, "keep"),
    );
    id.into_iter()
        .zip(group.into_iter().zip(keep))
        .map(|(i, (g, k))| (i, (g, k == "true")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_duplicates_finds_edited_copies_of_real_documents() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let case = build_case().await;
    let order: Vec<usize> = (0..case.ids.len()).collect();
    let result = groups(&case, &order, 2).await;
    assert_eq!(result.len(), case.ids.len(), "one row per input row");

    // keep: exactly one row per group, the one whose id is the group id.
    let mut kept_per_group: HashMap<&str, usize> = HashMap::new();
    for (id, (group, keep)) in &result {
        assert_eq!(*keep, id == group, "{id}");
        *kept_per_group.entry(group.as_str()).or_default() += usize::from(*keep);
    }
    assert!(kept_per_group.values().all(|k| *k == 1));

    // Recall over copies whose true Jaccard with their original is >= 0.85.
    let text_of: HashMap<&str, &str> = case
        .ids
        .iter()
        .map(String::as_str)
        .zip(case.texts.iter().map(String::as_str))
        .collect();
    let shingle_sets: HashMap<&str, HashSet<Vec<String>>> =
        text_of.iter().map(|(i, t)| (*i, shingles(t))).collect();
    let (mut eligible, mut found) = (0usize, 0usize);
    let mut by_kind: BTreeMap<usize, (usize, usize, f64)> = BTreeMap::new();
    for (copy, original, kind) in &case.copies {
        let j = jaccard(
            &shingle_sets[copy.as_str()],
            &shingle_sets[original.as_str()],
        );
        let same = result[copy].0 == result[original].0;
        let entry = by_kind.entry(*kind).or_insert((0, 0, 1.0));
        entry.2 = entry.2.min(j);
        if j >= 0.85 {
            eligible += 1;
            found += usize::from(same);
            entry.0 += 1;
            entry.1 += usize::from(same);
        }
        if *kind == 99 {
            assert!(same, "an exact duplicate must share its original's group");
        }
    }
    let recall = found as f64 / eligible as f64;

    // Precision over all pairs inside each group: a pair with true Jaccard < 0.5 is false.
    let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, (group, _)) in &result {
        members.entry(group.as_str()).or_default().push(id.as_str());
    }
    let (mut pairs, mut false_pairs) = (0usize, 0usize);
    for ids in members.values() {
        for (a, x) in ids.iter().enumerate() {
            for y in &ids[a + 1..] {
                pairs += 1;
                if jaccard(&shingle_sets[x], &shingle_sets[y]) < 0.5 {
                    false_pairs += 1;
                }
            }
        }
    }
    let precision = 1.0 - false_pairs as f64 / pairs.max(1) as f64;
    eprintln!(
        "near_duplicates on {} rows ({} edited copies): recall {recall:.4} ({found}/{eligible} copies with true J >= 0.85), precision {precision:.4} ({false_pairs} false of {pairs} grouped pairs); per edit kind (eligible, found, min J): {by_kind:?}",
        case.ids.len(),
        case.copies.len()
    );
    assert!(eligible >= 100, "too few eligible copies: {eligible}");
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.99, "precision {precision}");

    // The same groups for any partitioning and row order.
    let reversed: Vec<usize> = order.iter().rev().copied().collect();
    assert_eq!(groups(&case, &reversed, 1).await, result);
    let mut rng = Rng(7);
    let mut shuffled = order.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i + 1));
    }
    assert_eq!(groups(&case, &shuffled, 8).await, result);
}
