"""The courses, each declarations made with the public API (``oracles.declared.declare``).

CS231n is the package ``cs231n`` here, one module per assignment part; its declarations
join the catalog (``oracles.catalog``), so they are not in ``COURSES`` below.  The courses
beyond it are one module each.

A course module declares, with the same API a user has (``gradmatrix.layer``), the
functions and classes its students write, by name: their arguments, shapes, fixed values,
how randomness is replayed, and the course's reference forward, which every oracle runs.
A module checked by ``gradmatrix check`` is matched against these declarations by name and
signature (``oracles.candidate.contracts_of``), as the catalog's ops are; the courses of
``COURSES`` are no catalog entries.  ``COURSE_SPECS`` holds their specs by op name, built once at import (the
reference forwards give the outputs' shapes), the same in the judge's process and in a
candidate's worker.
"""

from __future__ import annotations

import importlib

from gradmatrix.oracles.declared import build, declarations_in

# course -> its module of declarations, ``oracles/contracts/<course>.py``: a course is its name here
COURSES = {course: importlib.import_module(f"{__name__}.{course}") for course in ("cs224n", "dlai", "nnfs")}


def _specs() -> dict:
    specs = {}
    for course, module in COURSES.items():
        for declaration in declarations_in(module):
            spec, _ = build(declaration, module)
            specs[spec.name] = spec
    return specs


COURSE_SPECS = _specs()  # op name -> OpSpec
