"""Build benches/data/web_pairs.parquet: real web pages as (raw page text, clean article text) pairs.

Two public sets, each page with its raw HTML and a clean article made by people:
- scrapinghub/article-extraction-benchmark (MIT): html/*.html.gz + ground-truth.json
  (`articleBody`, written by annotators).
- mozilla/readability test pages (Apache-2.0): test/test-pages/*/source.html + expected.html
  (the article as Readability extracts it, checked and committed by its maintainers).

raw   = the whole page's visible text: a plain HTML-to-text pass (Python's html.parser; text of
        <head>, <script>, <style>, <noscript>, <template>, <svg> dropped; block elements and <br>
        end a line; whitespace inside a line collapsed). No article extraction.
clean = the ground-truth article (scrapinghub: the annotators' text; readability: expected.html
        through the same HTML-to-text pass).
Left out: pairs whose clean text has fewer than 50 words; pairs whose raw text adds less than 10%
characters to the clean text (no page around the article to judge); pages whose article is
"Lorem ipsum" filler (Readability's synthetic test fixtures, not real pages).

Usage: python3 benches/quality_web_data.py SCRAPINGHUB_GIT_DIR READABILITY_GIT_DIR [OUT]
  where each *_GIT_DIR is a clone (or a bare git dir) of the repository above; the script reads
  files with `git show HEAD:path`, so a bare mirror works. Needs: pyarrow.
"""
import gzip
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pyarrow as pa
import pyarrow.parquet as pq

SKIP = {"head", "script", "style", "noscript", "template", "svg", "iframe", "object"}
BLOCK = {
    "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul", "option", "button", "label",
}
VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track", "wbr"}


class Text(HTMLParser):
    """Visible text, one line per block element."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.parts = []

    def handle_starttag(self, tag, attrs):
        if tag in SKIP and tag not in VOID:
            self.skip += 1
        elif tag in BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def text(self):
        lines = (re.sub(r"\s+", " ", l).strip() for l in "".join(self.parts).split("\n"))
        return "\n".join(l for l in lines if l)


def html_to_text(html):
    p = Text()
    p.feed(html)
    p.close()
    return p.text()


def git_show(repo, path):
    return subprocess.run(["git", "-C", repo, "show", f"HEAD:{path}"], check=True, capture_output=True).stdout


def git_ls(repo, path):
    out = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", f"HEAD:{path}"],
                         check=True, capture_output=True, text=True).stdout
    return sorted(out.split())


def decode(b):
    m = re.search(rb'charset=["\']?([A-Za-z0-9_-]+)', b[:4096])
    for enc in ([m.group(1).decode()] if m else []) + ["utf-8"]:
        try:
            return b.decode(enc)
        except (LookupError, UnicodeDecodeError):
            pass
    return b.decode("utf-8", errors="replace")


def scrapinghub(repo):
    truth = json.loads(git_show(repo, "ground-truth.json"))
    for key in sorted(truth):
        html = decode(gzip.decompress(git_show(repo, f"html/{key}.html.gz")))
        yield key, truth[key].get("url", ""), html_to_text(html), truth[key]["articleBody"].strip()


def readability(repo):
    for name in git_ls(repo, "test/test-pages"):
        base = f"test/test-pages/{name}"
        source = decode(git_show(repo, f"{base}/source.html"))
        expected = decode(git_show(repo, f"{base}/expected.html"))
        yield name, "", html_to_text(source), html_to_text(expected)


def main():
    sh, rd = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "data/web_pairs.parquet")
    rows = []
    for set_name, pages in (("scrapinghub", scrapinghub(sh)), ("readability", readability(rd))):
        kept = dropped = 0
        for page, url, raw, clean in pages:
            if (len(clean.split()) < 50 or len(raw) < 1.1 * len(clean)
                    or "lorem ipsum" in clean.lower()):
                dropped += 1
                continue
            kept += 1
            rows.append({"set": set_name, "page": page, "url": url, "raw": raw, "clean": clean})
        print(f"{set_name}: {kept} pairs kept, {dropped} left out", file=sys.stderr)
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, out, compression="zstd", compression_level=19)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
