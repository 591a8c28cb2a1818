"""PNG plots for voxelwise models: the distribution of test r, and which questions drive a voxel or a region."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_r_histogram(r, path, labels=None, title="Test correlation per voxel", bins=60) -> Path:
    """Histogram of Pearson r across voxels. r: (V,) or a dict {label: (V,)} to overlay several models."""
    plt = _pyplot()
    series = r if isinstance(r, dict) else {labels or "model": r}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    lo = min(float(np.min(v)) for v in series.values())
    hi = max(float(np.max(v)) for v in series.values())
    edges = np.linspace(min(lo, -0.1), max(hi, 0.1), bins + 1)
    for name, v in series.items():
        v = np.asarray(v)
        short = textwrap.shorten(name.split(" (")[0], 40, placeholder="…")  # details belong in the table
        ax.hist(v, bins=edges, histtype="step", linewidth=1.6, label=f"{short} (mean r {v.mean():.3f})")
    ax.axvline(0, color="0.5", linewidth=0.8, linestyle="--")
    ax.set_xlabel("Pearson r between predicted and measured response (held-out stories)")
    ax.set_ylabel("voxels")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, loc="upper right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_question_weights(encoder, voxels, path, k: int = 12, title=None, highlight=()) -> Path:
    """Horizontal bars of the k questions with the largest |weight| for one voxel, or averaged over a set of
    voxels (a region of interest). encoder: a fitted VoxelEncoder; highlight: questions to print in bold
    (e.g. the planted ones in a synthetic benchmark)."""
    plt = _pyplot()
    idx = np.atleast_1d(np.asarray(voxels))
    top = encoder.top_questions(idx, k=k, by="abs")[::-1]  # largest at the top of the plot
    names = [textwrap.shorten(q, 70, placeholder="…") for q, _ in top]
    vals = np.array([w for _, w in top])
    fig, ax = plt.subplots(figsize=(8.5, 0.38 * len(top) + 1.3), dpi=120)
    ax.barh(range(len(top)), vals, color=np.where(vals >= 0, "#c0392b", "#2e6da4"))
    ax.set_yticks(range(len(top)), names, fontsize=8)
    for label, (q, _) in zip(ax.get_yticklabels(), top):
        if q in set(highlight):
            label.set_fontweight("bold")
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.set_xlabel("ridge weight summed over delays (+: a 'yes' raises the response)")
    what = f"voxel {int(idx[0])}" if idx.size == 1 else f"mean over {idx.size} voxels"
    ax.set_title(title or f"Top questions: {what}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
