"""Build sample_data/books.csv: short passages from six public-domain novels, labelled by book.

The source is the plain-text copies of Project Gutenberg books kept in the GitHub repository
github.com/hobil/gutenberg (commit 18440c67b35809afc2abbf2b9f46340ef8317e38, directory
books/), one paragraph per line, with the Project Gutenberg header and licence already
removed.  Get them with

    git clone https://github.com/hobil/gutenberg && git -C gutenberg checkout 18440c67b358

and run

    python sample_data/make_books.py gutenberg/books [--out sample_data/books.csv]

The input files are checked against the sha256 sums below, so the output is byte-identical
on every machine (standard library only; no randomness beyond a seeded ``random.Random``).

What it does, per book: drop the front matter (everything before the first line that starts
the story, in ``BOOKS`` below) and Scott's notes after the end of Ivanhoe, every paragraph that mentions Project Gutenberg (there is one, a
transcriber's note in Moby Dick, and it is front matter anyway), headings (lines in capitals
or starting with CHAPTER/ADVENTURE/BOOK), footnotes, and lines of fewer than 4 words; join
short consecutive paragraphs and cut long ones at sentence ends into passages of 30 to 120
words; keep ``PER_BOOK`` passages chosen at random (seed 17); shuffle all rows (seed 17).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import re
import sys
from pathlib import Path

# category -> (file in books/, sha256 of that file, first words of the story proper)
BOOKS: dict[str, tuple[str, str, str]] = {
    "austen-pride": (
        "pride_and_prejudice.txt",
        "4415324654fe0b5cc1d8deb67cf3c7f01a811070c94fbccf5f723377e32827ed",
        "It is a truth universally acknowledged",
    ),
    "melville-moby-dick": (
        "moby_dick.txt",
        "8985b6a39833c1e34e2fa06fd9cfcbfa3b17962c7cb92602faf5a5772bba0ff2",
        "Call me Ishmael.",
    ),
    "doyle-sherlock": (
        "sherlock.txt",
        "02c9eb76d0162f655a590391f8832d91977ae56383484ba02cf5a0a42954bab4",
        "To Sherlock Holmes she is always THE woman.",
    ),
    "twain-tom-sawyer": (
        "tom_sawyer.txt",
        "cade50d3fe7fd52d418eda2a1eaf531f37c560d4ba0f4eb0205415122c4ed57f",
        '"TOM!"',
    ),
    "scott-ivanhoe": (
        "ivanhoe.txt",
        "b483d1cb81b0f8a047cfd1703780203ed801ec84bb72c27561c6851b8b593c37",
        "In that pleasant district of merry England",
    ),
    "wells-war-worlds": (
        "war_of_the_worlds.txt",
        "408f216fd5ba2a81065667476f2b77b01c311b4ae74763bbdafd2402890119f9",
        "No one would have believed",
    ),
}
PER_BOOK = 500
MIN_WORDS, MAX_WORDS = 30, 120
SEED = 17
END_MATTER = "\nNOTE TO CHAPTER I."  # Scott's notes after the end of Ivanhoe

_HEADING = re.compile(r"^(CHAPTER|ADVENTURE|BOOK|VOLUME|PART)\b|^[^a-z]*$")
_FOOTNOTE = re.compile(r"^\s*\[?(Footnote|\{\d+\})")
_SENTENCE_END = re.compile(r'(?<=[.!?])\s+|(?<=[.!?]["\')\]])\s+')


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def paragraphs(text: str, start: str) -> list[str]:
    """The story's paragraphs (one per line in the source), front and back matter out."""
    at = text.find(start)
    if at < 0:
        raise SystemExit(f"Error: the opening {start!r} is not in the file")
    text = text[at:]
    end = text.find(END_MATTER)
    if end >= 0:
        text = text[:end]
    out = []
    for line in text.splitlines():
        line = " ".join(line.split())
        if (
            len(line.split()) < 4
            or _HEADING.match(line)
            or _FOOTNOTE.match(line)
            or "gutenberg" in line.lower()
        ):
            continue
        out.append(line)
    return out


def sentences(paragraph: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(paragraph) if s]


def passages(paras: list[str]) -> list[str]:
    """Paragraphs joined or cut (at sentence ends) into passages of MIN_WORDS..MAX_WORDS words."""
    out: list[str] = []
    current: list[str] = []
    n = 0
    for para in paras:
        for sent in sentences(para):
            w = len(sent.split())
            if w > MAX_WORDS:  # one very long sentence: a passage of its own, cut at MAX_WORDS
                if n >= MIN_WORDS:
                    out.append(" ".join(current))
                current, n = [], 0
                out.append(" ".join(sent.split()[:MAX_WORDS]))
                continue
            if n + w > MAX_WORDS:
                if n >= MIN_WORDS:
                    out.append(" ".join(current))
                current, n = [], 0
            current.append(sent)
            n += w
        if n >= MIN_WORDS:  # a passage ends at a paragraph end once it is long enough
            out.append(" ".join(current))
            current, n = [], 0
    if n >= MIN_WORDS:
        out.append(" ".join(current))
    return out


def build(source: Path) -> list[tuple[str, str]]:
    rng = random.Random(SEED)
    rows: list[tuple[str, str]] = []
    for category, (name, digest, start) in BOOKS.items():
        path = source / name
        if not path.is_file():
            raise SystemExit(f"Error: {path} not found (see this script's docstring)")
        got = sha256(path)
        if digest and got != digest:
            raise SystemExit(f"Error: {path} has sha256 {got}, expected {digest}")
        chunks = passages(paragraphs(path.read_text(encoding="utf-8"), start))
        if len(chunks) < PER_BOOK:
            raise SystemExit(f"Error: {name} gives only {len(chunks)} passages")
        keep = sorted(rng.sample(range(len(chunks)), PER_BOOK))
        rows.extend((chunks[i], category) for i in keep)
    rng.shuffle(rows)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="the books/ directory of hobil/gutenberg")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("books.csv"))
    args = ap.parse_args(argv)
    rows = build(args.source)
    tmp = args.out.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["text", "book"])
        writer.writerows(rows)
    tmp.replace(args.out)
    counts: dict[str, int] = {}
    for _, cat in rows:
        counts[cat] = counts.get(cat, 0) + 1
    words = [len(t.split()) for t, _ in rows]
    print(
        f"{args.out}: {len(rows)} rows, {args.out.stat().st_size} bytes, "
        f"words per passage {min(words)}..{max(words)} (mean {sum(words) / len(words):.1f})",
        file=sys.stderr,
    )
    for cat, c in counts.items():
        print(f"  {cat}: {c}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
