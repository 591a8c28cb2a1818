"""The plain sentence embedding of the packaged all-MiniLM-L6-v2: mean-pooled last hidden states, L2-normalised.

This is what sentence-transformers computes for that model (Transformer -> Pooling(mean) -> Normalize), written
with `transformers.AutoModel` alone. Two uses here: near-duplicate questions in `questions generate` (cosine
similarity of two questions), and the dense-embedding baseline of `eval classify`.
"""

from __future__ import annotations

import numpy as np
import torch

from qaemb_fast.embedder import check_texts
from qaemb_fast.student import default_backbone_path, mean_pool


class SentenceEmbedder:
    """Mean-pooled, L2-normalised sentence embeddings from any HF encoder (default: packaged all-MiniLM-L6-v2).

    encode(texts) -> (n, hidden) float32; rows have unit norm, so X @ Y.T is the cosine similarity.
    Runs in fp32 on the CPU so that results are exactly reproducible.
    """

    def __init__(self, path=None, max_length: int = 256, device: str = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        path = str(path or default_backbone_path())
        self.name = path
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    @torch.inference_mode()
    def encode(self, texts, batch_size: int = 32, show_progress_bar: bool = False) -> np.ndarray:
        """texts: list of n strings -> (n, hidden) float32 unit vectors, in input order."""
        from tqdm.auto import tqdm

        texts = check_texts(texts)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths per batch: little padding
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        device = next(self.model.parameters()).device
        for start in tqdm(range(0, len(texts), batch_size), desc="minilm", disable=not show_progress_bar):
            rows = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(device)
            pooled = mean_pool(self.model(**enc).last_hidden_state, enc["attention_mask"])
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
        return out
