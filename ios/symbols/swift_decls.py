"""A small Swift reader for the symbol check: enough of the language to
list the declarations in uniffi's generated Swift and the references the
wrapper makes to them. It is not a compiler; it reads the regular code
uniffi emits and the wrapper style described in check_swift_symbols.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"`?[A-Za-z_][A-Za-z0-9_]*`?|->|\.\.\.|\.\.<|[{}()\[\]<>:,.=?!@#&|+\-*/%^~;]|\d[\d_.]*"
)

TYPE_KEYWORDS = {"class", "struct", "enum", "protocol", "actor", "extension"}
MODIFIERS = {
    "public", "open", "internal", "private", "fileprivate", "final", "static",
    "override", "convenience", "required", "indirect", "mutating", "nonisolated",
    "nonmutating", "lazy", "weak", "unowned", "dynamic", "optional",
}


def strip_swift(text: str) -> str:
    """Removes comments and string literals, keeping the code inside
    string interpolations (`\\(reading.value)`) and the line structure."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    out.append("\n" if text[i] == "\n" else "")
                    i += 1
        elif text[i] == '"':
            quote = '"""' if text.startswith('"""', i) else '"'
            i += len(quote)
            out.append('""')
            while i < n and not text.startswith(quote, i):
                if text.startswith("\\(", i):
                    depth, j = 1, i + 2
                    while j < n and depth:
                        depth += {"(": 1, ")": -1}.get(text[j], 0)
                        j += 1
                    out.append(" (" + text[i + 2 : j - 1] + ") ")
                    i = j
                elif text[i] == "\\":
                    i += 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
            i += len(quote)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def tokenize(text: str) -> list[str]:
    """Tokens of comment- and string-free Swift; backticks dropped."""
    return [t.strip("`") for t in _TOKEN.findall(strip_swift(text))]


@dataclass
class Func:
    """A function or initializer: its argument labels ('_' when unlabeled),
    which of them have defaults, each parameter's type head, the return type."""

    name: str
    labels: list[str]
    defaults: list[bool]
    param_types: list[str | None]
    returns: str | None

    def signature(self) -> str:
        return f"{self.name}({''.join(l + ':' for l in self.labels)})"

    def accepts(self, labels: list[str]) -> bool:
        """Whether a call with these labels can bind to this function."""
        i = 0
        for label, has_default in zip(self.labels, self.defaults):
            if i < len(labels) and labels[i] == label:
                i += 1
            elif not has_default:
                return False
        return i == len(labels)


@dataclass
class TypeDecl:
    """A type and the members declared in its body and its extensions."""

    name: str
    kind: str
    inherits: list[str] = field(default_factory=list)
    funcs: dict[str, list[Func]] = field(default_factory=dict)
    props: dict[str, str | None] = field(default_factory=dict)
    cases: set[str] = field(default_factory=set)

    def has_member(self, name: str) -> bool:
        return name in self.funcs or name in self.props or name in self.cases


@dataclass
class Module:
    """Every declaration in a set of Swift files."""

    types: dict[str, TypeDecl] = field(default_factory=dict)
    funcs: dict[str, list[Func]] = field(default_factory=dict)
    aliases: set[str] = field(default_factory=set)


def _matching(tokens: list[str], i: int, open_: str, close: str) -> int:
    """Index of the token closing the bracket opened at tokens[i]."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j] == open_:
            depth += 1
        elif tokens[j] == close:
            depth -= 1
            if depth == 0:
                return j
    return len(tokens) - 1


def split_top(tokens: list[str], sep: str = ",") -> list[list[str]]:
    """Splits a token list at separators outside any bracket."""
    parts: list[list[str]] = [[]]
    depth = 0
    for t in tokens:
        if t in "([{<":
            depth += 1
        elif t in ")]}>":
            depth -= 1
        if t == sep and depth == 0:
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def type_head(tokens: list[str]) -> str | None:
    """The named type of a type expression (`Foo`, `Foo?`, `Swift.Foo`);
    None for collections, tuples and closures."""
    toks = [t for t in tokens if t not in {"inout", "some", "any", "@", "escaping", "Sendable"}]
    if not toks or not re.match(r"[A-Za-z_]", toks[0]):
        return None
    if len(toks) >= 3 and toks[0] == "Swift" and toks[1] == ".":
        toks = toks[2:]
    rest = [t for t in toks[1:] if t not in {"?", "!"}]
    if rest and rest[0] not in {"<"}:
        return None
    return toks[0]


def _params(tokens: list[str]) -> tuple[list[str], list[bool], list[str | None]]:
    labels, defaults, types = [], [], []
    for part in split_top(tokens):
        if ":" not in part:
            continue
        colon = part.index(":")
        names = part[:colon]
        eq = part.index("=") if "=" in part[colon:] else None
        labels.append(names[0] if names else "_")
        defaults.append(eq is not None)
        types.append(type_head(part[colon + 1 : eq]))
    return labels, defaults, types


def parse_func(tokens: list[str], i: int) -> tuple[Func, int]:
    """Reads `func name(...) ... -> T` or `init(...)` at tokens[i]."""
    if tokens[i] == "init":
        name, j = "init", i + 1
        if j < len(tokens) and tokens[j] in {"?", "!"}:
            j += 1
    else:
        name, j = tokens[i + 1], i + 2
    if j < len(tokens) and tokens[j] == "<":
        j = _matching(tokens, j, "<", ">") + 1
    if j >= len(tokens) or tokens[j] != "(":
        return Func(name, [], [], [], None), j
    close = _matching(tokens, j, "(", ")")
    labels, defaults, types = _params(tokens[j + 1 : close])
    k = close + 1
    while k < len(tokens) and tokens[k] in {"async", "throws", "rethrows"}:
        k += 1
    returns = None
    if k < len(tokens) and tokens[k] == "->":
        end = k + 1
        while end < len(tokens) and tokens[end] not in {"{", "where"} and tokens[end] not in TYPE_KEYWORDS \
                and tokens[end] not in {"func", "var", "let", "init", "case", "}"} | MODIFIERS:
            end += 1
        returns = type_head(tokens[k + 1 : end])
        k = end
    return Func(name, labels, defaults, types, returns), k


def parse_module(text: str) -> Module:
    """Lists the types (with their members), free functions and type
    aliases declared in Swift source."""
    tokens = tokenize(text)
    module = Module()
    stack: list[tuple[TypeDecl | None, int]] = []  # (type, depth of its body)
    depth = 0
    pending: TypeDecl | None = None
    i = 0
    while i < len(tokens):
        t = tokens[i]
        owner = stack[-1][0] if stack and stack[-1][1] == depth else None
        at_top = not stack and depth == 0
        if t == "{":
            depth += 1
            if pending is not None:
                stack.append((pending, depth))
                pending = None
        elif t == "}":
            if stack and stack[-1][1] == depth:
                stack.pop()
            depth -= 1
        elif t in TYPE_KEYWORDS and i + 1 < len(tokens) and re.match(r"[A-Za-z_]", tokens[i + 1]) \
                and tokens[i + 1] not in {"func", "var", "let", "init"} and (owner is not None or at_top or stack):
            name = tokens[i + 1]
            decl = module.types.setdefault(name, TypeDecl(name, t))
            if t != "extension":
                decl.kind = t
            j = i + 2
            if j < len(tokens) and tokens[j] == "<":
                j = _matching(tokens, j, "<", ">") + 1
            if j < len(tokens) and tokens[j] == ":":
                end = j + 1
                while end < len(tokens) and tokens[end] not in {"{", "where"}:
                    end += 1
                decl.inherits += [p[-1] for p in split_top(tokens[j + 1 : end]) if p]
                j = end
            pending = decl
            i = j
            continue
        elif t == "typealias" and i + 1 < len(tokens) and (owner is not None or at_top):
            (owner.props.__setitem__(tokens[i + 1], None) if owner else module.aliases.add(tokens[i + 1]))
        elif t in {"func", "init"} and (owner is not None or at_top) and (t == "init" or i + 1 < len(tokens)):
            if t == "init" and i > 0 and tokens[i - 1] == ".":
                i += 1
                continue
            fn, j = parse_func(tokens, i)
            (owner.funcs if owner else module.funcs).setdefault(fn.name, []).append(fn)
            i = j
            continue
        elif t in {"var", "let"} and owner is not None and i + 1 < len(tokens):
            name = tokens[i + 1]
            ty = None
            if i + 2 < len(tokens) and tokens[i + 2] == ":":
                end = i + 3
                while end < len(tokens) and tokens[end] not in {"{", "=", "}", "var", "let", "func", "init", "case"} \
                        and tokens[end] not in MODIFIERS and tokens[end] not in TYPE_KEYWORDS and tokens[end] != "@":
                    end += 1
                ty = type_head(tokens[i + 3 : end])
            owner.props[name] = ty
        elif t == "case" and owner is not None and owner.kind == "enum":
            j = i + 1
            end = j
            while end < len(tokens) and tokens[end] not in {"case", "}", "func", "var", "init", "public", "{"}:
                end += 1
            for part in split_top(tokens[j:end]):
                if re.match(r"[A-Za-z_]", part[0]):
                    owner.cases.add(part[0])
            i = end
            continue
        i += 1
    return module
