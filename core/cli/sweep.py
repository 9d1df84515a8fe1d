"""`sweep` and `sweeps`: run, resume or extend a search, and list or delete sweeps."""

from __future__ import annotations

import json
import sys

from core.cli.console import RAY_HELP, add_setting, config_from_args
from core.cli.train import executor_from_args
from core.data.registry import load_dataset
from core.spec.presets import PRESETS
from core.spec.settings import SETTINGS
from core.store import RunStore


def cmd_sweep(args, store: RunStore) -> int:
    """Run (or resume, or extend) a sweep: a line per ended trial, then one JSON object."""
    from core.run.queue import JobQueue
    from core.sweeps.runner import SweepRunner
    from core.sweeps.space import EXPERIMENTS, SweepError, SweepSpec, parse_param
    from core.sweeps.study import check_name

    if args.preset is None and args.config is None:
        args.preset = "seed"
    base = config_from_args(args)
    experiment = EXPERIMENTS[args.experiment] if args.experiment else None
    space = tuple(parse_param(text) for text in args.param)
    if experiment is not None:
        space = (experiment.param, *(p for p in space if p.name != experiment.param.name))
    if not space:
        raise SweepError(
            "Give the space to search: --param NAME=LOW:HIGH[:log] or --param NAME=a,b,c "
            "(or --experiment)."
        )
    spec = SweepSpec(
        base=base,
        space=space,
        trials=args.trials or (experiment.trials if experiment else 8),
        objective=args.objective,
        sampler=args.sampler or (experiment.sampler if experiment else "tpe"),
        pruner=args.pruner,
    ).checked()
    name = check_name(args.name or spec.default_name())
    data = load_dataset(base.dataset, home=store.home)  # imported datasets live beside runs

    def show(record) -> None:
        if args.json:
            print(json.dumps(record.to_dict()), flush=True)
            return
        value = f"{record.value:.4f}" if record.value is not None else "—"
        origin = " (cached)" if record.cached else ""
        settings = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in record.params.items())  # fmt: skip
        print(
            f"trial {record.number} {record.state}{origin}: {spec.objective} {value}  {settings}"
            f"  run {record.run_id or '—'}" + (f"  ({record.message})" if record.message else ""),
            flush=True,
        )

    executor = executor_from_args(args)
    queue = JobQueue(store=store, executor=executor) if executor else JobQueue(store=store)
    runner = None
    try:
        runner = SweepRunner(store.home, name, queue, store, data, spec, on_trial=show)
        if not args.json:
            print(
                f"sweep {name}: {runner.spec.trials} trial(s) over "
                f"{', '.join(p.text() for p in runner.spec.space)} ({runner.spec.sampler}); "
                f"choosing by {runner.spec.objective_label}",
                file=sys.stderr,
            )
        result = runner.run()
    except KeyboardInterrupt:
        if runner is not None:
            runner.stop()  # the unfinished trials stay; `sweep --name` resumes them
        raise
    finally:
        queue.shutdown()
    print(json.dumps(result.to_json()))
    return 0 if result.best is not None else 1


def cmd_sweeps(args, store: RunStore) -> int:
    from core.sweeps import study

    if args.delete:
        study.delete(store.home, args.delete)
        print(f"deleted sweep {args.delete}; its trials stay in the store as ordinary runs")
        return 0
    found = study.list_sweeps(store.home)
    if args.json:
        print(json.dumps([s.to_json() for s in found]))
        return 0
    print(f"{len(found)} sweep(s) in {study.sweeps_folder(store.home)}")
    for s in found:
        best = s.best
        score = f"best {s.spec.objective} {best.value:.4f} (run {best.run_id})" if best else "—"
        print(
            f"{s.name}  {len(s.finished)}/{s.spec.trials} finished  {score}  "
            f"[{' '.join(p.text() for p in s.spec.space)}; {s.spec.sampler}]"
            + ("  running" if s.running else "")
        )
    return 0


def add_sweep_parsers(sub) -> None:
    from core.sweeps.space import EXPERIMENTS, OBJECTIVES, SAMPLERS

    sweep_p = sub.add_parser(
        "sweep", help="search settings with Optuna; every trial is an ordinary (cached) run"
    )
    source = sweep_p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), help="the base run (default: seed)")
    source.add_argument("--config", metavar="FILE", help="the base run as a config.json")
    for setting in SETTINGS.values():
        add_setting(sweep_p, setting)
    sweep_p.add_argument("--layers", help="hidden layers of the base run (as for `train`)")
    sweep_p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH[:log]|NAME=a,b,c",
        help="a setting to search: a range (log-uniform with :log) or a list; repeatable",
    )
    sweep_p.add_argument("--experiment", choices=sorted(EXPERIMENTS), help="a ready-made question")
    sweep_p.add_argument("--trials", type=int, help="how many trials end the sweep (default 8)")
    sweep_p.add_argument("--sampler", choices=SAMPLERS, help="default tpe")
    sweep_p.add_argument("--objective", choices=sorted(OBJECTIVES), default="val_accuracy")
    sweep_p.add_argument("--pruner", default="median", help="median, none or threshold:X")
    sweep_p.add_argument("--name", help="resume or extend the sweep of this name")
    sweep_p.add_argument("--json", action="store_true", help="JSON lines; the last sums it up")
    sweep_p.add_argument("--ray", metavar="ADDRESS", help=RAY_HELP)
    sweeps_p = sub.add_parser("sweeps", help="list sweeps (or delete one)")
    sweeps_p.add_argument("--json", action="store_true")
    sweeps_p.add_argument("--delete", metavar="NAME", help="delete this sweep (its runs stay)")
