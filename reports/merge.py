"""Combine shards of one matrix run (a CI job matrix) into one document: ``gradmatrix merge``.

Overlapping comparisons are detected: identical ones are kept once and listed, differing
ones are conflicts, listed and failing the merged run; nothing is overwritten silently.
Differing environments between shards are listed too.
"""

from __future__ import annotations

import json

from gradmatrix.reports import document as documents


def _comparable(record: dict) -> str:
    return json.dumps(record, sort_keys=True)


def merge(shards: list, names: list | None = None) -> dict:
    """Merge agreement documents of shards of one run.

    Args:
        shards: the documents.
        names: a label per shard (file names), for the merge section.

    Returns:
        One document with every comparison once, a summary recomputed over all of them, and
        a ``merge`` section: shards, overlaps (identical duplicates), conflicts (same id,
        different record) and environment differences. The merged run passes only when
        every shard was complete, nothing conflicts and nothing disagrees.

    Raises:
        ValueError: no shards, or documents of different schema versions.
    """
    if not shards:
        raise ValueError("nothing to merge")
    names = names or [f"shard{i}" for i in range(len(shards))]
    versions = {d.get("schema_version") for d in shards}
    if len(versions) > 1 or {d.get("schema") for d in shards} != {documents.SCHEMA}:
        raise ValueError(f"cannot merge reports of different schemas or versions: {sorted(map(str, versions))}")
    records: dict = {}
    origin: dict = {}
    overlaps, conflicts = [], []
    for name, doc in zip(names, shards):
        for record in doc["comparisons"]:
            cid = record["id"]
            if cid not in records:
                records[cid], origin[cid] = record, name
            elif _comparable(records[cid]) == _comparable(record):
                overlaps.append({"id": cid, "shards": [origin[cid], name]})
            else:
                conflicts.append({"id": cid, "shards": [origin[cid], name],
                                  "verdicts": [records[cid]["verdict"], record["verdict"]]})
    envs = [json.dumps(d["environment"], sort_keys=True) for d in shards]
    env_diffs = []
    if len(set(envs)) > 1:
        base = shards[0]["environment"]
        for name, doc in zip(names[1:], shards[1:]):
            for key in sorted(set(base) | set(doc["environment"])):
                if base.get(key) != doc["environment"].get(key):
                    env_diffs.append({"shard": name, "key": key, "first": base.get(key), "this": doc["environment"].get(key)})
    expected = sum(d["summary"]["expected"] for d in shards) - len(overlaps) - len(conflicts)
    interrupted = "; ".join(f"{n}: {d['summary']['interrupted']}" for n, d in zip(names, shards) if d["summary"]["interrupted"])
    incomplete = [n for n, d in zip(names, shards) if not d["summary"]["complete"]]
    if incomplete and not interrupted:
        interrupted = f"incomplete shard(s): {', '.join(incomplete)}"
    if conflicts:
        interrupted = "; ".join(filter(None, [interrupted, f"{len(conflicts)} conflicting comparison(s) between shards"]))
    run = dict(shards[0]["run"], shards=names)
    merged = documents.build(list(records.values()), shards[0]["environment"], run, expected=expected,
                             interrupted=interrupted)
    merged["duration_s"] = sum(d.get("duration_s") or 0 for d in shards)
    merged["merge"] = {"shards": names, "overlaps": overlaps, "conflicts": conflicts, "environment_differences": env_diffs}
    return merged
