#!/usr/bin/env python3
"""Checks that python/swimraft/_native.pyi names exactly what the installed native module
exports (functions, classes and their public methods), so the stubs cannot go stale."""

from __future__ import annotations

import ast
import pathlib
import sys

import swimraft._native as native

STUB = pathlib.Path(__file__).resolve().parent.parent / "python" / "swimraft" / "_native.pyi"


def stub_names() -> dict:
    tree = ast.parse(STUB.read_text())
    names: dict = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = None
        elif isinstance(node, ast.ClassDef):
            names[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")
            }
    return names


def module_names() -> dict:
    names: dict = {}
    for name in dir(native):
        if name.startswith("_"):
            continue
        obj = getattr(native, name)
        if isinstance(obj, type):
            names[name] = {m for m in dir(obj) if not m.startswith("__")}
        elif callable(obj):
            names[name] = None
    return names


def main() -> int:
    stub, real = stub_names(), module_names()
    problems = []
    for name in sorted(set(stub) | set(real)):
        if name not in real:
            problems.append(f"stub names {name}, the module does not export it")
        elif name not in stub:
            problems.append(f"module exports {name}, the stub lacks it")
        elif isinstance(real[name], set):
            for m in sorted(real[name] ^ (stub[name] or set())):
                side = "stub" if m in (stub[name] or set()) else "module"
                problems.append(f"{name}.{m} only in the {side}")
    if problems:
        print("stale _native.pyi:\n  " + "\n  ".join(problems))
        return 1
    print(f"_native.pyi matches the module ({len(real)} names)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
