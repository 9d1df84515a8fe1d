"""A shared server: runs carry the session that started them; only that session may delete them."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.files import format_size
from core.learn.training import train
from core.spec.config import LayerSpec, RunConfig
from core.store import RunStore, StoreError

ROOT = Path(__file__).resolve().parent.parent
SMALL = RunConfig(layers=(LayerSpec(units=16),), train_size=2000, epochs=1, batch_size=128)
ONLY_OWNER = "On this shared server only the session that trained a run may delete it."


@pytest.fixture
def two_owners(tmp_path, monkeypatch, full_data):
    """A store with alice's run (newest) and bob's run; PLAYGROUND_HOME points at it."""
    home = tmp_path / "home"
    store = RunStore(home)
    bobs = train(SMALL.replace(seed=1), full_data, store=store)
    alices = train(SMALL.replace(seed=2), full_data, store=store)
    assert store.set_owner(bobs.run_id, "bob") and store.set_owner(alices.run_id, "alice")
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    return store, alices.run_id, bobs.run_id


def runs_page(owner: str) -> AppTest:
    """The Runs page of the browser session `owner`, with both runs selected."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state["session_owner"] = owner
    at.switch_page("pages/runs.py").run()
    at.session_state["runs_table"] = {"selection": {"rows": [0, 1], "columns": []}}
    return at.run()


def test_set_owner_is_kept_in_the_index(two_owners):
    store, alices, bobs = two_owners
    owners = {row["run_id"]: row["owner"] for row in store.list_runs()}
    assert owners == {alices: "alice", bobs: "bob"}
    assert not store.set_owner("nosuchrun", "carol")
    with pytest.raises(StoreError, match="read-only"):
        RunStore(store.home, read_only=True).set_owner(alices, "carol")


@pytest.mark.slow
def test_shared_runs_page_offers_delete_only_for_ones_own_runs(two_owners, monkeypatch):
    store, alices, bobs = two_owners
    monkeypatch.setenv("PLAYGROUND_SHARED", "1")
    at = runs_page("alice")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert dict(zip(table["run id"], table["trained by"], strict=True)) == {
        alices: "you",
        bobs: "another session",
    }
    keys = {button.key for button in at.button}
    assert f"runs_delete_{alices}" in keys and f"runs_delete_{bobs}" not in keys
    reasons = [c.value for c in at.caption if c.value.startswith("Delete is not offered")]
    assert reasons == [
        "Delete is not offered: on this shared server only the session that "
        "trained a run may delete it."
    ]

    at.button(key=f"runs_delete_{alices}").click().run()
    assert not at.exception
    assert store.run_ids() == [bobs]

    bob = runs_page("bob")
    assert not bob.exception
    assert bob.button(key=f"runs_delete_{bobs}")


def test_damaged_run_of_another_session_says_why_it_cannot_be_deleted(two_owners, monkeypatch):
    store, alices, bobs = two_owners
    monkeypatch.setenv("PLAYGROUND_SHARED", "1")
    (store.run_dir(bobs) / "result.json").write_text("")
    at = runs_page("alice")
    assert not at.exception
    assert [e.value for e in at.error] == [
        f"Run {bobs}'s result.json is damaged (not valid JSON); delete the run or train it again."
    ]
    assert ONLY_OWNER in [c.value for c in at.caption]
    keys = {button.key for button in at.button}
    assert f"runs_damaged_delete_{bobs}" not in keys and f"runs_damaged_retrain_{bobs}" not in keys


def test_single_user_runs_page_offers_delete_for_every_run(two_owners, monkeypatch):
    store, alices, bobs = two_owners
    monkeypatch.delenv("PLAYGROUND_SHARED", raising=False)
    at = runs_page("alice")
    assert not at.exception and not at.error
    assert "trained by" not in at.dataframe[0].value.columns
    assert at.button(key=f"runs_delete_{alices}") and at.button(key=f"runs_delete_{bobs}")
    assert not [c for c in at.caption if c.value.startswith("Delete is not offered")]
    size = format_size(store.size_bytes())
    assert any(f"{size} of the 5.0 GB it may hold" in c.value for c in at.caption)


def session_script():
    import streamlit as st

    from ui.session import dataset_choice, session_owner, set_shown_run, shared_mode, shown_run

    st.write(f"owner={session_owner()}")
    st.write(f"shared={shared_mode()} dataset={dataset_choice()} shown={shown_run()}")
    if st.button("show", key="show"):
        set_shown_run("abc123")


def test_session_accessors(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_SHARED", "1")
    first = AppTest.from_function(session_script).run()
    owner = first.markdown[0].value
    assert first.markdown[1].value == "shared=True dataset=fashion_mnist shown=None"
    first.button(key="show").click().run()
    first.run()
    assert first.markdown[0].value == owner  # stable for the session
    assert first.markdown[1].value.endswith("shown=abc123")
    assert first.session_state["train_shown_run"] == "abc123"  # the key pages already share
    other = AppTest.from_function(session_script).run()
    assert other.markdown[0].value != owner and len(owner) > len("owner=") + 8
