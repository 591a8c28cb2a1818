"""Corpus readers, context windows, hashing, and the real offline corpora (Austen, Moby Dick, WordNet)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from distill.corpus import (
    CorpusError,
    CorpusItem,
    austen_chapters,
    austen_sentences,
    build_default_corpus,
    context_windows,
    corpus_hash,
    corpus_stats,
    fetch_offline_corpora,
    load_corpus_spec,
    moby_dick_chapters,
    moby_dick_words,
    read_corpus,
    word_stream_to_items,
    wordnet_examples,
)

# --------------------------------------------------------------------------------------------------- windows / hash


def test_context_windows_hand_written():
    words = ["a", "b", "c", "d", "e"]
    assert context_windows(words, size=2) == ["a", "a b", "a b c", "b c d", "c d e"]
    assert context_windows(words, size=0) == words
    assert context_windows([], size=10) == []
    # Default is the paper's word + preceding 10: the 12th word's window starts at word 2.
    ws = [f"w{i}" for i in range(12)]
    assert context_windows(ws)[11] == " ".join(ws[1:12])
    assert len(context_windows(ws)[11].split()) == 11


def test_word_stream_to_items_stride_offset():
    words = [str(i) for i in range(10)]
    items = word_stream_to_items(words, "doc", size=3, stride=4, offset=3)
    assert items == [CorpusItem("0 1 2 3", "doc"), CorpusItem("4 5 6 7", "doc")]
    assert [it.text for it in word_stream_to_items(words, "d", size=3)] == context_windows(words, size=3)
    with pytest.raises(CorpusError, match="stride"):
        word_stream_to_items(words, "d", stride=0)


def test_corpus_hash_deterministic_and_sensitive():
    a = [CorpusItem("one text", "d0"), CorpusItem("two", "d1")]
    h = corpus_hash(a)
    assert h.startswith("sha256:") and len(h) == 7 + 64
    assert corpus_hash([CorpusItem("one text", "d0"), CorpusItem("two", "d1")]) == h
    assert corpus_hash(a[::-1]) != h  # order matters
    assert corpus_hash([CorpusItem("one text", "d0"), CorpusItem("two", "d9")]) != h  # doc ids matter
    # No separator ambiguity: moving a boundary between text and doc id changes the hash.
    assert corpus_hash([CorpusItem("ab", "c")]) != corpus_hash([CorpusItem("a", "bc")])


# --------------------------------------------------------------------------------------------------- file readers


def test_txt_paragraphs_are_documents(tmp_path):
    p = tmp_path / "story.txt"
    p.write_text("First line.\nSecond line.\n\n\nNew paragraph.\n  \nLast one.\n")
    items = read_corpus(p)
    assert [it.text for it in items] == ["First line.", "Second line.", "New paragraph.", "Last one."]
    assert [it.doc_id for it in items] == ["story:0", "story:0", "story:1", "story:2"]


def test_txt_without_blank_lines_one_document_per_line(tmp_path):
    p = tmp_path / "lines.txt"
    p.write_text("alpha\nbeta\ngamma\n")
    assert [it.doc_id for it in read_corpus(p)] == ["lines:0", "lines:1", "lines:2"]


def test_txt_windows_whole_file_is_one_document(tmp_path):
    p = tmp_path / "tale.txt"
    p.write_text("a b c\n\nd e\n")
    items = read_corpus(p, windows=2)
    assert [it.text for it in items] == context_windows(["a", "b", "c", "d", "e"], size=2)
    assert {it.doc_id for it in items} == {"tale"}
    assert [it.text for it in read_corpus(p, windows=2, stride=2)] == ["a", "a b c", "c d e"]


def test_csv_fields_and_empty_rows(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('body,story\n"hello, world",s1\n,s1\nbye,s2\n')
    with pytest.warns(UserWarning, match="skipped 1 empty"):
        items = read_corpus(p, text_field="body", doc_field="story")
    assert items == [CorpusItem("hello, world", "s1"), CorpusItem("bye", "s2")]
    with pytest.warns(UserWarning):
        default_ids = [it.doc_id for it in read_corpus(p, text_field="body")]
    assert default_ids == ["0", "2"]  # row numbers, counting the skipped row
    with pytest.raises(CorpusError, match=r"no text field 'text'.*\['body', 'story'\]"):
        read_corpus(p)
    with pytest.raises(CorpusError, match="no doc id field 'nope'"):
        read_corpus(p, text_field="body", doc_field="nope")


def test_jsonl_reader_doc_id_roundtrip_and_windows(tmp_path):
    p = tmp_path / "t.jsonl"
    rows = [{"text": "x y z", "doc_id": "A"}, {"text": "p q", "doc_id": "B"}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert read_corpus(p) == [CorpusItem("x y z", "A"), CorpusItem("p q", "B")]  # "doc_id" used when present
    assert read_corpus(p, windows=1) == [
        CorpusItem("x", "A"),
        CorpusItem("x y", "A"),
        CorpusItem("y z", "A"),
        CorpusItem("p", "B"),
        CorpusItem("p q", "B"),
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json\n')
    with pytest.raises(CorpusError, match="bad.jsonl:2"):
        read_corpus(bad)


def test_datasets_folder(tmp_path):
    from datasets import Dataset, DatasetDict

    ds = Dataset.from_dict({"sentence": ["one", "", "three"], "story": ["a", "a", "b"]})
    ds.save_to_disk(str(tmp_path / "ds"))
    with pytest.warns(UserWarning, match="skipped 1 empty"):
        items = read_corpus(tmp_path / "ds", text_field="sentence", doc_field="story")
    assert items == [CorpusItem("one", "a"), CorpusItem("three", "b")]
    with pytest.raises(CorpusError, match=r"no text column 'text'.*sentence"):
        read_corpus(tmp_path / "ds")
    DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(CorpusError, match="DatasetDict.*train"):
        read_corpus(tmp_path / "dd", text_field="sentence")


def test_folder_of_files_prefixes_row_ids(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "first"}\n')
    (tmp_path / "b.csv").write_text("text\nsecond\n")
    (tmp_path / "notes.md").write_text("ignored")
    items = read_corpus(tmp_path)
    assert items == [CorpusItem("first", "a:0"), CorpusItem("second", "b:0")]
    assert load_corpus_spec(str(tmp_path)) == items


def test_reader_errors(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        read_corpus(tmp_path / "missing.txt")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(CorpusError, match=r"unknown corpus format '\.parquet'"):
        read_corpus(tmp_path / "x.parquet")
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(CorpusError, match="no non-empty texts"):
        read_corpus(tmp_path / "empty.txt")
    (tmp_path / "sub").mkdir()
    with pytest.raises(CorpusError, match="neither a `datasets` folder"):
        read_corpus(tmp_path / "sub")


def test_spec_errors():
    with pytest.raises(CorpusError, match="unknown builtin corpus 'nope'"):
        load_corpus_spec("builtin:nope")
    with pytest.raises(CorpusError, match="must be integers"):
        load_corpus_spec("builtin:wordnet:many")
    with pytest.raises(CorpusError, match="expected builtin:NAME"):
        load_corpus_spec("builtin:")


# --------------------------------------------------------------------------------------------------- offline format


def test_lazyload_blob_all_compressions():
    import bz2
    import lzma
    import struct
    import zlib

    from distill.corpus import _decompress_blob

    raw = b"RDS stream bytes " * 50
    head = struct.pack(">I", len(raw))
    lz = lzma.compress(raw, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    for blob in (head + zlib.compress(raw), head + b"Z" + lz, head + b"2" + bz2.compress(raw), head + b"0" + raw):
        assert _decompress_blob(blob) == raw
    with pytest.raises(CorpusError, match="expected"):
        _decompress_blob(struct.pack(">I", 3) + zlib.compress(raw))
    with pytest.raises(CorpusError, match="corrupt"):
        _decompress_blob(head + b"x\x9cgarbage")


def test_fetch_is_noop_when_files_exist(tmp_path, monkeypatch):
    import distill.corpus as corpus

    for _, rel in corpus.OFFLINE_PACKAGES.values():
        (tmp_path / "root" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "root" / rel).write_bytes(b"")

    def no_subprocess(*a, **k):
        raise AssertionError(f"fetch ran {a} although the files exist")

    monkeypatch.setattr(corpus.subprocess, "run", no_subprocess)
    paths = fetch_offline_corpora(tmp_path, quiet=True)
    assert set(paths) == {"austen", "mobydick", "wordnet"} and all(p.exists() for p in paths.values())


# --------------------------------------------------------------------------------------------------- real corpora


@pytest.fixture(scope="module")
def offline():
    try:
        return fetch_offline_corpora(quiet=True)
    except (CorpusError, OSError) as e:
        pytest.skip(f"offline corpora cannot be fetched here (run `qaemb-fast corpus fetch`): {e}")


def test_austen(offline):
    chapters = austen_chapters()
    per_book = Counter(doc.split("/")[1] for doc, _ in chapters)
    # Chapter counts of the six novels (Emma's three volumes restart their numbering; we count on).
    assert per_book == {
        "sensesensibility": 50,
        "prideprejudice": 61,
        "mansfieldpark": 48,
        "emma": 55,
        "northangerabbey": 31,
        "persuasion": 24,
    }
    assert len({doc for doc, _ in chapters}) == len(chapters)
    docs = dict(chapters)
    assert " ".join(docs["austen/prideprejudice/ch001"][:9]) == "It is a truth universally acknowledged, that a single"
    assert docs["austen/emma/ch055"][-1] == "union."
    assert 650_000 < sum(len(w) for w in docs.values()) < 800_000
    text = " ".join(w for ws in docs.values() for w in ws)
    assert "_" not in text and "CHAPTER" not in text and "--" not in text
    sents = austen_sentences()
    assert 25_000 < len(sents) < 50_000 and all(s.doc_id.startswith("austen/") for s in sents[:100])


def test_moby_dick(offline):
    chapters = moby_dick_chapters()
    assert [d for d, _ in chapters][:2] == ["mobydick/ch001", "mobydick/ch002"]
    assert len(chapters) == 136 and chapters[-1][0] == "mobydick/epilogue"
    words = moby_dick_words()
    assert words[:3] == ["Call", "me", "Ishmael."]
    assert 190_000 < len(words) < 230_000
    assert "Gutenberg" not in " ".join(words[-200:])


def test_wordnet(offline):
    ex = wordnet_examples()
    assert len(ex) > 40_000
    assert len({e.text for e in ex}) == len(ex)
    sizes = Counter(e.doc_id for e in ex)
    assert {d.split("/")[1] for d in sizes} == {"noun", "verb", "adj", "adv"}
    assert 15 <= sorted(sizes.values())[len(sizes) // 2] <= 30  # median document ~20 sentences
    assert not any('"' in e.text or "|" in e.text for e in ex)


def test_default_corpus(offline):
    items = build_default_corpus(n_texts=300, seed=5)
    assert items == build_default_corpus(n_texts=300, seed=5)
    assert corpus_hash(items) != corpus_hash(build_default_corpus(n_texts=300, seed=6))
    stats = corpus_stats(items)
    assert stats["texts"] == 300 and stats["unique_texts"] == 300
    assert stats["sources"] == {"austen": 120, "mobydick": 90, "wordnet": 90}
    assert stats["documents"] > 150  # drawn from many chapters / WordNet groups
    for it in items:
        if not it.doc_id.startswith("wordnet/"):
            assert len(it.text.split()) == 11  # full windows: word + preceding 10
    # Shuffled: the first 60 items already mix all three sources.
    assert {it.doc_id.split("/")[0] for it in items[:60]} == {"austen", "mobydick", "wordnet"}
    assert load_corpus_spec("builtin:default:300:5") == items
    with pytest.raises(CorpusError, match="only"):
        load_corpus_spec("builtin:wordnet:10000000")


def test_cli_export_and_stats(offline, tmp_path, capsys):
    from qaemb_cli.main import main

    out = tmp_path / "wn.jsonl"
    assert main(["corpus", "export", "wordnet", "--n", "25", "--seed", "1", "--out", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 25 and set(lines[0]) == {"text", "doc_id"}
    expected = corpus_hash(load_corpus_spec("builtin:wordnet:25:1"))
    assert expected in capsys.readouterr().out
    assert main(["corpus", "stats", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["hash"] == expected  # export -> read round-trips
