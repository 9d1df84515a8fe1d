"""`classify`: a stored run's answer for each picture file; a bad file never stops the others."""

from __future__ import annotations

import json
import sys

from core.data.dataset import DatasetUnavailable
from core.data.registry import load_dataset
from core.data.sources import DATASETS
from core.store import RunStore, StoreError

TOP_K = 5


def cmd_classify(args, store: RunStore) -> int:
    """Classify each file with a stored run's model; a bad file is reported, never fatal."""
    from core.data.familiar import doubts, reference_from
    from core.data.images import prepare_file
    from core.data.reading import ImageRefused

    stored = store.get(args.run)
    if stored is None:
        known = ", ".join(store.run_ids()[:5]) or "none yet (train one with `train`)"
        print(
            f"error: no stored run '{args.run}' in {store.home}; stored: {known}", file=sys.stderr
        )
        return 2
    names, how = _classes_and_preparer(stored.config.dataset, store.home)
    prepared = []
    for name in args.files:
        try:
            prepared.append(prepare_file(name, how))
        except ImageRefused as exc:
            prepared.append(str(exc))
        except Exception as exc:  # a reader bug must cost one file, not the whole call
            prepared.append(f"it could not be read ({type(exc).__name__}: {exc})")
    good = [p for p in prepared if not isinstance(p, str)]
    if good:
        import numpy as np

        from core.learn import explain

        try:
            model = store.load_model(args.run)
        except StoreError as exc:  # the model file is missing or damaged: the store's sentence
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # a model file deleted or damaged behind the index's back
            print(
                f"error: the model of run {args.run} could not be loaded "
                f"({type(exc).__name__}: {exc}); train it again",
                file=sys.stderr,
            )
            return 1
        probabilities = iter(explain.probabilities(model, np.stack([p.pixels for p in good])))
        try:
            data = load_dataset(stored.config.dataset, home=store.home)
            reference = reference_from(data.x_train, data.y_train, data.num_classes)
        except DatasetUnavailable:
            reference = None  # no training data here: answers come without the familiarity check
    for name, item in zip(args.files, prepared, strict=True):
        if isinstance(item, str):
            line = {"file": name, "error": item}
        else:
            p = next(probabilities)
            order = p.argsort()[::-1][:TOP_K]
            line = {
                "file": name,
                "label": names[order[0]],
                "index": int(order[0]),
                "confidence": round(float(p[order[0]]), 6),
                "top": [[names[i], round(float(p[i]), 6)] for i in order],
                "warnings": doubts(item.pixels, p, names, reference) if reference else [],
            }
        print(json.dumps(line) if args.json else _plain(line), flush=True)
    return 0 if all(not isinstance(p, str) for p in prepared) else 1


def _classes_and_preparer(dataset: str, home):
    """A dataset's class names and how its pictures were prepared (imported: their own way)."""
    if dataset in DATASETS:
        return DATASETS[dataset].class_names, None
    from core.data.images import prepare_for

    data = load_dataset(dataset, home=home)
    return data.class_names, lambda raw: prepare_for(data, raw)


def _plain(line: dict) -> str:
    if "error" in line:
        return f"{line['file']}: refused: {line['error']}"
    others = ", ".join(f"{label} {p:.1%}" for label, p in line["top"][1:3])
    text = f"{line['file']}: {line['label']} ({line['confidence']:.1%}; then {others})"
    return text + "".join(f"\n    warning: {w}" for w in line["warnings"])
