"""Which floating-point type runs where: the one meaning of "auto" precision (student, teacher, training).

    resolve_dtype("auto", "cpu")    # torch.bfloat16 on CPUs with native bf16 (AVX512-BF16 / AMX), else float32
    resolve_dtype("auto", "cuda")   # bfloat16 on GPUs that support it, else float16

Importing this module does not import torch (the command line reads PRECISIONS and DTYPES to build its help).
"""

from __future__ import annotations

PRECISIONS = ("auto", "bf16", "fp32")  # what the student's `encode` accepts
DTYPES = ("auto", "bf16", "fp16", "fp32")  # what a teacher accepts (any torch dtype name works too)
_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matmuls (AVX512_BF16 or AMX); elsewhere bf16 is emulated and slower."""
    import torch

    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None and fn():
            return True
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    return "AMX" in capability or "BF16" in capability


def resolve_dtype(name, device="cpu"):
    """'auto' -> the fastest accurate-enough dtype on `device`: bf16 where the hardware runs it natively (CUDA with
    bf16, CPUs with AVX512-BF16/AMX), fp16 on older GPUs, else fp32. 'bf16' / 'fp16' / 'fp32' or any torch dtype
    name ('bfloat16', 'float32', ...) or torch.dtype are returned as that dtype."""
    import torch

    if isinstance(name, torch.dtype):
        return name
    if name != "auto":
        dtype = getattr(torch, _NAMES.get(name, str(name)), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"unknown dtype {name!r}; use one of {DTYPES} or a torch dtype name")
        return dtype
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    return torch.float32
