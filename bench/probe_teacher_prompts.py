"""How well a teacher answers, and how calibrated it is, under different prompts: a small hand-labelled probe.

    python bench/probe_teacher_prompts.py [--teacher qwen2.5-coder-1.5b-instruct]

8 texts x 9 questions whose true answers are obvious (written by hand below). For each prompt variant it prints
ROC-AUC (ranking), the yes-rate at P > 0.5 (the truth's is 0.15), accuracy at 0.5, and the mean P(yes) on true
"yes" and true "no" pairs. This is why the default prompt carries the paper's few-shot turns.
"""

from __future__ import annotations

import argparse

import numpy as np

TEXTS = [
    "I ate a sandwich and drank some tea.",
    "It rained all night and the wind howled.",
    "The whale dived deep beneath the ship.",
    "She told him she would marry him in June.",
    "He counted twenty gold coins on the table.",
    "They walked slowly to the old church.",
    "I am afraid we shall never see him again.",
    "The red car stopped in front of the house.",
]
QUESTIONS = [
    "Does the input mention food or eating?",
    "Does the input mention the weather?",
    "Does the input mention an animal?",
    "Does the input mention marriage, courtship or romance?",
    "Does the input contain a number or a quantity?",
    "Does the input mention a building or a house?",
    "Does the input describe fear or anxiety?",
    "Does the input mention a colour?",
    "Does the input mention a vehicle or a means of transport?",
]
# TRUTH[i, k]: does question k hold for text i? (the ship is a vehicle; the church and the house are buildings)
TRUTH = np.zeros((8, 9), dtype=int)
for i, ks in enumerate([[0], [1], [2, 8], [3], [4], [5], [6], [5, 7, 8]]):
    TRUTH[i, ks] = 1


def main(argv=None):
    from sklearn.metrics import roc_auc_score

    from distill.teacher import PromptConfig, Teacher

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="qwen2.5-coder-1.5b-instruct")
    args = p.parse_args(argv)
    base = Teacher.from_pretrained(args.teacher, questions=QUESTIONS)
    variants = {
        "default (instruction first, paper's few-shot turns)": PromptConfig(),
        "default without few-shot": PromptConfig(few_shot="none"),
        "paper template without few-shot": PromptConfig(template="paper", few_shot="none"),
        "paper template with few-shot": PromptConfig(template="paper"),
    }
    print(f"teacher {args.teacher}: {TRUTH.size} pairs, true yes-rate {TRUTH.mean():.2f}\n")
    print(
        "| prompt | ROC-AUC | yes-rate (P>0.5) | accuracy | mean P(yes) on yes | on no |\n|---|---:|---:|---:|---:|---:|"
    )
    for name, prompt in variants.items():
        teacher = Teacher(base.model, base.tokenizer, questions=QUESTIONS, prompt=prompt)
        a = teacher.encode(TEXTS)
        auc = roc_auc_score(TRUTH.ravel(), a.ravel())
        print(
            f"| {name} | {auc:.3f} | {(a > 0.5).mean():.2f} | {((a > 0.5) == TRUTH).mean():.2f} "
            f"| {a[TRUTH == 1].mean():.2f} | {a[TRUTH == 0].mean():.2f} |"
        )


if __name__ == "__main__":
    main()
