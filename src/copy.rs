//! `COPY ... TO target` that never loses data: it replaces only what samplemix provably wrote,
//! never leaves a partial result, and lets one writer at a time at a target.
//!
//! 1. The target is resolved first: a local path to its absolute, symlink-free form (a COPY to
//!    `./` writes to the current folder, a COPY onto a symlink writes the file it points to).
//! 2. A lock object beside the target (`.samplemix-lock-<name>`, created only if absent: an
//!    `O_EXCL` file on a disk, an `If-None-Match: *` PUT on S3) admits one COPY at a time; a
//!    second COPY to the same target fails at once naming the holder. A lock left by a killed
//!    process on this host is removed when that process no longer exists; any other stale lock
//!    is reported with the command that removes it.
//! 3. A query that reads the target (or anything under a target folder) is refused: the write
//!    would replace its own input.
//! 4. A folder target may be replaced only when samplemix wrote every file in it: the manifest
//!    beside it (`.samplemix-manifest-<name>`, never inside, where a reader of the folder would
//!    take it for data) lists each file it wrote with its size. Any other file there (a `.git/`,
//!    notes, another tool's shards) makes the COPY refuse, with nothing changed.
//! 5. The rows go to a hidden sibling (`.samplemix-tmp-<pid>-<nanos>-<name>`), and are
//!    published only after the write succeeded: a file by one rename (atomic on a local disk;
//!    copy then delete on S3), a folder file by file under a manifest that lists old and new
//!    files until the old ones are gone. On failure, timeout or error the temporary output is
//!    removed and the previous output is exactly as it was.
//! 6. Temporary output that a killed COPY left beside the target (including object_store's
//!    `#<n>` staging files) is removed by the next COPY to that target, which holds the lock.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::listing::{ListingTable, ListingTableUrl};
use datafusion::datasource::{source_as_provider, ViewTable};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::dml::CopyTo;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

const TEMP_PREFIX: &str = ".samplemix-tmp-";
const LOCK_PREFIX: &str = ".samplemix-lock-";
const MANIFEST_PREFIX: &str = ".samplemix-manifest-";
const MANIFEST_HEADER: &str = "samplemix COPY manifest v1";

/// Where a COPY writes: the resolved location and what sits beside it.
pub(crate) struct Target {
    /// The target as the statement gave it (for messages).
    shown: String,
    /// The resolved target, as DataFusion's COPY takes it.
    resolved: String,
    url: ListingTableUrl,
    folder: bool,
    store: Arc<dyn ObjectStore>,
    /// The folder holding the target and its lock, manifest and temporary siblings.
    parent: Path,
    /// The target's last path segment.
    name: String,
}

impl Target {
    /// Resolve `copy`'s output location and open its object store.
    pub(crate) fn resolve(ctx: &SessionContext, copy: &CopyTo) -> Result<Target> {
        let shown = copy.output_url.clone();
        let folder = is_folder_output(copy);
        let resolved = if is_local(&shown) {
            let path = resolve_local(shown.strip_prefix("file://").unwrap_or(&shown))
                .map_err(|e| plan_error(&shown, &e))?;
            let mut text = path.to_string_lossy().into_owned();
            if folder && !text.ends_with('/') && shown.ends_with('/') {
                text.push('/');
            }
            text
        } else {
            shown.clone()
        };
        let url = ListingTableUrl::parse(&resolved)?;
        let store = ctx.runtime_env().object_store(&url)?;
        let full = url.prefix().as_ref().trim_end_matches('/').to_string();
        let (parent, name) = match full.rfind('/') {
            Some(i) => (Path::from(&full[..i]), full[i + 1..].to_string()),
            None if !full.is_empty() && url.scheme() != "file" => (Path::default(), full.clone()),
            _ => {
                return Err(plan_error(
                    &shown,
                    "it is the root of a file system or bucket; name a folder or file inside it",
                ))
            }
        };
        if name.is_empty() {
            return Err(plan_error(&shown, "it has no file or folder name"));
        }
        Ok(Target {
            shown,
            resolved,
            url,
            folder,
            store,
            parent,
            name,
        })
    }

    /// A sibling of the target named `<prefix><suffix>`.
    fn sibling(&self, prefix: &str, suffix: &str) -> Path {
        self.parent.clone().join(format!("{prefix}{suffix}"))
    }

    fn lock_path(&self) -> Path {
        self.sibling(LOCK_PREFIX, &self.name)
    }

    fn manifest_path(&self) -> Path {
        self.sibling(MANIFEST_PREFIX, &self.name)
    }

    /// The URL of a hidden unique sibling, which DataFusion writes in the same layout.
    fn temp_location(&self) -> String {
        let unique = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let trimmed = self.resolved.trim_end_matches('/');
        let base = &trimmed[..trimmed.len() - self.name.len()];
        format!(
            "{base}{TEMP_PREFIX}{unique}-{}{}",
            self.name,
            if self.resolved.ends_with('/') {
                "/"
            } else {
                ""
            }
        )
    }

    /// Whether `name` (a sibling's file name) is temporary output of a COPY to this target,
    /// object_store's `#<n>` staging suffix included: `.samplemix-tmp-<pid>-<nanos>-<name>`.
    fn is_our_temp(&self, name: &str) -> bool {
        let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
            return false;
        };
        let mut parts = rest.splitn(3, '-');
        let (Some(pid), Some(nanos), Some(tail)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(pid) || !digits(nanos) {
            return false;
        }
        match tail.strip_prefix(self.name.as_str()) {
            Some("") => true,
            Some(staging) => staging.strip_prefix('#').is_some_and(digits),
            None => false,
        }
    }
}

/// Whether DataFusion writes `copy` as a folder of files: partitioned output, the
/// `single_file_output` option, or else DataFusion's rule (a trailing `/` or no extension).
fn is_folder_output(copy: &CopyTo) -> bool {
    let option = copy
        .options
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("single_file_output"))
        .map(|(_, v)| v.trim().to_ascii_lowercase());
    folder_rule(
        &copy.output_url,
        !copy.partition_by.is_empty(),
        option.as_deref(),
    )
}

fn folder_rule(url: &str, partitioned: bool, single_file_output: Option<&str>) -> bool {
    if partitioned {
        return true;
    }
    match single_file_output {
        Some("true") => false,
        Some("false") => true,
        _ => {
            let last = url.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            url.ends_with('/') || !last.contains('.') || last.ends_with('.')
        }
    }
}

fn is_local(location: &str) -> bool {
    location.starts_with("file://") || !location.contains("://")
}

/// The absolute, symlink-free form of a local path: `.` and `..` resolved, the longest
/// existing prefix canonicalised (so a symlinked target or parent is followed), the rest kept.
fn resolve_local(location: &str) -> std::result::Result<PathBuf, String> {
    let given = FsPath::new(location);
    let absolute = if given.is_absolute() {
        given.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("cannot read the current folder: {e}"))?
            .join(given)
    };
    let mut normal = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other.as_os_str()),
        }
    }
    let mut existing = normal.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => break,
        }
    }
    let mut out = existing
        .canonicalize()
        .map_err(|e| format!("cannot resolve '{}': {e}", existing.display()))?;
    for name in rest.into_iter().rev() {
        out.push(name);
    }
    Ok(out)
}

fn plan_error(target: &str, why: &str) -> DataFusionError {
    DataFusionError::Plan(format!("COPY to '{target}': {why}"))
}

/// What one COPY does, in order: resolve, lock, check, write, publish, unlock.
pub(crate) async fn atomic_copy(
    ctx: &SessionContext,
    copy: &CopyTo,
    deadline: Option<Instant>,
    remote: bool,
) -> Result<Vec<RecordBatch>> {
    let target = Target::resolve(ctx, copy)?;
    refuse_own_input(&target, &copy.input)?;
    let lock = Lock::take(&target).await?;
    let result = copy_locked(ctx, copy, &target, deadline, remote).await;
    lock.release().await;
    result
}

async fn copy_locked(
    ctx: &SessionContext,
    copy: &CopyTo,
    target: &Target,
    deadline: Option<Instant>,
    remote: bool,
) -> Result<Vec<RecordBatch>> {
    remove_stale_temps(target).await;
    let previous = if target.folder {
        check_ownership(target).await?
    } else {
        Manifest::default()
    };
    let temp = target.temp_location();
    let temp_url = ListingTableUrl::parse(&temp)?;
    let plan = LogicalPlan::Copy(CopyTo {
        output_url: temp.clone(),
        ..copy.clone()
    });
    let write = async {
        let df = ctx.execute_logical_plan(plan).await?;
        df.collect().await
    };
    let written = match deadline {
        None => write.await,
        Some(at) => tokio::time::timeout_at(at.into(), write)
            .await
            .unwrap_or_else(|_| {
                Err(DataFusionError::Execution(
                    "the statement ran longer than --query-timeout and was abandoned".to_string(),
                ))
            }),
    };
    let batches = match written {
        Ok(batches) => batches,
        Err(e) => {
            remove_prefix(
                &target.store,
                temp_url.prefix(),
                temp_url.scheme() == "file",
            )
            .await;
            if remote {
                // Tasks of a failed distributed job that were already running may still
                // finish their files: sweep again once they had time to (the next COPY to
                // this target removes anything later still).
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                remove_prefix(&target.store, temp_url.prefix(), false).await;
            }
            return Err(DataFusionError::Context(
                format!(
                    "COPY to '{}' failed; any previous output there is unchanged",
                    target.shown
                ),
                Box::new(e),
            ));
        }
    };
    let published = if target.folder {
        publish_folder(target, &temp_url, &previous).await
    } else {
        publish_file(target, &temp_url).await
    };
    if let Err(e) = published {
        remove_prefix(
            &target.store,
            temp_url.prefix(),
            temp_url.scheme() == "file",
        )
        .await;
        return Err(DataFusionError::Context(
            format!(
                "COPY to '{}' failed while moving the new files into place: the target may hold old and new files; every one of them is listed in its manifest, so rerunning the COPY replaces them",
                target.shown
            ),
            Box::new(e),
        ));
    }
    Ok(batches)
}

/// Refuse a COPY whose query reads the target, or anything under a target folder, or a
/// folder holding the target.
fn refuse_own_input(target: &Target, input: &LogicalPlan) -> Result<()> {
    let mut inputs = Vec::new();
    input_locations(input, &mut inputs);
    let store = target.url.object_store();
    let ours = target.url.prefix().as_ref().trim_end_matches('/');
    for location in inputs {
        if location.object_store() != store {
            continue;
        }
        let theirs = canonical_prefix(&location);
        let theirs = theirs.trim_end_matches('/');
        let nested = |outer: &str, inner: &str| {
            outer.is_empty()
                || inner == outer
                || inner
                    .strip_prefix(outer)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if nested(ours, theirs) || nested(theirs, ours) {
            return Err(plan_error(
                &target.shown,
                &format!(
                    "the query reads '{location}', which the COPY would overwrite; write to another location"
                ),
            ));
        }
    }
    Ok(())
}

/// A listing location's path with symlinks resolved where it is local and exists.
fn canonical_prefix(location: &ListingTableUrl) -> String {
    let prefix = location.prefix().as_ref().to_string();
    if location.scheme() != "file" {
        return prefix;
    }
    match FsPath::new("/").join(&prefix).canonicalize() {
        Ok(p) => p.to_string_lossy().trim_start_matches('/').to_string(),
        Err(_) => prefix,
    }
}

/// The locations of every listing table `plan` scans (views and subqueries included).
fn input_locations(plan: &LogicalPlan, out: &mut Vec<ListingTableUrl>) {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if let Ok(provider) = source_as_provider(&scan.source) {
                if let Some(listing) = provider.downcast_ref::<ListingTable>() {
                    out.extend(listing.table_paths().iter().cloned());
                } else if let Some(view) = provider.downcast_ref::<ViewTable>() {
                    input_locations(view.logical_plan(), out);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// The files a folder's manifest lists, by path relative to the folder, with the sizes each
/// may have (two while a publish replaces a file).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Manifest {
    files: BTreeMap<String, Vec<u64>>,
}

impl Manifest {
    fn parse(text: &str) -> Option<Manifest> {
        let mut lines = text.lines();
        if lines.next()? != MANIFEST_HEADER {
            return None;
        }
        let mut files = BTreeMap::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (sizes, path) = line.split_once('\t')?;
            let sizes = sizes
                .split(',')
                .map(str::parse)
                .collect::<std::result::Result<Vec<u64>, _>>()
                .ok()?;
            files.insert(path.to_string(), sizes);
        }
        Some(Manifest { files })
    }

    fn render(&self) -> String {
        let mut out = format!("{MANIFEST_HEADER}\n");
        for (path, sizes) in &self.files {
            let sizes: Vec<String> = sizes.iter().map(u64::to_string).collect();
            out.push_str(&format!("{}\t{path}\n", sizes.join(",")));
        }
        out
    }

    fn owns(&self, path: &str, size: u64) -> bool {
        self.files.get(path).is_some_and(|s| s.contains(&size))
    }

    fn union(&self, other: &Manifest) -> Manifest {
        let mut files = self.files.clone();
        for (path, sizes) in &other.files {
            let entry = files.entry(path.clone()).or_default();
            for s in sizes {
                if !entry.contains(s) {
                    entry.push(*s);
                }
            }
        }
        Manifest { files }
    }
}

async fn read_manifest(target: &Target) -> Result<Manifest> {
    let path = target.manifest_path();
    match target.store.get(&path).await {
        Ok(got) => {
            let bytes = got.bytes().await?;
            Manifest::parse(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
                plan_error(
                    &target.shown,
                    &format!("its manifest '{path}' is not one samplemix wrote; remove it and the folder's files, or write elsewhere"),
                )
            })
        }
        Err(object_store::Error::NotFound { .. }) => Ok(Manifest::default()),
        Err(e) => Err(e.into()),
    }
}

async fn write_manifest(target: &Target, manifest: &Manifest) -> Result<()> {
    target
        .store
        .put(
            &target.manifest_path(),
            PutPayload::from(manifest.render().into_bytes()),
        )
        .await?;
    Ok(())
}

/// Every file under `prefix` with its path relative to it and its size.
async fn files_under(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<Vec<(String, u64)>> {
    let listed: Vec<_> = match store.list(Some(prefix)).try_collect().await {
        Ok(files) => files,
        Err(object_store::Error::NotFound { .. }) => vec![],
        Err(e) => return Err(e.into()),
    };
    let base = prefix.as_ref();
    Ok(listed
        .into_iter()
        .filter_map(|meta| {
            let rest = meta.location.as_ref().strip_prefix(base)?;
            let rest = rest.trim_start_matches('/');
            (!rest.is_empty()).then(|| (rest.to_string(), meta.size))
        })
        .collect())
}

/// The folder's manifest, after checking that it lists every file in the folder.
async fn check_ownership(target: &Target) -> Result<Manifest> {
    let manifest = read_manifest(target).await?;
    let files = files_under(&target.store, target.url.prefix()).await?;
    let foreign: Vec<&String> = files
        .iter()
        .filter(|(path, size)| !manifest.owns(path, *size))
        .map(|(path, _)| path)
        .collect();
    if let Some(first) = foreign.first() {
        return Err(plan_error(
            &target.shown,
            &format!(
                "refused: the folder holds {} file(s) that samplemix's COPY did not write there (e.g. '{}{}'); a COPY replaces a folder's files only when it wrote all of them. Write to a new or empty folder, or remove those files first. Nothing was changed",
                foreign.len(),
                target.shown.trim_end_matches('/').to_string() + "/",
                first
            ),
        ));
    }
    Ok(manifest)
}

async fn publish_file(target: &Target, temp: &ListingTableUrl) -> Result<()> {
    target
        .store
        .rename(temp.prefix(), target.url.prefix())
        .await?;
    Ok(())
}

/// Move a folder COPY's files into place: first a manifest naming old and new files (so a
/// crash at any point leaves only files a manifest owns), then the moves, then the removal of
/// old files the new output did not replace, then the manifest of the new files alone.
async fn publish_folder(
    target: &Target,
    temp: &ListingTableUrl,
    previous: &Manifest,
) -> Result<()> {
    let written = files_under(&target.store, temp.prefix()).await?;
    let new = Manifest {
        files: written
            .iter()
            .map(|(path, size)| (path.clone(), vec![*size]))
            .collect(),
    };
    write_manifest(target, &previous.union(&new)).await?;
    let to = target.url.prefix().as_ref().trim_end_matches('/');
    for (rest, _) in &written {
        let from = temp.prefix().clone().join_all(rest);
        let dest = Path::from(format!("{to}/{rest}"));
        target.store.rename(&from, &dest).await?;
    }
    let kept: HashSet<&String> = new.files.keys().collect();
    for old in previous.files.keys().filter(|p| !kept.contains(p)) {
        match target
            .store
            .delete(&Path::from(format!("{to}/{old}")))
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    write_manifest(target, &new).await?;
    if temp.scheme() == "file" {
        // The empty local folders left by the moves (and of old partitions).
        let _ = std::fs::remove_dir_all(FsPath::new("/").join(temp.prefix().as_ref()));
        remove_empty_dirs(&FsPath::new("/").join(to));
    }
    Ok(())
}

/// Remove empty folders below `dir` (not `dir` itself), deepest first.
fn remove_empty_dirs(dir: &FsPath) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty_dirs(&path);
            let _ = std::fs::remove_dir(&path);
        }
    }
}

trait JoinAll {
    fn join_all(self, rest: &str) -> Path;
}

impl JoinAll for Path {
    fn join_all(self, rest: &str) -> Path {
        Path::from(format!("{}/{rest}", self.as_ref().trim_end_matches('/')))
    }
}

/// Remove temporary output earlier COPYs to this target left beside it (a killed process, an
/// abandoned statement). Runs under the target's lock, so no COPY that owns them is running.
async fn remove_stale_temps(target: &Target) {
    let local = target.url.scheme() == "file";
    if local {
        // On a disk, object_store's listing hides its `#<n>` staging files: read the folder.
        let parent = FsPath::new("/").join(target.parent.as_ref());
        for entry in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            if target.is_our_temp(&entry.file_name().to_string_lossy()) {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                };
            }
        }
        return;
    }
    let Ok(listing) = target.store.list_with_delimiter(Some(&target.parent)).await else {
        return;
    };
    for meta in &listing.objects {
        if meta
            .location
            .filename()
            .is_some_and(|f| target.is_our_temp(f))
        {
            let _ = target.store.delete(&meta.location).await;
        }
    }
    for folder in &listing.common_prefixes {
        if folder.filename().is_some_and(|f| target.is_our_temp(f)) {
            remove_prefix(&target.store, folder, false).await;
        }
    }
}

/// Best-effort removal of one object or every object under a prefix (and, on a local disk,
/// the folders left empty and object_store's staging files).
async fn remove_prefix(store: &Arc<dyn ObjectStore>, prefix: &Path, local: bool) {
    if local {
        let path = FsPath::new("/").join(prefix.as_ref());
        if path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
        // object_store stages a local file as `<path>#<n>` before renaming it.
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name()) {
            let stem = format!("{}#", name.to_string_lossy());
            if let Ok(entries) = std::fs::read_dir(parent) {
                for entry in entries.flatten() {
                    if entry.file_name().to_string_lossy().starts_with(&stem) {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
        }
        return;
    }
    // One object: S3 answers a DELETE of a missing key with success, so ask first.
    if store.head(prefix).await.is_ok() && store.delete(prefix).await.is_ok() {
        return;
    }
    if let Ok(files) = store.list(Some(prefix)).try_collect::<Vec<_>>().await {
        for meta in files {
            let _ = store.delete(&meta.location).await;
        }
    }
}

/// The lock object of one COPY target, created only where none exists.
struct Lock {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

/// Who holds a lock: process, host and start time, as the lock object's text.
fn holder_text() -> String {
    format!(
        "pid={}\nhost={}\nsince={}\n",
        std::process::id(),
        host_name(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    )
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// "process 12 on host h, started 40 s ago" from a lock's text.
fn describe_holder(text: &str) -> String {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or("?")
    };
    let age = field("since=")
        .parse::<u64>()
        .ok()
        .and_then(|since| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs();
            Some(format!(", started {} s ago", now.saturating_sub(since)))
        })
        .unwrap_or_default();
    format!("process {} on host {}{age}", field("pid="), field("host="))
}

/// Whether the lock text names a process of this host that no longer runs (Linux: no
/// `/proc/<pid>`); elsewhere nothing is known to be gone.
fn holder_is_gone(text: &str) -> bool {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_string)
    };
    match (field("pid="), field("host=")) {
        (Some(pid), Some(host)) if host == host_name() && FsPath::new("/proc/self").exists() => {
            pid.parse::<u32>().is_ok_and(|pid| {
                pid != std::process::id() && !FsPath::new(&format!("/proc/{pid}")).exists()
            })
        }
        _ => false,
    }
}

impl Lock {
    async fn take(target: &Target) -> Result<Lock> {
        let path = target.lock_path();
        let store = Arc::clone(&target.store);
        for attempt in 0..2 {
            let put = store
                .put_opts(
                    &path,
                    PutPayload::from(holder_text().into_bytes()),
                    PutOptions::from(PutMode::Create),
                )
                .await;
            match put {
                Ok(_) => return Ok(Lock { store, path }),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let holder = match store.get(&path).await {
                        Ok(got) => got
                            .bytes()
                            .await
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_default(),
                        // Released between our PUT and this read: try again.
                        Err(object_store::Error::NotFound { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    if attempt == 0 && holder_is_gone(&holder) {
                        let _ = store.delete(&path).await;
                        continue;
                    }
                    let who = describe_holder(&holder);
                    return Err(DataFusionError::Execution(format!(
                        "COPY to '{}': another COPY to the same target is running ({who}); it holds the lock '{}'. Two writers are not allowed at one target: wait for it, or, if no such COPY runs any more, delete that lock object and rerun. Nothing was changed",
                        target.shown,
                        display_path(target, &path),
                    )));
                }
                Err(e) => {
                    return Err(DataFusionError::Context(
                        format!("COPY to '{}': cannot create its lock", target.shown),
                        Box::new(e.into()),
                    ))
                }
            }
        }
        Err(DataFusionError::Execution(format!(
            "COPY to '{}': cannot take the lock '{}'",
            target.shown,
            display_path(target, &path)
        )))
    }

    async fn release(self) {
        let _ = self.store.delete(&self.path).await;
    }
}

/// A store path as the user would write it (`/abs/path` or `s3://bucket/key`).
fn display_path(target: &Target, path: &Path) -> String {
    if target.url.scheme() == "file" {
        format!("/{path}")
    } else {
        format!("{}{path}", target.url.object_store().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_round_trip_and_union() {
        let a = Manifest {
            files: BTreeMap::from([("x.parquet".into(), vec![10]), ("s=1/y".into(), vec![3])]),
        };
        assert_eq!(Manifest::parse(&a.render()), Some(a.clone()));
        let b = Manifest {
            files: BTreeMap::from([("x.parquet".into(), vec![12])]),
        };
        let u = a.union(&b);
        assert!(u.owns("x.parquet", 10) && u.owns("x.parquet", 12) && u.owns("s=1/y", 3));
        assert!(!u.owns("x.parquet", 11) && !u.owns("z", 3));
        assert_eq!(Manifest::parse("not a manifest\n1\tx"), None);
        assert_eq!(Manifest::parse(&format!("{MANIFEST_HEADER}\nabc\tx")), None);
    }

    #[test]
    fn local_targets_resolve_dots_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("a")).unwrap();
        std::fs::write(real.join("a/file.parquet"), b"x").unwrap();
        std::os::unix::fs::symlink(real.join("a/file.parquet"), real.join("link.parquet")).unwrap();
        let r = |p: &str| resolve_local(&format!("{}/{p}", real.display())).unwrap();
        assert_eq!(r("a/./../a/new.parquet"), real.join("a/new.parquet"));
        assert_eq!(r("link.parquet"), real.join("a/file.parquet"));
        assert_eq!(r("./"), real);
        assert_eq!(r("missing/deeper/x"), real.join("missing/deeper/x"));
    }

    #[test]
    fn folder_rule_follows_datafusion() {
        assert!(folder_rule("out/", false, None));
        assert!(folder_rule("out", false, None));
        assert!(!folder_rule("out/x.parquet", false, None));
        assert!(folder_rule("out/x.parquet", true, None));
        assert!(folder_rule("out/x.parquet", false, Some("false")));
        assert!(!folder_rule("out/", false, Some("true")));
        assert!(folder_rule("s3://b/run/docs/", false, None));
    }
}
