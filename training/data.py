"""The LightningDataModule over labelled-dataset folders (written by `qaemb-fast label`).

    DIR/provenance.json + DIR/dataset/  --load_labelled_dataset-->  rows (text, doc_id, answers[Q])
      (several folders: --load_labelled_mix--> one table over the union of their questions; NaN = not asked)
      --split by doc_id-->  train / val / test   --tokenize once-->  token ids per text
      --length-bucketed batches, dynamic padding-->  {"input_ids", "attention_mask", "targets"}

Why split by document: consecutive windows of one story overlap almost word for word (the paper's 10-grams share
10 of their 11 words with the next one), so a random row split would test on texts the model has already seen.
Why NaN: a sparse labelling job (`--questions-per-text K`) asks each text a sample of its questions, and folders
labelled with different question sets are trained on together; the loss and the metrics skip the pairs that were
never asked, so a dense folder is the special case with no NaN.
Why length buckets: padding every batch to the longest text wastes most of the compute on short windows; sorting
inside buckets of ~50 batches keeps batches uniform in length while the bucket order stays random.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from distill.labelled_dataset import ANSWERS, DOC_ID, TEXT, LabelledDatasetError, load_labelled_dataset

SPLITS = ("train", "val", "test")


# ----------------------------------------------------------------------------- splitting by document


def split_by_document(doc_ids, val_fraction=0.1, test_fraction=0.1, seed=0) -> dict[str, np.ndarray]:
    """Assign whole documents to train/val/test: {"train": row indices, "val": ..., "test": ...}.

    doc_ids: (n,) document id of each row. Documents are shuffled with `seed`, then test takes documents until it
    holds at least `test_fraction` of the rows, val likewise, train the rest; so fractions are of texts, not of
    documents, which matters when documents differ in size (six novels vs thousands of reviews). A split with a
    non-zero fraction gets at least one document. Deterministic for a given (doc_ids, fractions, seed).
    """
    doc_ids = np.asarray([str(d) for d in doc_ids])
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"need 0 <= val_fraction, test_fraction and val + test < 1, got {val_fraction}, {test_fraction}"
        )
    docs, inverse, counts = np.unique(doc_ids, return_inverse=True, return_counts=True)
    needed = 1 + (val_fraction > 0) + (test_fraction > 0)
    if len(docs) < needed:
        raise LabelledDatasetError(
            f"splitting by document needs at least {needed} documents (train"
            + (", val" if val_fraction > 0 else "")
            + (", test" if test_fraction > 0 else "")
            + f"), but the dataset has {len(docs)} distinct doc_id(s). Label more documents, give long texts "
            "several doc_ids (e.g. one per chapter), or set the val/test fractions to 0."
        )
    order = np.random.default_rng(seed).permutation(len(docs))
    n, assigned, pos = len(doc_ids), {}, 0
    # Fill test, then val; each stops early enough to leave one document for every split still to come.
    for name, fraction, keep in (("test", test_fraction, 1 + (val_fraction > 0)), ("val", val_fraction, 1)):
        taken = 0
        while fraction > 0 and taken < fraction * n and len(docs) - pos > keep:
            assigned[order[pos]] = name
            taken += counts[order[pos]]
            pos += 1
    doc_split = np.array([assigned.get(i, "train") for i in range(len(docs))])
    row_split = doc_split[inverse]
    out = {name: np.flatnonzero(row_split == name) for name in SPLITS}
    # The guarantee everything downstream relies on: no document on two sides.
    seen = [set(doc_ids[idx]) for idx in out.values()]
    if seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2]:
        raise AssertionError("split_by_document put a document on two sides")  # a bug, not a user error
    return out


def split_folders_by_document(doc_ids, folder, val_fraction=0.1, test_fraction=0.1, seed=0) -> dict[str, np.ndarray]:
    """`split_by_document` over rows from several labelled folders (folder: (n,) index of each row's folder).

    The first folder is split exactly as on its own, so a student trained on it alone and one trained on a mix hold
    out the same documents of it; each later folder's documents keep the side an earlier folder gave them, and its
    new documents are split among themselves. No document is ever on two sides."""
    doc_ids, folder = np.asarray([str(d) for d in doc_ids]), np.asarray(folder)
    side: dict[str, str] = {}
    for f in np.unique(folder):
        rows = np.flatnonzero(folder == f)
        new = rows[[d not in side for d in doc_ids[rows]]]
        if len(new) and len(set(doc_ids[new])) >= 1 + (val_fraction > 0) + (test_fraction > 0):
            for name, idx in split_by_document(doc_ids[new], val_fraction, test_fraction, seed).items():
                side.update((d, name) for d in doc_ids[new][idx])
        else:  # too few new documents to split: they train
            side.update((d, "train") for d in doc_ids[new])
    row_side = np.array([side[d] for d in doc_ids])
    return {name: np.flatnonzero(row_side == name) for name in SPLITS}


def load_labelled_mix(data_dirs, questions=None):
    """Rows of several labelled folders as one table: (texts, doc_ids, answers (n, Q) float32 with NaN where a
    question was not asked, questions (Q,), folder (n,) index, provenances).

    questions: None = the union of the folders' questions, in order of first appearance; else exactly these (a
    single folder must answer them all, in order, as `load_labelled_dataset` checks). NaN is accepted only from
    sparse folders (`--questions-per-text`); a dense folder with NaN or answers outside [0, 1] is an error."""
    dirs = [Path(d) for d in data_dirs]
    tables, union = [], {}
    for d in dirs:
        ds, provenance, qs = load_labelled_dataset(d, questions=questions if len(dirs) == 1 else None)
        try:
            answers = np.asarray(ds.with_format("numpy")[ANSWERS], dtype=np.float32)
        except ValueError as e:  # ragged rows: some texts have a different number of answers
            raise LabelledDatasetError(f"{d}: answer rows differ in length ({e})") from e
        if answers.ndim != 2 or answers.shape != (len(ds), len(qs)):
            raise LabelledDatasetError(f"{d}: answers have shape {answers.shape}, expected ({len(ds)}, {len(qs)})")
        asked = ~np.isnan(answers)
        if (not provenance.get("questions_per_text") and not asked.all()) or np.isinf(answers).any():
            raise LabelledDatasetError(f"{d}: answers must be probabilities in [0, 1] (found NaN or out of range)")
        if answers[asked].size and (answers[asked].min() < 0 or answers[asked].max() > 1):
            raise LabelledDatasetError(f"{d}: answers must be probabilities in [0, 1] (found NaN or out of range)")
        tables.append((list(ds[TEXT]), list(ds[DOC_ID]), answers, list(qs.questions), provenance))
        union.update((q, None) for q in qs.questions)
    wanted = list(union) if questions is None or len(dirs) > 1 else list(tables[0][3])
    if questions is not None and len(dirs) > 1:
        from qaemb_fast.questions import as_question_set

        wanted = list(as_question_set(questions).questions)
        missing = [q for q in wanted if q not in union]
        if missing:
            raise LabelledDatasetError(f"no folder answers {len(missing)} requested question(s), e.g. {missing[0]!r}")
    column = {q: k for k, q in enumerate(wanted)}
    texts, doc_ids, rows, folder = [], [], [], []
    for f, (t, docs, answers, qs, _) in enumerate(tables):
        full = np.full((len(t), len(wanted)), np.nan, dtype=np.float32)
        keep = [j for j, q in enumerate(qs) if q in column]
        full[:, [column[qs[j]] for j in keep]] = answers[:, keep]
        texts += t
        doc_ids += docs
        rows.append(full)
        folder += [f] * len(t)
    return texts, doc_ids, np.concatenate(rows), wanted, np.array(folder), [tab[4] for tab in tables]


# ----------------------------------------------------------------------------- batching


class TokenizedTexts(Dataset):
    """Pre-tokenized texts with their teacher answers: item i -> (token ids list, answers (Q,) float32, i)."""

    def __init__(self, input_ids: list[list[int]], targets: np.ndarray):
        assert len(input_ids) == len(targets)
        self.input_ids, self.targets = input_ids, targets
        self.lengths = np.array([len(ids) for ids in input_ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i):
        return self.input_ids[i], self.targets[i], i


class LengthBucketBatchSampler(BatchSampler):
    """Batches of similar-length texts: take `bucket_batches` batches' worth of indices in the sampler's order,
    sort them by length, cut into batches, then shuffle the batch order (when `shuffle`).

    It subclasses BatchSampler and takes the `sampler` argument by that name so Lightning can swap in a
    DistributedSampler under DDP: each rank then buckets its own shard. Same number of batches as a plain
    BatchSampler with the same sampler, batch_size and drop_last.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool, lengths, bucket_batches: int = 50,
                 shuffle: bool = False, seed: int = 0):  # fmt: skip
        super().__init__(sampler, batch_size, drop_last)
        self.lengths = np.asarray(lengths)
        self.bucket_batches, self.shuffle, self.seed = max(1, int(bucket_batches)), shuffle, seed
        self._epoch = 0  # advances every pass, so each epoch gets a new batch order (reproducible from seed)

    def __iter__(self):
        indices = list(self.sampler)
        size = self.batch_size * self.bucket_batches
        batches = []
        for start in range(0, len(indices), size):
            bucket = sorted(indices[start : start + size], key=lambda i: self.lengths[i])
            batches += [bucket[j : j + self.batch_size] for j in range(0, len(bucket), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()  # buckets hold whole batches, so only the very last batch can be short
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self._epoch)
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        self._epoch += 1
        return iter(batches)


class PadCollator:
    """Dynamic padding: pad each batch to its own longest text. A class (not a lambda) so workers can pickle it."""

    def __init__(self, pad_token_id: int, padding_side: str = "right"):
        self.pad_token_id, self.padding_side = int(pad_token_id), padding_side

    def __call__(self, items) -> dict[str, torch.Tensor]:
        width = max(len(ids) for ids, _, _ in items)
        input_ids = torch.full((len(items), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, (ids, _, _) in enumerate(items):
            span = slice(0, len(ids)) if self.padding_side == "right" else slice(width - len(ids), width)
            input_ids[row, span] = torch.as_tensor(ids, dtype=torch.long)
            attention_mask[row, span] = 1
        targets = torch.from_numpy(np.stack([t for _, t, _ in items])).float()
        # The row index lets evaluation drop the rows DistributedSampler repeats to even out the processes.
        index = torch.tensor([i for _, _, i in items], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "targets": targets, "index": index}


# ----------------------------------------------------------------------------- the DataModule


class LabelledDataModule(L.LightningDataModule):
    """Train/val/test dataloaders over one or several labelled-dataset folders, split by document.

    data_dir: a folder, or a list of folders (trained on together: `load_labelled_mix`, `split_folders_by_document`).
    After `setup()`: `question_set` (the union of the folders' questions), `provenance` (the first folder's),
    `provenances`, `splits` (name -> TokenizedTexts), `split_sizes` (name -> {"texts", "documents"}), `test_folder`
    ((n_test,) folder index of each test row) and `train_mean` (Q,) float32, the teacher's mean P(yes) per question on
    the training split (0.5 where the training split never asked it): the constant baseline every metric is compared
    with.
    """

    def __init__(self, data_dir, tokenizer, questions=None, max_length: int = 128, batch_size: int = 32,
                 val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0, bucket_batches: int = 50,
                 num_workers: int = 0):  # fmt: skip
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        dirs = [data_dir] if isinstance(data_dir, (str, Path)) else list(data_dir)
        self.data_dirs, self.tokenizer, self.questions = [Path(d) for d in dirs], tokenizer, questions
        self.max_length, self.batch_size, self.bucket_batches = max_length, batch_size, bucket_batches
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.seed, self.num_workers = seed, num_workers
        self.splits: dict[str, TokenizedTexts] | None = None

    def setup(self, stage: str | None = None) -> None:
        from qaemb_fast.questions import QuestionSet

        if self.splits is not None:  # fit then test: load, split and tokenize once
            return
        texts, doc_ids, answers, questions, folder, self.provenances = load_labelled_mix(self.data_dirs, self.questions)
        self.provenance = self.provenances[0]
        name = self.provenance.get("question_set_name", "custom") if len(self.data_dirs) == 1 else "mixed"
        self.question_set = QuestionSet(tuple(questions), name=name)
        if len(self.data_dirs) == 1:
            rows = split_by_document(doc_ids, self.val_fraction, self.test_fraction, self.seed)
        else:
            rows = split_folders_by_document(doc_ids, folder, self.val_fraction, self.test_fraction, self.seed)
        self.split_sizes = {
            name: {"texts": len(idx), "documents": len({doc_ids[i] for i in idx})} for name, idx in rows.items()
        }
        self.test_folder = folder[rows["test"]]
        train = answers[rows["train"]]
        asked = (~np.isnan(train)).sum(axis=0)
        self.train_mean = np.where(asked > 0, np.nansum(train, axis=0) / np.maximum(asked, 1), 0.5).astype(np.float32)
        # Tokenize once, without padding: the ids give the lengths for bucketing; padding happens per batch.
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, add_special_tokens=True)["input_ids"]
        self.splits = {name: TokenizedTexts([enc[i] for i in idx], answers[idx]) for name, idx in rows.items()}

    def _loader(self, name: str, train: bool) -> DataLoader:
        if self.splits is None:
            raise RuntimeError("call setup() first")
        data = self.splits[name]
        if len(data) == 0:
            raise LabelledDatasetError(f"the {name} split is empty (its fraction is 0)")
        sampler = RandomSampler(data) if train else SequentialSampler(data)
        batches = LengthBucketBatchSampler(
            sampler, self.batch_size, drop_last=False, lengths=data.lengths,
            bucket_batches=self.bucket_batches, shuffle=train, seed=self.seed,
        )  # fmt: skip
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return DataLoader(
            data, batch_sampler=batches, collate_fn=PadCollator(pad_id, getattr(self.tokenizer, "padding_side", "right")),
            num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
