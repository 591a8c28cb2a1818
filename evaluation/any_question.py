"""`qaemb-fast eval any-question`: how well does a student answer questions, seen and unseen, on texts it never saw?

Two comparisons with the teacher (per question: ROC-AUC against the teacher's yes/no at P > 0.5, Pearson r and
mean absolute error against its P(yes), then averaged over questions; `training.module.question_metrics`):

  1. trained questions, held-out texts: the test documents of the student's training data (`split_by_document`
     with the training split's fractions and seed). Scored twice: with the rows the student answers them with (its
     fixed head), and with its question head from the question text alone (what an unseen question gets), which
     shows what the question head costs on questions it did see. The fixed head is also scored on (a sample of) its
     own training texts: the gap between the two says whether the student lacks examples or capacity;
  2. held-out questions, held-out texts: a labelling folder (dense or sparse) whose questions the student never
     trained on (`distill/data/question_pool_split.json`'s held-out questions, labelled on texts that share no
     document with any training data: bench/pool_texts.py). A question the student was trained on is refused.

The D3 gold-label comparison (questions never trained on, human labels) is `qaemb-fast eval d3`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class AnyQuestionConfig:
    checkpoint: str | None = None  # student checkpoint with a question head (default: the shipped student)
    trained_labels: str = "checkpoints/default-labels"  # labelled folder the student's fixed head was trained on
    heldout_labels: str = "bench/labels/pool-eval/teacher-answers"  # labelling folder of held-out questions and texts
    val_fraction: float = 0.1  # the training split's validation fraction (to find its test documents)
    test_fraction: float = 0.1  # the training split's test fraction
    seed: int = 0  # the training split's seed
    batch_size: int = 64  # texts per forward pass
    training_texts: int = 1000  # training texts the fixed head is also scored on (the first of the split's; 0: none)
    out: str | None = None  # write results.md and results.json here
    update_card: bool = False  # also write the table into the checkpoint's model card (section "## Any question")


def answer_texts(model, texts: list[str], questions, use_fixed_head: bool, batch_size: int = 64) -> np.ndarray:
    """P(yes) (n, Q) of `questions` for `texts`, from the fixed head (where the student has the question and
    use_fixed_head) or from the question head (every other question), in fp32."""
    import torch

    with torch.inference_mode():
        rows = model.question_rows(questions, use_fixed_head=use_fixed_head)
        out = []
        for start in range(0, len(texts), batch_size):
            batch = model.tokenize(texts[start : start + batch_size])
            out.append(torch.sigmoid(model(**batch, rows=rows).float()))
    return torch.cat(out).numpy()


def token_states(model, texts: list[str], layers, batch_size: int = 64):
    """The frozen encoder's inputs to a question head, for training it on cached features (bench/): {layer: per
    text its (T_i, hidden) fp16 token states at that encoder layer, real tokens only} and (n, hidden) fp32 pooled
    embeddings."""
    import torch

    states, pooled = {layer: [] for layer in layers}, []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = model.tokenize(texts[start : start + batch_size])
            out = model.encoder(**batch, output_hidden_states=True)
            pooled.append(model.pool(out.last_hidden_state, batch["attention_mask"]).float())
            mask = batch["attention_mask"].bool()
            for layer in layers:
                states[layer] += [row[m].half() for row, m in zip(out.hidden_states[layer], mask)]
    return states, torch.cat(pooled).clone()  # clone: an inference tensor cannot feed autograd


def padded(states: list):
    """A batch of (T_i, hidden) token states -> (B, T, hidden) fp32 and the (B, T) attention mask."""
    import torch
    from torch.nn.utils.rnn import pad_sequence

    out = pad_sequence([s.float() for s in states], batch_first=True)
    mask = pad_sequence([torch.ones(len(s), dtype=torch.long) for s in states], batch_first=True)
    return out, mask


def head_answers(head, states: list, pooled, questions, batch_size: int = 64) -> np.ndarray:
    """P(yes) (n, Q) of a `QuestionHead` on cached features: token states (n items of (T_i, hidden)), mean-pooled
    text states (n, hidden) and question embeddings (Q, hidden); the benchmarks fit heads on such caches."""
    import torch

    out = []
    with torch.inference_mode():
        projected = head.project_questions(questions)  # once for every text
        for start in range(0, len(states), batch_size):
            tokens, mask = padded(states[start : start + batch_size])
            out.append(torch.sigmoid(head(pooled[start : start + batch_size], projected, tokens, mask)))
    return torch.cat(out).numpy()


def summarize(preds: np.ndarray, targets: np.ndarray) -> dict:
    from training.module import question_metrics

    m = question_metrics(preds, targets)
    scored = ~np.isnan(m["auc"])
    return {
        "auc": float(np.nanmean(m["auc"])) if scored.any() else float("nan"),
        "pearson": float(np.nanmean(m["pearson"])),
        "mae": float(np.nanmean(m["mae"])),
        "questions": int(targets.shape[1]),
        "questions_scored": int(scored.sum()),
        "texts": int(len(targets)),
        "pairs": int((~np.isnan(targets)).sum()),
        "per_question_auc": [None if np.isnan(x) else float(x) for x in m["auc"]],
    }


def run_any_question(config: AnyQuestionConfig) -> dict:
    from distill.label import answers_by_text
    from distill.labelled_dataset import load_labelled_dataset
    from qaemb_fast.embedder import default_checkpoint_path
    from qaemb_fast.student import StudentModel
    from training.data import split_by_document

    path = Path(config.checkpoint) if config.checkpoint else default_checkpoint_path()
    model = StudentModel.from_pretrained(path)
    if not model.answers_any_question:
        raise ValueError(f"{path} has no question head: it answers only its {model.num_questions} trained questions")
    results = {"checkpoint": str(config.checkpoint or "checkpoints/default (shipped)"), "config": asdict(config)}

    ds, _, qs = load_labelled_dataset(config.trained_labels)
    if list(qs.questions) != model.questions:
        raise ValueError(f"{config.trained_labels} does not hold the questions of {path}'s fixed head")
    split = split_by_document(ds["doc_id"], config.val_fraction, config.test_fraction, config.seed)
    answers = np.asarray(ds.with_format("numpy")["answers"], dtype=np.float32)
    texts, targets = [ds["text"][i] for i in split["test"]], answers[split["test"]]
    for key, use_fixed_head in (("trained_fixed_head", True), ("trained_question_head", False)):
        preds = answer_texts(model, texts, model.questions, use_fixed_head, config.batch_size)
        results[key] = summarize(preds, targets)
    if config.training_texts:
        train = split["train"][: config.training_texts]
        preds = answer_texts(model, [ds["text"][i] for i in train], model.questions, True, config.batch_size)
        results["trained_fixed_head_training_texts"] = summarize(preds, answers[train])

    table = answers_by_text(config.heldout_labels)
    questions = list(table.questions)
    seen = [q for q in questions if model.is_trained_question(q)]
    if seen:
        raise ValueError(f"{len(seen)} question(s) of {config.heldout_labels} were trained on, e.g. {seen[0]!r}")
    texts = list(table)
    targets = np.stack([table[t] for t in texts]).astype(np.float32)
    results["heldout_question_head"] = summarize(
        answer_texts(model, texts, questions, False, config.batch_size), targets
    )
    results["heldout_questions"] = questions

    if config.out:
        out = Path(config.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        (out / "results.md").write_text(to_markdown(results), encoding="utf-8")
    print(to_markdown(results))
    if config.update_card:
        from training.train import replace_card_section

        command = "qaemb-fast eval any-question" + (f" --checkpoint {config.checkpoint}" if config.checkpoint else "")
        section = (
            f"{CARD_HEADING}\n\nThis student answers any question: its {model.num_questions} trained questions with "
            "its fixed head, every other question with its question head, from the question's embedding (the "
            "encoder's mean-pooled states of the question text)"
            + (" and what it finds in the text's token states" if model.config.question_head_attention_heads else "")
            + f". Trained on {len(model.config.seen_questions)} "
            "more questions than the fixed head's; `QAEmbedder.is_trained_question(q)` says which were seen.\n\n"
            f"Measured by `{command} --update-card`:\n\n{to_markdown(results)}\n"
        )
        replace_card_section(path / "README.md", CARD_HEADING, section)
    return results


CARD_HEADING = "## Any question"


def to_markdown(results: dict) -> str:
    rows = [
        ("trained questions, held-out texts", "fixed head (what the student answers with)", "trained_fixed_head"),
        ("trained questions, held-out texts", "question head (from the question text alone)", "trained_question_head"),
        ("held-out questions, held-out texts", "question head", "heldout_question_head"),
        ("trained questions, its own training texts", "fixed head", "trained_fixed_head_training_texts"),
    ]
    lines = [
        f"Student `{results['checkpoint']}` against the teacher (ROC-AUC vs its yes/no, Pearson r and MAE vs its P(yes), "
        "means over questions).",
        "",
        "| questions, texts | answered by | questions (scored) | texts | pairs | ROC-AUC | Pearson r | MAE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for what, head, key in rows:
        if key not in results:  # not asked for (training_texts=0)
            continue
        r = results[key]
        lines.append(
            f"| {what} | {head} | {r['questions']} ({r['questions_scored']}) | {r['texts']} | {r['pairs']} | "
            f"{r['auc']:.3f} | {r['pearson']:.3f} | {r['mae']:.3f} |"
        )
    return "\n".join(lines) + "\n"
