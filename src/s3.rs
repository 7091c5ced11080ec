//! S3 stores with bounded retries, for both ways the shell meets S3: URL tables read with the
//! standard `AWS_*` environment variables, and `CREATE EXTERNAL TABLE` / `COPY` with
//! `aws.*` OPTIONS.
//!
//! object_store retries connection errors up to 10 times within 3 minutes by default, and
//! datafusion-cli exposes no setting for it; an unreachable endpoint would hang a query for
//! minutes. We rebuild every S3 store the shell uses with [`S3Settings`] applied, and bound
//! silence rather than transfer time ([`crate::store::ReadTimeouts`]): a slow but live link
//! reads on, a silent endpoint fails in seconds.

use std::sync::Arc;
use std::time::Duration;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use url::Url;

use crate::store::{GuardedStore, ReadTimeouts, SilenceMemo};

/// Retry and timeout bounds applied to every S3 store the shell builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Settings {
    /// Retries of a failed request (object_store's default is 10), and attempts in a row
    /// without progress that a silent request or stalled read gets.
    pub max_retries: usize,
    /// No retry of a failed request starts later than this after the first attempt
    /// (object_store's default: 3 min).
    pub retry_timeout: Duration,
    /// Time allowed to open a TCP connection (object_store's default: 5 s).
    pub connect_timeout: Duration,
    /// Time from a request to its response's headers.
    pub first_byte_timeout: Duration,
    /// Time a read may receive no byte before it resumes with a range request.
    pub idle_timeout: Duration,
    /// Time one HTTP request may take from connection to last byte (object_store's default:
    /// 30 s): the bound of an upload; a read that takes longer resumes where it stopped.
    pub request_timeout: Duration,
}

impl Default for S3Settings {
    /// A dead endpoint fails after about two connect timeouts (~6 s), a silent one after
    /// (1 + 3) first-byte timeouts (~17 s); a slow but live link reads at any speed.
    fn default() -> Self {
        Self {
            max_retries: 3,
            retry_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            first_byte_timeout: Duration::from_secs(4),
            idle_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

impl S3Settings {
    /// The silence bounds of reads and listings.
    pub fn read_timeouts(&self) -> ReadTimeouts {
        ReadTimeouts {
            first_byte: self.first_byte_timeout,
            idle: self.idle_timeout,
            max_retries: self.max_retries,
        }
    }

    /// Apply these bounds to an S3 builder (keeps every other option the builder has).
    pub fn apply(&self, builder: AmazonS3Builder) -> AmazonS3Builder {
        builder
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: self.max_retries,
                retry_timeout: self.retry_timeout,
            })
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                format!("{}ms", self.connect_timeout.as_millis()),
            )
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                format!("{}ms", self.request_timeout.as_millis()),
            )
    }

    /// An S3 store for `url` from the standard `AWS_*` environment variables, when they carry
    /// static credentials (or ask to skip signing). `None` leaves the store to datafusion-cli,
    /// which also consults the AWS SDK's profile / SSO / instance credential chain.
    fn store_from_env(&self, url: &Url) -> Option<Result<Arc<dyn ObjectStore>>> {
        let has_static_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
            && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some();
        let skip_signature = std::env::var("AWS_SKIP_SIGNATURE")
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false);
        if url.scheme() != "s3" || !(has_static_keys || skip_signature) {
            return None;
        }
        let bucket = url.host_str()?;
        if let Err(e) = check_env_endpoint() {
            return Some(Err(e));
        }
        let builder = self.apply(AmazonS3Builder::from_env().with_bucket_name(bucket));
        Some(
            builder
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(|e| DataFusionError::ObjectStore(Box::new(e))),
        )
    }
}

/// Object store registry that builds bounded-retry S3 stores from `AWS_*` environment
/// variables on first use of an `s3://` URL, and otherwise delegates to `inner`.
#[derive(Debug)]
pub struct SamplemixStoreRegistry {
    inner: Arc<dyn ObjectStoreRegistry>,
    s3: S3Settings,
    /// Per endpoint (bucket URL): whether it was silent lately.
    silence: std::sync::Mutex<std::collections::HashMap<String, Arc<SilenceMemo>>>,
}

impl SamplemixStoreRegistry {
    /// Wrap `inner` (e.g. datafusion-cli's instrumented registry).
    pub fn new(inner: Arc<dyn ObjectStoreRegistry>, s3: S3Settings) -> Self {
        Self {
            inner,
            s3,
            silence: Default::default(),
        }
    }
}

impl ObjectStoreRegistry for SamplemixStoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.inner.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.inner.deregister_store(url)
    }

    /// The store for `url`, wrapped in a [`GuardedStore`] (an empty `.parquet` file is an
    /// error, not a silently skipped shard; S3 requests are bounded by silence).
    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let store = match self.inner.get_store(url) {
            Ok(store) => store,
            Err(missing) => match self.s3.store_from_env(url) {
                Some(built) => {
                    self.inner.register_store(url, built?);
                    self.inner.get_store(url)?
                }
                None => return Err(missing),
            },
        };
        let guarded = GuardedStore::new(store, url);
        Ok(Arc::new(if url.scheme() == "s3" {
            let memo = self
                .silence
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(format!(
                    "{}://{}",
                    url.scheme(),
                    url.host_str().unwrap_or_default()
                ))
                .or_default()
                .clone();
            guarded.with_timeouts(self.s3.read_timeouts(), memo)
        } else {
            guarded
        }))
    }
}

/// A malformed endpoint would make object_store panic while it builds a request (an invalid
/// port or URI is unwrapped there): check it first, naming the setting.
pub fn check_endpoint(setting: &str, value: &str) -> Result<()> {
    let problem = match Url::parse(value.trim()) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            format!("the scheme must be http or https, got '{}'", url.scheme())
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => "it has no host".to_string(),
        Ok(_) => return Ok(()),
        Err(e) => e.to_string(),
    };
    Err(DataFusionError::Configuration(format!(
        "S3 endpoint {setting} = '{value}' is not a valid endpoint URL ({problem}); expected e.g. 'http://127.0.0.1:9000' or 'https://s3.example.com'"
    )))
}

/// [`check_endpoint`] for the `AWS_ENDPOINT_URL` / `AWS_ENDPOINT` environment variables (the
/// shell checks them at start-up: every path that builds an S3 store from the environment,
/// datafusion-cli's own included, is then safe).
pub fn check_env_endpoint() -> Result<()> {
    for var in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"] {
        if let Ok(value) = std::env::var(var) {
            check_endpoint(&format!("environment variable {var}"), &value)?;
        }
    }
    Ok(())
}

/// The `aws.*` OPTIONS datafusion-cli's S3 stores understand (after `aws.`).
const AWS_OPTIONS: [&str; 10] = [
    "access_key_id",
    "secret_access_key",
    "session_token",
    "region",
    "endpoint",
    "oss",
    "cos",
    "allow_http",
    "skip_signature",
    "nosign",
];

/// An `aws.*` OPTION that no S3 store reads is an error naming it and the ones there are
/// (datafusion-cli's own message names an empty key).
pub(crate) fn check_aws_options(options: &std::collections::HashMap<String, String>) -> Result<()> {
    for key in options.keys() {
        let lower = key.to_ascii_lowercase();
        let Some(name) = lower.strip_prefix("aws.") else {
            continue;
        };
        if !AWS_OPTIONS.contains(&name) {
            return Err(DataFusionError::Configuration(format!(
                "unknown S3 option '{key}'; the S3 options are aws.access_key_id, aws.secret_access_key, aws.session_token, aws.region, aws.endpoint, aws.allow_http and aws.skip_signature"
            )));
        }
    }
    Ok(())
}

/// A key id without its secret (or the reverse) is an error before any request: the AWS SDK
/// would otherwise fall through to its credential chain and report an instance-metadata
/// failure ("failed to load IMDS session token") that says nothing about the cause.
pub(crate) fn check_credentials(id: bool, secret: bool, source: &str) -> Result<()> {
    match (id, secret) {
        (true, false) => Err(DataFusionError::Configuration(format!(
            "{source}: an access key id is given without its secret access key; give both, or neither to use the AWS credential chain (profiles, SSO, instance roles)"
        ))),
        (false, true) => Err(DataFusionError::Configuration(format!(
            "{source}: a secret access key is given without its access key id; give both, or neither to use the AWS credential chain (profiles, SSO, instance roles)"
        ))),
        _ => Ok(()),
    }
}

/// [`check_credentials`] for the `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` environment.
pub fn check_env_credentials() -> Result<()> {
    check_credentials(
        std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
        std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some(),
        "environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    )
}

/// An `s3://` location whose bucket name cannot be a host name (a space, a `%`, ...) is an
/// error naming it, not the URL parser's "invalid domain character". (Only what cannot work
/// is refused: S3-compatible stores and old AWS buckets allow names AWS's rules of today do not.)
pub fn check_s3_location(location: &str) -> Result<()> {
    let Some(rest) = location.strip_prefix("s3://") else {
        return Ok(());
    };
    let bucket = rest.split('/').next().unwrap_or_default();
    let valid = !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && Url::parse(&format!("s3://{bucket}/")).is_ok();
    if valid {
        return Ok(());
    }
    Err(DataFusionError::Plan(format!(
        "'{location}': '{bucket}' is not a valid S3 bucket name (letters, digits, '.', '-' and '_')"
    )))
}

#[cfg(test)]
mod tests {
    use super::check_endpoint;

    #[test]
    fn bucket_names_and_options_are_checked() {
        use super::{check_aws_options, check_credentials, check_s3_location};
        for good in ["s3://my-bucket.1/x/", "s3://b/x", "/local/path"] {
            assert!(check_s3_location(good).is_ok(), "{good}");
        }
        for bad in ["s3://my bucket/x", "s3://a%20b/x", "s3:///x", "s3://a\\b/"] {
            let e = check_s3_location(bad).unwrap_err().to_string();
            assert!(e.contains("is not a valid S3 bucket name"), "{e}");
        }
        let options = |k: &str| std::collections::HashMap::from([(k.to_string(), "v".to_string())]);
        assert!(check_aws_options(&options("aws.region")).is_ok());
        assert!(check_aws_options(&options("format.compression")).is_ok());
        let e = check_aws_options(&options("aws.acess_key_id"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown S3 option 'aws.acess_key_id'"), "{e}");
        assert!(
            check_credentials(true, true, "x").is_ok()
                && check_credentials(false, false, "x").is_ok()
        );
        let e = check_credentials(true, false, "OPTIONS")
            .unwrap_err()
            .to_string();
        assert!(e.contains("without its secret access key"), "{e}");
    }

    #[test]
    fn malformed_endpoints_are_clear_errors() {
        for bad in [
            "http://127.0.0.1:99999",
            "not a url",
            "ftp://x:1",
            "http://",
        ] {
            let e = check_endpoint("OPTIONS 'aws.endpoint'", bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("is not a valid endpoint URL"), "{bad}: {e}");
            assert!(e.contains("aws.endpoint"), "{e}");
        }
        for good in [
            "http://127.0.0.1:9000",
            "https://s3.example.com",
            " http://localhost:5000/ ",
        ] {
            assert!(check_endpoint("x", good).is_ok(), "{good}");
        }
    }
}
