"""Every row of tests/bad_inputs.py exits 2 with its message, no traceback, and writes nothing.

The count of rows is printed for docs/reliability.md (`pytest -s tests/test_bad_inputs.py`).
"""

from __future__ import annotations

import contextlib
import io
import os
import stat

import pytest
from bad_inputs import FLAG_ROWS, ROWS, STUDY, STUDY_ROWS

from nasmix.cli import main

PERMISSIONS_IGNORED = hasattr(os, "geteuid") and os.geteuid() == 0


def _tree(root: str) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files} | {
        os.path.relpath(d, root) + "/" for d, _, _ in os.walk(root)
    }


def make_folder(d: str) -> dict[str, str]:
    """The fixtures the rows name: a file, a read-only folder, special study files, an empty store."""
    with open(os.path.join(d, "file.txt"), "w") as f:
        f.write("not toml = = =\n")
    os.mkdir(os.path.join(d, "ro"))
    os.chmod(os.path.join(d, "ro"), stat.S_IRUSR | stat.S_IXUSR)
    files = {
        "binary": b"\x00\x01\x02SQLite format 3\x00",
        "latin1": "[study]\nname = 'caf\xe9'\n".encode("latin-1"),
        "deeparrays": b"a = " + b"[" * 2000 + b"]" * 2000 + b"\n",
        "deeptables": b"a = " + b"{b = " * 2000 + b"1" + b"}" * 2000 + b"\n",
        "deep50": b"a = " + b"[" * 50 + b"]" * 50 + b"\n",
        "unreadable": b"[study]\n",
    }
    paths = {}
    for name, data in files.items():
        paths[name] = os.path.join(d, f"{name}.toml")
        with open(paths[name], "wb") as f:
            f.write(data)
    os.chmod(paths["unreadable"], 0)
    paths["study"] = write_study(d, "study.toml", {})
    paths["store"] = os.path.join(d, "empty.db")  # a file that is no store (report, serve)
    with open(paths["store"], "wb") as f:
        f.write(b"")
    return paths


def write_study(d: str, name: str, changes: dict[str, str]) -> str:
    """STUDY with `changes` (section -> TOML lines; section "" is the top level) as a file in d."""
    sections = {k: v.replace("{d}", d) for k, v in STUDY.items()}
    top = changes.get("", "")
    for section, text in changes.items():
        if section:
            text = text.replace("{d}", d)
            # A key given again replaces the base one (TOML refuses duplicate keys).
            old = sections.get(section, "")
            key = text.split("=")[0].strip()
            kept = [line for line in old.splitlines() if line.split("=")[0].strip() != key]
            sections[section] = "\n".join(kept + [text]) + "\n"
    body = top + "\n" + "".join(f"[{s}]\n{t}" for s, t in sections.items() if not (s == "search" and top))
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(body)
    return path


def expand(argv: list[str], d: str, paths: dict[str, str]) -> list[str]:
    out = []
    for arg in argv:
        if arg.startswith("{study:"):
            section, _, text = arg[len("{study:") : -1].partition(":")
            out.append(write_study(d, "row.toml", {section: text}))
        elif arg.startswith("{") and arg.endswith("}") and arg[1:-1] in paths:
            out.append(paths[arg[1:-1]])
        else:
            out.append(arg.replace("{d}", d))
    return out


def run_cli(argv: list[str]) -> tuple[object, str]:
    """main(argv) in-process: (exit code, or the exception that escaped; stderr)."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code: object = main(argv)
    except SystemExit as exc:
        code = exc.code
    except Exception as exc:
        code = exc
    return code, err.getvalue()


@pytest.mark.parametrize(("what", "argv", "fragment"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, what, argv, fragment):
    if PERMISSIONS_IGNORED and ("read-only" in what or "unreadable" in what):
        pytest.skip("running as root: file permissions do not apply")
    d = str(tmp_path)
    paths = make_folder(d)
    argv = expand(argv, d, paths)
    before = _tree(d)
    try:
        code, err = run_cli(argv)
    finally:
        os.chmod(os.path.join(d, "ro"), stat.S_IRWXU)
        os.chmod(paths["unreadable"], stat.S_IRUSR | stat.S_IWUSR)
    assert code == 2, f"{what}: exit {code!r}, stderr {err[-500:]}"
    assert "Traceback" not in err
    assert "nasmix: error:" in err and fragment in err, err
    created = _tree(d) - before - {"row.toml"}
    assert not created, f"{what} left {sorted(created)}"


def test_the_table_covers_every_command_and_section():
    commands = {argv[0] for _, argv, _ in FLAG_ROWS}
    assert commands == {
        "train",
        "search",
        "run",
        "study",
        "show",
        "export",
        "report",
        "status",
        "serve",
        "list",
    }
    sections = {argv[1].split(":")[1] for _, argv, _ in STUDY_ROWS}
    assert {
        "study",
        "search",
        "eval",
        "data",
        "space.nb201",
        "strategy.random",
        "estimator.zero_cost",
    } <= sections
    print(
        f"\nbad-input table: {len(ROWS)} rows ({len(FLAG_ROWS)} flags, {len(STUDY_ROWS)} study-file fields)"
    )


def test_the_base_study_is_valid(tmp_path):
    """The rows' study differs from a valid one in the row's value only."""
    path = write_study(str(tmp_path), "ok.toml", {})
    code, err = run_cli(["study", path, "--dry-run"])
    assert code == 0, err
