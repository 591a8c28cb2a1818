"""Which question head? Compared on frozen features of the default student before training one (issue 14).

    python bench/probe_question_heads.py            # writes bench/results/question_heads/results.md

Features are cached once (~/.cache/qaemb-fast/probe_question_heads.npz): mean-pooled states of the default
student's fine-tuned encoder ("student") and of the pretrained all-MiniLM-L6-v2 it started from ("pretrained"), for
the default-labels texts, the D3 texts and the questions. Heads are then fitted on the default-labels training
documents (109 questions, the teacher's calibrated answers) and scored:

  - unseen questions: 5-fold cross-validation over the 109 questions (fit on 4/5 of them, score the other 1/5 on
    the held-out test documents), ROC-AUC against the teacher's yes/no and Pearson r against its P(yes);
  - D3: fit on all 109, answer the 25 D3 questions (never trained on), ROC-AUC against the gold labels.

Heads: "bilinear" (an MLP writes a head row w_q, b_q from the question embedding; logit = t . w_q + b_q: one dot
product per extra question) and "concat" (an MLP over [t, q, t*q] per pair: a small MLP per extra question).

`--cross-encoder` adds the accuracy reference: the student's encoder fine-tuned on (question, text) pairs in one
pass (too slow to ship: a full forward pass per pair), trained on a sample of the fold-0 training pairs and scored on
fold 0 and D3, next to the frozen heads' fold-0 scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "qaemb-fast" / "probe_question_heads.npz"


def features(d3_data: str) -> dict:
    from distill.labelled_dataset import load_labelled_dataset
    from evaluation.d3 import load_d3_tasks
    from qaemb_fast.sentence_embedding import SentenceEmbedder
    from qaemb_fast.student import StudentModel, mean_pool

    ds, prov, _ = load_labelled_dataset(ROOT / "checkpoints" / "default-labels")
    tasks = load_d3_tasks(d3_data)
    inputs = {
        "default": list(ds["text"]),
        "d3": [t for task in tasks for t in task.texts],
        "questions": list(prov["questions"]) + [t.question for t in tasks],
    }
    if CACHE.exists():
        cached = dict(np.load(CACHE))
        if all(f"student_{k}" in cached and len(cached[f"student_{k}"]) == len(v) for k, v in inputs.items()):
            return cached
    student = StudentModel.from_pretrained(ROOT / "checkpoints" / "default")
    pretrained = SentenceEmbedder()

    @torch.inference_mode()
    def encode_student(texts, batch_size=64):
        out = []
        for i in range(0, len(texts), batch_size):
            batch = student.tokenize(texts[i : i + batch_size])
            out.append(mean_pool(student.encoder(**batch).last_hidden_state, batch["attention_mask"]).float().numpy())
        return np.concatenate(out)

    result = {}
    for name, texts in inputs.items():
        result[f"student_{name}"] = encode_student(texts)
        result[f"pretrained_{name}"] = pretrained.encode(texts, batch_size=64)
        print(f"embedded {len(texts)} {name}", flush=True)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, **result)
    return result


class Bilinear(nn.Module):
    def __init__(self, text_dim, question_dim, width=512):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(question_dim), nn.Linear(question_dim, width), nn.GELU(), nn.Linear(width, text_dim + 1)
        )

    def forward(self, t, q):  # (B, text_dim), (Q, question_dim) -> (B, Q)
        out = self.net(q)
        return t @ out[:, :-1].T + out[:, -1]


class Concat(nn.Module):
    """The shipped head, `qaemb_fast.student.QuestionHead` (text and question features share one size here)."""

    def __init__(self, text_dim, question_dim, width=128):
        from qaemb_fast.student import QuestionHead

        super().__init__()
        if text_dim != question_dim:
            raise ValueError(f"QuestionHead needs text and question features of one size ({text_dim}, {question_dim})")
        self.head = QuestionHead(text_dim, width)

    def forward(self, t, q):
        return self.head(t, self.head.project_questions(q))


def fit(kind, texts, questions, targets, epochs, lr=2e-3, seed=0):
    torch.manual_seed(seed)
    texts, questions, targets = (torch.tensor(x, dtype=torch.float32) for x in (texts, questions, targets))
    model = (Bilinear if kind == "bilinear" else Concat)(texts.shape[1], questions.shape[1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(epochs):
        for batch in torch.randperm(len(texts)).split(128):
            loss = F.binary_cross_entropy_with_logits(model(texts[batch], questions), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def predict(model, texts, questions):
    return torch.sigmoid(model(torch.tensor(texts), torch.tensor(questions))).numpy()


def main(argv=None):
    from sklearn.metrics import roc_auc_score

    from distill.labelled_dataset import load_labelled_dataset
    from evaluation.d3 import load_d3_tasks
    from training.data import split_by_document
    from training.module import question_metrics

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d3-data", default=str(ROOT.parent / "shared" / "data" / "d3"))
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "question_heads"))
    p.add_argument("--cross-encoder", action="store_true", help="also train the cross-encoder reference (slow)")
    p.add_argument("--cross-pairs", type=int, default=20000, help="training pairs for the cross-encoder")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    feats = features(args.d3_data)
    ds, _, _ = load_labelled_dataset(ROOT / "checkpoints" / "default-labels")
    answers = np.asarray(ds.with_format("numpy")["answers"], dtype=np.float32)
    split = split_by_document(ds["doc_id"], 0.1, 0.1, 0)
    train, test = split["train"], split["test"]
    tasks = load_d3_tasks(args.d3_data)
    n_q = answers.shape[1]
    folds = np.random.default_rng(0).permutation(n_q) % 5

    rows = []
    for text_from, question_from, kind in (
        ("student", "student", "bilinear"),
        ("student", "pretrained", "bilinear"),
        ("pretrained", "pretrained", "bilinear"),
        ("student", "student", "concat"),
    ):
        t_all, q_all = feats[f"{text_from}_default"], feats[f"{question_from}_questions"]
        aucs, rs, fold0 = [], [], None
        for f in range(5):
            seen, unseen = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
            model = fit(kind, t_all[train], q_all[seen], answers[train][:, seen], args.epochs)
            m = question_metrics(predict(model, t_all[test], q_all[unseen]), answers[test][:, unseen])
            aucs += list(m["auc"][~np.isnan(m["auc"])])
            rs += list(m["pearson"][~np.isnan(m["pearson"])])
            fold0 = fold0 or (float(np.nanmean(m["auc"])), float(np.nanmean(m["pearson"])))
        model = fit(kind, t_all[train], q_all[:n_q], answers[train], args.epochs)
        d3 = predict(model, feats[f"{text_from}_d3"], q_all[n_q:])
        start, d3_auc = 0, []
        for j, task in enumerate(tasks):
            d3_auc.append(roc_auc_score(task.labels, d3[start : start + len(task.texts), j]))
            start += len(task.texts)
        rows.append(
            {
                "text_features": text_from,
                "question_features": question_from,
                "head": kind,
                "unseen_auc": float(np.mean(aucs)),
                "unseen_pearson": float(np.mean(rs)),
                "d3_auc": float(np.mean(d3_auc)),
                "fold0_auc": fold0[0],
                "fold0_pearson": fold0[1],
            }
        )
        print(rows[-1], flush=True)

    cross = cross_encoder(ds, answers, train, test, folds, tasks, args) if args.cross_encoder else None

    lines = [
        "Question heads on frozen features (bench/probe_question_heads.py): unseen questions = 5-fold CV over the 109 "
        "default questions on held-out documents (vs the teacher); D3 = 25 never-trained questions (vs gold labels).",
        "",
        "| text features | question features | head | unseen ROC-AUC | unseen Pearson r | D3 ROC-AUC |",
        "|---|---|---|---:|---:|---:|",
        *[
            f"| {r['text_features']} | {r['question_features']} | {r['head']} | {r['unseen_auc']:.3f} | "
            f"{r['unseen_pearson']:.3f} | {r['d3_auc']:.3f} |"
            for r in rows
        ],
    ]
    if cross:
        lines += [
            "",
            f"Fold 0 only ({cross['questions']} unseen questions), with the cross-encoder reference (trained on "
            f"{cross['pairs']:,} sampled pairs of the other questions, {cross['seconds']:.0f} s):",
            "",
            "| model | unseen ROC-AUC | unseen Pearson r | D3 ROC-AUC |",
            "|---|---:|---:|---:|",
            *[
                f"| {r['head']} head, {r['text_features']} text / {r['question_features']} question features | "
                f"{r['fold0_auc']:.3f} | {r['fold0_pearson']:.3f} | {r['d3_auc']:.3f} |"
                for r in rows
            ],
            f"| cross-encoder (student encoder fine-tuned on question + text) | {cross['auc']:.3f} | "
            f"{cross['pearson']:.3f} | {cross['d3_auc']:.3f} |",
        ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text("\n".join(lines) + "\n")
    (out / "results.json").write_text(json.dumps({"heads": rows, "cross_encoder": cross}, indent=1) + "\n")
    print("\n".join(lines))


def cross_encoder(ds, answers, train, test, folds, tasks, args) -> dict:
    """Fine-tune the default student's encoder + a linear layer on (question, text) pairs of the questions outside
    fold 0; score fold 0's questions on the test documents and the D3 questions."""
    import time

    from sklearn.metrics import roc_auc_score

    from distill.labelled_dataset import read_provenance
    from qaemb_fast.student import StudentModel, mean_pool
    from training.module import question_metrics

    questions = read_provenance(ROOT / "checkpoints" / "default-labels")["questions"]
    student = StudentModel.from_pretrained(ROOT / "checkpoints" / "default")
    encoder, tokenizer = student.encoder.train(), student.tokenizer
    head = nn.Linear(encoder.config.hidden_size, 1)
    texts = list(ds["text"])
    seen = np.flatnonzero(folds != 0)
    rng = np.random.default_rng(0)
    pairs = list(zip(rng.choice(train, args.cross_pairs), rng.choice(seen, args.cross_pairs)))
    params = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.01)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)

    def logits(qs, ts):
        batch = tokenizer(qs, ts, padding=True, truncation=True, max_length=96, return_tensors="pt")
        hidden = encoder(**batch).last_hidden_state
        return head(mean_pool(hidden, batch["attention_mask"]).float())[:, 0]

    start = time.perf_counter()
    for i in range(0, len(pairs), 32):
        chunk = pairs[i : i + 32]
        with autocast:
            out = logits([questions[q] for _, q in chunk], [texts[t] for t, _ in chunk])
        target = torch.tensor([answers[t, q] for t, q in chunk])
        loss = F.binary_cross_entropy_with_logits(out, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    encoder.eval()

    @torch.no_grad()
    def predict_pairs(qs, ts):
        out = []
        for i in range(0, len(qs), 128):
            with autocast:
                out.append(torch.sigmoid(logits(qs[i : i + 128], ts[i : i + 128])).float())
        return torch.cat(out).numpy()

    unseen = np.flatnonzero(folds == 0)
    grid = [(t, q) for t in test for q in unseen]
    preds = predict_pairs([questions[q] for _, q in grid], [texts[t] for t, _ in grid]).reshape(len(test), len(unseen))
    m = question_metrics(preds, answers[test][:, unseen])
    d3 = []
    for task in tasks:
        p = predict_pairs([task.question] * len(task.texts), list(task.texts))
        d3.append(roc_auc_score(task.labels, p))
    result = {"questions": len(unseen), "pairs": len(pairs), "seconds": seconds, "auc": float(np.nanmean(m["auc"])),
              "pearson": float(np.nanmean(m["pearson"])), "d3_auc": float(np.mean(d3))}  # fmt: skip
    print(result, flush=True)
    return result


if __name__ == "__main__":
    main()
