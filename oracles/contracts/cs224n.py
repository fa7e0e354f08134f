"""CS224n's word2vec, as students write it: declarations, and the course's reference forwards.

Assignment 2 (2019 on), ``word2vec.py``: word vectors are rows, ``(V, d)``;
``naiveSoftmaxLossAndGradient(centerWordVec, outsideWordIdx, outsideVectors, dataset)`` and
``negSamplingLossAndGradient(..., dataset, K=10)`` return ``(loss, gradCenterVec,
gradOutsideVecs)`` flat; ``skipgram(currentCenterWord, windowSize, outsideWords, word2Ind,
centerWordVectors, outsideVectors, dataset, word2vecLossAndGradient)`` sums the loss over the
outside words.  Assignment 1 (2016-2017), ``q3_word2vec.py``: the same contracts under the
names ``softmaxCostAndGradient``, ``negSamplingCostAndGradient``, ``skipgram`` and ``cbow``;
``q2_sigmoid.py``'s ``sigmoid``/``sigmoid_grad``, ``q1_softmax.py``'s ``softmax`` and
``q2_neural.py``'s ``forward_backward_prop(data, labels, params, dimensions)``.

Negative samples come from ``dataset.sampleTokenIdx()`` through the starter code's
``getNegativeSamples``, which redraws a sample equal to the outside word.  The check's
``dataset`` is a ``Sampler`` made anew for every call (``Fresh``), so the candidate and every
oracle, at every numeric step, see the same draws; with 5 words and K = 10 they repeat, so
``grad[indices] += ...`` (which adds a repeated sample once) is caught.  ``skipgram`` and
``cbow`` get the course's reference loss as ``word2vecLossAndGradient``, so they are judged on
their own; their outside words hold the center word and a repeat.
"""

from __future__ import annotations

import numpy as np

from gradmatrix.oracles.contract import Fresh
from gradmatrix.oracles.declared import Floats, Integers, declare

V, D = 5, 3  # words in the vocabulary, the vectors' size: few words, so samples repeat
K = 10  # negative samples, the starter code's default
RAW = 8 * K  # draws the reference replays: the first K that differ from the outside word are used
SAMPLER_SEED = 11


class Sampler:
    """The course's ``dataset`` as negative sampling uses it: ``sampleTokenIdx()`` draws word
    indices uniformly (with repeats) from a generator seeded anew with the object."""

    def __init__(self, vocabulary: int = V, seed: int = SAMPLER_SEED):
        self._draws = np.random.default_rng(seed).integers(0, vocabulary, size=RAW * 4).tolist()
        self._next = 0

    def sampleTokenIdx(self) -> int:  # noqa: N802  (the course's name)
        value = self._draws[self._next % len(self._draws)]
        self._next += 1
        return value

    def first(self, n: int) -> list:
        """The first ``n`` draws (the reference's; it does not consume them)."""
        return self._draws[:n]


DATASET = Fresh(Sampler)
WORDS = ("a", "b", "c", "d", "e")
WORD2IND = {w: i for i, w in enumerate(WORDS)}
CENTER = "c"
OUTSIDE = ["a", "c", "b", "a"]  # the center word and a repeat among the outside words


def _one_hot(xp, index, size: int, like):
    return xp.astype(xp.arange(size) == index, like.dtype)


def _log_sigmoid(xp, z):
    return -xp.log(1.0 + xp.exp(-z))


def _naive_softmax(xp, center, o, outside):
    """-log softmax(U v_c)[o]: center (d,), o the outside word's index, outside U (V, d)."""
    scores = xp.matmul(outside, center)
    shifted = scores - xp.max(scores)
    return xp.log(xp.sum(xp.exp(shifted))) - xp.sum(shifted * _one_hot(xp, o, outside.shape[0], scores))


def _negative_sampling(xp, center, o, outside, dataset, K=K):
    """-log s(u_o . v_c) - sum_k log s(-u_k . v_c), the u_k the first K draws that are not o.

    The draws are replayed from the dataset's start; which of them are kept is computed with
    array operations (a draw is kept while fewer than K were kept before it), so the
    reference runs where o is a traced array too (JAX)."""
    draws = np.asarray(dataset.first(RAW))
    scores = xp.matmul(outside, center)  # (V,)
    picks = xp.asarray((draws[:, None] == np.arange(outside.shape[0])[None, :]).astype(np.float64))
    picks = xp.astype(picks, scores.dtype)  # (RAW, V) one-hot rows of the draws
    kept = 1.0 - xp.matmul(picks, _one_hot(xp, o, outside.shape[0], scores))  # draw != o
    before = xp.astype(xp.asarray(np.tril(np.ones((RAW, RAW)), -1)), scores.dtype)
    used = kept * xp.astype(xp.matmul(before, kept) < K, scores.dtype)
    s_o = xp.sum(scores * _one_hot(xp, o, outside.shape[0], scores))
    return -_log_sigmoid(xp, s_o) - xp.sum(used * _log_sigmoid(xp, -xp.matmul(picks, scores)))


def naive_softmax_reference(xp, centerWordVec, outsideWordIdx, outsideVectors, dataset=None):  # noqa: N803
    return _naive_softmax(xp, centerWordVec, outsideWordIdx, outsideVectors)


def neg_sampling_reference(xp, centerWordVec, outsideWordIdx, outsideVectors, dataset=None, K=K):  # noqa: N803
    return _negative_sampling(xp, centerWordVec, outsideWordIdx, outsideVectors, dataset, K)


def course_naive_softmax(centerWordVec, outsideWordIdx, outsideVectors, dataset):  # noqa: N803
    """The course's loss in NumPy, given to ``skipgram`` and ``cbow`` as their loss function."""
    scores = outsideVectors @ centerWordVec
    y_hat = np.exp(scores - scores.max())
    y_hat /= y_hat.sum()
    loss = -np.log(y_hat[outsideWordIdx])
    delta = y_hat.copy()
    delta[outsideWordIdx] -= 1.0
    return loss, outsideVectors.T @ delta, np.outer(delta, centerWordVec)


def skipgram_reference(xp, centerWordVectors, outsideVectors, currentCenterWord=CENTER, windowSize=2,  # noqa: N803
                       outsideWords=OUTSIDE, word2Ind=WORD2IND, dataset=None, word2vecLossAndGradient=None):
    center = xp.matmul(_one_hot(xp, word2Ind[currentCenterWord], centerWordVectors.shape[0], centerWordVectors),
                       centerWordVectors)
    return sum(_naive_softmax(xp, center, word2Ind[w], outsideVectors) for w in outsideWords)


def cbow_reference(xp, inputVectors, outputVectors, currentWord=CENTER, C=2, contextWords=OUTSIDE,  # noqa: N803
                   tokens=WORD2IND, dataset=None, word2vecCostAndGradient=None):
    predicted = sum(xp.matmul(_one_hot(xp, tokens[w], inputVectors.shape[0], inputVectors), inputVectors)
                    for w in contextWords)
    return _naive_softmax(xp, predicted, tokens[currentWord], outputVectors)


def sigmoid_reference(xp, x):
    return 1.0 / (1.0 + xp.exp(-x))


def softmax_reference(xp, x):
    shifted = x - xp.max(x, axis=-1, keepdims=True)
    e = xp.exp(shifted)
    return e / xp.sum(e, axis=-1, keepdims=True)


def sigmoid_grad_reference(xp, s):
    return s * (1.0 - s)


NET = (4, 5, 3)  # q2_neural's dimensions: Dx, H, Dy
NET_PARAMS = NET[0] * NET[1] + NET[1] + NET[1] * NET[2] + NET[2]


def forward_backward_prop_reference(xp, data, labels, params, dimensions=NET):
    """q2_neural: h = sigmoid(x W1 + b1), yhat = softmax(h W2 + b2), cost = -sum(labels log yhat)
    over the batch (the course's sum, not a mean); params flat: W1, b1, W2, b2 row-major."""
    dx, h, dy = dimensions
    at = np.cumsum([0, dx * h, h, h * dy, dy])
    w1 = xp.reshape(params[at[0]:at[1]], (dx, h))
    b1 = xp.reshape(params[at[1]:at[2]], (1, h))
    w2 = xp.reshape(params[at[2]:at[3]], (h, dy))
    b2 = xp.reshape(params[at[3]:at[4]], (1, dy))
    hidden = sigmoid_reference(xp, xp.matmul(data, w1) + b1)
    scores = xp.matmul(hidden, w2) + b2
    shifted = scores - xp.max(scores, axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    return -xp.sum(labels * log_probs)


def _one_hot_rows(rng, shape):
    rows = np.zeros(shape)
    rows[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = 1.0
    return rows


def _probabilities(rng, shape):
    return rng.uniform(0.05, 0.95, shape)


_WORD = {"centerWordVec": (D,), "outsideWordIdx": Integers((), 0, V), "outsideVectors": (V, D)}
_WORD_2016 = {"predicted": (D,), "target": Integers((), 0, V), "outputVectors": (V, D)}
_WINDOW = dict(currentCenterWord=CENTER, windowSize=2, outsideWords=OUTSIDE, word2Ind=WORD2IND, dataset=DATASET,
               word2vecLossAndGradient=course_naive_softmax)
_WINDOW_ORDER = ("currentCenterWord", "windowSize", "outsideWords", "word2Ind", "centerWordVectors",
                 "outsideVectors", "dataset", "word2vecLossAndGradient")

naive_softmax = declare("naiveSoftmaxLossAndGradient", None, _WORD, fixed={"dataset": DATASET},
                        reference=naive_softmax_reference, wrt=["centerWordVec", "outsideVectors"],
                        name="cs224n_naiveSoftmaxLossAndGradient")
neg_sampling = declare("negSamplingLossAndGradient", None, _WORD, fixed={"dataset": DATASET, "K": K},
                       reference=neg_sampling_reference, wrt=["centerWordVec", "outsideVectors"],
                       name="cs224n_negSamplingLossAndGradient")
skipgram = declare("skipgram", None, {"centerWordVectors": (V, D), "outsideVectors": (V, D)}, fixed=_WINDOW,
                   positional=_WINDOW_ORDER, reference=skipgram_reference, name="cs224n_skipgram")
cbow = declare("cbow", None, {"inputVectors": (V, D), "outputVectors": (V, D)},
               fixed=dict(currentWord=CENTER, C=2, contextWords=OUTSIDE, tokens=WORD2IND, dataset=DATASET,
                          word2vecCostAndGradient=course_naive_softmax),
               positional=("currentWord", "C", "contextWords", "tokens", "inputVectors", "outputVectors", "dataset",
                           "word2vecCostAndGradient"),
               reference=cbow_reference, name="cs224n_cbow")
softmax_cost = declare("softmaxCostAndGradient", None, _WORD_2016, fixed={"dataset": DATASET},
                       reference=lambda xp, predicted, target, outputVectors, dataset=None:
                       _naive_softmax(xp, predicted, target, outputVectors),
                       wrt=["predicted", "outputVectors"], name="cs224n_softmaxCostAndGradient")
neg_sampling_cost = declare("negSamplingCostAndGradient", None, _WORD_2016, fixed={"dataset": DATASET, "K": K},
                            reference=lambda xp, predicted, target, outputVectors, dataset=None, K=K:
                            _negative_sampling(xp, predicted, target, outputVectors, dataset, K),
                            wrt=["predicted", "outputVectors"], name="cs224n_negSamplingCostAndGradient")
sigmoid = declare("sigmoid", None, [{"x": (4, 5)}, {"x": (6,)}], reference=sigmoid_reference, wrt=(),
                  name="cs224n_sigmoid")
softmax = declare("softmax", None, [{"x": (4, 5)}, {"x": (6,)}],
                  reference=softmax_reference, wrt=(), name="cs224n_softmax")
sigmoid_grad = declare("sigmoid_grad", None, {"s": Floats((4, 5), _probabilities)}, reference=sigmoid_grad_reference,
                       wrt=(), name="cs224n_sigmoid_grad")
forward_backward_prop = declare(
    "forward_backward_prop", None,
    {"data": (6, NET[0]), "labels": Floats((6, NET[2]), _one_hot_rows), "params": (NET_PARAMS,)},
    fixed={"dimensions": list(NET)}, positional=("data", "labels", "params", "dimensions"),
    reference=forward_backward_prop_reference, wrt=["params"], name="cs224n_forward_backward_prop")
