"""A damaged store answers in sentences and the other runs stay usable: real runs, real damage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.learn.training import train
from core.spec.config import LayerSpec, RunConfig
from core.store import RunStore, StoreError

ROOT = Path(__file__).resolve().parent.parent
SMALL = RunConfig(layers=(LayerSpec(units=16),), train_size=2000, epochs=1, batch_size=128)
AGAIN = "; delete the run or train it again."


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, full_data):
    """A store with two real runs, trained once; each test damages its own copy."""
    home = tmp_path_factory.mktemp("pristine") / "home"
    store = RunStore(home)
    runs = [
        train(SMALL, full_data, store=store),
        train(SMALL.replace(seed=2), full_data, store=store),
    ]
    assert all(r.ok for r in runs)
    return home, [r.run_id for r in runs]


@pytest.fixture
def copied(pristine, tmp_path):
    """(home, damaged run id, healthy run id) in a fresh copy of the pristine store."""
    home, (older, newer) = pristine
    shutil.copytree(home, tmp_path / "home")
    return tmp_path / "home", newer, older


def assert_other_run_usable(store: RunStore, run_id: str) -> None:
    assert store.get(run_id).ok
    assert store.load_probabilities(run_id).shape == (10_000, 10)
    assert run_id in store.run_ids()


# ------------------------------------------------------------------ the index
def test_garbage_index_is_moved_aside_and_rebuilt_from_the_folders(copied):
    home, bad, good = copied
    before = {row["run_id"]: row for row in RunStore(home).list_runs()}
    (home / "index.sqlite").write_bytes(b"this is not a database " * 100)

    store = RunStore(home)  # opening must not crash
    assert "was damaged" in store.notice and str(home / "index.sqlite") in store.notice
    assert "2 run(s) recovered" in store.notice
    [aside] = home.glob("index.sqlite.damaged-*")
    assert aside.read_bytes().startswith(b"this is not a database")
    after = {row["run_id"]: row for row in store.list_runs()}
    assert after.keys() == before.keys()
    for run_id, row in after.items():
        for column in ("test_accuracy", "architecture", "params", "backend", "data_id"):
            assert row[column] == before[run_id][column], column
        assert row["size_bytes"] == before[run_id]["size_bytes"]
    assert_other_run_usable(store, bad)
    assert_other_run_usable(store, good)


def test_index_damaged_while_the_store_is_open_is_rebuilt_on_the_next_read(copied):
    home, _, good = copied
    store = RunStore(home)
    (home / "index.sqlite").write_bytes(b"\0garbage" * 512)
    assert len(store.list_runs()) == 2
    assert "rebuilt from the run folders" in store.notice
    assert_other_run_usable(store, good)


def test_garbage_index_of_a_read_only_store_is_refused_with_a_sentence(copied):
    home, bad, _ = copied
    (home / "index.sqlite").write_bytes(b"this is not a database " * 100)
    store = RunStore(home, read_only=True)
    with pytest.raises(StoreError) as caught:
        store.list_runs()
    message = str(caught.value)
    assert message.startswith(f"The run index {home / 'index.sqlite'} is damaged")
    assert "read-only" in message and "\n" not in message
    with pytest.raises(StoreError, match="is damaged"):
        store.get(bad)
    assert not list(home.glob("index.sqlite.damaged-*"))  # a reader changes nothing


# ------------------------------------------------------------------ one run's files
def test_corrupt_result_json_names_the_run_and_the_file(copied):
    home, bad, good = copied
    store = RunStore(home)
    (store.run_dir(bad) / "result.json").write_text('{"run_id": "' + bad + '", "test_acc')
    with pytest.raises(StoreError) as caught:
        store.get(bad)
    assert str(caught.value) == f"Run {bad}'s result.json is damaged (not valid JSON){AGAIN}"
    assert [row["run_id"] for row in store.list_runs()] == [bad, good]  # still listed
    assert_other_run_usable(store, good)
    assert store.delete(bad)  # a damaged run can be deleted
    assert store.run_ids() == [good] and not store.run_dir(bad).exists()


def test_result_json_of_another_run_is_damage(copied):
    home, bad, good = copied
    store = RunStore(home)
    shutil.copy(store.run_dir(good) / "result.json", store.run_dir(bad) / "result.json")
    with pytest.raises(StoreError, match=f"Run {bad}'s result.json is damaged .*{good}"):
        store.get(bad)


@pytest.mark.parametrize("damage", ["missing", "garbage", "not a config"])
def test_damaged_config_json(copied, damage):
    home, bad, good = copied
    store = RunStore(home)
    path = store.run_dir(bad) / "config.json"
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"\xff\xfe\0\0")
    else:
        path.write_text('{"layers": "many"}')
    with pytest.raises(StoreError) as caught:
        store.get(bad)
    expected = "is missing" if damage == "missing" else "is damaged ("
    assert str(caught.value).startswith(f"Run {bad}'s config.json {expected}")
    assert str(caught.value).endswith(AGAIN)
    damage_note = {row["run_id"]: row["damage"] for row in store.list_runs()}
    assert damage_note[good] == ""
    assert damage_note[bad] == (
        f"Run {bad}'s config.json is missing{AGAIN}" if damage == "missing" else ""
    )
    assert_other_run_usable(store, good)


def test_deleted_or_truncated_probabilities(copied):
    home, bad, good = copied
    store = RunStore(home)
    path = store.run_dir(bad) / "test_probabilities.npy"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(StoreError, match=f"^Run {bad}'s test_probabilities.npy is damaged \\("):
        store.load_probabilities(bad)
    path.unlink()
    with pytest.raises(StoreError) as caught:
        store.load_probabilities(bad)
    assert str(caught.value) == f"Run {bad}'s test_probabilities.npy is missing{AGAIN}"
    assert store.get(bad).ok  # the result itself still reads
    assert [row["damage"] != "" for row in store.list_runs()] == [True, False]
    assert_other_run_usable(store, good)


def test_deleted_or_truncated_model(copied):
    home, bad, good = copied
    store = RunStore(home)
    path = store.model_path(bad)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(StoreError) as caught:
        store.load_model(bad)
    assert str(caught.value).startswith(f"Run {bad}'s model.keras is damaged (")
    path.unlink()
    for read in (store.load_model, store.model_bytes):
        with pytest.raises(StoreError) as caught:
            read(bad)
        assert str(caught.value) == f"Run {bad}'s model.keras is missing{AGAIN}"
        assert "KeyError" not in str(caught.value) and "No stored run" not in str(caught.value)
    assert store.load_model(good).count_params() == store.get(good).params
    with pytest.raises(StoreError, match="There is no stored run nosuchrun"):
        store.load_model("nosuchrun")


def test_run_folder_deleted_behind_the_stores_back(copied):
    home, bad, good = copied
    store = RunStore(home)
    shutil.rmtree(store.run_dir(bad))
    with pytest.raises(StoreError) as caught:
        store.get(bad)
    assert str(caught.value) == f"Run {bad}'s folder {store.run_dir(bad)} is missing{AGAIN}"
    assert store.list_runs()[0]["damage"] == str(caught.value)
    assert store.delete(bad) and store.run_ids() == [good]


# ------------------------------------------------------------------ the folder itself
def test_home_that_is_a_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.write_text("not a folder")
    for where in (home, home / "inside"):
        with pytest.raises(StoreError) as caught:
            RunStore(where)
        assert str(caught.value).startswith(f"The run store {where} ")
        assert "not a folder; point PLAYGROUND_HOME at a folder." in str(caught.value)
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    with pytest.raises(StoreError, match="is a file"):
        RunStore()


def files_of(home: Path) -> list[str]:
    # SQLite's own -wal/-shm files may appear beside the index for any reader of a WAL database
    names = [str(p.relative_to(home)) for p in home.rglob("*")]
    return sorted(n for n in names if not n.endswith(("-wal", "-shm")))


def test_read_only_store_reads_and_refuses_writes(copied, full_data):
    home, bad, good = copied
    stale = home / "runs" / ".trash-left-behind"
    stale.mkdir()
    files_before = files_of(home)

    store = RunStore(home, read_only=True)
    assert store.read_only
    assert [row["run_id"] for row in store.list_runs()] == [bad, good]
    assert store.get(good).ok and store.load_probabilities(good).shape == (10_000, 10)
    assert store.load_model(good).count_params() == store.get(good).params
    assert store.size_bytes() > 0
    refused = f"^The run store {home} is read-only here"
    with pytest.raises(StoreError, match=refused):
        store.delete(good)
    with pytest.raises(StoreError, match=refused):
        store.set_owner(good, "someone")
    # training finishes, then the store refuses it: its sentence becomes the run's message
    failed = train(SMALL.replace(seed=3), full_data, store=store)
    assert failed.status == "failed" and failed.message.startswith(f"The run store {home} is")
    assert files_of(home) == files_before
    assert stale.exists()  # clean-up is a write too


READ_ONLY_PROBE = """
import json, os, sys
sys.path.insert(0, sys.argv[2])
from core.store import RunStore, StoreError
home = sys.argv[1]
if os.access(home, os.W_OK):
    print(json.dumps({"writable": True}))
    raise SystemExit
store = RunStore(home)
rows = store.list_runs()
answer = {"writable": False, "read_only": store.read_only, "runs": [r["run_id"] for r in rows]}
answer["accuracy"] = store.get(rows[0]["run_id"]).test_accuracy
answer["probabilities"] = list(store.load_probabilities(rows[0]["run_id"]).shape)
try:
    store.delete(rows[0]["run_id"])
except StoreError as exc:
    answer["refusal"] = str(exc)
print(json.dumps(answer))
"""


def test_folder_this_process_may_not_write_opens_read_only(copied):
    """chmod 0o555; root ignores it, so as root the probe runs without capabilities (setpriv)."""
    home, bad, good = copied
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a folder unwritable")
        prefix = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"]
    folders = [home, home / "runs"]
    for folder in folders:
        folder.chmod(0o555)
    try:
        probe = subprocess.run(
            prefix + [sys.executable, "-c", READ_ONLY_PROBE, str(home), str(ROOT)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert probe.returncode == 0, probe.stderr[-2000:]
    answer = json.loads(probe.stdout)
    if answer["writable"]:
        pytest.skip("os.access says the folder is writable (a file system that ignores modes)")
    assert answer["read_only"] and answer["runs"] == [bad, good]
    assert answer["accuracy"] == RunStore(home).get(bad).test_accuracy
    assert answer["probabilities"] == [10_000, 10]
    assert answer["refusal"].startswith(f"The run store {home} is read-only here")
    assert sorted(p.name for p in home.iterdir()) == ["index.sqlite", "runs"]


# ------------------------------------------------------------------ pages
@pytest.fixture
def app_home(copied, monkeypatch):
    home, bad, good = copied
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    return home, bad, good


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    return at.switch_page(f"pages/{name}.py").run()


def select_all_runs(at: AppTest) -> AppTest:
    at.session_state["runs_table"] = {"selection": {"rows": [0, 1], "columns": []}}
    return at.run()


def test_evaluate_page_shows_a_damaged_run_as_a_sentence_and_deletes_it(app_home):
    home, bad, good = app_home
    (home / "runs" / bad / "result.json").write_text("{")
    at = page("evaluate")  # the damaged run is the newest, so it is shown first
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"Run {bad}'s result.json is damaged (not valid JSON){AGAIN}"
    ]
    at.button(key=f"evaluate_damaged_delete_{bad}").click().run()
    assert not at.exception and not at.error
    assert RunStore(home).run_ids() == [good]
    assert any(m.label == "Test accuracy" for m in at.metric)


def test_evaluate_page_with_missing_probabilities_offers_retrain(app_home):
    home, bad, good = app_home
    (home / "runs" / bad / "test_probabilities.npy").unlink()
    at = page("evaluate")
    assert not at.exception
    assert at.error[0].value == f"Run {bad}'s test_probabilities.npy is missing{AGAIN}"
    at.button(key=f"evaluate_damaged_retrain_{bad}").click().run()
    assert not at.exception
    assert RunStore(home).run_ids() == [good]  # the damaged copy made way for a new training
    assert at.button(key="train_start")  # on the Train page, with the damaged run's settings
    assert at.query_params["seed"] == "2"


def test_runs_page_with_a_missing_model_and_a_damaged_run(app_home):
    home, bad, good = app_home
    (home / "runs" / bad / "config.json").write_text("[]")
    (home / "runs" / good / "model.keras").unlink()
    at = page("runs")
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["state"]) == ["", "damaged"]  # only missing files show in the list
    at = select_all_runs(at)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors[0].startswith(f"Run {bad}'s config.json is damaged (")
    assert errors[1] == f"Run {good}'s model.keras is missing{AGAIN}"
    keys = {b.key for b in at.get("download_button")}
    assert f"runs_model_{good}" not in keys and f"runs_history_{good}" in keys
    assert at.button(key=f"runs_damaged_delete_{bad}")
    assert at.button(key=f"runs_damaged_retrain_{bad}")  # the index keeps a copy of the config


@pytest.mark.parametrize("name", ["evaluate", "runs", "data"])
def test_pages_when_the_home_is_a_file(tmp_path, monkeypatch, full_data, name):
    home = tmp_path / "home"
    home.write_text("not a folder")
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    at = page(name)
    assert not at.exception
    if name != "data":  # the Data page needs no store
        assert [e.value for e in at.error] == [
            f"The run store {home} is a file, not a folder; point PLAYGROUND_HOME at a folder."
        ]


def test_pages_when_the_index_is_garbage(app_home):
    home, bad, good = app_home
    (home / "index.sqlite").write_bytes(b"garbage" * 300)
    at = page("runs")
    assert not at.exception and not at.error
    assert "rebuilt from the run folders" in at.warning[0].value
    assert sorted(at.dataframe[0].value["run id"]) == sorted([bad, good])
