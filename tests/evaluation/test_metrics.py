"""Tests for classification_metrics and confusion_matrix: hand-computed answers and agreement with sklearn."""

import numpy as np
import pytest
from sklearn import metrics as skm

from specmorph.evaluation.metrics import classification_metrics, confusion_matrix

LABELS = ["a", "b", "c", "d"]
# Class c occurs but is never predicted; class d neither occurs nor is predicted.
Y_TRUE = ["a", "a", "a", "b", "b", "c", "c"]
Y_PRED = ["a", "a", "b", "b", "a", "a", "b"]


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED, LABELS)
    assert cm.tolist() == [[2, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]  # rows true, columns predicted


def test_metrics_by_hand_with_never_predicted_and_absent_class():
    m = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    assert m["n"] == 7
    assert m["accuracy"] == pytest.approx(3 / 7)
    pc = m["per_class"]
    assert (pc["a"]["precision"], pc["a"]["recall"], pc["a"]["f1"]) == pytest.approx((0.5, 2 / 3, 4 / 7))
    assert (pc["b"]["precision"], pc["b"]["recall"], pc["b"]["f1"]) == pytest.approx((1 / 3, 1 / 2, 2 / 5))
    assert pc["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}  # never predicted
    assert pc["d"]["support"] == 0
    # macro over the classes present in y_true (a, b, c); d is left out
    assert m["macro_over"] == ["a", "b", "c"]
    assert m["macro_precision"] == pytest.approx((0.5 + 1 / 3 + 0) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    assert m["macro_f1"] == pytest.approx((4 / 7 + 2 / 5 + 0) / 3)
    assert m["confusion_matrix"] == confusion_matrix(Y_TRUE, Y_PRED, LABELS).tolist()
    assert isinstance(m["confusion_matrix"][0][0], int)


def test_indices_equal_names_and_perfect_prediction():
    idx = {lab: i for i, lab in enumerate(LABELS)}
    by_name = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    by_index = classification_metrics(np.array([idx[y] for y in Y_TRUE]), [idx[y] for y in Y_PRED], LABELS)
    assert by_name == by_index
    perfect = classification_metrics(Y_TRUE, Y_TRUE, LABELS)
    assert perfect["accuracy"] == perfect["macro_f1"] == perfect["macro_precision"] == 1.0


def test_agrees_with_sklearn():
    rng = np.random.default_rng(3)
    n_classes = 6
    labels = [f"k{i}" for i in range(n_classes)]
    y_true = rng.integers(0, n_classes - 1, 500)  # the last class never occurs in y_true
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, n_classes, 500))
    y_pred[y_pred == 2] = 3  # class 2 never predicted
    m = classification_metrics(y_true, y_pred, labels)
    present = sorted(set(y_true.tolist()))
    p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, labels=present, average="macro", zero_division=0)
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == pytest.approx((p, r, f))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred, labels=range(n_classes)).tolist()
    p_c, r_c, f_c, s_c = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=range(n_classes), average=None, zero_division=0)
    for i, lab in enumerate(labels):
        got = m["per_class"][lab]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p_c[i], r_c[i], f_c[i]))
        assert got["support"] == s_c[i]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"y_pred: unknown class 'zz' at position 1"):
        classification_metrics(["a", "b"], ["a", "zz"], LABELS)
    with pytest.raises(ValueError, match=r"y_true: class index 4 outside 0\.\.3"):
        classification_metrics([0, 4], [0, 1], LABELS)
    with pytest.raises(ValueError, match="3 labels but y_pred has 2"):
        classification_metrics(["a", "b", "c"], ["a", "b"], LABELS)
    with pytest.raises(ValueError, match="no samples"):
        classification_metrics([], [], LABELS)
