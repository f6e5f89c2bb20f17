"""Build a random-weight model folder in the exact shape of a preset.

    python3 -m bench.make_random_model qwen2.5-0.5b /tmp/qwen-0.5b --tokenizer DIR [--device cuda]
"""

import argparse
from pathlib import Path

from engine.models import presets

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("preset", choices=presets.names())
    p.add_argument("out", type=Path)
    p.add_argument("--tokenizer", type=Path, required=True, help="folder holding a tokenizer (e.g. the converted demo model)")
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    print(presets.build_random_model(a.preset, a.out, tokenizer_folder=a.tokenizer, device=a.device))
