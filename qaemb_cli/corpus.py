"""`qaemb-fast corpus fetch | export | stats`: install the offline texts, write a corpus as JSONL, describe one."""

from __future__ import annotations

import json
from pathlib import Path

from distill.corpus import BUILTIN, load_builtin
from qaemb_cli.options import add_command_group


def register(sub) -> None:
    csub = add_command_group(
        sub,
        "corpus",
        help="offline texts to label: fetch, export, stats",
        description="Texts for the teacher. `fetch` installs the offline corpora (Austen, Moby Dick, WordNet) "
        "from Debian packages without R; `export` writes one as JSONL; `stats` describes a corpus.",
    )

    f = csub.add_parser("fetch", help="download + unpack the offline texts (apt-get download, dpkg-deb -x; no R)")
    f.add_argument(
        "--cache-dir",
        default=None,
        help="where to unpack (default $QAEMB_FAST_CACHE/corpora or ~/.cache/qaemb-fast/corpora)",
    )
    f.set_defaults(func=cmd_corpus_fetch)

    e = csub.add_parser("export", help="write a builtin corpus as JSONL lines {text, doc_id}")
    e.add_argument("name", choices=list(BUILTIN), help="which corpus (default = the student's training mix)")
    e.add_argument("--out", required=True, help="output .jsonl file")
    e.add_argument("--n", type=int, default=None, help="number of texts (default: 3300 for default, all otherwise)")
    e.add_argument("--seed", type=int, default=0, help="sampling/shuffle seed (default 0)")
    e.set_defaults(func=cmd_corpus_export)

    s = csub.add_parser("stats", help="counts and hash of a corpus (file, folder or builtin:NAME[:N[:SEED]])")
    s.add_argument("spec", help="a .txt/.csv/.jsonl file, a folder, or builtin:NAME[:N[:SEED]]")
    s.add_argument("--text-field", default="text", help="text column/key (default: text)")
    s.add_argument(
        "--doc-field", default=None, help="document id column/key (default: doc_id if present, else the row number)"
    )
    s.set_defaults(func=cmd_corpus_stats)


def cmd_corpus_fetch(args) -> int:
    from distill.corpus import fetch_offline_corpora

    paths = fetch_offline_corpora(args.cache_dir, quiet=True)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def cmd_corpus_export(args) -> int:
    from distill.corpus import corpus_hash

    items = load_builtin(args.name, args.n, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps({"text": it.text, "doc_id": it.doc_id}, ensure_ascii=False) + "\n")
    print(f"wrote {len(items)} texts from {len({it.doc_id for it in items})} documents to {out} ({corpus_hash(items)})")
    return 0


def cmd_corpus_stats(args) -> int:
    from distill.corpus import corpus_stats, load_corpus_spec

    items = load_corpus_spec(args.spec, text_field=args.text_field, doc_field=args.doc_field)
    print(json.dumps(corpus_stats(items), indent=2))
    return 0
