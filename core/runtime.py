"""Keras backends and the one Keras bootstrap: which frameworks are installed, which one trains a
given network fastest here, what the device is called, and the only place that sets
KERAS_BACKEND (use_backend, import_keras), without importing a framework the process does not use.

Keras fixes its backend when it is first imported, so each trainer process has exactly one; the
job queue keeps one trainer per backend in use. The rule for `auto` comes from
bench/bench_backends.py (figures in the README): on a CPU, JAX runs networks without convolutions
several times faster than TensorFlow (a small step is mostly Python dispatch, which jit removes),
while TensorFlow's oneDNN convolutions run several times faster than XLA's CPU convolutions. On a
GPU, JAX wins both.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import sys

from core.errors import PlaygroundError

# JAX keeps what XLA compiled on disk: a network of the same shape trained again (another seed,
# learning rate or number of epochs; in the next process) starts without compiling. On 2 cores the
# first run of the fast preset spent 3-4 s compiling, a later one under 1 s. Set here, on import,
# because JAX reads these when it is first imported (Keras imports it).
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "playground-jax"
    ),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(500_000_000))  # bytes; oldest go first

BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_LABELS = {"auto": "Auto", "tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
PIP_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax[cpu]", "torch": "torch"}
_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


class BackendUnavailable(PlaygroundError):
    """The chosen backend is not installed; the message names the package to install."""


def installed(name: str) -> bool:
    """Whether the backend's framework can be imported here (checked without importing it)."""
    return importlib.util.find_spec(_MODULES[name]) is not None


def unavailable_reason(name: str) -> str | None:
    """None when `name` can be used, else one sentence saying how to get it."""
    if name == "auto" or installed(name):
        return None
    return (
        f"The {BACKEND_LABELS[name]} backend is not installed here: "
        f"pip install '{PIP_PACKAGES[name]}' and restart the playground, or choose Auto."
    )


def gpu_visible() -> bool:
    """A cheap guess, before any framework is imported, that a CUDA GPU is present."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")


def choose(has_conv: bool, *, gpu: bool | None = None) -> str:
    """The installed backend that trains such a network fastest here (see the module's rule)."""
    gpu = gpu_visible() if gpu is None else gpu
    if gpu:
        order = ("jax", "torch", "tensorflow")
    elif has_conv:
        order = ("tensorflow", "torch", "jax")
    else:
        order = ("jax", "tensorflow", "torch")
    for name in order:
        if installed(name):
            return name
    raise BackendUnavailable(
        "No Keras backend is installed: pip install tensorflow (or 'jax[cpu]', or torch)."
    )


def resolve(config) -> str:
    """The backend a RunConfig trains on: its own choice, or auto's pick for its network.

    Raises BackendUnavailable with one sentence when the chosen one is not installed.
    """
    wanted = getattr(config, "backend", "auto")
    if wanted == "auto":
        return choose(any(layer.kind == "conv" for layer in config.layers))
    reason = unavailable_reason(wanted)
    if reason:
        raise BackendUnavailable(reason)
    return wanted


def describe_device(backend: str) -> str:
    """'CPU' or 'GPU: <name>' as seen by `backend` (imports only that framework)."""
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return "GPU: " + ", ".join(d.device_kind for d in gpus) if gpus else "CPU"
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            return "GPU: " + ", ".join(torch.cuda.get_device_name(i) for i in range(count))
        return "CPU"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [
            tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus
        ]
        return "GPU: " + ", ".join(names)
    return "CPU"


def keep_tensorflow_out(backend: str) -> None:
    """Tell Keras that TensorFlow is absent in a process that trains on another backend.

    Keras's saving code asks whether TensorFlow is importable by importing it (serialization_lib
    checks `tf.available` before `isinstance(obj, tf.TensorShape)`), which cost a JAX trainer
    4-10 s and about 1 GB on every first save. A model built on JAX or PyTorch holds no TensorFlow
    objects, so the answer "absent" is true for everything it saves or loads.
    """
    if backend == "tensorflow":
        return
    try:
        from keras.src.utils import module_utils
    except ImportError:  # a Keras without this module does not ask
        return
    lazy = getattr(module_utils, "tensorflow", None)
    if lazy is not None and getattr(lazy, "module", None) is None:
        lazy._available = False


def label(device: str, backend: str, executor: str = "local") -> str:
    """'CPU · JAX', 'GPU: NVIDIA H100 · JAX', 'CPU · JAX · Ray cluster': how every page and the
    CLI show where a run ran."""
    text = f"{device} · {BACKEND_LABELS.get(backend, backend)}" if backend else device
    return f"{text} · Ray cluster" if executor == "ray" else text


DEFAULT_BACKEND = "tensorflow"  # what Keras itself picks when nobody chose


def use_backend(backend: str, *, log_level: str = "2") -> None:
    """Fix this process's Keras backend before Keras loads: the only writer of KERAS_BACKEND.

    Raises BackendUnavailable when Keras is already loaded on another backend (Keras reads the
    variable once, on import), so a process never trains on a backend it did not mean to.
    log_level: TF_CPP_MIN_LOG_LEVEL, TensorFlow's C++ chatter ("2": warnings off, "3": all off).
    """
    loaded = sys.modules.get("keras")
    if loaded is not None and hasattr(loaded, "backend"):
        if loaded.backend.backend() != backend:
            raise BackendUnavailable(
                f"This process already runs Keras on {loaded.backend.backend()}; "
                f"run the command again to train on {backend}."
            )
        return
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", log_level)
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share a GPU politely


# Optional packages Keras imports on its start only to recognise their objects as input
# (keras/src/trainers/data_adapters/array_slicing.py: `try: import pandas / except ImportError:
# pandas = None`). The engine gives Keras NumPy arrays only, and importing pandas (and the pyarrow
# it pulls in) took 0.25-0.3 s of every training process's start on a 2-core EPYC
# (bench/bench_startup.py). So while Keras loads, each counts as absent by the import system's own
# rule (a None in sys.modules makes `import` raise ImportError), exactly what Keras meets where
# it is not installed; the mark goes once Keras is in, so our own code (Evaluate's tables) can
# still import pandas later. A package already imported is left alone. The first import_keras of
# a process runs in its main thread before any thread of ours exists, so nothing else is
# importing meanwhile.
KERAS_SKIPS = ("pandas",)


def import_keras(backend: str | None = None):
    """Keras, on `backend` if given, else on the one this process already chose (KERAS_BACKEND,
    else TensorFlow). Every module that needs Keras gets it here, never by a bare import first."""
    if "keras" not in sys.modules:
        use_backend(backend or os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND)
        return _first_keras_import()
    if backend is not None:
        use_backend(backend)  # refuses a different one
    import keras

    return keras


def _first_keras_import():
    skipped = [name for name in KERAS_SKIPS if name not in sys.modules]
    for name in skipped:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import keras
    finally:
        for name in skipped:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    # Keras and its framework leave 150,000 (JAX) to 340,000 (TensorFlow) objects that live as
    # long as the process, and every full garbage collection walked them all (0.07-0.17 s): one
    # fell in each CLI run's first training step, 0.1 s on a 2-core EPYC (bench_startup.py
    # --cuts). Frozen (gc.freeze), later collections skip them. A collection at this point finds
    # nothing unreachable on either backend, so the freeze keeps no garbage alive.
    gc.freeze()
    return keras


def current_backend() -> str:
    """The Keras backend of this process (importing Keras fixes it; KERAS_BACKEND decides)."""
    return import_keras().backend.backend()


def this_device() -> str:
    """'CPU' or 'GPU: <name>' for the Keras backend this process runs (no other framework)."""
    return describe_device(current_backend())
