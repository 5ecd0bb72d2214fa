"""Mutation testing of one module at a time with mutmut: which changes to the code no test notices.

    make mutation MODULE=feeds            # or http-limits, imb, producer, producer-all
    make mutation MODULE=consumer/core/stid.py [TESTS="tests/consumer/core/test_stid.py"]
    .venv/bin/python scripts/mutation.py --help

A MODULE names its source files and the unit tests that cover them (``MODULES`` below); a
path mutates that file (or every file under that directory) against the tests of the
mirrored directory under ``tests/``, or ``--tests``. Broker and registry tests never run
here: they are slow, and the broker is shared.

The checkout is never touched: consumer/, producer/, schemas/, tests/ and pyproject.toml
are copied to ``.local/mutation/<name>/`` (a snapshot, so edits made meanwhile do not mix
into the run) and mutmut works there, copying once more into its own ``mutants/``. The
results go to ``.local/mutation/<name>.json`` (gitignored): counts, score, the date and
commit, and each surviving mutant with its file:line and diff, which are printed too.

Score = detected / (detected + undetected), where detected = killed + timeout and
undetected = survived + "no tests" (a mutated function that no selected test runs).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Copied into each work directory: everything the mapped tests import.
COPIED = ("consumer", "producer", "schemas", "examples", "tests", "pyproject.toml")
#: What mutmut copies into its mutants/ besides the sources (it adds tests/ and
#: pyproject.toml itself).
ALSO_COPY = ("schemas", "examples")
#: Broker and registry tests are left out of every run (slow; the broker is shared).
MARKERS = "not kafka and not registry"

#: A pytest plugin written into the work directory only, so the normal suite is unaffected:
#: no deadlines (two mutmut workers share the CPU with other work; a slow example must not
#: count as a kill), derandomized examples and no example database (the same mutants get
#: the same verdicts from run to run, whatever order the workers take them in).
HYPOTHESIS_PLUGIN = '''"""Hypothesis settings for mutation runs (written by scripts/mutation.py)."""
from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True, database=None)
settings.load_profile("mutation")
'''
PLUGIN_MODULE = "mutation_hypothesis_profile"


@dataclass(frozen=True)
class Target:
    """What one MODULE mutates and which tests judge the mutants."""

    #: Source files (globs relative to the checkout) whose functions are mutated.
    sources: tuple[str, ...]
    #: pytest paths (globs) that cover them.
    tests: tuple[str, ...]
    #: mutmut mutant-name globs (``consumer.core.parse.x_nesting_depth__mutmut_*``) to run
    #: only some functions of the sources; empty: all of them.
    functions: tuple[str, ...] = ()
    #: What the module is, for --list and the README.
    about: str = ""


#: Surviving mutants someone judged, with why: every ``*.toml`` file here holds
#: ``[[judged]]`` tables (see ``load_judgements``).
JUDGED = ROOT / "docs" / "mutation" / "judged"
#: The verdicts a judgement may give a surviving mutant.
VERDICTS = {
    "equivalent": "the mutant behaves exactly as the original on every input",
    "harmless": "the mutant's behaviour differs, in a way no user or caller relies on",
    "untestable": "mutmut cannot switch the mutant on (a function run only at import)",
}

#: In each work directory: the commit its snapshot was taken from (a resumed run reports
#: that one, not whatever the checkout holds by then).
SNAPSHOT = "snapshot-commit"

_PARSE = "consumer.core.parse"
MODULES: dict[str, Target] = {
    "feeds": Target(
        sources=("consumer/feeds/*.py",),
        tests=("tests/consumer/feeds",),
        about="feeds file, passwords, networks, access, throttle (consumer/feeds)",
    ),
    "http-limits": Target(
        sources=(
            "consumer/http/body.py",
            "consumer/http/admission.py",
            "consumer/core/content.py",
            "consumer/core/parse.py",
        ),
        tests=(
            "tests/consumer/http",
            "tests/consumer/core/test_content*.py",
            "tests/consumer/core/test_parse*.py",
        ),
        functions=(
            "consumer.http.body.*",
            "consumer.http.admission.*",
            "consumer.core.content.*",
            # The parser's limits only: max_json_depth and max_record_bytes.
            f"{_PARSE}.x\u01c1MessageParser\u01c1_loads__mutmut_*",
            f"{_PARSE}.x\u01c1MessageParser\u01c1_value_end__mutmut_*",
            f"{_PARSE}.x_nesting_depth__mutmut_*",
        ),
        about="body timeouts, in-flight admission, body size and gzip limits, JSON depth "
        "and record size limits of the parser",
    ),
    "imb": Target(
        sources=("consumer/core/imb.py",),
        tests=("tests/consumer/core/test_imb*.py",),
        about="Intelligent Mail barcode decoding and encoding (consumer/core/imb.py)",
    ),
    "avro": Target(
        sources=("producer/avro.py",),
        tests=("tests/producer/test_avro*.py",),
        about="the schema-compiled Avro encoder (producer/avro.py), checked against fastavro",
    ),
    "compatibility": Target(
        sources=("producer/compatibility.py",),
        tests=("tests/producer/test_compatibility*.py",),
        about="the Avro schema-evolution checker (producer/compatibility.py)",
    ),
    "registry": Target(
        sources=("producer/registry.py", "producer/wire.py"),
        tests=("tests/producer/test_registry*.py", "tests/producer/test_wire*.py"),
        about="schema-registry client and the Confluent wire format (producer/registry.py, "
        "wire.py)",
    ),
    "topics": Target(
        sources=("producer/topics.py", "producer/schemas.py", "producer/errors.py"),
        tests=("tests/producer/test_topics*.py", "tests/producer/test_errors*.py"),
        about="topics and their serializers, schema files, errors (producer/topics.py, "
        "schemas.py, errors.py)",
    ),
    "producer": Target(
        sources=(
            "producer/avro.py",
            "producer/wire.py",
            "producer/topics.py",
            "producer/schemas.py",
            "producer/compatibility.py",
            "producer/registry.py",
            "producer/errors.py",
        ),
        tests=("tests/producer",),
        about="avro, compatibility, registry and topics in one run (about an hour on 2 "
        "cores; the four apart take minutes each)",
    ),
    "producer-all": Target(
        sources=("producer/*.py",),
        tests=("tests/producer",),
        about="all of producer/ against its unit tests; the Kafka modules' broker tests "
        "do not run here, so their mutants mostly count as 'no tests'",
    ),
}


@dataclass
class Mutant:
    """One mutant that no test noticed."""

    name: str
    status: str
    file: str
    line: int
    diff: str
    #: The judgement's verdict and why, when one covers this mutant.
    verdict: str = ""
    why: str = ""


@dataclass(frozen=True)
class Judgement:
    """Why a surviving mutant is not a gap in the tests."""

    #: mutmut's name for the mutant, or a glob of names (a whole function).
    mutant: str
    #: One of VERDICTS.
    verdict: str
    why: str
    #: Text the mutant's diff must contain (its changed line): mutmut numbers mutants
    #: within a function, so once the function changes a name may denote another
    #: mutation, and the judgement must then not apply.
    change: str = ""
    #: The file the judgement came from, for messages.
    source: str = ""

    def covers(self, mutant: Mutant) -> bool:
        """Whether this judgement is about that mutant as it is now."""
        return fnmatch.fnmatchcase(mutant.name, self.mutant) and self.change in mutant.diff


def load_judgements(directory: Path = JUDGED) -> list[Judgement]:
    """Every judgement in directory's TOML files, checked for form."""
    found = []
    for path in sorted(directory.glob("*.toml")):
        with path.open("rb") as file:
            tables = tomllib.load(file).get("judged", [])
        for number, table in enumerate(tables, 1):
            where = f"{path.name} [[judged]] #{number}"
            unknown = set(table) - {"mutant", "verdict", "why", "change"}
            if unknown or not {"mutant", "verdict", "why"} <= set(table):
                raise ValueError(f"{where}: needs mutant, verdict, why (and may have change)")
            if table["verdict"] not in VERDICTS:
                raise ValueError(f"{where}: verdict must be one of {', '.join(VERDICTS)}")
            if not table["why"].strip():
                raise ValueError(f"{where}: why is empty")
            found.append(Judgement(**table, source=path.name))
    return found


def judge(
    undetected: list[Mutant], judgements: list[Judgement]
) -> tuple[dict[str, Judgement], list[Judgement]]:
    """Which undetected mutants are judged (by name), and the judgements matching none.

    A judgement matching no undetected mutant is stale when its mutant is still
    undetected under another diff; a killed mutant simply no longer needs one.
    """
    judged: dict[str, Judgement] = {}
    used: set[int] = set()
    for mutant in undetected:
        for index, judgement in enumerate(judgements):
            if judgement.covers(mutant):
                judged[mutant.name] = judgement
                used.add(index)
                break
    names = {m.name: m for m in undetected}
    stale = [
        j
        for i, j in enumerate(judgements)
        if i not in used and any(fnmatch.fnmatchcase(n, j.mutant) for n in names)
    ]
    return judged, stale


@dataclass
class Result:
    """A run's verdicts."""

    module: str
    date: str
    commit: str
    counts: dict[str, int]
    score: float | None
    #: The score with the judged mutants left out of the count: the share of the
    #: mutants that matter that the tests detect.
    score_judged: float | None = None
    #: Undetected mutants by verdict ("unjudged" for those nobody judged yet).
    judged: dict[str, int] = field(default_factory=dict)
    undetected: list[Mutant] = field(default_factory=list)
    #: Every selected mutant's verdict, by mutmut's name for it.
    verdicts: dict[str, str] = field(default_factory=dict)
    #: A digest of each mutated function as the run saw it: a later --recheck reuses the
    #: verdicts of the functions unchanged since.
    functions: dict[str, str] = field(default_factory=dict)


def resolve(module: str, tests: list[str] | None) -> Target:
    """The Target of a MODULE name or a path (file or directory) under the checkout."""
    if module in MODULES:
        target = MODULES[module]
        return Target(target.sources, tuple(tests), target.functions) if tests else target
    path = Path(module)
    if not (ROOT / path).exists() or path.is_absolute():
        known = ", ".join(MODULES)
        raise SystemExit(f"mutation: {module!r} is neither a module ({known}) nor a path")
    if (ROOT / path).is_dir():
        sources: tuple[str, ...] = (f"{path}/*.py", f"{path}/**/*.py")
        mirror = Path("tests") / path
    else:
        sources = (str(path),)
        mirror = Path("tests") / path.parent
        named = sorted(p.relative_to(ROOT) for p in (ROOT / mirror).glob(f"test_{path.stem}*.py"))
        if named and not tests:
            return Target(sources, tuple(map(str, named)))
    if tests:
        return Target(sources, tuple(tests))
    if not (ROOT / mirror).is_dir():
        raise SystemExit(f"mutation: no tests at {mirror}; name them with --tests")
    return Target(sources, (str(mirror),))


def expand(root: Path, patterns: tuple[str, ...]) -> list[str]:
    """The files or directories the globs name under root, sorted, each once."""
    found: set[str] = set()
    for pattern in patterns:
        matches = [p for p in root.glob(pattern) if "__pycache__" not in p.parts]
        found.update(str(p.relative_to(root)) for p in matches)
    return sorted(found)


def prepare(work: Path, target: Target) -> None:
    """A fresh snapshot of the checkout in work, with mutmut's configuration for target."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", ".pytest_cache")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        else:
            shutil.copy2(source, work / name)
    # mutmut reads [tool.mutmut] from pyproject.toml first, then setup.cfg: the project's
    # pyproject.toml has no such table, so the run's configuration goes to setup.cfg.
    (work / f"{PLUGIN_MODULE}.py").write_text(HYPOTHESIS_PLUGIN)
    sources, tests = expand(ROOT, target.sources), expand(ROOT, target.tests)
    if not sources or not tests:
        raise SystemExit(
            f"mutation: nothing matches sources {target.sources} or tests {target.tests}"
        )
    lines = ["[mutmut]", "source_paths=", "    consumer", "    producer", "only_mutate="]
    lines += [f"    {s}" for s in sources]
    lines += ["also_copy=", f"    {PLUGIN_MODULE}.py", *(f"    {a}" for a in ALSO_COPY)]
    lines += ["pytest_add_cli_args_test_selection="]
    lines += [f"    {t}" for t in tests]
    lines += ["pytest_add_cli_args="]
    args = ["-p", "no:cacheprovider", "-p", PLUGIN_MODULE, "-m", MARKERS]
    lines += [f"    {a}" for a in args]
    (work / "setup.cfg").write_text("\n".join(lines) + "\n")
    (work / SNAPSHOT).write_text(commit() + "\n")


def run_mutmut(work: Path, target: Target, jobs: int) -> None:
    """mutmut run in work; its (spinner-laden) output goes to work/mutmut.log."""
    mutmut = Path(sys.executable).with_name("mutmut")
    log = work / "mutmut.log"
    command = [str(mutmut), "run", "--max-children", str(jobs), *target.functions]
    with log.open("w") as out:
        done = subprocess.run(command, cwd=work, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"mutation: mutmut run failed ({done.returncode}); log: {log}")


def statuses(work: Path, target: Target) -> dict[str, str]:
    """Each selected mutant's verdict, from ``mutmut results --all true``."""
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    verdicts: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep:
            continue
        if not target.functions or any(fnmatch.fnmatchcase(name, p) for p in target.functions):
            verdicts[name] = status
    return verdicts


def count(verdicts: dict[str, str]) -> tuple[dict[str, int], float | None]:
    """Counts per verdict and the score (None when nothing was judged)."""
    counts: dict[str, int] = {}
    for status in verdicts.values():
        counts[status] = counts.get(status, 0) + 1
    detected = counts.get("killed", 0) + counts.get("timeout", 0)
    undetected = counts.get("survived", 0) + counts.get("no tests", 0)
    judged = detected + undetected
    return counts, (round(100 * detected / judged, 1) if judged else None)


_HUNK = re.compile(r"^@@ -(\d+)")


def locate(root: Path, mutant: str, diff: str) -> tuple[str, int]:
    """The file and line of a mutant's first changed line.

    mutmut's diff numbers lines from the mutated function's ``def`` line (line 1), so the
    file's line is the def's line plus the hunk's offset.
    """
    module, _, function = mutant.rpartition("__mutmut_")[0].partition(".x")
    file = module.replace(".", "/") + ".py"
    # x_name for a function, x\u01c1Class\u01c1name for a method.
    names = [n for n in function.split("\u01c1") if n] if "\u01c1" in function else [function[1:]]
    def_line = _def_line(ast.parse((root / file).read_text()), names)
    offset = 0
    for line in diff.splitlines():
        hunk = _HUNK.match(line)
        if hunk:
            offset = int(hunk.group(1))
            continue
        if offset and not line.startswith(("---", "+++")):
            if line.startswith(("-", "+")):
                return file, def_line + offset - 1
            offset += 1
    return file, def_line


def _def_line(tree: ast.Module, names: list[str]) -> int:
    """The line of the def of names (a function, or a class then its method)."""
    body: list[ast.stmt] = tree.body
    line = 1
    for name in names:
        for node in body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and (
                node.name == name
            ):
                line, body = node.lineno, node.body
                break
    return line


#: Prints the diffs of the mutants named in argv as one JSON object: one process for them
#: all (``mutmut show`` takes a second or two each, and a run can leave hundreds).
_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
print(json.dumps({n: get_diff_for_mutant(n, path=find_mutant(n).path) for n in sys.argv[1:]}))
"""


def diffs(work: Path, names: list[str]) -> dict[str, str]:
    """Each named mutant's diff against the original function."""
    if not names:
        return {}
    done = subprocess.run(
        [sys.executable, "-c", _DIFFS, *names], cwd=work, capture_output=True, text=True
    )
    if done.returncode == 0:
        found: dict[str, str] = json.loads(done.stdout)
        return found
    # mutmut's internals moved: its command line, one mutant at a time.
    mutmut = Path(sys.executable).with_name("mutmut")
    found = {}
    for name in names:
        shown = subprocess.run(
            [str(mutmut), "show", name], cwd=work, capture_output=True, text=True, check=True
        ).stdout
        found[name] = "\n".join(line for line in shown.splitlines() if not line.startswith("# "))
    return found


def undetected(work: Path, verdicts: dict[str, str]) -> list[Mutant]:
    """The mutants no test noticed, with their diffs."""
    names = sorted(n for n, status in verdicts.items() if status in ("survived", "no tests"))
    found = []
    for name, diff in diffs(work, names).items():
        file, line = locate(work, name, diff)  # the snapshot: mutants/ holds trampolines
        found.append(Mutant(name, verdicts[name], file, line, diff.strip()))
    return sorted(found, key=lambda m: (m.file, m.line, m.name))


def commit() -> str:
    """The checkout's commit, with "+dirty" when it has uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def apply_judgements(result: Result, judgements: list[Judgement]) -> list[Judgement]:
    """Mark result's judged mutants, count them and score the rest; the stale judgements."""
    judged, stale = judge(result.undetected, judgements)
    tally: dict[str, int] = {}
    for mutant in result.undetected:
        judgement = judged.get(mutant.name)
        if judgement:
            mutant.verdict, mutant.why = judgement.verdict, judgement.why
        key = mutant.verdict or "unjudged"
        tally[key] = tally.get(key, 0) + 1
    result.judged = dict(sorted(tally.items()))
    c = result.counts
    detected = c.get("killed", 0) + c.get("timeout", 0)
    that_matter = detected + tally.get("unjudged", 0)
    result.score_judged = round(100 * detected / that_matter, 1) if that_matter else None
    return stale


def report(result: Result, out: Path, stale: list[Judgement]) -> None:
    """Write the results file and print the summary and the unjudged undetected mutants."""
    out.write_text(json.dumps(asdict(result), indent=2, ensure_ascii=False) + "\n")
    untested: dict[str, list[Mutant]] = {}
    for mutant in result.undetected:
        if mutant.verdict:
            continue
        if mutant.status == "no tests":
            untested.setdefault(mutant.name.rpartition("__mutmut_")[0], []).append(mutant)
        else:
            print(f"\n{mutant.file}:{mutant.line}: {mutant.status}: {mutant.name}\n{mutant.diff}")
    # A function no selected test runs: one line for all its mutants (their diffs are in
    # the results file).
    for function, mutants in sorted(untested.items()):
        first = mutants[0]
        print(f"\n{first.file}:{first.line}: no tests run {function}: {len(mutants)} mutants")
    for judgement in stale:
        print(
            f"\nstale judgement in {judgement.source}: {judgement.mutant} no longer shows "
            f"{judgement.change!r}; judge it again"
        )
    c = result.counts
    figures = ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
    score = "n/a" if result.score is None else f"{result.score}%"
    print(f"\nmutation {result.module} @ {result.commit}: {figures}")
    print(
        f"killed {c.get('killed', 0)}, survived {c.get('survived', 0)}, "
        f"no tests {c.get('no tests', 0)}, timeout {c.get('timeout', 0)}: score {score}"
    )
    verdicts = ", ".join(f"{k} {v}" for k, v in result.judged.items())
    if result.undetected:
        score_judged = "n/a" if result.score_judged is None else f"{result.score_judged}%"
        print(f"undetected by verdict: {verdicts}; detected of those that matter: {score_judged}")
    print(f"results: {out}")


def function_digests(root: Path, files: list[str]) -> dict[str, str]:
    """A digest of each function and method of files, by mutmut's name for it.

    Of the syntax tree, so comments and formatting do not count as changes.
    """
    found: dict[str, str] = {}
    functions = ast.FunctionDef | ast.AsyncFunctionDef
    for file in files:
        module = file.removesuffix(".py").replace("/", ".")
        for node in ast.parse((root / file).read_text()).body:
            if isinstance(node, functions):
                found[f"{module}.x_{node.name}"] = _digest(node)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, functions):
                        found[f"{module}.x\u01c1{node.name}\u01c1{item.name}"] = _digest(item)
    return found


def _digest(node: ast.AST) -> str:
    return hashlib.sha256(ast.dump(node).encode()).hexdigest()


def recheck_plan(previous: dict[str, Any], target: Target) -> tuple[dict[str, str], list[str]]:
    """What a recheck of target after the previous run keeps, and what it runs again.

    Adding or strengthening tests can only turn an undetected mutant into a detected one
    (a mutant the old tests killed, the new kill too, unless tests were removed), so of a
    function unchanged since that run only the undetected mutants run again; a function
    changed or added since runs in full (mutmut numbers its mutants afresh). A change in
    one function could in principle change which tests reach another: the full run stays
    the reference.
    """
    then: dict[str, str] = previous.get("functions", {})
    if not then:
        raise SystemExit("mutation: that run recorded no function digests: run the module in full")
    by_function: dict[str, dict[str, str]] = {}
    for name, verdict in previous["verdicts"].items():
        by_function.setdefault(name.rpartition("__mutmut_")[0], {})[name] = verdict
    kept: dict[str, str] = {}
    run: list[str] = []
    for function, digest in function_digests(ROOT, expand(ROOT, target.sources)).items():
        if then.get(function) != digest:
            run.append(f"{function}__mutmut_*")
            continue
        verdicts = by_function.get(function, {})
        kept.update(verdicts)
        run += sorted(n for n, v in verdicts.items() if v in ("survived", "no tests"))
    return kept, run


def report_again(out: Path, judgements: list[Judgement]) -> int:
    """Re-judge and print a finished run's results file."""
    if not out.is_file():
        raise SystemExit(f"mutation: no results at {out}; run it first")
    saved = json.loads(out.read_text())
    mutants = [
        Mutant(m["name"], m["status"], m["file"], m["line"], m["diff"]) for m in saved["undetected"]
    ]
    result = Result(
        module=saved["module"],
        date=saved["date"],
        commit=saved["commit"],
        counts=saved["counts"],
        score=saved["score"],
        undetected=mutants,
        verdicts=saved.get("verdicts", {}),
        functions=saved.get("functions", {}),
    )
    stale = apply_judgements(result, judgements)
    report(result, out, stale)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("module", nargs="?", help=f"one of {', '.join(MODULES)}, or a path")
    parser.add_argument("--tests", nargs="+", help="pytest paths to use instead of the mapped ones")
    parser.add_argument("--functions", nargs="+", help="mutant-name globs: only these mutants")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", "2")))
    parser.add_argument("--work", type=Path, help="work directory (default .local/mutation/NAME)")
    parser.add_argument("--list", action="store_true", help="print the modules and exit")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a stopped run in its work directory (mutmut keeps each verdict) "
        "instead of taking a fresh snapshot",
    )
    parser.add_argument(
        "--recheck",
        nargs="?",
        const="",
        metavar="RESULTS",
        help="run only the mutants a finished run (default: this module's results file) "
        "left undetected, against today's tests; the files mutated must be unchanged",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="print the last run's results again, judged by today's docs/mutation/judged "
        "(no mutmut run)",
    )
    args = parser.parse_args(argv)
    if args.list or not args.module:
        for name, target in MODULES.items():
            print(f"{name:14} {target.about}")
        return 0 if args.list else 2
    target = resolve(args.module, args.tests)
    if args.functions:
        target = Target(target.sources, target.tests, tuple(args.functions), target.about)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.module.strip("/"))
    work = args.work or ROOT / ".local" / "mutation" / name
    if args.report:
        return report_again(work.with_suffix(".json"), load_judgements())
    earlier: dict[str, str] = {}
    if args.recheck is not None:
        results = Path(args.recheck) if args.recheck else work.with_suffix(".json")
        if not results.is_file():
            raise SystemExit(f"mutation: no results at {results} to recheck")
        earlier, names = recheck_plan(json.loads(results.read_text()), target)
        if not names:
            raise SystemExit(f"mutation: {results} left nothing undetected to recheck")
        target = Target(target.sources, target.tests, tuple(names), target.about)
    if not args.resume:
        prepare(work, target)
    elif not (work / "setup.cfg").is_file():
        raise SystemExit(f"mutation: nothing to resume in {work}")
    snapshot = work / SNAPSHOT
    taken_from = snapshot.read_text().strip() if snapshot.is_file() else "unknown"
    print(f"mutation {args.module}: mutating {', '.join(expand(ROOT, target.sources))}")
    print(f"  tests: {' '.join(expand(ROOT, target.tests))} (-m '{MARKERS}')")
    print(f"  mutmut in {work} with {args.jobs} workers (log: {work / 'mutmut.log'})")
    started = datetime.now(UTC)
    run_mutmut(work, target, args.jobs)
    verdicts = {**earlier, **statuses(work, target)}
    counts, score = count(verdicts)
    result = Result(
        module=args.module,
        date=started.strftime("%Y-%m-%d %H:%M UTC"),
        commit=taken_from,
        counts=counts,
        score=score,
        undetected=undetected(work, verdicts),
        verdicts=dict(sorted(verdicts.items())),
        functions=function_digests(work, expand(ROOT, target.sources)),
    )
    stale = apply_judgements(result, load_judgements())
    report(result, work.with_suffix(".json"), stale)
    print(f"took {(datetime.now(UTC) - started).total_seconds():.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
