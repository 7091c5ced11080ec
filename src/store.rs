//! The object store wrapper the shell hands to DataFusion for every location (local disk, S3).
//!
//! 1. DataFusion's listing tables skip 0-byte files without a word (they cannot hold rows of
//!    most formats), so a Parquet shard truncated to nothing by a failed upload or a full disk
//!    silently drops its rows from every query. Here a 0-byte `.parquet` object is a listing
//!    error naming it: a file with that name is meant to be Parquet, and an empty one never is.
//! 2. For S3, timeouts bound silence, not transfer time ([`ReadTimeouts`]): a request that
//!    gets no response within the first-byte timeout is tried again (at most `max_retries`
//!    times), and a read that receives no bytes for the idle timeout, or breaks, resumes where
//!    it stopped with a range request on the same object version (`If-Match` its ETag). Reads
//!    that make progress resume without limit, so a 2 MB/s link reads any object; a silent
//!    endpoint fails after (retries + 1) first-byte timeouts, with an error that says it
//!    timed out. Listings resume after the last key they returned.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, RenameOptions, Result,
};

/// Remembers that a store's endpoint was silent through every attempt of a request, so that
/// the statement's next requests (DataFusion infers a table's format, then its schema, each
/// listing again) fail at once for a while instead of waiting out the same silence again.
#[derive(Debug, Default)]
pub struct SilenceMemo {
    until: std::sync::Mutex<Option<std::time::Instant>>,
}

impl SilenceMemo {
    /// How long a silent endpoint is not asked again.
    const HOLD: Duration = Duration::from_secs(30);

    fn silent(&self) -> bool {
        let until = *self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        until.is_some_and(|u| std::time::Instant::now() < u)
    }

    fn mark(&self, silent: bool) {
        *self
            .until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            silent.then(|| std::time::Instant::now() + Self::HOLD);
    }
}

/// Uploads up to this size are bounded like reads (first-byte timeout, retried).
const SMALL_PUT: usize = 1 << 20;

/// How long an S3 request may stay silent (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTimeouts {
    /// Time from sending a request to the response's headers.
    pub first_byte: Duration,
    /// Time a response body may go without a byte before the read resumes elsewhere.
    pub idle: Duration,
    /// Attempts after the first that may go without progress before a request fails.
    pub max_retries: usize,
}

/// An [`ObjectStore`] that forwards everything to `inner` and refuses to list an empty
/// `.parquet` object (see the module documentation).
#[derive(Debug)]
pub struct GuardedStore {
    inner: Arc<dyn ObjectStore>,
    /// What goes before an object's path in messages: `/` or `s3://bucket/`.
    base: Arc<str>,
    /// Silence bounds of a remote store (none for a local disk).
    timeouts: Option<ReadTimeouts>,
    memo: Arc<SilenceMemo>,
}

impl GuardedStore {
    /// Wrap `inner`, the store of `url` (which names objects in messages).
    pub fn new(inner: Arc<dyn ObjectStore>, url: &url::Url) -> Self {
        let base = match url.scheme() {
            "file" => "/".to_string(),
            _ => format!("{}://{}/", url.scheme(), url.host_str().unwrap_or_default()),
        };
        Self {
            inner,
            base: base.into(),
            timeouts: None,
            memo: Arc::default(),
        }
    }

    /// Bound the silence of this store's requests (S3 stores); `memo` is shared by every
    /// wrapper of the same endpoint.
    pub fn with_timeouts(mut self, timeouts: ReadTimeouts, memo: Arc<SilenceMemo>) -> Self {
        self.timeouts = Some(timeouts);
        self.memo = memo;
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }
}

impl fmt::Display for GuardedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// An error for an object that cannot be a Parquet file, `Ok` for any other.
fn check(meta: ObjectMeta, base: &str) -> Result<ObjectMeta> {
    if meta.size == 0
        && meta
            .location
            .as_ref()
            .to_ascii_lowercase()
            .ends_with(".parquet")
    {
        return Err(object_store::Error::Generic {
            store: "samplemix",
            source: format!(
                "'{base}{}' is an empty file (0 bytes), not Parquet: a truncated or interrupted write? Remove or rewrite it; its rows would otherwise be silently missing",
                meta.location
            )
            .into(),
        });
    }
    Ok(meta)
}

#[async_trait]
impl ObjectStore for GuardedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        match self.timeouts {
            // A small object (a lock, a manifest, a footer-only file) answers at once on a
            // live endpoint; a large upload is bounded by --s3-request-timeout alone.
            Some(t) if payload.content_length() <= SMALL_PUT => {
                let shown = format!("{}{location}", self.base);
                answered(t, &self.memo, &shown, || {
                    self.inner.put_opts(location, payload.clone(), opts.clone())
                })
                .await
            }
            _ => self.inner.put_opts(location, payload, opts).await,
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let Some(t) = self.timeouts else {
            return self.inner.get_opts(location, options).await;
        };
        let shown = format!("{}{location}", self.base);
        let inner = Arc::clone(&self.inner);
        let memo = Arc::clone(&self.memo);
        let got = answered(t, &memo, &shown, || {
            inner.get_opts(location, options.clone())
        })
        .await?;
        let GetResultPayload::Stream(body) = got.payload else {
            return Ok(got);
        };
        let resumable = Resumable {
            inner,
            location: location.clone(),
            shown,
            options: GetOptions {
                if_match: options.if_match.clone().or_else(|| got.meta.e_tag.clone()),
                ..options
            },
            range: got.range.clone(),
            body,
            timeouts: t,
            memo,
            stalls: 0,
            progressed: false,
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(resumable.into_stream()),
            ..got
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if self.timeouts.is_none() {
            return self.inner.get_ranges(location, ranges).await;
        }
        // Each coalesced range through this store's own resumable reads.
        object_store::coalesce_ranges(
            ranges,
            |range| self.get_range(location, range),
            object_store::OBJECT_STORE_COALESCE_DEFAULT,
        )
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let base = Arc::clone(&self.base);
        let listed = match self.timeouts {
            None => self.inner.list(prefix),
            Some(t) => resumable_list(
                Arc::clone(&self.inner),
                prefix.cloned(),
                t,
                Arc::clone(&self.memo),
                &base,
            ),
        };
        listed
            .map(move |item| item.and_then(|m| check(m, &base)))
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let base = Arc::clone(&self.base);
        self.inner
            .list_with_offset(prefix, offset)
            .map(move |item| item.and_then(|m| check(m, &base)))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let listed = match self.timeouts {
            None => self.inner.list_with_delimiter(prefix).await?,
            Some(t) => {
                let shown = format!("{}{}", self.base, prefix.map_or("", |p| p.as_ref()));
                answered(t, &self.memo, &shown, || {
                    self.inner.list_with_delimiter(prefix)
                })
                .await?
            }
        };
        let objects = listed
            .objects
            .into_iter()
            .map(|m| check(m, &self.base))
            .collect::<Result<Vec<_>>>()?;
        Ok(ListResult {
            common_prefixes: listed.common_prefixes,
            objects,
        })
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// The error of a request that stayed silent through every attempt.
fn timed_out(shown: &str, what: &str, t: ReadTimeouts) -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: format!(
            "request for '{shown}' timed out: {what} ({} attempts without progress; --s3-first-byte-timeout {} s, --s3-idle-timeout {} s, --s3-max-retries {})",
            t.max_retries + 1,
            t.first_byte.as_secs_f64(),
            t.idle.as_secs_f64(),
            t.max_retries
        )
        .into(),
    }
}

/// `request()` until it answers within the first-byte timeout: tried again after each silent
/// attempt, at most `max_retries` times (an error answer is returned as it is: object_store
/// has retried those already).
async fn answered<T, F, Fut>(
    t: ReadTimeouts,
    memo: &SilenceMemo,
    shown: &str,
    mut request: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    if memo.silent() {
        return Err(timed_out(
            shown,
            "no response (the endpoint was silent moments ago)",
            t,
        ));
    }
    for attempt in 0..=t.max_retries {
        if let Ok(answer) = tokio::time::timeout(t.first_byte, request()).await {
            memo.mark(false);
            return answer;
        }
        if attempt < t.max_retries {
            // 100 ms, 200 ms, 400 ms ... at most 2 s between attempts.
            let pause = Duration::from_millis(100 << attempt.min(4)).min(Duration::from_secs(2));
            tokio::time::sleep(pause).await;
        }
    }
    memo.mark(true);
    Err(timed_out(shown, "no response", t))
}

/// A GET body that resumes where it stopped (see the module documentation).
struct Resumable {
    inner: Arc<dyn ObjectStore>,
    location: Path,
    shown: String,
    options: GetOptions,
    /// The bytes still to come.
    range: Range<u64>,
    body: BoxStream<'static, Result<Bytes>>,
    timeouts: ReadTimeouts,
    memo: Arc<SilenceMemo>,
    /// Attempts in a row that brought no byte.
    stalls: usize,
    progressed: bool,
}

impl Resumable {
    fn into_stream(self) -> BoxStream<'static, Result<Bytes>> {
        futures::stream::unfold(Some(self), |state| async move {
            let mut s = state?;
            match s.next().await {
                Ok(Some(bytes)) => Some((Ok(bytes), Some(s))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
        .boxed()
    }

    async fn next(&mut self) -> Result<Option<Bytes>> {
        loop {
            let why = match tokio::time::timeout(self.timeouts.idle, self.body.next()).await {
                Ok(Some(Ok(bytes))) => {
                    self.range.start += bytes.len() as u64;
                    self.progressed = true;
                    return Ok(Some(bytes));
                }
                Ok(None) if self.range.start >= self.range.end => return Ok(None),
                Ok(None) => "the response ended early".to_string(),
                Ok(Some(Err(e))) => e.to_string(),
                Err(_) => format!("no data for {} s", self.timeouts.idle.as_secs_f64()),
            };
            self.stalls = if self.progressed { 1 } else { self.stalls + 1 };
            self.progressed = false;
            if self.stalls > self.timeouts.max_retries {
                return Err(timed_out(
                    &self.shown,
                    &format!("the read stalled at byte {}: {why}", self.range.start),
                    self.timeouts,
                ));
            }
            log::info!(
                "resuming the read of {} at byte {} ({why})",
                self.shown,
                self.range.start
            );
            let options = GetOptions {
                range: Some(GetRange::Bounded(self.range.clone())),
                head: false,
                ..self.options.clone()
            };
            let (inner, location) = (Arc::clone(&self.inner), self.location.clone());
            let got = answered(self.timeouts, &self.memo, &self.shown, || {
                inner.get_opts(&location, options.clone())
            })
            .await?;
            match got.payload {
                GetResultPayload::Stream(body) => self.body = body,
                #[allow(unreachable_patterns)]
                _ => {
                    return Err(object_store::Error::Generic {
                        store: "S3",
                        source: "a resumed read returned no stream".into(),
                    })
                }
            }
        }
    }
}

/// A listing that, when a page does not come within the first-byte timeout, lists again
/// after the last key it returned (at most `max_retries` times in a row without a key).
fn resumable_list(
    inner: Arc<dyn ObjectStore>,
    prefix: Option<Path>,
    t: ReadTimeouts,
    memo: Arc<SilenceMemo>,
    base: &str,
) -> BoxStream<'static, Result<ObjectMeta>> {
    let shown = format!("{base}{}", prefix.as_ref().map_or("", |p| p.as_ref()));
    let first = inner.list(prefix.as_ref());
    let state = (inner, prefix, first, None::<Path>, 0usize, shown, false);
    futures::stream::unfold(Some(state), move |state| {
        let memo = Arc::clone(&memo);
        async move {
            let (inner, prefix, mut pages, mut last, mut stalls, shown, done) = state?;
            if done {
                return None;
            }
            if memo.silent() {
                let e = timed_out(
                    &shown,
                    "no response (the endpoint was silent moments ago)",
                    t,
                );
                return Some((
                    Err(e),
                    Some((inner, prefix, pages, last, stalls, shown, true)),
                ));
            }
            loop {
                let why = match tokio::time::timeout(t.first_byte, pages.next()).await {
                    Ok(Some(Ok(meta))) => {
                        memo.mark(false);
                        last = Some(meta.location.clone());
                        return Some((
                            Ok(meta),
                            Some((inner, prefix, pages, last, 0, shown, false)),
                        ));
                    }
                    Ok(None) => return None,
                    // An answer, if an error: object_store has retried what was worth it.
                    Ok(Some(Err(e))) => {
                        return Some((
                            Err(e),
                            Some((inner, prefix, pages, last, stalls, shown, true)),
                        ))
                    }
                    Err(_) => "no answer".to_string(),
                };
                stalls += 1;
                if stalls > t.max_retries {
                    memo.mark(true);
                    let e = timed_out(&shown, &format!("the listing stalled: {why}"), t);
                    return Some((
                        Err(e),
                        Some((inner, prefix, pages, last, stalls, shown, true)),
                    ));
                }
                pages = match &last {
                    Some(offset) => inner.list_with_offset(prefix.as_ref(), offset),
                    None => inner.list(prefix.as_ref()),
                };
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn empty_parquet_objects_are_listing_errors() {
        let mem: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        mem.put(&Path::from("t/a.parquet"), PutPayload::from_static(b"PAR1"))
            .await
            .unwrap();
        mem.put(&Path::from("t/empty.csv"), PutPayload::from_static(b""))
            .await
            .unwrap();
        let url = url::Url::parse("s3://bucket").unwrap();
        let guarded = GuardedStore::new(Arc::clone(&mem), &url);
        assert_eq!(
            guarded
                .list(Some(&Path::from("t")))
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
                .len(),
            2
        );
        mem.put(&Path::from("t/b.parquet"), PutPayload::from_static(b""))
            .await
            .unwrap();
        let err = guarded
            .list(Some(&Path::from("t")))
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'s3://bucket/t/b.parquet' is an empty file (0 bytes)"),
            "{err}"
        );
        let err = guarded
            .list_with_delimiter(Some(&Path::from("t")))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("t/b.parquet"), "{err}");
    }
}
