#!/usr/bin/env python3
"""Checks that every generated symbol the Swift wrapper uses exists in the
uniffi-generated Swift, so the wrapper and the bindings cannot drift apart
silently while no Swift compiler is at hand.

    check_swift_symbols.py --generated vigil_bindings.swift \
        --platform-names ios/symbols/platform-names.txt ios/Sources/Vigil/*.swift

What it checks, in the wrapper:
  * every type name it mentions is generated, declared by the wrapper, or
    listed as a platform (Swift / Apple SDK) name;
  * `x.member` where `x` has a generated type (a parameter, property or
    local with a type annotation, or a local bound from a generated call
    or initializer): the member exists; for a call, its argument labels
    fit one of the declared overloads;
  * `Type.member`, `Type(...)` on generated types: the static member, enum
    case or initializer (with its labels) exists;
  * `.case` shorthand passed as an argument whose parameter has a
    generated enum type, and `case .x` arms of a `switch` over a value of
    a generated enum type;
  * wrapper types conforming to a generated protocol implement each of
    its functions with the same name and labels.
Prints each missing symbol and exits 1 when any is missing.

Limits (it reads, it does not type-check): members of values whose type
it cannot see are not checked (closure parameters such as `$0`, loop
variables, values returned by the wrapper's own functions, `.case`
shorthand passed to the wrapper's own functions). Give such values a type
annotation where the check matters. Variable types are tracked per file,
not per scope.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from swift_decls import Func, Module, TypeDecl, _matching, parse_module, split_top, tokenize

CALL_PREFIX = {"try", "await", "?", "!"}


def _call_labels(tokens: list[str], open_: int) -> tuple[list[str], list[list[str]], int]:
    close = _matching(tokens, open_, "(", ")")
    labels, values = [], []
    for part in split_top(tokens[open_ + 1 : close]):
        if len(part) >= 2 and part[1] == ":" and re.match(r"[A-Za-z_]", part[0]):
            labels.append(part[0])
            values.append(part[2:])
        else:
            labels.append("_")
            values.append(part)
    return labels, values, close


class Checker:
    """Walks one wrapper file against the generated module."""

    def __init__(self, generated: Module, wrapper: Module, platform: set[str]):
        # Types the generated file only extends (NSLock, Data) are not its own.
        generated.types = {k: v for k, v in generated.types.items() if v.kind != "extension"}
        self.gen = generated
        self.wrapper = wrapper
        self.platform = platform
        self.missing: dict[str, str] = {}
        self.used: set[str] = set()

    def miss(self, symbol: str, where: str) -> None:
        self.missing.setdefault(symbol, where)

    def gen_type(self, name: str | None) -> TypeDecl | None:
        return self.gen.types.get(name) if name else None

    def check_call(self, owner: TypeDecl, overloads: list[Func], labels: list[str],
                   values: list[list[str]], where: str) -> Func | None:
        fitting = [f for f in overloads if f.accepts(labels)]
        if not fitting:
            name = overloads[0].name
            self.miss(f"{owner.name}.{name}({''.join(l + ':' for l in labels)})"
                      f" (declared: {', '.join(f.signature() for f in overloads)})", where)
            return None
        fn = fitting[0]
        for label, value in zip(labels, values):
            if len(value) >= 2 and value[0] == "." and label in fn.labels:
                enum = self.gen_type(fn.param_types[fn.labels.index(label)])
                if enum is not None and enum.kind == "enum" and not enum.has_member(value[1]):
                    self.miss(f"{enum.name}.{value[1]}", where)
        return fn

    def member(self, owner: TypeDecl, tokens: list[str], k: int, where: str) -> str | None:
        """Checks `owner.<tokens[k]>`; returns the member's type head."""
        name = tokens[k]
        self.used.add(f"{owner.name}.{name}")
        if not owner.has_member(name) and not self._inherited(owner, name):
            self.miss(f"{owner.name}.{name}", where)
            return None
        if name in owner.funcs and k + 1 < len(tokens) and tokens[k + 1] == "(":
            labels, values, _ = _call_labels(tokens, k + 1)
            fn = self.check_call(owner, owner.funcs[name], labels, values, where)
            return fn.returns if fn else None
        return owner.props.get(name)

    def _inherited(self, owner: TypeDecl, name: str) -> bool:
        for parent in owner.inherits:
            p = self.gen.types.get(parent)
            if p is not None and p is not owner and (p.has_member(name) or self._inherited(p, name)):
                return True
        return name in {"init", "self", "description", "hashValue", "rawValue", "localizedDescription"}

    @staticmethod
    def _receiver(tokens: list[str], i: int) -> int | None:
        """For `x.m`, `x?.m`, `x!.m`, `self.x.m`: the index of `m`."""
        if i and tokens[i - 1] == "." and not (i >= 2 and tokens[i - 2] == "self"):
            return None
        j = i + 1
        if j < len(tokens) and tokens[j] in {"?", "!"}:
            j += 1
        return j + 1 if j < len(tokens) and tokens[j] == "." else None

    def run(self, path: str, text: str) -> None:
        tokens = tokenize(text)
        own_types = set(self.wrapper.types) | self.wrapper.aliases
        generics = {tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "<" and i > 0
                    and tokens[i - 1] not in own_types | set(self.gen.types)}
        variables: dict[str, str] = {}
        # Pass 1: what each name is, from annotations and initializers.
        for i, t in enumerate(tokens):
            if t == ":" and 0 < i < len(tokens) - 1 and re.match(r"[a-z_]", tokens[i - 1]):
                if tokens[i + 1] in self.gen.types:
                    variables[tokens[i - 1]] = tokens[i + 1]
            if t in {"let", "var"} and i + 2 < len(tokens) and tokens[i + 2] == "=":
                j = i + 3
                while j < len(tokens) and tokens[j] in CALL_PREFIX:
                    j += 1
                if j < len(tokens) and tokens[j] in self.gen.types:
                    variables[tokens[i + 1]] = tokens[j]
        # Pass 2: every reference.
        i = 0
        line = 1
        while i < len(tokens):
            t = tokens[i]
            where = f"{path}: near `{' '.join(tokens[max(0, i - 3) : i + 4])}`"
            prev = tokens[i - 1] if i else ""
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if t == "import":
                i += 2
                continue
            if t == "canImport":  # `#if canImport(CoreBluetooth)`: a module, not a type
                i += 4
                continue
            if re.match(r"[A-Z]", t) and prev != ".":
                if t in self.gen.types:
                    self.used.add(t)
                    owner = self.gen.types[t]
                    if nxt == "." and i + 2 < len(tokens) and re.match(r"[A-Za-z_]", tokens[i + 2]):
                        self.member(owner, tokens, i + 2, where)
                    elif nxt == "(" and owner.kind in {"class", "struct"}:
                        labels, values, _ = _call_labels(tokens, i + 1)
                        inits = owner.funcs.get("init", [])
                        if inits:
                            self.check_call(owner, inits, labels, values, where)
                        else:
                            self.miss(f"{t}.init", where)
                elif t in self.gen.aliases or t in self.gen.funcs:
                    self.used.add(t)
                elif t not in own_types and t not in self.platform and t not in generics:
                    self.miss(f"type {t}", where)
            elif re.match(r"[a-z_]", t) and t in variables and self._receiver(tokens, i) is not None:
                owner = self.gen.types[variables[t]]
                k = self._receiver(tokens, i)
                if k is not None and k < len(tokens) and re.match(r"[A-Za-z_]", tokens[k]):
                    returned = self.member(owner, tokens, k, where)
                    # `let x = try core.status()`: x has the returned type.
                    back = i - 1
                    while back >= 0 and tokens[back] in CALL_PREFIX:
                        back -= 1
                    if returned in self.gen.types and back >= 2 and tokens[back] == "=" \
                            and tokens[back - 2] in {"let", "var"}:
                        variables[tokens[back - 1]] = returned
            elif re.match(r"[a-z_]", t) and prev != "." and nxt == "(" and t in self.gen.funcs \
                    and t not in self.wrapper.funcs:
                self.used.add(t)
                labels, _, _ = _call_labels(tokens, i + 1)
                if not any(f.accepts(labels) for f in self.gen.funcs[t]):
                    self.miss(f"{t}({''.join(l + ':' for l in labels)})", where)
            elif t == "switch" and nxt in variables:
                enum = self.gen.types[variables[nxt]]
                if enum.kind == "enum" and i + 2 < len(tokens) and tokens[i + 2] == "{":
                    end = _matching(tokens, i + 2, "{", "}")
                    depth = 0
                    for k in range(i + 2, end):
                        depth += {"{": 1, "}": -1}.get(tokens[k], 0)
                        if depth == 1 and tokens[k] == "case":
                            m = k + 1
                            while m < end and tokens[m] in {"let", "var"}:
                                m += 1
                            if m + 1 < end and tokens[m] == "." and not enum.has_member(tokens[m + 1]):
                                self.miss(f"{enum.name}.{tokens[m + 1]}", where)
            i += 1
        self.check_conformances()

    def check_conformances(self) -> None:
        for decl in self.wrapper.types.values():
            for parent in decl.inherits:
                proto = self.gen.types.get(parent)
                if proto is None or proto.kind != "protocol":
                    continue
                for name, overloads in proto.funcs.items():
                    for fn in overloads:
                        mine = decl.funcs.get(name, [])
                        if not any(m.labels == fn.labels for m in mine):
                            self.miss(f"{decl.name} does not implement {parent}.{fn.signature()}",
                                      f"conformance of {decl.name} to {parent}")


def check(generated_text: str, wrapper_files: dict[str, str], platform: set[str]) -> Checker:
    """Checks the wrapper files against the generated Swift."""
    generated = parse_module(generated_text)
    wrapper = parse_module("\n".join(wrapper_files.values()))
    checker = Checker(generated, wrapper, platform)
    for path, text in sorted(wrapper_files.items()):
        checker.run(path, text)
    return checker


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generated", required=True, type=Path, help="the generated Swift file")
    parser.add_argument("--platform-names", type=Path, help="Swift / Apple SDK type names, one a line")
    parser.add_argument("wrapper", nargs="+", type=Path, help="the wrapper's Swift files")
    args = parser.parse_args(argv)
    platform: set[str] = set()
    if args.platform_names:
        for raw in args.platform_names.read_text().splitlines():
            name = raw.split("#", 1)[0].strip()
            if name:
                platform.add(name)
    files = {str(p): p.read_text() for p in args.wrapper}
    checker = check(args.generated.read_text(), files, platform)
    if checker.missing:
        print(f"swift symbol check: {len(checker.missing)} symbol(s) the wrapper uses are missing:", file=sys.stderr)
        for symbol, where in sorted(checker.missing.items()):
            print(f"  missing: {symbol}\n      at {where}", file=sys.stderr)
        print("(a platform type? add it to the --platform-names file)", file=sys.stderr)
        return 1
    print(f"swift symbol check: ok, {len(checker.used)} generated symbols used by "
          f"{len(files)} wrapper file(s) all exist")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
