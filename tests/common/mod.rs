//! Test helpers: the samplemix binary and a real S3 server (moto) on loopback.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run the samplemix shell from the repository root with extra environment variables.
pub fn samplemix(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_samplemix"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    // A developer's own AWS settings must not leak into the tests.
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd.env("AWS_CONFIG_FILE", "/nonexistent");
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run samplemix")
}

/// The arguments that run `sql/pipeline.sql` on `input` into the work folder `work` (budget
/// 640,000 tokens, the quickstart's).
pub fn pipeline_args(input: &str, work: &str) -> Vec<String> {
    [
        "-q".to_string(),
        "--var".into(),
        format!("input={input}"),
        "--var".into(),
        format!("work={work}"),
        "--var".into(),
        "budget=640000".into(),
        "-f".into(),
        "sql/pipeline.sql".into(),
    ]
    .to_vec()
}

/// The S3 test credentials (moto accepts any); tests check that the secret is never printed.
pub const KEY_ID: &str = "AKIDSAMPLEMIXTEST";
/// See [`KEY_ID`].
pub const SECRET: &str = "sEcReT-samplemix-do-not-print-42";

/// The standard AWS environment pointing at a moto `endpoint`.
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", KEY_ID.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.to_string()),
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `moto_server` on 127.0.0.1, killed when dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Start moto; panics with the install command when it is missing.
    ///
    /// moto binds port 0 itself and we read the port it prints: picking a free port first and
    /// handing it over raced with the other tests of the same binary (two servers were given
    /// the same port; one died and its test then talked to the other's server until that one
    /// was dropped).
    pub fn start() -> Moto {
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start moto_server ({e}): install it with pip install 'moto[server]' (the README's test command does)")
            });
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        // The reader keeps draining stderr after the port line: moto logs every request there
        // and would block on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                    if let (Ok(port), Some(tx)) = (digits.parse::<u16>(), tx.take()) {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("moto_server did not report its port within 60 s (exit: {status:?})");
            }
        };
        let moto = Moto { child, port };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {addr} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Create a bucket with a plain path-style PUT (moto does not check signatures). A few
    /// attempts, since a freshly started moto may reset the first connection.
    pub fn create_bucket(&self, bucket: &str) {
        let mut last = String::new();
        for _ in 0..5 {
            match self.put(bucket) {
                Ok(reply)
                    if reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200") =>
                {
                    return
                }
                Ok(reply) => last = reply,
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("create bucket {bucket}: {last}");
    }

    /// The keys in `bucket` (moto answers unsigned requests), from its ListObjectsV2 XML.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET /{bucket}?list-type=2&max-keys=100000 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("list reply");
        reply
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(String::from)
            .collect()
    }

    /// Store `body` at `bucket/key` with a plain PUT (moto does not check signatures).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "PUT /{bucket}/{key} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("put reply");
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "PUT {bucket}/{key}: {reply}"
        );
    }

    fn put(&self, bucket: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 512];
        // Read at least the status line.
        while !reply.windows(2).any(|w| w == b"\r\n") {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }
}

/// A TCP proxy on 127.0.0.1 in front of `target` that passes requests at once and answers at
/// `bytes_per_second` (a slow but live link); dropped with the test.
pub struct Throttle {
    pub port: u16,
}

impl Throttle {
    pub fn start(target: u16, bytes_per_second: usize) -> Throttle {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(client, server, None));
                std::thread::spawn(move || pump(s2, c2, Some(bytes_per_second)));
            }
        });
        Throttle { port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Copy `from` to `to`, at most `rate` bytes a second.
fn pump(mut from: TcpStream, mut to: TcpStream, rate: Option<usize>) {
    let chunk = rate.map_or(65536, |r| (r / 20).max(1));
    let mut buf = vec![0u8; chunk];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(r) = rate {
            std::thread::sleep(Duration::from_secs_f64(n as f64 / r as f64));
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::execution::context::SessionConfig;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;

/// A samplemix session with `partitions` target partitions.
pub async fn context(partitions: usize) -> SessionContext {
    let config = samplemix::session_config(SessionConfig::new().with_target_partitions(partitions));
    samplemix::new_context(config, Arc::new(RuntimeEnv::default()))
        .await
        .unwrap()
}

/// Run SQL statements, returning the batches of the last one.
pub async fn sql(ctx: &SessionContext, statements: &[&str]) -> Vec<RecordBatch> {
    let mut last = Vec::new();
    for s in statements {
        last = ctx
            .sql(s)
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .collect()
            .await
            .unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    last
}

/// Column `name` of all batches as f64 (NULL -> NaN).
pub fn f64s(batches: &[RecordBatch], name: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for b in batches {
        let c = datafusion::arrow::compute::cast(
            b.column_by_name(name).unwrap(),
            &datafusion::arrow::datatypes::DataType::Float64,
        )
        .unwrap();
        let c = c.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        out.extend((0..c.len()).map(|i| if c.is_null(i) { f64::NAN } else { c.value(i) }));
    }
    out
}

/// Column `name` of all batches as strings.
pub fn strings(batches: &[RecordBatch], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let c = datafusion::arrow::compute::cast(
            b.column_by_name(name).unwrap(),
            &datafusion::arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        out.extend(
            c.as_string::<i32>()
                .iter()
                .map(|s| s.unwrap_or("NULL").to_string()),
        );
    }
    out
}

/// A static model in Model2Vec's layout: a word-level tokenizer over `vocab` and one row per
/// entry of `rows` (safetensors written by hand: an 8-byte header length, a JSON header,
/// little-endian f32).
pub fn write_static(dir: &std::path::Path, vocab: &[&str], rows: &[Vec<f32>]) {
    std::fs::create_dir_all(dir).unwrap();
    let dim = rows[0].len();
    let vocab_json: Vec<String> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| format!("\"{t}\": {i}"))
        .collect();
    let tokenizer = format!(
        r#"{{"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": {{"type": "Lowercase"}}, "pre_tokenizer": {{"type": "Whitespace"}},
            "post_processor": null, "decoder": null,
            "model": {{"type": "WordLevel", "vocab": {{{}}}, "unk_token": "[UNK]"}}}}"#,
        vocab_json.join(", ")
    );
    std::fs::write(dir.join("tokenizer.json"), tokenizer).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"model_type": "model2vec", "architectures": ["StaticModel"], "normalize": true}"#,
    )
    .unwrap();
    let data: Vec<u8> = rows
        .iter()
        .flat_map(|r| r.iter().flat_map(|x| x.to_le_bytes()))
        .collect();
    let mut header = format!(
        r#"{{"embeddings": {{"dtype": "F32", "shape": [{}, {dim}], "data_offsets": [0, {}]}}}}"#,
        rows.len(),
        data.len()
    );
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&data);
    std::fs::write(dir.join("model.safetensors"), file).unwrap();
}

/// Path of the shared 12k-document corpus, when this checkout has it.
pub fn shared_corpus() -> Option<String> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/corpus.parquet");
    p.exists().then(|| p.to_string_lossy().into_owned())
}
