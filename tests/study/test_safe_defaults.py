"""Safe by default: names that become file names stay inside their folder, and the ray backend
starts a local Ray bound to 127.0.0.1, joining a cluster only when its address is named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from storekit import tiny_study

from nasmix.cli import main
from nasmix.config import check_name, load_study, study_from_dict
from nasmix.errors import ConfigError
from nasmix.study.backends import RayBackend
from nasmix.study.store import Store, StoreError

BASE = {"spaces": ["chain"], "strategies": ["random"], "estimators": ["zero_cost"], "datasets": ["synthetic"]}


def test_run_name_cannot_escape_the_runs_folder(tmp_path, monkeypatch, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    argv = [
        "run",
        "--space",
        "chain",
        "--strategy",
        "random",
        "--estimator",
        "zero_cost",
        "--dataset",
        "synthetic",
        "--device",
        "cpu",
        "--quiet",
        "--name",
    ]
    for name in ("../../x", "..", "/tmp/x", "a\\b", "", ".hidden"):
        assert main(argv + [name]) == 2, name
        assert "name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b"]  # nothing was written anywhere


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", " padded", "tab\there", "x" * 101, 3, "c:d"])
def test_study_names_that_are_not_file_names_are_refused(name):
    with pytest.raises(ConfigError, match="study name"):
        study_from_dict({"study": {"name": name, **BASE}})


def test_good_names_and_the_default_store():
    assert check_name("thesis-mini_2 (rerun)+1.5") == "thesis-mini_2 (rerun)+1.5"
    cfg = study_from_dict({"study": {"name": "my study", **BASE}})
    assert cfg.store == os.path.join("runs", "my study.db")


def test_a_study_file_named_like_a_hidden_file_needs_a_name(tmp_path, capsys):
    path = tmp_path / ".hidden.toml"
    path.write_text(tiny_study(tmp_path).read_text().replace('name = "tiny"\n', ""))
    assert main(["study", str(path), "--dry-run"]) == 2
    assert "study name '.hidden'" in capsys.readouterr().err


@pytest.mark.parametrize("store", ["runs/", "", "   ", "{folder}", "runs/.."])
def test_store_paths_that_name_a_folder_are_refused(tmp_path, capsys, store):
    study = tiny_study(tmp_path)
    text = study.read_text().replace(
        f'store = "{tmp_path}/tiny.db"', f'store = "{store.format(folder=tmp_path)}"'
    )
    study.write_text(text)
    assert main(["study", str(study), "--quiet"]) == 2
    assert "store" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_cell_folders_are_named_only_by_cell_ids(tmp_path):
    with Store(tmp_path / "s.db") as store:
        assert store.cell_files("0123456789ab") == tmp_path / "s.db.files" / "0123456789ab"
        for bad in ("../../etc", "0123456789AB", "0123456789a", "", "0123456789ab/.."):
            with pytest.raises(StoreError, match="not a cell id"):
                store.cell_files(bad)


@pytest.mark.parametrize("address", ["http://evil.example:80", "host:port", "a b:1", "", "ray://", 6379])
def test_bad_ray_addresses_are_refused(address):
    with pytest.raises(ConfigError, match="Ray address"):
        study_from_dict({"study": {"ray_address": address, **BASE}})


def test_a_ray_address_is_for_the_ray_backend(tmp_path, capsys):
    study = tiny_study(tmp_path)
    assert main(["study", str(study), "--ray-address", "auto", "--quiet"]) == 2
    assert "--backend ray" in capsys.readouterr().err
    assert not (tmp_path / "tiny.db").exists()
    cfg = study_from_dict({"study": {"ray_address": "ray://head.cluster:10001", **BASE}})
    assert cfg.ray_address == "ray://head.cluster:10001"
    assert load_study(str(study)).ray_address is None


def test_ray_starts_a_local_instance_on_loopback_unless_an_address_is_named(monkeypatch):
    ray = pytest.importorskip("ray")
    from ray._private import ray_constants

    calls = []

    def init(address=None, **options):
        calls.append(
            (address, os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"), ray_constants.ENABLE_RAY_CLUSTER)
        )

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setenv("RAY_ADDRESS", "203.0.113.7:6379")  # a cluster in the environment is not joined
    before = ray_constants.ENABLE_RAY_CLUSTER
    RayBackend().start()
    RayBackend("local").start()
    RayBackend("ray://head.cluster:10001").start()
    assert calls == [("local", "0", False), ("local", "0", False), ("ray://head.cluster:10001", None, before)]
    assert (
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ and before == ray_constants.ENABLE_RAY_CLUSTER
    )


def _listening(pids: set[int]) -> set[str]:
    """The addresses these processes listen on (TCP, from /proc)."""
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes[link[8:-1]] = pid
        except OSError:
            continue
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                ip = fields[1].split(":")[0]
                out.add(ip)
    return out


def _process_tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_a_local_ray_instance_listens_on_loopback_only():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already running in this process")
    RayBackend().start()
    try:
        ray.get(ray.remote(lambda: 1).remote())  # a worker process too
        addresses = _listening(_process_tree(os.getpid()))
    finally:
        ray.shutdown()
    assert addresses and addresses <= LOOPBACK, addresses
