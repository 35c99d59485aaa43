"""Machine files to fuzz with: the valid seeds, hostile snippets, and mutations of both.

Shared by the validator fuzz test (hypothesis draws the choices) and the daemon's fuzz test
(a seeded ``random.Random`` draws them, so the files dropped into the watch dir are the same
on every run). Every generator returns bytes: a fuzzed file need not be UTF-8.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.support.conformance import corpus_files

ROOT = Path(__file__).resolve().parents[2]  # the checkout


def seed_files() -> list[tuple[str, str]]:
    """(name, text) of every valid machine that ships, and of the Choria conformance corpus."""
    paths = sorted((ROOT / "machines").glob("*/machine.yaml"))
    paths += corpus_files()
    return [(f"{p.parent.name}/{p.name}", p.read_text()) for p in paths]


def alias_bomb(levels: int, width: int) -> str:
    """ "Billion laughs": each level is a list of ``width`` aliases of the level below."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + f"\nname: *l{levels - 1}\n"


def deep_nesting(depth: int, flow: bool = True) -> str:
    if flow:
        return "name: x\nwatchers: " + "[" * depth + "1" + "]" * depth + "\n"
    return "name: x\nwatchers:\n" + "".join("  " * i + "- \n" for i in range(depth)) + "\n"


# values that are the wrong type, too big, odd unicode, or YAML features that bite
VALUES = [
    "~",
    "null",
    "[]",
    "{}",
    "true",
    "off",
    "no",
    "-1",
    "0",
    "1e999",
    "-.inf",
    ".nan",
    "0x" + "f" * 40,
    "9" * 5000,
    "1_000",
    "2001-12-14t21:59:43.10-05:00",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!custom tag",
    "!!python/object:os.system ls",
    "*undefined",
    "&anchor value",
    "'quoted'",
    '"\\u0000\\ud800"',
    "ünïcødé 名前 🙂",
    "\u202eevil",
    "x" * 20000,
    "|\n  block\n  text",
    "{a: [1, {b: [2, {c: 3}]}]}",
    "[[[[[[[[[[]]]]]]]]]]",
    "? [a, b]\n  : c",
    "<<: {a: 1}",
    "10s",
    "500ms",
    "1w",
    "-5s",
    "10 parsecs",
    "1.0.0",
    "exec",
    "docker",
    "health",
    "timer",
]

SNIPPETS = [
    alias_bomb(9, 9),
    alias_bomb(4, 40),
    "a: &a [*a]\n",
    "&r {x: *r}\n",
    deep_nesting(200),
    deep_nesting(80, flow=False),
    "{" * 300 + "}" * 300 + "\n",
    "name: " + "9" * 5000 + "\n",
    "name: x\nname: y\n",
    "? [a, b]\n: c\n",
    "? {a: 1}\n: c\n",
    "1: 2\n",
    "~: nothing\n",
    "--- a\n--- b\n",
    "%YAML 1.1\n---\n",
    "%TAG ! tag:example.com,2000:\n---\n",
    "\t- tab\n",
    "name: \x00\n",
    "name: \x1b[31mred\n",
    "\ufeffname: bom\n",
    "x" * 100000 + "\n",
    "k" * 2000 + ": v\n",
    "<<: [*undefined]\n",
    "<<: 1\n",
    "watchers: [{name: w, type: exec, properties: {command: [1, 2]}}]\n",
    "transitions: [{name: t, from: t, destination: [x]}]\n",
    "watchers: [{name: w, type: docker, properties: {name: c, desired: running, image: x}}]\n",
    "watchers: [{name: w, type: health, properties: {http: {url: 'http://[::1'}}}]\n",
    "watchers: [{name: w, type: schedule, properties: {schedules: ['* * * * * * *']}}]\n",
]


def mutate(text: str, rng: random.Random, steps: int = 3) -> bytes:
    """``text`` with a few random edits: lines replaced, duplicated, deleted, values swapped
    for hostile ones, hostile snippets spliced in, random bytes inserted, a truncation."""
    lines = text.splitlines(keepends=True) or [""]
    tail = b""
    for _ in range(steps):
        i = rng.randrange(len(lines))
        op = rng.randrange(7)
        if op == 0:
            lines.insert(i, lines[i])  # duplicate keys and list items
        elif op == 1 and len(lines) > 1:
            del lines[i]
        elif op == 2:
            key, sep, _ = lines[i].partition(":")
            lines[i] = f"{key}{sep or ':'} {rng.choice(VALUES)}\n"
        elif op == 3:
            indent = rng.choice(["", "  ", "    ", "      "])
            snippet = rng.choice(SNIPPETS)
            lines.insert(i, "".join(indent + line for line in snippet.splitlines(keepends=True)))
        elif op == 4:
            lines[i] = lines[i].replace(" ", rng.choice(["", "  ", "\t", ": ", "- "]), 1)
        elif op == 5:
            tail = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        else:
            lines = lines[: i + 1]
            lines[-1] = lines[-1][: rng.randrange(len(lines[-1]) + 1)]
    raw = "".join(lines).encode("utf-8", "surrogatepass")
    if tail:
        at = rng.randrange(len(raw) + 1)
        raw = raw[:at] + tail + raw[at:]
    return raw


def fuzzed_files(count: int, seed: int) -> list[bytes]:
    """``count`` mutated machine files, the same ones for the same seed."""
    rng = random.Random(seed)
    seeds = [text for _, text in seed_files()]
    out = []
    for _ in range(count):
        if rng.random() < 0.2:
            out.append(rng.choice(SNIPPETS).encode("utf-8", "surrogatepass"))
        else:
            out.append(mutate(rng.choice(seeds), rng, rng.randrange(1, 5)))
    return out
