"""`qaemb-fast corpus fetch | export | stats`: install the offline texts, write a corpus as JSONL, describe one."""

from __future__ import annotations

import argparse
import json
import sys

BUILTIN_NAMES = ("default", "austen", "mobydick", "wordnet")


def register(sub) -> None:
    p = sub.add_parser(
        "corpus",
        help="offline texts to label: fetch, export, stats",
        description="Texts for the teacher. `fetch` installs the offline corpora (Austen, Moby Dick, WordNet) "
        "from Debian packages without R; `export` writes one as JSONL; `stats` describes a corpus.",
    )
    p.set_defaults(_parser=p)
    csub = p.add_subparsers(dest="corpus_command", metavar="SUBCOMMAND")

    f = csub.add_parser("fetch", help="download + unpack the offline texts (apt-get download, dpkg-deb -x; no R)")
    f.add_argument(
        "--cache-dir",
        default=None,
        help="where to unpack (default $QAEMB_FAST_CACHE/corpora or ~/.cache/qaemb-fast/corpora)",
    )
    f.set_defaults(func=_fetch)

    e = csub.add_parser("export", help="write a builtin corpus as JSONL lines {text, doc_id}")
    e.add_argument("name", choices=BUILTIN_NAMES, help="which corpus (default = the student's training mix)")
    e.add_argument("--out", required=True, help="output .jsonl file")
    e.add_argument("--n", type=int, default=None, help="number of texts (default: 3300 for default, all otherwise)")
    e.add_argument("--seed", type=int, default=0, help="sampling/shuffle seed (default 0)")
    e.set_defaults(func=_export)

    s = csub.add_parser("stats", help="counts and hash of a corpus (file, folder or builtin:NAME[:N[:SEED]])")
    s.add_argument("spec", help="a .txt/.csv/.jsonl file, a folder, or builtin:NAME[:N[:SEED]]")
    s.add_argument("--text-field", default="text", help="text column/key (default: text)")
    s.add_argument(
        "--doc-field", default=None, help="document id column/key (default: doc_id if present, else the row number)"
    )
    s.set_defaults(func=_stats)


def _fetch(args) -> int:
    from distill.corpus import fetch_offline_corpora

    paths = fetch_offline_corpora(args.cache_dir, quiet=True)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _export(args) -> int:
    from pathlib import Path

    from distill.corpus import CorpusError, corpus_hash, load_builtin

    try:
        items = load_builtin(args.name, args.n, args.seed)
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps({"text": it.text, "doc_id": it.doc_id}, ensure_ascii=False) + "\n")
    print(f"wrote {len(items)} texts from {len({it.doc_id for it in items})} documents to {out} ({corpus_hash(items)})")
    return 0


def _stats(args) -> int:
    from distill.corpus import CorpusError, corpus_stats, load_corpus_spec

    try:
        items = load_corpus_spec(args.spec, text_field=args.text_field, doc_field=args.doc_field)
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(corpus_stats(items), indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    parser = argparse.ArgumentParser(prog="corpus")
    register(parser.add_subparsers())
    a = parser.parse_args()
    sys.exit(a.func(a))
