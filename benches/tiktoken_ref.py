"""Python tiktoken, offline: points it at the vocabularies tiktoken-rs ships in its crate.

Python tiktoken downloads its .tiktoken files on first use; this machine has no network, so we
seed tiktoken's own file cache (TIKTOKEN_CACHE_DIR, keyed by sha1 of the URL) with the byte-
identical files from the tiktoken-rs crate (tiktoken checks their sha256 itself).
"""
import glob
import hashlib
import os
import shutil
import tempfile

URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


def encoding(name="o200k_base"):
    cache = os.path.join(tempfile.gettempdir(), "samplemix-tiktoken-cache")
    os.makedirs(cache, exist_ok=True)
    os.environ["TIKTOKEN_CACHE_DIR"] = cache
    target = os.path.join(cache, hashlib.sha1(URL.format(name).encode()).hexdigest())
    if not os.path.exists(target):
        home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
        found = sorted(glob.glob(f"{home}/registry/src/*/tiktoken-rs-*/assets/{name}.tiktoken"))
        if not found:
            raise SystemExit(f"{name}.tiktoken not found: build samplemix first (cargo build) so tiktoken-rs is in {home}/registry")
        shutil.copy(found[-1], target)
    import tiktoken

    return tiktoken.get_encoding(name)
