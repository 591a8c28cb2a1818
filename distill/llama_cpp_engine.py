"""A teacher engine for CPUs without native bf16: llama.cpp running the GGUF the offline teacher ships as.

Why: on a CPU without native bf16, torch runs the teacher in fp32 at ~90 % of the matmul roofline already
(bench/bench_cpu_engines.py), so only less work per weight helps. llama.cpp multiplies the 4-bit weights of the GGUF
directly (integer dot products on 8-bit-quantised activations) instead of the fp32 weights transformers dequantizes
them to: 1.5x fp32 on an (emulated) AVX2-only CPU, 2.8x with AVX-512 VNNI. pip builds it from its sdist with the
machine's compiler: `pip install -e ".[cpu-fast]"`.

The prompt is the Teacher's, token for token: the Teacher's tokenizer makes the ids (head, text part, question
suffixes) and this engine only runs them. The reuse is the same as the torch path's:
  * sequence 0 of the KV cache holds the prompt head and the current text; a new text keeps the tokens it shares
    with the previous one (always the head) and runs only the rest;
  * a batch of question suffixes runs in ONE decode call, each suffix as its own sequence (1..B) that shares
    sequence 0's cells (`llama_memory_seq_cp` tags cells, it copies nothing), with logits at each suffix's last
    token only; afterwards the suffix sequences are dropped.

Answers are not bit-equal to the torch path's (activations are quantised to 8 bits inside the dot products, and
llama.cpp picks its kernels by the number of tokens in a call, so a question's answer moves a little with the other
suffixes in its batch: by ~0.005 on average for the default teacher). The benchmark measures the agreement with the
fp32 reference (bench/bench_cpu_engines.py), and a test checks it on the small offline teacher.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

# What can run a teacher (`Teacher.from_pretrained(engine=...)`, `qaemb-fast label --engine`).
ENGINES = ("auto", "torch", "llama.cpp")


def llama_cpp_available() -> bool:
    """True where the optional llama-cpp-python package imports."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def llama_cpp_build() -> str:
    """What the installed llama.cpp was compiled for ("AVX2, FMA, ..."): its system info line, CPU part."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    cpu = next((part for part in info.split("CPU :")[1:]), info)
    flags = [f.split("=")[0].strip() for f in cpu.split("|") if f.strip().endswith("= 1")]
    return ", ".join(flags)


def cpu_has_amx() -> bool:
    """True on CPUs with AMX tiles (as torch sees them), where llama.cpp's extra CPU buffer types crashed."""
    import torch

    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe is not None and probe())


class LlamaCppEngine:
    """Runs token ids through a GGUF model with llama.cpp and returns next-token logits of chosen tokens.

    gguf_path: the model file. max_batch: the most question suffixes per decode call. n_ctx: KV cells in all (the
    prefix once, plus a batch of suffixes); `reserve` grows it. n_threads: default torch's (the physical cores).
    """

    def __init__(self, gguf_path, max_batch: int = 64, n_ctx: int = 2048, n_threads: int | None = None):
        import llama_cpp
        import torch

        self._lib = llama_cpp
        if not os.path.isfile(gguf_path):
            raise FileNotFoundError(f"no GGUF file at {gguf_path}")
        llama_cpp.llama_backend_init()
        if not _SILENT_LOG:
            _SILENT_LOG.append(llama_cpp.llama_log_callback(_silent))
        llama_cpp.llama_log_set(_SILENT_LOG[0], ctypes.c_void_p())
        model_params = llama_cpp.llama_model_default_params()
        # On an Intel Xeon with AMX, llama-cpp-python 0.3.36's CPU "extra buffer types" (AMX / repacked weights)
        # crashed its first decode (segmentation fault); without them it runs and agrees with torch (the tests).
        # Elsewhere they stay on: the repacked weights are part of what makes llama.cpp fast on AVX2-only CPUs.
        model_params.use_extra_bufts = not cpu_has_amx()
        self._model = llama_cpp.llama_model_load_from_file(str(gguf_path).encode(), model_params)
        if not self._model:
            raise ValueError(f"llama.cpp could not load {gguf_path}")
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(self._model))
        self.max_batch = max_batch
        self.n_threads = n_threads or torch.get_num_threads()  # physical cores, or what the user set
        self._ctx = self._batch = None
        self._make_context(n_ctx)

    def _make_context(self, n_ctx: int) -> None:
        lib = self._lib
        self._free_context()
        params = lib.llama_context_default_params()
        params.n_ctx = params.n_batch = n_ctx  # one decode call holds a whole batch of suffixes
        params.n_ubatch = min(n_ctx, 512)  # llama.cpp splits a call into micro-batches of this size
        params.n_seq_max = self.max_batch + 1  # sequence 0: head + text; 1..max_batch: suffixes
        params.kv_unified = True  # one cell pool, so suffix sequences can share sequence 0's cells
        params.n_threads = params.n_threads_batch = self.n_threads
        self._ctx = lib.llama_init_from_model(self._model, params)
        if not self._ctx:
            raise ValueError(f"llama.cpp could not create a context of {n_ctx} tokens")
        self.n_ctx = n_ctx
        self._memory = lib.llama_get_memory(self._ctx)
        self._batch = lib.llama_batch_init(n_ctx, 0, self.max_batch + 1)
        self._cached: list[int] = []  # the tokens sequence 0 holds now

    @property
    def prefix(self) -> list[int]:
        """The tokens sequence 0 holds now."""
        return list(self._cached)

    def reserve(self, n_tokens: int) -> None:
        """Make room for a prefix and a batch of suffixes of `n_tokens` in all (a new, larger context if needed)."""
        if n_tokens > self.n_ctx:
            self._make_context(1 << (n_tokens - 1).bit_length())

    def _free_context(self) -> None:
        if getattr(self, "_batch", None) is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        if getattr(self, "_ctx", None):
            self._lib.llama_free(self._ctx)
            self._ctx = None

    def __del__(self):
        # At interpreter exit the llama_cpp module may already be torn down: nothing left to free then.
        if getattr(self, "_lib", None) is None or getattr(self._lib, "llama_free", None) is None:
            return
        self._free_context()
        if getattr(self, "_model", None):
            self._lib.llama_model_free(self._model)
            self._model = None

    def _decode(self, tokens, positions, seq_ids, want_logits) -> None:
        batch = self._batch
        batch.n_tokens = len(tokens)
        for i, (token, pos, seq, logits) in enumerate(zip(tokens, positions, seq_ids, want_logits)):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        status = self._lib.llama_decode(self._ctx, batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status} ({len(tokens)} tokens)")

    def set_prefix(self, ids: list[int], reuse: int | None = None) -> None:
        """Make sequence 0 hold exactly `ids`, running only the tokens after what it shares with the last prefix,
        and keeping at most the first `reuse` tokens (the prompt head).

        Why `reuse`: llama.cpp's kernels differ with the number of tokens in a call, so a text run in one call from
        the end of the head answers the same whatever text came before it (texts that begin alike would otherwise
        share a few more tokens, and run the rest in a differently sized call).
        """
        common = 0
        for a, b in zip(self._cached, ids[:reuse]):
            if a != b:
                break
            common += 1
        common = min(common, len(ids) - 1)  # run at least one token, so the prefix ends on a fresh state
        self._lib.llama_memory_seq_rm(self._memory, 0, common, -1)
        self._cached = ids[:common]  # what it holds if a decode below fails or is interrupted
        rest = ids[common:]
        for start in range(0, len(rest), self.n_ctx):
            part = rest[start : start + self.n_ctx]
            first = common + start
            self._decode(part, range(first, first + len(part)), [0] * len(part), [False] * len(part))
        self._cached = list(ids)

    def suffix_logits(self, suffixes: list[list[int]], token_ids: list[int]) -> np.ndarray:
        """(len(suffixes), len(token_ids)) logits of `token_ids` after prefix + each suffix, in one decode call."""
        if len(suffixes) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} suffixes per call, got {len(suffixes)}")
        if not self._cached or not all(suffixes):
            raise ValueError("suffix_logits needs a prefix (set_prefix) and non-empty suffixes")
        n_prefix = len(self._cached)
        if n_prefix + sum(map(len, suffixes)) > self.n_ctx:
            raise ValueError(f"prefix + suffixes exceed the engine's {self.n_ctx}-token context")
        tokens, positions, seqs, logits, last = [], [], [], [], []
        for j, suffix in enumerate(suffixes, start=1):
            self._lib.llama_memory_seq_cp(self._memory, 0, j, -1, -1)
            tokens += suffix
            positions += range(n_prefix, n_prefix + len(suffix))
            seqs += [j] * len(suffix)
            logits += [False] * (len(suffix) - 1) + [True]
            last.append(len(tokens) - 1)
        try:
            self._decode(tokens, positions, seqs, logits)
            out = np.empty((len(suffixes), len(token_ids)), dtype=np.float32)
            for r, i in enumerate(last):
                row = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self._ctx, i), shape=(self.n_vocab,))
                out[r] = row[token_ids]
        finally:
            for j in range(1, len(suffixes) + 1):
                self._lib.llama_memory_seq_rm(self._memory, j, -1, -1)
        return out


def _silent(level, text, user_data):
    """llama.cpp prints every tensor it loads to stderr; errors surface as return codes instead."""


_SILENT_LOG = []  # the ctypes callback, kept alive for as long as llama.cpp may call it
