"""Real English prose for benchmarks, without any download: the docstrings of the Python
standard library (and its help topics, pydoc_data), cut into paragraphs, made into
alpaca rows of chosen token lengths.

Why: memory and speed do not depend on the words, but the product's data path does
(chat template, tokenizer, length planning, truncation), and repeated filler words
tokenize unlike text. Every Python carries this edited English offline; a fixed, sorted
list of modules makes the text the same on every run of one Python version (3.11 here,
3.12 on the GPU machine: slightly different text). Code examples, argument lists and
tables are left out. On 3.11 that is ~3,500 paragraphs, ~105,000 words (~140,000 tokens
of the demo tokenizer): a row starts at its own paragraph and reads on, wrapping around,
so no two rows are the same text, but long rows (24k tokens) share passages.

    write_alpaca(path, tokenizer_folder, n, lo, hi, seed)   # n rows of lo..hi tokens
    write_short(path, tokenizer_folder, n=200, seed=0)      # instruction-style lengths:
                                                            # bench.synthetic.instruction_lengths
                                                            # (median ~200, p95 ~800)
    python3 -m bench.prose .gpu/tok                         # a look at both

tokenizer_folder may also be a loaded tokenizer. A row's length is
`len(tok(text).input_ids)` of instruction, input and output joined by blank lines, a few
tokens under its target at most; the chat template adds ~20 tokens. Roughly 10% of a row
is the instruction (a task sentence, then prose), 60% the input, 30% the output.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

# Sorted; present in 3.11 and 3.12 and import without side effects (no GUI, no removed
# modules). A module missing on some version is skipped, so the list can stay as it is.
MODULES = sorted("""
abc argparse array ast asyncio asyncio.base_events asyncio.events asyncio.locks asyncio.queues
asyncio.streams asyncio.subprocess asyncio.tasks base64 bdb binascii bisect builtins bz2
calendar cmath cmd code codecs codeop collections collections.abc concurrent.futures
concurrent.futures.process concurrent.futures.thread configparser contextlib contextvars copy
copyreg csv ctypes dataclasses datetime decimal difflib dis doctest email email.charset
email.generator email.header email.message email.parser email.policy email.utils encodings enum
errno faulthandler filecmp fileinput fnmatch fractions ftplib functools gc getopt getpass
gettext glob graphlib gzip hashlib heapq hmac html html.parser http http.client http.cookiejar
http.cookies http.server imaplib importlib importlib.abc importlib.metadata importlib.resources
importlib.util inspect io ipaddress itertools json json.decoder json.encoder keyword linecache
locale logging logging.config logging.handlers lzma mailbox marshal math mimetypes mmap
modulefinder multiprocessing multiprocessing.managers multiprocessing.pool netrc numbers
operator optparse os pathlib pdb pickle pickletools pkgutil platform plistlib poplib posixpath
pprint profile pstats py_compile pyclbr pydoc queue quopri random re reprlib rlcompleter runpy
sched secrets select selectors shelve shlex shutil signal site smtplib socket socketserver
sqlite3 ssl stat statistics string stringprep struct subprocess symtable sys sysconfig tabnanny
tarfile tempfile textwrap threading time timeit token tokenize tomllib trace traceback
tracemalloc types typing unicodedata unittest unittest.case unittest.mock urllib.error
urllib.parse urllib.request urllib.robotparser uuid warnings wave weakref webbrowser wsgiref
wsgiref.handlers xml.dom xml.dom.minidom xml.dom.pulldom xml.etree.ElementTree xml.sax
xml.sax.handler xml.sax.saxutils xmlrpc.client xmlrpc.server zipapp zipfile zipimport zlib
zoneinfo
""".split())

TASKS = [
    "Summarize the passage below in plain words.",
    "Explain what this documentation says to a new programmer.",
    "Rewrite the following text as a short tutorial.",
    "Read the notes below and describe the behaviour they document.",
    "Turn this reference text into an explanation for a colleague.",
    "What does the following documentation tell a user?",
    "Give a clear account of the text below.",
    "Paraphrase the passage that follows.",
]

_WORD = re.compile(r"[A-Za-z]")


def _docstrings(module) -> list[str]:
    """The module's docstring, then its own classes and functions (sorted), and the
    methods of its classes (sorted): what a reader of help(module) sees."""
    out = [inspect.getdoc(module) or ""]
    for name in sorted(vars(module)):
        if name.startswith("_"):
            continue
        obj = vars(module)[name]
        if getattr(obj, "__module__", None) != module.__name__:
            continue  # imported from elsewhere: documented there
        if inspect.isclass(obj):
            out.append(inspect.getdoc(obj) or "")
            for attr in sorted(vars(obj)):
                if attr.startswith("_"):
                    continue
                member = vars(obj)[attr]
                if inspect.isroutine(member) or isinstance(member, (property, classmethod, staticmethod)):
                    out.append(inspect.getdoc(member) or "")
        elif inspect.isroutine(obj):
            out.append(inspect.getdoc(obj) or "")
    return out


def _is_prose(par: str) -> bool:
    """A paragraph of sentences, not code, a table or an argument list."""
    words = par.split()
    if len(words) < 12:
        return False
    letters = sum(1 for c in par if c.isalpha())
    if letters < 0.72 * len(par.replace(" ", "")):
        return False  # symbols, numbers, code
    if par.count("(") > len(words) // 4 or ">>>" in par or "::" in par:
        return False
    return par.rstrip()[-1:] in ".:;!?)" and _WORD.match(par) is not None


def _paragraphs(doc: str) -> list[str]:
    pars = []
    for block in re.split(r"\n\s*\n", doc):
        lines = block.splitlines()
        if not lines or any(line.startswith((" ", "\t")) for line in lines):
            continue  # indented: an example or a field list
        par = " ".join(line.strip() for line in lines)
        par = re.sub(r"\s+", " ", par).strip()
        if _is_prose(par):
            pars.append(par)
    return pars


@lru_cache(maxsize=1)
def corpus() -> tuple[str, ...]:
    """Every prose paragraph of MODULES' docstrings, in a fixed order, without repeats."""
    seen: set[str] = set()
    out: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in MODULES:
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - absent on this version or platform
                continue
            for doc in _docstrings(module):
                for par in _paragraphs(doc):
                    if par not in seen:
                        seen.add(par)
                        out.append(par)
        try:  # the help topics (the language reference's prose), sorted by topic
            from pydoc_data.topics import topics
        except ImportError:
            topics = {}
        for key in sorted(topics):
            for par in _paragraphs(topics[key]):
                if par not in seen:
                    seen.add(par)
                    out.append(par)
    return tuple(out)


def _tokenizer(tok):
    if isinstance(tok, (str, Path)):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(tok))
    return tok


class _Writer:
    """Rows cut from the corpus as a stream: each row starts at its own paragraph and
    reads on (wrapping around), so a row's parts are consecutive text."""

    def __init__(self, tok) -> None:
        self.tok = _tokenizer(tok)
        self.pars = corpus()
        self.counts = [len(ids) for ids in self.tok(list(self.pars), add_special_tokens=False).input_ids]

    def count(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False).input_ids)

    def _cut(self, words: list[str], budget: int) -> str:
        """The longest prefix of words with at most `budget` tokens (binary search)."""
        lo, hi = 0, len(words)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(" ".join(words[:mid])) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo])

    def take(self, pos: int, budget: int) -> tuple[str, int]:
        """About `budget` tokens of prose from paragraph `pos` on; (text, next paragraph)."""
        parts: list[str] = []
        used = 0
        n = len(self.pars)
        while budget - used > 0:
            par, c = self.pars[pos % n], self.counts[pos % n]
            pos += 1
            if used + c + 1 <= budget:
                parts.append(par)
                used += c + 1  # +1: the blank line between paragraphs
            else:
                cut = self._cut(par.split(), budget - used - 1)
                if cut:
                    parts.append(cut if cut.endswith(".") else cut + ".")
                break
        return "\n\n".join(parts), pos

    def row(self, start: int, target: int, task: str) -> tuple[dict, int]:
        """One alpaca row of at most `target` tokens, a few under it at most."""
        instr_extra = int(0.10 * target) - self.count(task)
        instruction, pos = (self.take(start, instr_extra) if instr_extra > 8 else ("", start))
        instruction = task + ("\n\n" + instruction if instruction else "")
        used = self.count(instruction)
        inp, pos = self.take(pos, max(1, int(0.60 * target)))
        used += self.count(inp)
        out_budget = max(4, target - used - 4)
        rest, _ = self.take(pos, out_budget + 400)  # enough words to trim from
        words = rest.split(" ")
        head = instruction + "\n\n" + inp + "\n\n"
        base = self.count(head)
        # The output is trimmed (binary search over its words, counting the output alone:
        # token counts add up across a blank line) so the whole row lands on target.
        a, b = 1, len(words)
        while a < b:
            mid = (a + b + 1) // 2
            if base + self.count(" ".join(words[:mid])) <= target:
                a = mid
            else:
                b = mid - 1
        output = " ".join(words[:a]).rstrip()
        length = self.count(head + output)
        while length > target and a > 1:  # the rare token merged across the join
            a -= 1
            output = " ".join(words[:a]).rstrip()
            length = self.count(head + output)
        return {"instruction": instruction, "input": inp, "output": output}, length


def _write(path, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def _rows(tok, targets, seed: int) -> tuple[list[dict], list[int]]:
    w = _Writer(tok)
    rng = np.random.default_rng(seed)
    n = len(w.pars)
    # Distinct starting paragraphs, spread over the corpus: no two rows are the same text
    # (the product drops duplicate rows), and long rows overlap as little as possible.
    starts = rng.permutation(n)[: len(targets)] if len(targets) <= n else rng.integers(0, n, len(targets))
    rows, lengths = [], []
    for i, target in enumerate(targets):
        row, length = w.row(int(starts[i]), int(target), TASKS[int(rng.integers(len(TASKS)))])
        rows.append(row)
        lengths.append(length)
    return rows, lengths


def write_alpaca(path, tokenizer_folder, n: int, lo: int, hi: int, seed: int = 0) -> list[int]:
    """n alpaca rows whose token lengths are spread uniformly over [lo, hi]; returns the
    lengths (instruction + input + output, without the chat template)."""
    rng = np.random.default_rng(seed + 1)
    targets = rng.integers(min(lo + 8, hi), hi + 1, n)  # a row lands a few tokens under its target: still >= lo
    rows, lengths = _rows(tokenizer_folder, targets, seed)
    _write(path, rows)
    return lengths


def write_short(path, tokenizer_folder, n: int = 200, seed: int = 0) -> list[int]:
    """n instruction-style rows, lengths from bench.synthetic.instruction_lengths
    (median ~200, p95 ~800, 24..2,048 tokens)."""
    from bench.synthetic import instruction_lengths

    targets = instruction_lengths(n, seed)
    rows, lengths = _rows(tokenizer_folder, targets, seed)
    _write(path, rows)
    return lengths


def stats(lengths) -> dict:
    a = np.asarray(lengths)
    if not len(a):
        return {}
    return {"rows": int(len(a)), "min": int(a.min()), "p50": int(np.percentile(a, 50)), "p95": int(np.percentile(a, 95)),
            "max": int(a.max()), "tokens": int(a.sum())}


if __name__ == "__main__":  # a quick look: python3 -m bench.prose .gpu/tok
    import sys
    import time

    t0 = time.time()
    pars = corpus()
    print(f"{len(pars)} paragraphs, {sum(len(p.split()) for p in pars):,} words ({time.time() - t0:.1f} s)")
    tok = sys.argv[1] if len(sys.argv) > 1 else ".gpu/tok"
    print("short", stats(write_short("/tmp/prose_short.jsonl", tok, 200)))
    print("long", stats(write_alpaca("/tmp/prose_long.jsonl", tok, 24, 3000, 9000, seed=1)))
