"""Test-set metrics, confusion matrix, per-class report and the most confident mistakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.data.dataset import Dataset

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Evaluation:
    test_loss: float  # mean cross-entropy on the test set (without weight-decay terms)
    test_accuracy: float
    confusion: np.ndarray  # (classes, classes) counts; rows = true class, columns = predicted
    probabilities: np.ndarray  # (n_test, classes) softmax outputs, float32


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    index = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def metrics_from_probabilities(
    probabilities: np.ndarray, y_true: np.ndarray, num_classes: int
) -> Evaluation:
    y_true = y_true.astype(np.int64)
    picked = probabilities[np.arange(len(y_true)), y_true]
    loss = float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())
    y_pred = probabilities.argmax(axis=1)
    return Evaluation(
        test_loss=loss,
        test_accuracy=float((y_pred == y_true).mean()),
        confusion=confusion_matrix(y_true, y_pred, num_classes),
        probabilities=probabilities.astype(np.float32),
    )


def predict_probabilities(model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Softmax over the model's logits for uint8 images (scaled as in training)."""
    logits = model.predict(images.astype("float32") / 255.0, batch_size=batch_size, verbose=0)
    return softmax(np.asarray(logits, dtype=np.float64))


def evaluate(model, data: Dataset) -> Evaluation:
    """Run the model once over the test set and derive every metric from that one pass."""
    probabilities = predict_probabilities(model, data.x_test)
    return metrics_from_probabilities(probabilities, data.y_test, data.num_classes)


def per_class_report(confusion: np.ndarray, class_names: tuple[str, ...]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (one row per class), from a confusion matrix."""
    import pandas as pd  # only the pages' tables need it: a training process never imports it

    confusion = np.asarray(confusion, dtype=np.float64)
    true_positive = np.diag(confusion)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_positive / predicted, 0.0)
        recall = np.where(actual > 0, true_positive / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return pd.DataFrame(
        {
            "class": list(class_names),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": actual.astype(int),
        }
    )


def misclassified(
    probabilities: np.ndarray,
    y_true: np.ndarray,
    class_names: tuple[str, ...],
    limit: int | None = None,
) -> pd.DataFrame:
    """Wrong test predictions, most confident first: index, true, predicted, confidence."""
    import pandas as pd

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    confidence = probabilities[wrong, y_pred[wrong]]
    order = np.argsort(-confidence, kind="stable")
    wrong, confidence = wrong[order], confidence[order]
    if limit is not None:
        wrong, confidence = wrong[:limit], confidence[:limit]
    names = np.asarray(class_names)
    return pd.DataFrame(
        {
            "index": wrong,
            "true": names[y_true[wrong]],
            "predicted": names[y_pred[wrong]],
            "confidence": confidence.astype(float),
        }
    )
