"""The llama.cpp teacher engine (the optional `cpu-fast` extra) against the torch fp32 path on the same weights.

The small offline teacher (SmolLM2-135M-Instruct) is one GGUF file: transformers dequantizes it for the torch path,
llama.cpp runs it as it is. The engine must agree with torch (the answers' ranking kept, mean |diff| <= 0.03, the
benchmark's bar), answer a text the same whatever came before it, and say clearly
when it cannot run.
"""

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_causal_lm

from distill.teacher import Teacher, TeacherError, make_engine

llama_cpp = pytest.importorskip("llama_cpp", reason='the optional engine: pip install -e ".[cpu-fast]"')
pytestmark = pytest.mark.slow

TEXTS = [
    "I ate bread and cheese in the kitchen.",
    "The dog ran across the green field!",
    "She laughed and asked where the station was.",
    "The old clock in the hall struck midnight while the rain kept falling.",
]


@pytest.fixture(scope="module")
def smollm2():
    """(torch fp32 teacher, llama.cpp teacher) on the same weights and prompt."""
    from distill.offline_teachers import prepare_teacher

    prepare_teacher("smollm2-135m-instruct", progress=False)
    torch_teacher = Teacher.from_pretrained("smollm2-135m-instruct", dtype="fp32", device="cpu", engine="torch")
    fast = Teacher.from_pretrained("smollm2-135m-instruct", dtype="fp32", device="cpu", engine="llama.cpp")
    return torch_teacher, fast


def test_llama_cpp_agrees_with_torch_fp32(smollm2):
    torch_teacher, fast = smollm2
    assert torch_teacher.engine is None and fast.engine is not None
    assert fast.engine_name.startswith("llama.cpp (") and torch_teacher.engine_name == "torch"
    reference = torch_teacher.encode(TEXTS)
    answers = fast.encode(TEXTS, batch_size=16)
    assert answers.shape == reference.shape == (len(TEXTS), 109) and answers.dtype == np.float32
    # The adoption bar (ROC-AUC against the reference's yes/no) is measured on the default teacher by
    # bench/bench_cpu_engines.py; this small teacher rarely passes 0.5, so here the answers must keep their ranking
    # (Pearson r; shuffled answers give ~0) and stay within the bar's mean |diff|.
    assert np.corrcoef(answers.ravel(), reference.ravel())[0, 1] >= 0.9
    assert np.abs(answers - reference).mean() <= 0.03
    assert np.corrcoef(np.roll(answers.ravel(), 1), reference.ravel())[0, 1] < 0.5  # the check can fail


def test_answers_do_not_depend_on_the_text_before(smollm2):
    _, fast = smollm2
    forward = fast.encode(TEXTS, questions=list(range(20)), batch_size=8)
    backward = fast.encode(TEXTS[::-1], questions=list(range(20)), batch_size=8)[::-1]
    np.testing.assert_array_equal(forward, backward)
    again = fast.encode(TEXTS[:1], questions=list(range(20)), batch_size=8)
    np.testing.assert_array_equal(again, forward[:1])


def test_a_text_longer_than_the_context_grows_it(smollm2):
    torch_teacher, fast = smollm2
    long_text = " ".join(["The ship sailed on through the cold grey sea, and the sailors sang."] * 200)
    assert len(fast.text_ids(long_text)) > fast.engine.n_ctx  # more tokens than the engine's first context holds
    qs = list(range(12))
    answers = fast.encode([long_text], questions=qs)
    assert fast.engine.n_ctx >= len(fast.prefix_ids(long_text))
    assert np.abs(answers - torch_teacher.encode([long_text], questions=qs)).mean() <= 0.05


def test_the_label_job_records_the_engine_in_each_chunk(smollm2, tmp_path):
    from distill.corpus import CorpusItem
    from distill.label import LabelConfig, chunk_path, read_chunk_file, run_labelling

    _, fast = smollm2
    config = LabelConfig(
        teacher="smollm2-135m-instruct",
        corpus="unused",
        out=str(tmp_path / "labels"),
        dtype="fp32",
        engine="llama.cpp",
        chunk_size=2,
        calibration="none",
        progress=False,
    )
    items = [CorpusItem(text=t, doc_id=str(i)) for i, t in enumerate(TEXTS[:2])]
    run_labelling(config, teacher=fast, items=items)
    texts, answers, worker = read_chunk_file(chunk_path(tmp_path / "labels", 0))
    assert texts == TEXTS[:2] and worker.endswith(f"engine {fast.engine_name}")
    np.testing.assert_array_equal(answers, fast.encode(TEXTS[:2], batch_size=config.batch_size))


def test_engine_choice_and_errors(tmp_path, monkeypatch):
    import distill.teacher as teacher_module

    save_tiny_causal_lm(tmp_path / "tiny", "qwen2")
    with pytest.raises(TeacherError, match="needs a GGUF teacher"):
        Teacher.from_pretrained(tmp_path / "tiny", dtype="fp32", device="cpu", engine="llama.cpp")
    with pytest.raises(TeacherError, match="engine must be one of"):
        make_engine("vllm", "smollm2-135m-instruct", torch.device("cpu"), torch.float32)
    # auto: llama.cpp only where torch would run fp32 on a CPU without native bf16, and only for a GGUF teacher.
    monkeypatch.setattr(teacher_module, "cpu_supports_bf16", lambda: False)
    assert make_engine("auto", "smollm2-135m-instruct", torch.device("cpu"), torch.float32) is not None
    assert make_engine("auto", str(tmp_path / "tiny"), torch.device("cpu"), torch.float32) is None
    assert make_engine("auto", "smollm2-135m-instruct", torch.device("cpu"), torch.bfloat16) is None
    monkeypatch.setattr(teacher_module, "cpu_supports_bf16", lambda: True)
    assert make_engine("auto", "smollm2-135m-instruct", torch.device("cpu"), torch.float32) is None


def test_an_interrupted_prefix_leaves_the_engine_knowing_what_it_holds(smollm2, monkeypatch):
    """A Ctrl-C inside a decode must not leave the engine believing it still holds the old prefix: the next text
    (or another Teacher sharing the engine, as bench/label_d3.py does) would reuse cells that are gone."""
    from distill.teacher import PromptConfig

    _, fast = smollm2
    before = fast.encode(TEXTS[:1], questions=[0, 1])
    engine = fast.engine
    strict = Teacher(fast.model, fast.tokenizer, prompt=PromptConfig("strict"), engine=engine)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_decode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        strict.encode(TEXTS[1:2], questions=[0, 1])
    monkeypatch.undo()
    held = llama_cpp.llama_memory_seq_pos_max(engine._memory, 0) + 1  # positions sequence 0 really holds
    assert held == len(engine.prefix) < len(fast.prefix_ids(TEXTS[0]))
    # And the next answers are computed on what it really holds (the head is run again, in other-sized calls).
    assert np.abs(fast.encode(TEXTS[:1], questions=[0, 1]) - before).max() <= 0.02
