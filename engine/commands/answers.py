"""`tunedesk chat` (one answer from a run's tuned or base model) and `tunedesk compare`
(the same prompt answered both ways, validation rows both ways, or labeled accuracy)."""

from __future__ import annotations

import argparse
import json
import sys

from . import run_argument


def add_parsers(sub) -> None:
    cmp_ = sub.add_parser("compare", help="the same prompt answered by the base model and the tuned one")
    run_argument(cmp_, "run_dir")
    cmp_.add_argument("--prompt", help="the prompt to answer twice")
    cmp_.add_argument("--validation", type=int, default=0, metavar="N",
                      help="instead: answer N validation rows both ways; writes compare/validation.md and .json")
    cmp_.add_argument("--tools", default=None, metavar="FILE|data",
                      help="function schemas the model may call: a JSON file (a list of schemas), or 'data' for those "
                           "in the run's dataset; written into the prompt as training wrote them")
    cmp_.add_argument("--accuracy", action="store_true",
                      help="labeled data: the share of validation rows each model answers with the right label "
                           "(greedy, a few tokens); writes compare/accuracy.json")
    cmp_.add_argument("--max-new-tokens", type=int, default=200, help="longest answer, in tokens (default 200)")
    cmp_.add_argument("--sample", action="store_true", help="sample (with --temperature / --top-p) instead of greedy")
    cmp_.add_argument("--temperature", type=float, default=0.7, help="with --sample (default 0.7)")
    cmp_.add_argument("--top-p", type=float, default=0.9, help="with --sample (default 0.9)")
    cmp_.add_argument("--repetition-penalty", type=float, default=1.1, help="(default 1.1)")
    cmp_.add_argument("--seed", type=int, default=0, help="with --sample (default 0)")
    cmp_.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="(default auto: the GPU if usable)")
    cmp_.add_argument("--json", action="store_true", help="one JSON object instead of text")
    cmp_.add_argument("--adapter", choices=["best", "last"], default="best", help="the run's best adapter (default) or its last step's")


    c = sub.add_parser("chat", help="answer a prompt with a run's tuned model (or its base model)")
    run_argument(c, "run_dir")
    c.add_argument("--prompt", required=True)
    c.add_argument("--base", action="store_true", help="answer with the base model (adapter off)")
    c.add_argument("--tools", default=None, metavar="FILE|data",
                   help="function schemas the model may call: a JSON file (a list of schemas), or 'data' for those "
                        "in the run's dataset; written into the prompt as training wrote them")
    c.add_argument("--max-new-tokens", type=int, default=200, help="longest answer, in tokens (default 200)")
    c.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="(default auto: the GPU if usable)")
    c.add_argument("--json", action="store_true", help="one JSON object instead of text")
    c.add_argument("--adapter", choices=["best", "last"], default="best", help="the run's best adapter (default) or its last step's")


def cmd_chat(a: argparse.Namespace) -> int:
    from ..chat import ChatSession, GenerationSettings, tools_for

    tools = tools_for(a.run_dir, a.tools)
    session = ChatSession(a.run_dir, device=a.device, status=lambda t: print(t, file=sys.stderr), adapter=a.adapter)
    text = session.answer(a.prompt, base=a.base, settings=GenerationSettings(max_new_tokens=a.max_new_tokens), tools=tools)
    print(json.dumps({"prompt": a.prompt, "base": a.base, "answer": text}) if a.json else text)
    return 0


def cmd_compare(a: argparse.Namespace) -> int:
    from ..chat import ChatSession, GenerationSettings, split_thinking, tools_for
    from ..chat.compare import validation_compare
    from ..data.tool_form import calls_in
    from ..errors import ConfigError
    from ..reporting import loss_text

    if not a.prompt and not a.validation and not a.accuracy:
        raise ConfigError("give --prompt TEXT, --validation N or --accuracy")
    settings = GenerationSettings(max_new_tokens=a.max_new_tokens, greedy=not a.sample, temperature=a.temperature,
                                  top_p=a.top_p, repetition_penalty=a.repetition_penalty, seed=a.seed)
    tools = tools_for(a.run_dir, a.tools) if a.prompt and not a.validation else None
    session = ChatSession(a.run_dir, device=a.device, status=lambda t: print(t, file=sys.stderr), adapter=a.adapter)
    if a.accuracy:
        from ..chat.accuracy import label_accuracy, sentence

        tty = sys.stderr.isatty()
        result = label_accuracy(session, progress=lambda done, total: tty and print(f"\r{done}/{total} rows", end="",
                                                                                   file=sys.stderr))
        print(file=sys.stderr) if tty else None
        print(json.dumps(result, ensure_ascii=False) if a.json else
              f"{sentence(result)}; written to {session.run.path / 'compare'}/accuracy.json")
        return 0
    if a.validation:
        result = validation_compare(session, n=a.validation, settings=settings)
        if a.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(f"{len(result['examples'])} validation rows: mean loss base {loss_text(result['mean_base_loss'])}, "
                  f"tuned {loss_text(result['mean_tuned_loss'])}; written to {session.run.path / 'compare'}/validation.md "
                  "and .json")
        return 0
    out: dict = {"prompt": a.prompt, "tools": [t["function"]["name"] for t in tools or []]}
    for side in ("base", "tuned"):
        thought, answer = split_thinking(session.answer(a.prompt, base=side == "base", settings=settings, tools=tools))
        out[side], out[f"{side}_thinking"] = answer, thought
        if tools:
            out[f"{side}_calls"] = calls_in(answer)
    if a.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        for side in ("base", "tuned"):
            print(f"── {side} ──")
            if out[f"{side}_thinking"]:
                print(f"[thinking: {len(out[side + '_thinking'])} characters]")
            print(out[side])
            if tools:
                print(f"[{len(out[side + '_calls'])} well-formed call(s)]")
    return 0
