"""Shared voxel-test fixtures: a deterministic keyword answerer and the words its fake stories are made of."""

import numpy as np

TOPICS = {
    "Does the input mention an animal?": ["dog", "cat", "horse", "bird"],
    "Does the input mention food or eating?": ["bread", "soup", "apple", "cheese"],
    "Does the input mention the weather?": ["rain", "snow", "wind", "storm"],
    "Does the input mention money, prices or wealth?": ["money", "price", "bank", "coins"],
    "Does the input mention music or singing?": ["song", "piano", "sing", "violin"],
    "Does the input mention a vehicle or a means of transport?": ["car", "train", "bus", "truck"],
}
FILLER = [
    "the",
    "a",
    "man",
    "woman",
    "walked",
    "said",
    "then",
    "slowly",
    "and",
    "it",
    "was",
    "there",
    "here",
    "today",
    "very",
    "old",
    "new",
    "went",
    "came",
    "saw",
]


class KeywordTestEncoder:
    def __init__(self, topics=TOPICS):
        self.questions = list(topics)
        self._kw = [set(v) for v in topics.values()]
        self.n_encoded = 0

    def encode(self, texts, batch_size=32, show_progress_bar=None, output="prob", questions=None):
        self.n_encoded += len(texts)
        return np.array([[float(bool(set(t.split()) & kw)) for kw in self._kw] for t in texts], dtype=np.float32)
