"""``make mutation`` is wired right, without a full mutation run.

The driver (scripts/mutation.py) maps each MODULE to source files and unit tests: a file
renamed or a test moved would otherwise surface only when someone next runs it. One tiny
real run (one method of consumer/http/admission.py against its unit tests, about 10 s)
shows mutmut, the work directory, the verdicts and the results file working end to end.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mutation.py"


def load_driver() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_driver", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


driver = load_driver()


@pytest.mark.parametrize("name", sorted(driver.MODULES))
def test_each_module_points_at_sources_and_unit_tests_that_exist(name: str) -> None:
    target = driver.MODULES[name]
    for pattern in target.sources:
        files = driver.expand(ROOT, (pattern,))
        assert files, f"{name}: no source matches {pattern}"
        assert all(f.endswith(".py") and f.startswith(("consumer/", "producer/")) for f in files)
    for pattern in target.tests:
        tests = driver.expand(ROOT, (pattern,))
        assert tests, f"{name}: no test matches {pattern}"
        assert all(not t.startswith("tests/integration") for t in tests)  # no broker here
    assert target.about


@pytest.mark.parametrize(
    "pattern", [p for t in driver.MODULES.values() for p in t.functions], ids=str
)
def test_each_function_glob_names_a_function_of_its_sources(pattern: str) -> None:
    """A renamed function would leave a glob that selects nothing (mutmut then refuses)."""
    module, sep, function = pattern.partition(".x")
    if not sep:  # a whole module: "consumer.http.body.*"
        module, function = pattern.removesuffix(".*"), ""
    path = ROOT / (module.replace(".", "/") + ".py")
    assert path.is_file(), pattern
    if not function:
        return
    function = function.removesuffix("__mutmut_*")
    # x_name for a function, x\u01c1Class\u01c1name for a method.
    names = [n for n in function.split("\u01c1") if n] if "\u01c1" in function else [function[1:]]
    assert driver._def_line(ast.parse(path.read_text()), names) > 1, pattern


def test_make_mutation_runs_the_driver_with_module_and_tests() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^mutation: install$", makefile, re.M)
    assert "scripts/mutation.py $(MODULE) $(if $(TESTS),--tests $(TESTS))" in makefile
    assert re.search(r"^\.PHONY:.* mutation ", makefile, re.M)


def test_mutmut_is_a_locked_dev_dependency() -> None:
    assert '"mutmut>=3.8,<4"' in (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^mutmut==3\.", (ROOT / "requirements-dev.lock").read_text(), re.M)


def test_a_path_maps_to_the_tests_named_for_it_or_its_mirrored_directory() -> None:
    one = driver.resolve("consumer/core/stid.py", None)
    assert one.sources == ("consumer/core/stid.py",)
    assert one.tests == ("tests/consumer/core/test_stid.py",)
    tree = driver.resolve("consumer/track", None)
    assert tree.tests == ("tests/consumer/track",)
    assert driver.resolve("imb", ["tests/x.py"]).tests == ("tests/x.py",)
    with pytest.raises(SystemExit, match="neither a module"):
        driver.resolve("no/such/thing.py", None)


def test_score_counts_timeouts_as_detected_and_untested_functions_as_not() -> None:
    verdicts = {"a": "killed", "b": "killed", "c": "timeout", "d": "survived", "e": "no tests"}
    counts, score = driver.count(verdicts)
    assert counts == {"killed": 2, "timeout": 1, "survived": 1, "no tests": 1}
    assert score == 60.0
    assert driver.count({}) == ({}, None)


def test_a_mutants_line_is_its_functions_def_line_plus_the_hunk_offset() -> None:
    # Line 1 of mutmut's diff is the def line of the mutated function.
    diff = "--- f\n+++ f\n@@ -3,4 +3,4 @@\n     context\n-    old\n+    new\n     more"
    text = (ROOT / "consumer/http/admission.py").read_text()
    def_line = 1 + text.splitlines().index("    def take_bytes(self, count: int) -> None:")
    name = "consumer.http.admission.x\u01c1_Ticket\u01c1take_bytes__mutmut_7"
    assert driver.locate(ROOT, name, diff) == ("consumer/http/admission.py", def_line + 3)
    top = "consumer.http.body.x_timed_body__mutmut_1"
    body_def = 1 + (ROOT / "consumer/http/body.py").read_text().splitlines().index(
        "async def timed_body("
    )
    assert driver.locate(ROOT, top, diff) == ("consumer/http/body.py", body_def + 3)


def test_a_tiny_run_kills_the_mutants_of_one_method(tmp_path: Path) -> None:
    """A real mutmut run: every mutant of _Ticket.take_bytes (``>`` to ``>=``, the budget
    dropped, the count not added...) is killed by tests/consumer/http/test_admission.py."""
    work = tmp_path / "work"
    function = "consumer.http.admission.x\u01c1_Ticket\u01c1take_bytes__mutmut_*"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "consumer/http/admission.py",
            "--tests",
            "tests/consumer/http/test_admission.py",
            "--functions",
            function,
            "--jobs",
            "1",
            "--work",
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(work.with_suffix(".json").read_text())
    verdicts = result["verdicts"]
    assert len(verdicts) >= 8
    assert all(name.startswith(function[:-1]) for name in verdicts)
    assert set(verdicts.values()) == {"killed"}, result["undetected"]
    assert result["score"] == 100.0
    assert result["counts"] == {"killed": len(verdicts)}
    assert f"killed {len(verdicts)}, survived 0" in done.stdout
    assert result["functions"] == driver.function_digests(ROOT, ["consumer/http/admission.py"])
    assert function[: -len("__mutmut_*")] in result["functions"]
    # Nothing undetected: a recheck has nothing to run.
    recheck = [str(SCRIPT), "consumer/http/admission.py", "--recheck", "--work", str(work)]
    again = subprocess.run(
        [sys.executable, *recheck],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1 and "left nothing undetected" in again.stderr


def mutant(name: str, diff: str, status: str = "survived") -> object:
    return driver.Mutant(name, status, "consumer/x.py", 1, diff)


def test_a_judgement_covers_its_mutant_only_while_the_diff_still_shows_its_change() -> None:
    judged = driver.Judgement("m.x_f__mutmut_3", "equivalent", "why", change="n > 0")
    assert judged.covers(mutant("m.x_f__mutmut_3", "-    n >= 0\n+    n > 0"))
    # The function changed and mutmut's number 3 is now another mutation: not covered.
    assert not judged.covers(mutant("m.x_f__mutmut_3", "-    a + b\n+    a - b"))
    assert not judged.covers(mutant("m.x_f__mutmut_4", "+    n > 0"))
    whole = driver.Judgement("m.x_table__mutmut_*", "untestable", "import time")
    assert whole.covers(mutant("m.x_table__mutmut_17", "anything"))
    assert not whole.covers(mutant("m.x_tables__mutmut_1", "anything"))


def test_judged_mutants_leave_the_score_of_those_that_matter_and_stale_ones_are_named() -> None:
    undetected = [
        mutant("m.x_f__mutmut_1", "+ n > 0"),
        mutant("m.x_f__mutmut_2", "+ a - b"),
        mutant("m.x_g__mutmut_1", "+ x", status="no tests"),
    ]
    result = driver.Result(
        "m",
        "d",
        "c",
        {"killed": 6, "timeout": 1, "survived": 2, "no tests": 1},
        70.0,
        undetected=undetected,
    )
    judgements = [
        driver.Judgement("m.x_f__mutmut_1", "equivalent", "never 0", change="n > 0"),
        driver.Judgement("m.x_f__mutmut_2", "harmless", "old", change="a * b"),  # stale
        driver.Judgement("m.x_gone__mutmut_1", "equivalent", "killed since"),  # not stale
    ]
    stale = driver.apply_judgements(result, judgements)
    assert [j.mutant for j in stale] == ["m.x_f__mutmut_2"]
    assert result.judged == {"equivalent": 1, "unjudged": 2}
    assert result.score_judged == 77.8  # 7 detected of 7 + 2 unjudged
    assert (undetected[0].verdict, undetected[0].why) == ("equivalent", "never 0")
    assert undetected[1].verdict == ""


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('mutant = "m.x_f__mutmut_1"\nverdict = "fine"\nwhy = "w"', "verdict must be one of"),
        ('mutant = "m.x_f__mutmut_1"\nverdict = "equivalent"', "needs mutant, verdict, why"),
        ('mutant = "m.x_f__mutmut_1"\nverdict = "harmless"\nwhy = " "', "why is empty"),
        ('mutant = "m"\nverdict = "harmless"\nwhy = "w"\nreason = "r"', "needs mutant"),
    ],
)
def test_a_judgement_without_a_known_verdict_or_a_reason_is_refused(
    tmp_path: Path, table: str, problem: str
) -> None:
    (tmp_path / "x.toml").write_text(f"[[judged]]\n{table}\n")
    with pytest.raises(ValueError, match=problem):
        driver.load_judgements(tmp_path)


def test_the_committed_judgements_are_well_formed_and_name_functions_that_exist() -> None:
    judgements = driver.load_judgements()
    assert judgements, "docs/mutation/judged holds the judged survivors"
    for judgement in judgements:
        module, _, function = judgement.mutant.rpartition("__mutmut_")[0].partition(".x")
        path = ROOT / (module.replace(".", "/") + ".py")
        assert path.is_file(), judgement
        names = (
            [n for n in function.split("\u01c1") if n] if "\u01c1" in function else [function[1:]]
        )
        assert driver._def_line(ast.parse(path.read_text()), names) > 1, judgement
        if not judgement.mutant.endswith("*"):
            assert judgement.change, f"{judgement.mutant}: an exact mutant needs its change"


def test_report_rejudges_a_finished_run_without_running_mutmut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.json"
    survivor = mutant("m.x_f__mutmut_1", "--- a\n+++ b\n@@ -1,1 +1,1 @@\n-    n >= 0\n+    n > 0")
    result = driver.Result("m", "d", "c", {"killed": 3, "survived": 1}, 75.0, undetected=[survivor])
    out.write_text(json.dumps(driver.asdict(result)))
    judgement = driver.Judgement("m.x_f__mutmut_1", "equivalent", "n is never 0", "n > 0")
    assert driver.report_again(out, [judgement]) == 0
    printed = capsys.readouterr().out
    assert "undetected by verdict: equivalent 1; detected of those that matter: 100.0%" in printed
    assert "m.x_f__mutmut_1\n" not in printed  # judged: not listed as a gap
    saved = json.loads(out.read_text())
    assert saved["score"] == 75.0 and saved["score_judged"] == 100.0
    assert saved["undetected"][0]["verdict"] == "equivalent"
    assert driver.report_again(out, []) == 0
    assert "survived: m.x_f__mutmut_1" in capsys.readouterr().out


def test_resume_needs_a_run_to_resume(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="nothing to resume"):
        driver.main(["imb", "--resume", "--work", str(tmp_path / "none")])


def test_a_functions_digest_changes_with_its_code_not_with_comments_or_other_functions(
    tmp_path: Path,
) -> None:
    source = tmp_path / "pkg" / "mod.py"
    source.parent.mkdir()
    source.write_text("def f(n):\n    return n + 1\n\nclass C:\n    def m(self):\n        pass\n")
    before = driver.function_digests(tmp_path, ["pkg/mod.py"])
    assert set(before) == {"pkg.mod.x_f", "pkg.mod.x\u01c1C\u01c1m"}
    source.write_text(
        "def f(n):  # one more\n    return n + 1\n\nclass C:\n    def m(self):\n        return 1\n"
    )
    after = driver.function_digests(tmp_path, ["pkg/mod.py"])
    assert after["pkg.mod.x_f"] == before["pkg.mod.x_f"]
    assert after["pkg.mod.x\u01c1C\u01c1m"] != before["pkg.mod.x\u01c1C\u01c1m"]


def test_a_recheck_keeps_unchanged_functions_verdicts_and_reruns_their_undetected() -> None:
    files = ["producer/wire.py", "producer/errors.py"]
    target = driver.Target(tuple(files), ("tests/producer/test_wire.py",))
    now = driver.function_digests(ROOT, files)
    same, changed = sorted(now)[:2]
    verdicts = {
        f"{same}__mutmut_1": "killed",
        f"{same}__mutmut_2": "survived",
        f"{same}__mutmut_3": "no tests",
        f"{changed}__mutmut_1": "killed",  # numbered afresh: not kept
        "producer.avro.x_g__mutmut_1": "survived",  # another module's: not this target's
    }
    previous = {"verdicts": verdicts, "functions": {**now, changed: "0" * 64}}
    kept, run = driver.recheck_plan(previous, target)
    assert kept == {k: v for k, v in verdicts.items() if k.startswith(f"{same}__")}
    assert f"{changed}__mutmut_*" in run
    assert f"{same}__mutmut_2" in run and f"{same}__mutmut_3" in run
    assert f"{same}__mutmut_1" not in run
    # Every other function is unchanged and had nothing undetected: nothing else runs.
    assert len(run) == 3
    with pytest.raises(SystemExit, match="no function digests"):
        driver.recheck_plan({"verdicts": verdicts}, target)
