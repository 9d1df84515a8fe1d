"""`data import|list|rename|delete`: your own datasets from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.cli.console import Parser
from core.store import RunStore


def cmd_data(args, store: RunStore) -> int:
    """Import, list, rename and delete your own datasets (`python -m core data ...`)."""
    from core import workspace
    from core.data import catalog

    home = store.home
    if args.data_command == "list":
        found = catalog.list_datasets(home)
        if args.json:
            print(json.dumps([_data_row(info) for info in found]))
            return 0
        print(f"{len(found)} imported dataset(s) in {catalog.datasets_folder(home)}")
        for info in found:
            counts = ", ".join(f"{c} {n}" for c, n in zip(info.class_names, _totals(info)))
            print(
                f"{info.name}  [{info.dataset_id}]  {catalog.MODES[info.mode]} "
                f"{info.size}x{info.size}  {info.images:,} images: {counts}  ({info.source})"
            )
        return 0
    if args.data_command == "rename":
        catalog.rename_dataset(args.old, args.new, home=home)
        print(f"renamed dataset '{args.old}' to '{catalog.check_name(args.new)}'")
        return 0
    if args.data_command == "delete":
        used = workspace.delete_dataset(args.name, remove_runs=args.remove_runs, home=home)
        runs = f"{used} run(s) trained on it"
        if args.remove_runs:
            print(f"deleted dataset '{args.name}' and the {runs}")
        else:
            kept = "; they stay in the store (--remove-runs deletes them)" if used else ""
            print(f"deleted dataset '{args.name}'; {runs}{kept}")
        return 0
    return _cmd_data_import(args, home)


def _cmd_data_import(args, home) -> int:
    from core.data import catalog, importer

    source = Path(args.source).expanduser()
    if not source.exists():
        print(f"error: {source}: no such file or folder", file=sys.stderr)
        return 2
    if args.test_fraction is None:
        args.test_fraction = importer.DEFAULT_TEST_FRACTION
    low, high = importer.TEST_FRACTION_RANGE
    if not low <= args.test_fraction <= high:
        print(f"error: --test-fraction must be between {low:g} and {high:g}", file=sys.stderr)
        return 2
    if args.mode == "fashion" and args.size not in (None, 28):
        print("error: --size is for --mode plain; fashion mode is always 28x28", file=sys.stderr)
        return 2
    kw = dict(mode=args.mode, size=args.size, test_fraction=args.test_fraction, seed=args.seed)
    if not args.json and sys.stderr.isatty():
        kw["progress"] = lambda done, total: print(
            f"\rreading pictures {done:,}/{total:,}", end="", file=sys.stderr, flush=True
        )
    try:
        if source.is_dir():
            report = importer.import_folder(source, args.name, home=home, **kw)
        else:
            report = importer.import_zip(source, args.name, home=home, **kw)
    except catalog.ImportRefused as exc:
        if args.json:
            skipped = [{"file": f, "reason": r} for f, r in exc.skipped]
            print(json.dumps({"name": args.name, "refused": str(exc), "skipped": skipped}))
        else:
            for file, reason in exc.skipped:
                print(f"  skipped {file}: {reason}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if "progress" in kw:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_json()))
        return 0
    what = "already imported as" if report.existed else "imported"
    print(
        f"{what} '{report.name}' [{report.dataset_id}]: {len(report.classes)} classes, "
        f"{report.train_count:,} training and {report.test_count:,} test images, prepared "
        f"{catalog.MODES[report.mode]} ({report.size}x{report.size})"
    )
    width = max(len(c) for c in report.classes)
    for label_, count in report.classes.items():
        print(f"  {label_:<{width}}  {count:>6,}")
    if report.skipped:
        print(f"skipped {len(report.skipped)} file(s):")
        for file, reason in report.skipped:
            print(f"  {file}: {reason}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"train on it: python -m core train --preset fast --dataset '{report.name}'")
    return 0


def _totals(info) -> list[int]:
    return [a + b for a, b in zip(info.train_counts, info.test_counts, strict=True)]


def _data_row(info) -> dict:
    return {
        "name": info.name,
        "dataset_id": info.dataset_id,
        "classes": list(info.class_names),
        "images": dict(zip(info.class_names, _totals(info), strict=True)),
        "train": sum(info.train_counts),
        "test": sum(info.test_counts),
        "mode": info.mode,
        "size": info.size,
        "channels": info.channels,
        "source": info.source,
        "created_at": info.created_at,
        "skipped": [{"file": f, "reason": r} for f, r in info.skipped],
        "warnings": info.warnings,
    }


def add_data_parsers(sub) -> None:
    from core.data.catalog import MODES, PLAIN_SIZES

    data_p = sub.add_parser("data", help="import, list, rename or delete your own datasets")
    data_sub = data_p.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    import_p = data_sub.add_parser(
        "import", help="import a .zip or a folder whose sub-folders are the classes"
    )
    import_p.add_argument("source", metavar="PATH_OR_ZIP")
    import_p.add_argument("--name", required=True, help="the dataset's name (for --dataset)")
    import_p.add_argument(
        "--mode",
        choices=list(MODES),
        default="fashion",
        help="fashion: 28x28 grey, object found and centred; plain: colour squares (default "
        "fashion)",
    )
    import_p.add_argument(
        "--size", type=int, choices=PLAIN_SIZES, help="plain mode's square side (default 32)"
    )
    # No default here: importer's (and the PIL it loads) would cost every command, `train` too,
    # 50 ms at start-up; `data import` fills it in.
    import_p.add_argument("--test-fraction", type=float, help="default 0.2")
    import_p.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    import_p.add_argument("--json", action="store_true", help="the report as one JSON object")
    list_p = data_sub.add_parser("list", help="list imported datasets")
    list_p.add_argument("--json", action="store_true")
    delete_p = data_sub.add_parser("delete", help="delete an imported dataset")
    delete_p.add_argument("name", metavar="NAME")
    delete_p.add_argument(
        "--remove-runs", action="store_true", help="also delete the runs trained on it"
    )
    rename_p = data_sub.add_parser("rename", help="rename an imported dataset")
    rename_p.add_argument("old", metavar="OLD")
    rename_p.add_argument("new", metavar="NEW")
