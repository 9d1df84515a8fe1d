"""The Data page's "Your own images": the import form, its report, and the imported datasets.

Everything that decides (zip safety, refusals, the split, the fingerprint) lives in core.data
(importer, archive, catalog); this module gathers what the person gave (a zip, per-class uploads,
camera shots), hands it over, and shows the outcome as sentences. Widget keys start with `imp_`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import PurePath

import pandas as pd
import streamlit as st

from core.data.catalog import (
    MODES,
    PLAIN_SIZES,
    ImportedInfo,
    ImportRefused,
    list_datasets,
    rename_dataset,
)
from core.data.importer import (
    DEFAULT_TEST_FRACTION,
    TEST_FRACTION_RANGE,
    ImportReport,
    import_pictures,
    import_zip,
)
from core.data.reading import MAX_FILE_MB
from core.workspace import delete_dataset, runs_using
from ui.engine import forget_dataset
from ui.session import DATASET_KEY, DEFAULT_DATASET

SOURCES = {"zip": "A .zip of class folders", "classes": "Class by class (uploads, camera)"}
SLOTS = "imp_slots"  # ids of the class rows on screen: widget keys stay put when one is removed
NEXT_SLOT = "imp_next_slot"
SHOTS = "imp_shots"  # slot id -> [(file name, JPEG bytes)] taken with the camera
OUTCOME = "imp_outcome"  # the last import: ImportReport.to_json(), or {"refused", "skipped"}
SHOW = "imp_show"  # a dataset to select on the next run (the selectbox is drawn before the form)
# Camera shots have nowhere else to live between reruns; a cap keeps a session's memory bounded
# (a shot is a JPEG of some 50-150 kB).
MAX_SHOTS = 300


class NothingToImport(Exception):
    """The form is not ready (no zip, no name, two classes of one name); str is the sentence."""


def _slots() -> list[int]:
    s = st.session_state
    if SLOTS not in s:
        s[SLOTS], s[NEXT_SLOT] = [0, 1], 2  # two classes: the fewest an import accepts
    return s[SLOTS]


def _add_slot() -> None:
    s = st.session_state
    s[SLOTS] = [*_slots(), s[NEXT_SLOT]]
    s[NEXT_SLOT] += 1


def _remove_slot(slot: int) -> None:
    st.session_state[SLOTS] = [i for i in _slots() if i != slot]
    st.session_state.setdefault(SHOTS, {}).pop(slot, None)


def _class_name(slot: int) -> str:
    return (st.session_state.get(f"imp_class_{slot}") or "").strip()


def _keep_shot() -> None:
    """The camera's on_change: file the new photo under the chosen class."""
    s = st.session_state
    photo, slot = s.get("imp_camera"), s.get("imp_camera_class")
    shots = s.setdefault(SHOTS, {})
    if photo is None or slot is None:
        return
    if sum(len(v) for v in shots.values()) >= MAX_SHOTS:
        refusal = f"At most {MAX_SHOTS} camera pictures per import; import these first."
        s[OUTCOME] = {"refused": refusal, "skipped": []}
        return
    taken = shots.setdefault(slot, [])
    taken.append((f"camera-{len(taken) + 1:03d}.jpg", photo.getvalue()))


def _class_rows() -> None:
    """One row per class: its name, its pictures, what the camera added, a remove button."""
    shots = st.session_state.get(SHOTS, {})
    for number, slot in enumerate(_slots(), start=1):
        with st.container(border=True):
            name_col, files_col, remove_col = st.columns([2, 5, 1], vertical_alignment="center")
            name_col.text_input(
                f"Class {number}", key=f"imp_class_{slot}", placeholder="e.g. oak leaf"
            )
            files_col.file_uploader(
                f"Pictures of class {number}",
                accept_multiple_files=True,
                key=f"imp_files_{slot}",
                help=f"PNG, JPEG, GIF, BMP, WebP or TIFF, up to {MAX_FILE_MB} MB each.",
            )
            remove_col.button(
                "Remove",
                key=f"imp_remove_{slot}",
                icon=":material/delete:",
                on_click=_remove_slot,
                args=(slot,),
                disabled=len(_slots()) <= 1,
            )
            if shots.get(slot):
                st.caption(f"+ {len(shots[slot])} picture(s) from the camera")
    st.button("Add a class", key="imp_add", icon=":material/add:", on_click=_add_slot)


def _camera() -> None:
    if not st.toggle("Take pictures with the camera", key="imp_camera_on"):
        return
    slots = _slots()
    labels = {slot: _class_name(slot) or f"class {n} (unnamed)" for n, slot in enumerate(slots, 1)}
    st.selectbox("Pictures go into", slots, key="imp_camera_class", format_func=labels.get)
    st.camera_input("Camera", key="imp_camera", on_change=_keep_shot)


def gathered_pictures() -> dict[str, list[tuple[str, bytes]]]:
    """The class rows as core.data.importer.import_pictures takes them; NothingToImport if not
    ready."""
    shots = st.session_state.get(SHOTS, {})
    pictures: dict[str, list[tuple[str, bytes]]] = {}
    for number, slot in enumerate(_slots(), start=1):
        files = st.session_state.get(f"imp_files_{slot}") or []
        given = [(f.name, f.getvalue()) for f in files] + list(shots.get(slot, []))
        name = _class_name(slot)
        if not name and not given:
            continue  # an empty row left over: not a class
        if not name:
            raise NothingToImport(f"Class {number} has pictures but no name yet; name it.")
        if name.casefold() in (known.casefold() for known in pictures):
            raise NothingToImport(f"Two classes are called {name!r}; give each its own name.")
        pictures[name] = given
    if not pictures:
        raise NothingToImport("Name the classes and add their pictures first.")
    return pictures


def options() -> dict:
    """Mode, size and test fraction as chosen in the form."""
    s = st.session_state
    mode = s.get("imp_mode", "fashion")
    return {
        "mode": mode,
        "size": s.get("imp_size", PLAIN_SIZES[0]) if mode == "plain" else None,
        "test_fraction": s.get("imp_test", round(DEFAULT_TEST_FRACTION * 100)) / 100,
    }


def run_import(progress=None) -> ImportReport:
    """Import what the form holds; ImportRefused or NothingToImport carry the sentence.

    progress: called with (files done, files in all) while the pictures are prepared.
    """
    s = st.session_state
    name = (s.get("imp_name") or "").strip()
    if s.get("imp_source", "zip") == "zip":
        archive = s.get("imp_zip")
        if archive is None:
            raise NothingToImport("Choose a .zip file of class folders first.")
        name = name or PurePath(archive.name).stem
        return import_zip(
            archive.getvalue(), name, filename=archive.name, progress=progress, **options()
        )
    pictures = gathered_pictures()
    if not name:
        raise NothingToImport("Give the dataset a name.")
    return import_pictures(pictures, name, progress=progress, **options())


def import_form() -> None:
    """The form; on Import, the dataset is stored, selected, and its report shown below."""
    s = st.session_state
    st.radio(
        "Pictures from", list(SOURCES), format_func=SOURCES.get, key="imp_source", horizontal=True
    )
    if s.imp_source == "zip":
        st.file_uploader(
            "A .zip whose folders are the classes (cats/001.jpg, dogs/002.png, …)",
            type=["zip"],
            key="imp_zip",
            help=f"Up to {MAX_FILE_MB} MB here; bigger collections import with the command "
            "line: python -m core data import PATH --name NAME.",
        )
    else:
        _class_rows()
        _camera()
    st.text_input(
        "Dataset name",
        key="imp_name",
        placeholder="the zip's name" if s.imp_source == "zip" else "e.g. leaves",
    )
    mode_col, size_col, test_col = st.columns(3)
    mode_col.radio(
        "Turn pictures into network input",
        list(MODES),
        format_func=MODES.get,
        key="imp_mode",
        help="Like Fashion-MNIST: the object found, cropped, grey, light on dark, 28×28. "
        "As they are: colour kept, letterboxed into a square.",
    )
    size_col.select_slider(
        "Square side (as they are)",
        PLAIN_SIZES,
        key="imp_size",
        format_func=lambda px: f"{px} px",
        disabled=s.get("imp_mode", "fashion") != "plain",
    )
    low, high = (round(fraction * 100) for fraction in TEST_FRACTION_RANGE)
    test_col.slider(
        "Held out for testing",
        low,
        high,
        round(DEFAULT_TEST_FRACTION * 100),
        step=5,
        key="imp_test",
        format="%d %%",
        help="A stratified, seeded split: every class keeps this share for the test set.",
    )
    if st.button("Import", key="imp_go", type="primary", icon=":material/upload:"):
        bar = st.progress(0.0, text="Reading and preparing the pictures…")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Preparing picture {done:,} of {total:,}…")

        try:
            report = run_import(progress)
        except ImportRefused as exc:
            s[OUTCOME] = {"refused": str(exc), "skipped": exc.skipped}
        except NothingToImport as exc:
            s[OUTCOME] = {"refused": str(exc), "skipped": []}
        else:
            s[OUTCOME] = report.to_json()
            s[SHOW] = report.name
            s[SHOTS] = {}  # filed into the dataset now
        st.rerun()
    outcome = s.get(OUTCOME)
    if outcome and "refused" in outcome:
        st.error(outcome["refused"], icon=":material/block:")
        if outcome["skipped"]:
            report_details({}, outcome["skipped"], [])
    elif outcome:
        _show_outcome(outcome)


def _show_outcome(outcome: dict) -> None:
    images = sum(outcome["images"].values())
    verb = "were already imported as" if outcome["existed"] else "imported as"
    st.success(
        f"{images:,} pictures in {len(outcome['images'])} classes {verb} "
        f"**{outcome['name']}** ({outcome['train']:,} for training, {outcome['test']:,} for "
        f"testing), {mode_words(outcome['mode'], outcome['size'])}. It is shown above and listed "
        "in Train's Dataset select.",
        icon=":material/check_circle:",
    )
    skipped = [(item["file"], item["reason"]) for item in outcome["skipped"]]
    report_details(outcome["images"], skipped, outcome["warnings"])


def mode_words(mode: str, size: int) -> str:
    if mode == "plain":
        return f"{MODES[mode].lower()} ({size}×{size} colour)"
    return f"{MODES.get(mode, mode).lower()} (28×28 grey)"


def report_details(classes: dict[str, int], skipped: list, warnings: list[str]) -> None:
    """Counts per class, then each skipped file with its reason, then the warnings."""
    for warning in warnings:
        st.warning(warning, icon=":material/balance:")
    if classes:
        st.dataframe(
            pd.DataFrame({"class": list(classes), "pictures": list(classes.values())}),
            hide_index=True,
            width="content",
        )
    if skipped:
        st.caption(f"{len(skipped)} file(s) skipped, each with the reason:")
        st.dataframe(
            pd.DataFrame([tuple(item) for item in skipped], columns=["file", "reason"]),
            hide_index=True,
            width="stretch",
        )
    elif classes:
        st.caption("No file was skipped.")


def imported_report(info: ImportedInfo) -> None:
    """The stored import report of one dataset (the Data page's selected one)."""
    counts = {
        name: train + test
        for name, train, test in zip(
            info.class_names, info.train_counts, info.test_counts, strict=True
        )
    }
    when = dt.datetime.fromtimestamp(info.created_at).strftime("%Y-%m-%d %H:%M")
    st.caption(f"Imported {when} from {info.source}, {mode_words(info.mode, info.size)}.")
    report_details(counts, info.skipped, info.warnings)


def _follow(old: str, new: str) -> None:
    """Selections of the old name (here and in Train's sidebar) move to the new one."""
    for key in ("data_dataset", DATASET_KEY):
        if st.session_state.get(key) == old:
            st.session_state[key] = new


def _rename(old: str) -> None:
    new = (st.session_state.get(f"imp_rename_{old}") or "").strip()
    forget_dataset(old)
    try:
        rename_dataset(old, new)
    except ImportRefused as exc:
        st.session_state.imp_manage_error = str(exc)
        return
    st.session_state.imp_manage_error = None
    _follow(old, new)


def _delete(name: str) -> None:
    remove = bool(st.session_state.get(f"imp_delete_runs_{name}"))
    forget_dataset(name)
    delete_dataset(name, remove_runs=remove)
    st.session_state.imp_manage_error = None
    _follow(name, DEFAULT_DATASET)


def imported_list() -> None:
    """Every imported dataset in a table, each with rename and delete."""
    datasets = list_datasets()
    if not datasets:
        st.caption("No imported datasets yet.")
        return
    st.dataframe(
        pd.DataFrame(
            {
                "name": [d.name for d in datasets],
                "classes": [len(d.class_names) for d in datasets],
                "pictures": [sum(d.train_counts) + sum(d.test_counts) for d in datasets],
                "input": [mode_words(d.mode, d.size) for d in datasets],
                "from": [d.source for d in datasets],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    if st.session_state.get("imp_manage_error"):
        st.error(st.session_state.imp_manage_error, icon=":material/block:")
    for info in datasets:
        label, rename_col, delete_col = st.columns([3, 1, 1], vertical_alignment="center")
        label.markdown(f"**{info.name}** · {', '.join(info.class_names)}")
        with rename_col.popover("Rename", icon=":material/edit:"):
            st.text_input("New name", value=info.name, key=f"imp_rename_{info.name}")
            st.button(
                "Rename", key=f"imp_do_rename_{info.name}", on_click=_rename, args=(info.name,)
            )
        with delete_col.popover("Delete", icon=":material/delete:"):
            used = runs_using(info.name)
            st.write(
                f"Delete **{info.name}**? {used} stored run(s) were trained on it."
                if used
                else f"Delete **{info.name}**? No stored run uses it."
            )
            if used:
                st.checkbox(
                    f"Also delete those {used} run(s)",
                    key=f"imp_delete_runs_{info.name}",
                    help="Unticked, the runs stay in Runs; pages that need the pictures say "
                    "they are gone.",
                )
            st.button(
                "Yes, delete",
                key=f"imp_do_delete_{info.name}",
                type="primary",
                on_click=_delete,
                args=(info.name,),
            )
