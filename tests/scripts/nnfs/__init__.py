"""A stand-in for the ``nnfs`` package of "Neural Networks from Scratch", written for
gradmatrix's tests: ``init()`` does to NumPy what the book's package does, so that a
student's file calling it at import behaves here as it does on the student's machine.

``init()`` seeds NumPy's global generator and replaces ``np.dot`` with one that computes in
float32 (the book's "dot precision workaround"), for the whole process.
"""

import numpy as np

_dot = np.dot


def init(dot_precision_workaround=True, default_dtype="float32", random_seed=0):
    np.random.seed(random_seed)
    if dot_precision_workaround:
        def dot(*args, **kwargs):
            return _dot(*[np.asarray(a).astype(default_dtype) for a in args], **kwargs)
        np.dot = dot
