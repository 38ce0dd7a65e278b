"""Task-aware code check: does the code in a synthetic record pass a benchmark item's own tests?

A semantic match says a synthetic record *reads* like a benchmark item; it cannot tell "the
same problem restated" from "another problem on the same topic". For a code benchmark the
item's tests can: a record whose function passes HumanEval/13's tests solves HumanEval/13,
whatever its names and wording (behavioural equivalence). So for a (benchmark item, synthetic
record) pair this module

1. takes the record's Python code (:func:`extract_code`): its fenced code blocks, else the
   whole text; the parts that parse (prose around bare code is cut off); of those, only
   imports, function and class definitions and simple assignments, so that loading the code
   does no work (no ``print(solve())``, no ``input()``);
2. picks the candidates: the record's top-level functions (and the public methods of its
   classes, LeetCode's ``class Solution`` style) whose positional arity fits the item's
   function, the item's own name first, then functions no other record function calls (the
   entry points), at most :data:`MAX_CANDIDATES`;
3. runs, in one sandboxed process per pair (:mod:`synthscope.compute.untrusted`), the item's
   tests against each candidate until one passes: HumanEval rows (``prompt``,
   ``canonical_solution``, ``test`` defining ``check(candidate)``, ``entry_point``) by
   ``check(fn)``; MBPP rows (``test_list`` of ``assert f(...) == ...``, maybe
   ``test_setup_code``) by running the asserts with the item's function name bound to the
   candidate.

The record's code and the tests live in separate namespaces: the tests see the item's own
reference code (HumanEval/38's tests call the prompt's ``encode_cyclic``; HumanEval/33's
compare against ``sort_third``) and get the candidate only as the function under test, so a
record that happens to define ``check`` or ``candidate`` changes nothing.

A pair whose item has no tests, or whose record defines no Python function, is *not
applicable* and never confirms anything; neither does a sandbox that is unavailable here.
"""

from __future__ import annotations

import ast
import builtins
import math
import re
import textwrap
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from synthscope.compute.untrusted import Limits, run_untrusted

MAX_CANDIDATES = 3  # functions tried per pair, in one process
MAX_TEXT_CHARS = 100_000  # of a record's text looked at for code
MAX_SALVAGE_LINES = 400  # of one block parsed line range by line range when it does not parse whole
LIMITS = Limits(cpu_seconds=3, wall_seconds=6.0, memory_bytes=512 << 20)  # per pair: tests of one function

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.S | re.M)
_PYTHON_FENCES = {"", "python", "python3", "py", "py3", "ipython", "sage"}
_CODE_START = re.compile(r"(?:def|async\s+def|class|import|from)\b|@\w")
_DOING = {"input", "print", "open", "exit", "quit", "breakpoint", "eval", "exec", "help", "compile", "__import__"}
_BUILTINS = frozenset(dir(builtins))
# A record passing at least COUNT_SHARE of an item's asserts, out of at least COUNT_MIN_ASSERTS, solves most of it
# (a restatement with another convention); checks.py neither confirms nor refutes such a pair. Below, counting
# stops as soon as the share is out of reach.
COUNT_SHARE = 0.7
COUNT_MIN_ASSERTS = 5
_BEST = re.compile(r"best (?P<passed>\d+)/(?P<total>\d+) (?P<function>[\w.]+)$")  # the harness's partial result


# Standard-library modules a record's code sees already imported: synthetic answers are often snippets that use
# math.sqrt or re.sub without the import line (CodeAlpaca's prime factorisation does), and a missing import is not a
# different problem.
RECORD_MODULES = ("math", "re", "string", "collections", "itertools", "functools", "heapq")


@dataclass(frozen=True)
class CodeCheck:
    """The verdict on one (benchmark item, synthetic record) pair; ``reason`` is one line for the evidence view."""

    applicable: bool  # False: no tests, or no function; such a pair never confirms anything
    passed: bool
    function: str | None  # the record's function that passed the item's tests
    status: str  # "not_applicable" or a sandbox status: passed, failed, timeout, error, unavailable
    reason: str
    seconds: float = 0.0  # wall time in the sandbox (0 when no process ran)
    share: float | None = None  # of the item's asserts the best failing candidate passed (None: none, or no count)
    asserts: int = 0  # how many asserts that share is of


@dataclass(frozen=True)
class _Function:
    name: str  # "f" or "Solution.f"
    lo: int  # positional arguments it needs
    hi: float  # positional arguments it takes (inf with *args)
    owner: str | None  # its class, for a method
    root: bool  # no other record function calls it


@dataclass(frozen=True)
class _RecordCode:
    statements: tuple[str, ...]
    functions: tuple[_Function, ...]


@dataclass(frozen=True)
class _Plan:
    """How to run one item's tests: its own code, its tests, and the arity its function has."""

    label: str
    entry: str
    lo: int
    hi: float
    reference: str  # the item's own code (helpers, imports) the tests see
    tests: tuple[str, ...]  # HumanEval: (test source,); MBPP: the asserts
    humaneval: bool
    modules: tuple[str, ...] = ()  # modules the MBPP asserts name (math.isclose) without importing them
    asserts: int = 0  # asserts counted one by one (0: the tests only pass or fail as a whole)


# -- benchmark items ---------------------------------------------------------------------------------------


def has_code_tests(raw: Mapping[str, Any]) -> bool:
    """Whether a benchmark row carries tests this check can run (HumanEval's ``check`` or MBPP's asserts)."""
    return _humaneval(raw) or bool(_asserts(raw))


def _humaneval(raw: Mapping[str, Any]) -> bool:
    test, entry = raw.get("test"), raw.get("entry_point")
    return isinstance(test, str) and "def check(" in test and isinstance(entry, str) and entry.isidentifier()


def _asserts(raw: Mapping[str, Any]) -> list[str]:
    tests = raw.get("test_list")
    if not isinstance(tests, list | tuple):
        return []
    return [t for t in tests if isinstance(t, str) and t.lstrip().startswith("assert")]


def _label(raw: Mapping[str, Any]) -> str:
    task = raw.get("task_id")
    if isinstance(task, str) and task:
        return task
    return f"task {task}" if isinstance(task, int) else "the item"


def _plan(raw: Mapping[str, Any]) -> _Plan | None:
    label = _label(raw)
    if _humaneval(raw):
        reference = str(raw.get("prompt") or "") + str(raw.get("canonical_solution") or "")
        entry = raw["entry_point"]
        lo, hi = _arity_of(reference, entry)
        tests, asserts = _counting(raw["test"])
        return _Plan(label, entry, lo, hi, reference, (tests,), True, asserts=asserts)
    asserts = _asserts(raw)
    if not asserts:
        return None
    entry, arities, modules = _assert_calls(asserts)
    if entry is None:
        return None
    reference = "\n".join(str(raw.get(k) or "") for k in ("code", "test_setup_code"))
    return _Plan(label, entry, min(arities), max(arities), reference, tuple(asserts), False, modules,
                 asserts=len(asserts))


def _counting(test: str) -> tuple[str, int]:
    """HumanEval's ``check`` rewritten to count its asserts instead of stopping at the first that fails.

    Each top-level statement of ``check`` that asserts something (``assert candidate(2) == 4``, or a loop
    of asserts) is wrapped so that it adds to ``__tally`` = [passed, failed, first error, missing];
    ``assert True`` (HumanEval's debugging idiom) counts for nothing. The item's verdict does not change
    (it passes when nothing fails), but a record that fails can say how much of the problem it solves: a
    restatement with another convention (vowels of one case only) passes most asserts, a neighbouring
    problem few. Tests that do not parse are left as they are. Returns the tests and how many statements count.
    """
    try:
        tree = ast.parse(test)
    except (SyntaxError, ValueError):
        return test, 0
    counted = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "check":
            counted += sum(map(_asserts_something, node.body))
            node.body = [_tallied(stmt) if _asserts_something(stmt) else stmt for stmt in node.body]
    return ast.unparse(ast.fix_missing_locations(tree)), counted


def _allowed_failures(asserts: int) -> int:
    """Failures after which a candidate cannot reach :data:`COUNT_SHARE` of ``asserts``: its tests stop there.

    Below :data:`COUNT_MIN_ASSERTS` a share means nothing, so the first failure ends the tests, as a plain
    ``check`` does: a record of another problem costs no more than before asserts were counted.
    """
    if asserts < COUNT_MIN_ASSERTS:
        return 0
    return int((1.0 - COUNT_SHARE) * asserts + 1e-9)


def _asserts_something(stmt: ast.stmt) -> bool:
    return any(isinstance(n, ast.Assert) and not isinstance(n.test, ast.Constant) for n in ast.walk(stmt))


def _tallied(stmt: ast.stmt) -> ast.stmt:
    passed, failed = ast.parse("__tally[0] += 1").body, ast.parse("__fail(__tally, __e)").body
    handler = ast.ExceptHandler(type=ast.Name("Exception", ast.Load()), name="__e", body=failed)
    return ast.Try(body=[stmt, *passed], handlers=[handler], orelse=[], finalbody=[])


def _arity_of(source: str, name: str) -> tuple[int, float]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return 0, math.inf
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return _positional(node.args, method=False)
    return 0, math.inf


def _assert_calls(asserts: list[str]) -> tuple[str | None, list[int], tuple[str, ...]]:
    """The function MBPP's asserts test (the non-builtin name they call most), its call arities, modules named."""
    calls: Counter[str] = Counter()
    arities: dict[str, list[int]] = {}
    modules: set[str] = set()
    for text in asserts:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in _BUILTINS:
                calls[node.func.id] += 1
                arities.setdefault(node.func.id, []).append(len(node.args))
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                modules.add(node.value.id)
    if not calls:
        return None, [], ()
    entry = calls.most_common(1)[0][0]
    return entry, arities[entry], tuple(sorted(modules - {entry}))


# -- synthetic records ------------------------------------------------------------------------------------


def extract_code(text: str) -> str:
    """The Python a record defines, as it would be loaded: imports, definitions and simple assignments."""
    return "\n\n".join(_record_code(text).statements)


def _record_code(text: str) -> _RecordCode:
    statements: list[ast.stmt] = []
    for block in _code_blocks(text[:MAX_TEXT_CHARS]):
        statements.extend(_parse(block))
    defined = {s.name for s in statements if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}
    kept = [s for s in statements if _keep(s, defined)]
    return _RecordCode(tuple(ast.unparse(s) for s in kept), tuple(_functions(kept)))


def _code_blocks(text: str) -> list[str]:
    """Fenced Python blocks, else the whole text (bare code, perhaps with prose around it)."""
    fenced = [body for lang, body in _FENCE.findall(text) if lang.lower() in _PYTHON_FENCES]
    return fenced or [text]


def _parse(block: str) -> list[ast.stmt]:
    """The statements of ``block``; when it does not parse whole, those of the code-like line ranges that do."""
    block = textwrap.dedent(block)
    try:
        return ast.parse(block).body
    except (SyntaxError, ValueError):
        pass
    lines = block.splitlines()[:MAX_SALVAGE_LINES]
    found: list[ast.stmt] = []
    start = 0
    while start < len(lines):
        stripped = lines[start].lstrip()
        if not _CODE_START.match(stripped):
            start += 1
            continue
        indent = len(lines[start]) - len(stripped)  # code indented in prose (a list item): the lines under it
        stop = start + 1
        while stop < len(lines) and (not lines[stop].strip() or len(lines[stop]) - len(lines[stop].lstrip()) >= indent):
            stop += 1
        region = [line[indent:] for line in lines[start:stop]]
        end, tree = len(region), None
        while end > 0 and tree is None:
            try:
                tree = ast.parse("\n".join(region[:end]))
            except (SyntaxError, ValueError) as exc:
                bad = (getattr(exc, "lineno", None) or 1) - 1  # cut at the line the parser stopped on
                end = bad if 0 < bad < end else end - 1
        if tree is None:
            start += 1
            continue
        found.extend(tree.body)
        start += end
    return found


def _keep(node: ast.stmt, defined: set[str]) -> bool:
    """Definitions, imports and assignments that call nothing doing work (no input(), no solve(10**9))."""
    if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return True
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not all(isinstance(t, ast.Name | ast.Tuple) for t in targets):
            return False
        for sub in ast.walk(node.value):
            if isinstance(sub, ast.Await | ast.Yield | ast.YieldFrom):
                return False
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in _DOING | defined:
                return False
        return True
    return False


def _functions(statements: list[ast.stmt]) -> list[_Function]:
    defs = {s.name: s for s in statements if isinstance(s, ast.FunctionDef)}  # the last definition wins
    called = {n.func.id for d in defs.values() for n in ast.walk(d)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id != d.name}
    found = [_Function(name, *_positional(d.args, method=False), None, name not in called)
             for name, d in defs.items()]
    classes = {s.name: s for s in statements if isinstance(s, ast.ClassDef)}
    for cls in classes.values():
        for d in cls.body:
            if isinstance(d, ast.FunctionDef) and not d.name.startswith("_"):
                static = any(isinstance(x, ast.Name) and x.id == "staticmethod" for x in d.decorator_list)
                found.append(_Function(f"{cls.name}.{d.name}", *_positional(d.args, method=not static), cls.name,
                                       False))
    return found


def _positional(args: ast.arguments, *, method: bool) -> tuple[int, float]:
    names = len(args.posonlyargs) + len(args.args) - (1 if method else 0)
    required = max(0, names - len(args.defaults))
    return required, math.inf if args.vararg else max(names, 0)


def _candidates(code: _RecordCode, plan: _Plan) -> list[_Function]:
    fits = [f for f in code.functions if f.lo <= plan.hi and plan.lo <= f.hi]

    def rank(f: _Function) -> int:
        if f.name.rsplit(".", 1)[-1] == plan.entry:
            return 0
        return 3 if f.owner is not None else 1 if f.root else 2

    return sorted(fits, key=rank)[:MAX_CANDIDATES]  # sorted() is stable: definition order within a rank


# -- one pair -----------------------------------------------------------------------------------------------


def check_pair(item: Mapping[str, Any], record: str, limits: Limits | None = None) -> CodeCheck:
    """Whether a function of ``record`` passes ``item``'s tests (one sandboxed process at most)."""
    return _check(_plan(item), _label(item), _record_code(record), limits or LIMITS)


def check_pairs(items: list[dict[str, Any]], records: list[str], pairs: list[tuple[int, int]], workers: int = 2,
                limits: Limits | None = None) -> list[CodeCheck]:
    """:func:`check_pair` for each ``(item index, record index)`` of ``pairs``, ``workers`` processes at a time.

    Each item's tests and each record's code are prepared once, however many pairs share them.
    """
    limits = limits or LIMITS
    plans: dict[int, _Plan | None] = {}
    codes: dict[int, _RecordCode] = {}
    lock = threading.Lock()

    def one(pair: tuple[int, int]) -> CodeCheck:
        i, j = pair
        with lock:
            if i not in plans:
                plans[i] = _plan(items[i])
            if j not in codes:
                codes[j] = _record_code(records[j])
            plan, code = plans[i], codes[j]
        return _check(plan, _label(items[i]), code, limits)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="code-check") as pool:
        return list(pool.map(one, pairs))


def _check(plan: _Plan | None, label: str, code: _RecordCode, limits: Limits) -> CodeCheck:
    if plan is None:
        return CodeCheck(False, False, None, "not_applicable", f"{label} has no code tests")
    if not code.functions:
        return CodeCheck(False, False, None, "not_applicable", "defines no Python function")
    candidates = _candidates(code, plan)
    if not candidates:
        defined = ", ".join(f"{f.name}()" for f in code.functions[:5])
        return CodeCheck(True, False, None, "failed",
                         f"defines no function taking {_arity_text(plan)} ({defined})")
    outcome = run_untrusted(_harness(plan, code, candidates), limits)
    seconds = outcome.seconds
    if outcome.passed:
        function = outcome.result or candidates[0].name
        return CodeCheck(True, True, function, "passed", f"passes {label}'s tests with {function}()", seconds)
    if outcome.status == "unavailable":
        return CodeCheck(True, False, None, "unavailable", outcome.detail, seconds)
    if outcome.status == "failed" and outcome.detail.startswith("ImportError: "):
        why = outcome.detail.removeprefix("ImportError: ")  # e.g. it needs tensorflow: its behaviour is unknown
        return CodeCheck(True, False, None, "error", f"{label}'s tests could not run the record's code: {why}",
                         seconds)
    if outcome.status == "failed":  # the harness's AssertionError lists why each candidate failed
        why = outcome.detail.removeprefix("AssertionError: ")
        best = _BEST.match(why)
        if best is None:
            return CodeCheck(True, False, None, "failed", f"fails {label}'s tests: {why}", seconds)
        passed, total, function = int(best["passed"]), int(best["total"]), best["function"]
        return CodeCheck(True, False, function, "failed",
                         f"{function}() passes {passed} of {label}'s {total} asserts", seconds, passed / total, total)
    return CodeCheck(True, False, None, outcome.status, f"{label}'s tests did not finish: {outcome.detail}", seconds)


def _arity_text(plan: _Plan) -> str:
    if plan.hi == math.inf:
        return f"{plan.lo} or more arguments"
    n = f"{plan.lo}" if plan.lo == plan.hi else f"{plan.lo} to {int(plan.hi)}"
    return f"{n} argument{'' if n == '1' else 's'}"


def _harness(plan: _Plan, code: _RecordCode, candidates: Iterable[_Function]) -> str:
    """The program one sandboxed process runs: load the record, then the item's tests against each candidate.

    It leaves the passing function's name in ``__result__``; no candidate passing is an AssertionError
    listing why each failed.
    """
    pick = [(f.name.rsplit(".", 1)[-1], f.owner) for f in candidates]
    if plan.humaneval:  # the tests count their own asserts (_counting)
        run_tests = ("    exec(compile(__TESTS[0], '<tests>', 'exec'), __ns)\n"
                     "    __ns['check'](__fn)\n")
    else:
        run_tests = (f"    __ns[{plan.entry!r}] = __fn\n"
                     "    for __t in __TESTS:\n"
                     "        try:\n"
                     "            exec(compile(__t, '<tests>', 'exec'), __ns)\n"
                     "            __tally[0] += 1\n"
                     "        except Exception as __e:\n"
                     "            __fail(__tally, __e)\n")
    return (
        f"__RECORD = {list(code.statements)!r}\n"
        f"__REFERENCE = {plan.reference!r}\n"
        f"__TESTS = {list(plan.tests)!r}\n"
        f"__MODULES = {list(plan.modules)!r}\n"
        f"__PICK = {pick!r}\n"
        f"__N = {plan.asserts}\n"
        "__record = {'__name__': '__record__'}\n"
        f"for __m in {list(RECORD_MODULES)!r}:\n"  # snippets often use math or re without importing them
        "    try:\n"
        "        __record[__m] = __import__(__m)\n"
        "    except BaseException:\n"
        "        pass\n"
        "for __s in __RECORD:\n"
        "    try:\n"
        "        exec(compile(__s, '<record>', 'exec'), __record)\n"
        "    except BaseException:\n"
        "        pass\n"
        "class __GiveUp(BaseException):\n"  # the share can no longer be reached: stop this candidate's tests
        "    pass\n"
        "def __fail(__tally, __e):\n"  # count a failed assert; keep the first error, and whether code was missing
        "    __tally[1] += 1\n"
        "    if not __tally[2]:\n"
        "        try:\n"
        "            __text = ' '.join(str(__e).split())[:60]\n"
        "        except BaseException:\n"
        "            __text = ''\n"
        "        __tally[2] = type(__e).__name__ + (': ' + __text if __text else '')\n"
        "        __tally[3] = isinstance(__e, (NameError, ImportError))\n"
        f"    if __tally[1] > {_allowed_failures(plan.asserts)}:\n"
        "        __tally[4] = True\n"
        "        raise __GiveUp()\n"
        "def __try(__name, __owner):\n"
        "    __fn = __record[__name] if __owner is None else getattr(__record[__owner](), __name)\n"
        "    __tally = [0, 0, '', False, False]\n"  # passed, failed, first error, code missing, stopped early
        "    __ns = {'__name__': '__tests__', '__tally': __tally, '__fail': __fail}\n"
        "    for __m in __MODULES:\n"
        "        try:\n"
        "            __ns[__m] = __import__(__m)\n"
        "        except BaseException:\n"
        "            pass\n"
        "    try:\n"
        "        exec(compile(__REFERENCE, '<reference>', 'exec'), __ns)\n"
        "    except BaseException:\n"
        "        pass\n"
        "    try:\n"
        f"{textwrap.indent(run_tests, '    ')}"
        "    except __GiveUp:\n"
        "        pass\n"
        "    return __tally\n"
        "__why = []\n"
        "__unrun = []\n"
        "__best = (0, 1, '')\n"
        "for __name, __owner in __PICK:\n"
        "    __shown = __name if __owner is None else __owner + '.' + __name\n"
        "    try:\n"
        "        __passed, __failed, __first, __missing, __stopped = __try(__name, __owner)\n"
        "    except BaseException as __e:\n"
        "        __text = ' '.join(str(__e).split())[:80]\n"
        "        __why.append(__shown + '() ' + type(__e).__name__ + (': ' + __text if __text else ''))\n"
        "        continue\n"
        "    if __failed == 0:\n"
        "        __result__ = __shown\n"
        "        break\n"
        "    __of = (' at least ' + str(__failed) + ' of ' + str(__N)) if __stopped else (\n"
        "        ' ' + str(__failed) + ' of ' + str(__passed + __failed))\n"
        "    __why.append(__shown + '() fails' + __of + ' asserts'\n"
        "                 + (' (' + __first + ')' if __first else ''))\n"
        "    __unrun.append(__missing and __passed == 0)\n"
        "    __total = __N or (__passed + __failed)\n"  # asserts not reached count as not passed
        "    if __passed * __best[1] > __best[0] * __total:\n"
        "        __best = (__passed, __total, __shown)\n"
        "else:\n"
        "    if __best[2]:\n"
        "        raise AssertionError('best ' + str(__best[0]) + '/' + str(__best[1]) + ' ' + __best[2])\n"
        "    if __unrun and all(__unrun):\n"  # every candidate stopped at a name or module this sandbox lacks
        "        raise ImportError('; '.join(__why))\n"
        "    raise AssertionError('; '.join(__why))\n"
    )
