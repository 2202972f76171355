"""Student ids for a Gradescope export ("Export Submissions"): its `submission_metadata.yml`.

The export holds one `submission_<number>` folder per submission and, beside them, a YAML file
written by Gradescope (Ruby) that maps each folder to its submitters:

    submission_123456:
      :submitters:
      - :name: Ann Lee
        :sid: '100'
        :email: ann@example.edu
      :created_at: 2026-11-27 14:22:32.365935000 -08:00

A folder's student id is its submitters' SIDs (else emails, else names) joined with '+', so
the gradebook says who, not which upload. The file is data from outside: it is read with a
safe loader (Ruby's own tags become plain values), size-capped, and anything unexpected in
it only means the folder name stays the id.
"""

from __future__ import annotations

from typing import Any

import yaml

METADATA_NAME = "submission_metadata.yml"
MAX_BYTES = 16 * 2**20
_ID_KEYS = ("sid", "email", "name")
MAX_ID_CHARS = 200  # an SID, email or name; longer is not a person's id


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads Ruby's local tags (`!ruby/object:...`) as the plain value they tag."""


def _untagged(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    assert isinstance(node, yaml.ScalarNode)  # the composer makes only these three kinds of node
    return loader.construct_scalar(node)


_Loader.add_multi_constructor("!", _untagged)


def _field(entry: dict, name: str) -> Any:
    """Ruby writes symbol keys (`:sid`); accept plain ones (`sid`) too."""
    value = entry.get(f":{name}", entry.get(name))
    return value if value not in (None, "") else None


def _text(value: object) -> str | None:
    """A scalar as short text; None for anything else (a 10,000-digit int, a nested structure, ...)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, int) and value.bit_length() > 256:  # str() of a huge int raises ValueError
        return None
    text = str(value).strip()
    return text if 0 < len(text) <= MAX_ID_CHARS else None


def student_ids(text: str | bytes) -> dict[str, str]:
    """Folder name -> student id for every submission the metadata names; {} when unreadable."""
    try:
        return _student_ids(text)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, MemoryError):  # hostile metadata: no ids
        return {}


def _student_ids(text: str | bytes) -> dict[str, str]:
    data = yaml.load(text, Loader=_Loader)  # safe: a SafeLoader subclass
    if not isinstance(data, dict):
        return {}
    ids = {}
    for folder, entry in data.items():
        submitters = _field(entry, "submitters") if isinstance(entry, dict) else None
        people = []
        for submitter in submitters if isinstance(submitters, list) else []:
            if isinstance(submitter, dict):
                value = next((_field(submitter, key) for key in _ID_KEYS if _field(submitter, key) is not None), None)
                if (person := _text(value)) is not None:
                    people.append(person)
        folder = _text(folder) if not isinstance(folder, float) else None
        if people and folder is not None:
            ids[folder] = "+".join(people[:10])
    return ids
