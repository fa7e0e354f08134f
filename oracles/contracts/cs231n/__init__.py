"""CS231n's functions, as students write them: one module of declarations per assignment part.

Each module holds ``declare(...)`` calls made with the public declaration API
(``oracles.declared``; ``gradmatrix.layer`` is its public face): the course's function
names and signatures, their shapes as named dims checked on the default and full matrices,
the course's reference forward, kinks and conventions.  Unlike the other courses'
declarations (``oracles.contracts``), these join the catalog (``oracles.catalog``), so
``gradmatrix run`` and ``make report`` check them beside manual's ops, in this order:

* ``layers``: assignment 2's ``layers.py`` beyond the ops of ``oracles.ops`` (svm_loss,
  the batch norm variants, group norm, dropout, the naive conv and pooling);
* ``classifiers``: assignment 1's linear classifier losses;
* ``rnn``: assignment 3's ``rnn_layers.py``;
* ``models``: the sandwich layers of ``layer_utils.py`` and the model classes.

A new part is a module here, listed in ``PARTS``.
"""

from __future__ import annotations

from gradmatrix.oracles.contracts.cs231n import classifiers, layers, models, rnn

PARTS = (layers, classifiers, rnn, models)  # in the order reports list their ops
