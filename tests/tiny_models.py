"""Tiny, randomly initialised models built from configs, for fast offline tests.

The tokenizer is a real byte-level BPE (the kind Qwen2 and Llama 3 use) trained in a second on a few sentences,
with a Qwen-style chat template, so prompt splitting and tokenization boundaries are exercised for real.
"""

from __future__ import annotations

import functools

import torch

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TRAINING_TEXT = [
    "Answer the question about the input text with yes or no.",
    "Input text: I ate bread and cheese in the kitchen. Question: Does the input mention food?",
    "Yes yes YES no No NO. The dog ran across the green field while it rained.",
    "Does the input mention an animal? Does the input describe the weather? She laughed.",
    "You are a helpful assistant. Answer with yes or no, then give an explanation.",
] * 20


@functools.cache
def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(TRAINING_TEXT, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None, unk_token=None
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_causal_lm(kind: str = "qwen2", seed: int = 0):
    """A 2-layer Qwen2 or Llama with grouped-query attention and the tiny tokenizer's vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    tok = tiny_tokenizer()
    common = dict(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,  # the few-shot prompt alone is ~500 tokens of this small vocabulary
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    if kind == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=False))
    elif kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=False))
    else:
        raise ValueError(kind)
    # Random init gives near-uniform logits; scale the head up so P(yes) varies across prompts and a wrong
    # cache/position/mask would show up as a real difference, not rounding.
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(30.0)
    return model.eval(), tok


def save_tiny_causal_lm(path, kind: str = "qwen2"):
    model, tok = tiny_causal_lm(kind)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
