//! Kernel benchmarks (release): `cargo bench -p samplemix-udfs --bench kernels -- WHAT [ARGS]`.
//!
//! WHAT is one of
//! - `text CORPUS.parquet [N]`: token_count, quality_score, embed and minhash MB/s on one core
//!   (first N docs);
//! - `assign DIR`: nearest-centroid assignment of 1M × 256 f32 to k = 256 (ours on 1 and 2
//!   threads, linfa `predict` on the first 100k rows), the machine's sgemm peak, and writes the
//!   data to DIR for the faiss comparison;
//! - `kmeans DIR [N [K [ITERS]]]`: kmeans fit on N × 256 blobs (default 200k, k = 256, 20
//!   iterations); writes the data to DIR (N ≤ 200k) for the faiss / scikit-learn comparison.
//!
//! Prints one JSON object per line; `benches/run.sh` adds the peers and the ratios.
// sgemm_peak calls matrixmultiply directly to measure the machine's peak.
#![allow(unsafe_code)]

use std::time::Instant;

use datafusion::arrow::array::AsArray;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use linfa::traits::{Fit, Predict};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;
use samplemix_udfs::kernels::{assign, kmeans_fit, Centroids, KmeansOptions, Metric};

fn texts(path: &str) -> Vec<String> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let col = batch.column_by_name("text").expect("text column");
        let col =
            datafusion::arrow::compute::cast(col, &datafusion::arrow::datatypes::DataType::Utf8)
                .unwrap();
        out.extend(col.as_string::<i32>().iter().flatten().map(str::to_string));
    }
    out
}

fn throughput(name: &str, docs: &[String], mut f: impl FnMut(&str) -> f64) {
    let bytes: usize = docs.iter().map(String::len).sum();
    let start = Instant::now();
    let mut sink = 0.0;
    for d in docs {
        sink += f(d);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"bench\":\"{name}\",\"docs\":{},\"bytes\":{bytes},\"secs\":{secs:.4},\"mb_per_s_per_core\":{:.2},\"checksum\":{sink:.3}}}",
        docs.len(),
        bytes as f64 / 1e6 / secs
    );
}

fn random_matrix(n: usize, d: usize, seed: u64) -> Vec<f32> {
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    (0..n * d).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

/// Points around `k` random centres (realistic for k-means: clusters exist).
fn blobs(n: usize, d: usize, k: usize, seed: u64) -> Vec<f32> {
    let centres = random_matrix(k, d, seed);
    let mut rng = Xoshiro256Plus::seed_from_u64(seed + 1);
    let mut out = Vec::with_capacity(n * d);
    for _ in 0..n {
        let c = rng.gen_range(0..k);
        for j in 0..d {
            out.push(centres[c * d + j] + rng.gen_range(-0.5f32..0.5));
        }
    }
    out
}

fn write_f32(path: &str, data: &[f32]) {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn sgemm_peak(threads: usize) -> f64 {
    // Large enough to be compute bound; each thread multiplies its own matrices.
    let (m, k, n) = (1024, 256, 1024);
    let a = random_matrix(m, k, 1);
    let b = random_matrix(k, n, 2);
    let reps = 20;
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut c = vec![0.0f32; m * n];
                for _ in 0..reps {
                    // SAFETY: a is m×k, b is k×n and c is m×n, all row-major with the strides
                    // given, and each thread owns its c.
                    unsafe {
                        matrixmultiply::sgemm(
                            m,
                            k,
                            n,
                            1.0,
                            a.as_ptr(),
                            k as isize,
                            1,
                            b.as_ptr(),
                            n as isize,
                            1,
                            0.0,
                            c.as_mut_ptr(),
                            n as isize,
                            1,
                        );
                    }
                }
                std::hint::black_box(&c);
            });
        }
    });
    let flops = 2.0 * (m * k * n) as f64 * reps as f64 * threads as f64;
    flops / start.elapsed().as_secs_f64() / 1e9
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.first().map(String::as_str) {
        Some("text") => {
            let mut docs = texts(&args[1]);
            if let Some(limit) = args.get(2).and_then(|n| n.parse::<usize>().ok()) {
                docs.truncate(limit);
            }
            throughput("token_count", &docs, |t| {
                samplemix_udfs::kernels::count_tokens(t, Default::default()) as f64
            });
            throughput(
                "quality_score",
                &docs,
                samplemix_udfs::kernels::quality_score,
            );
            let mut v = vec![0.0f32; 256];
            throughput("embed", &docs, |t| {
                samplemix_udfs::kernels::embed_into(t, &mut v);
                f64::from(v[0])
            });
            // minhash with datatrove's default setting: 112 hashes (14 bands x 8), 5-word shingles.
            let mut hasher = samplemix_udfs::kernels::MinHasher::new(112, 5, 0);
            let mut sig = vec![0u32; 112];
            throughput("minhash", &docs, |t| {
                hasher.signature_into(t, &mut sig);
                f64::from(sig[0] % 1000)
            });
        }
        Some("assign") => {
            let dir = &args[1];
            let (n, d, k) = (1_000_000, 256, 256);
            let x = random_matrix(n, d, 11);
            let c = random_matrix(k, d, 12);
            write_f32(&format!("{dir}/assign_x.f32"), &x);
            write_f32(&format!("{dir}/assign_c.f32"), &c);
            let cents = Centroids::new(c.clone(), d, Metric::L2, (0..k as i32).collect()).unwrap();
            let flops = 2.0 * (n * d * k) as f64;
            for threads in [1, 2] {
                let start = Instant::now();
                let (labels, _) = assign(&x, &cents, threads);
                let secs = start.elapsed().as_secs_f64();
                let checksum: usize = labels.iter().take(1000).sum();
                println!("{{\"bench\":\"assign\",\"threads\":{threads},\"n\":{n},\"d\":{d},\"k\":{k},\"secs\":{secs:.4},\"gflops\":{:.1},\"checksum\":{checksum}}}", flops / secs / 1e9);
            }
            for threads in [1, 2] {
                println!(
                    "{{\"bench\":\"sgemm_peak\",\"threads\":{threads},\"gflops\":{:.1}}}",
                    sgemm_peak(threads)
                );
            }
            // linfa predict: its scalar loop, on the first 100k rows (rayon, all cores).
            let sub = 100_000;
            let model =
                linfa_clustering::KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(0))
                    .init_method(linfa_clustering::KMeansInit::Precomputed(
                        ndarray::Array2::from_shape_vec((k, d), c).unwrap(),
                    ))
                    .max_n_iterations(1)
                    .fit(&linfa::DatasetBase::from(
                        ndarray::Array2::from_shape_vec((k, d), random_matrix(k, d, 12)).unwrap(),
                    ))
                    .unwrap();
            let records = ndarray::Array2::from_shape_vec((sub, d), x[..sub * d].to_vec()).unwrap();
            let start = Instant::now();
            let labels = model.predict(&records);
            let secs = start.elapsed().as_secs_f64();
            println!("{{\"bench\":\"linfa_predict\",\"rows\":{sub},\"secs\":{secs:.4},\"secs_per_1m_rows\":{:.3},\"checksum\":{}}}", secs * (n / sub) as f64, labels.iter().take(1000).sum::<usize>());
        }
        Some("kmeans") => {
            let dir = &args[1];
            let num = |i: usize, default: usize| {
                args.get(i)
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(default)
            };
            let (n, d, k, iters) = (num(2, 200_000), 256, num(3, 256), num(4, 20));
            let x = blobs(n, d, k, 21);
            if n <= 200_000 {
                write_f32(&format!("{dir}/kmeans_x.f32"), &x);
            }
            let start = Instant::now();
            let mut first_iter = None;
            let opts = KmeansOptions {
                k,
                max_iter: iters,
                seed: 0,
                metric: Metric::L2,
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
            let fitted = kmeans_fit(x, d, opts, |i| {
                if i == 1 {
                    first_iter = Some(start.elapsed().as_secs_f64());
                }
            })
            .unwrap();
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{{\"bench\":\"kmeans_fit\",\"n\":{n},\"d\":{d},\"k\":{k},\"iterations\":{},\"secs\":{secs:.3},\"secs_to_first_iteration\":{:.3},\"inertia\":{:.5}}}",
                fitted.iterations,
                first_iter.unwrap_or(0.0),
                fitted.inertia
            );
        }
        _ => {
            eprintln!(
                "usage: kernels text CORPUS.parquet | assign DIR | kmeans DIR [N [K [ITERS]]]"
            );
            std::process::exit(2);
        }
    }
}
