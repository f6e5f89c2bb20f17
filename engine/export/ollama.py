"""An Ollama Modelfile for an exported GGUF: a TEMPLATE (Go template syntax) and stop
words for the model's chat-template family, and the run's default system prompt.

Ollama cannot run a Jinja chat template, so the family is recognised from its special
markers and written in Ollama's own form; `render` fills such a template the way Ollama
does for one system + user turn, so the result can be checked against the tokenizer's
chat template.

As an export target: the GGUF file, the Modelfile, and a README with the command that
registers it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_text
from ..errors import TuneDeskError
from ..runs import RunDir
from .gguf import merged_fp32, model_name, write_files
from .target import Options, Target


@dataclass(frozen=True)
class Family:
    name: str
    marker: str  # a string only this family's Jinja template contains
    template: str
    stops: tuple[str, ...]


FAMILIES = [
    Family("chatml", "<|im_start|>",
           "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
           "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
           "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n",
           ("<|im_start|>", "<|im_end|>")),
    Family("llama3", "<|start_header_id|>",
           "<|begin_of_text|>{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
           "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
           "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>",
           ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
    Family("deepseek-r1", "<｜Assistant｜>",
           "<｜begin▁of▁sentence｜>{{ if .System }}{{ .System }}{{ end }}"
           "{{ if .Prompt }}<｜User｜>{{ .Prompt }}{{ end }}<｜Assistant｜>{{ .Response }}<｜end▁of▁sentence｜>",
           ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>")),
]

_IF = re.compile(r"\{\{ if \.(\w+) \}\}(.*?)\{\{ end \}\}", re.S)
_VAR = re.compile(r"\{\{ \.(\w+) \}\}")


def prompt_part(template: str) -> str:
    """What Ollama renders before generating: the template up to the response."""
    return template.split("{{ .Response }}")[0]


def family_of(chat_template: str) -> Family:
    for f in FAMILIES:
        if f.marker in (chat_template or ""):
            return f
    raise TuneDeskError("Ollama export knows the ChatML, Llama 3 and DeepSeek-R1 chat formats; "
                        "this model's chat template is none of them (export GGUF and write the Modelfile by hand)")


def render(template: str, **values: str) -> str:
    """Fill an Ollama template of the form used above ({{ if .X }}…{{ end }}, {{ .X }})."""
    text = _IF.sub(lambda m: m.group(2) if values.get(m.group(1)) else "", template)
    return _VAR.sub(lambda m: values.get(m.group(1), ""), text)


def default_system(tokenizer) -> str:
    """The system prompt a template adds when the conversation has none (SmolLM's does):
    the text found where a given system prompt would go."""
    sys_p, user_p = "\x01system\x01", "\x02user\x02"

    def chat(messages):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    with_system = chat([{"role": "system", "content": sys_p}, {"role": "user", "content": user_p}])
    without = chat([{"role": "user", "content": user_p}])
    if sys_p not in with_system:
        return ""
    before = with_system[: with_system.index(sys_p)]
    between = with_system[with_system.index(sys_p) + len(sys_p) : with_system.index(user_p)]
    if not without.startswith(before) or not between:
        return ""
    rest = without[len(before):]
    found = rest[: rest.index(between)] if between in rest else ""
    return "" if user_p in found else found


def template_for(tokenizer) -> tuple[Family, str]:
    """The family and its Ollama template; a template whose generation prompt opens a
    <think> block (newer DeepSeek-R1 ones) gets the same opening."""
    fam = family_of(getattr(tokenizer, "chat_template", "") or "")
    opened = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True)
    template = fam.template
    if opened.endswith("<think>\n"):
        template = template.replace("{{ .Response }}", "<think>\n{{ .Response }}")
    return fam, template


def modelfile(gguf_name: str, tokenizer, *, system: str | None = None, temperature: float = 0.7) -> str:
    fam, template = template_for(tokenizer)
    system = system if system is not None else default_system(tokenizer)
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{template}"""']
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines += [f'PARAMETER stop "{s}"' for s in fam.stops]
    lines.append(f"PARAMETER temperature {temperature}")
    return "\n".join(lines) + "\n"


def write(run: RunDir, folder: Path, opts: Options) -> None:
    from transformers import AutoTokenizer

    cfg, _ = run.read_config()
    name = model_name(run)
    with merged_fp32(run, folder, opts.status, opts.adapter) as merged:
        files = write_files(run, merged, folder, opts.quant, opts.status)
        tok = AutoTokenizer.from_pretrained(merged)
    write_text(folder / "Modelfile", modelfile(files[-1].name, tok, system=cfg.data.system_prompt))
    write_text(folder / "README.md", f"# {name} for Ollama\n\nRegister it once, then chat:\n\n"
                                     f"    ollama create {name} -f Modelfile\n    ollama run {name}\n")


TARGET = Target("ollama", "Ollama (GGUF + Modelfile)",
                "the GGUF file, a Modelfile following the model's chat template, and the ollama create command", write)
