"""Generate ``src/hdm_deploy/tensorrt/data/onnx_tensorrt_ops.json`` from onnx-tensorrt's ``docs/operators.md``.

The JSON is the source of truth for :mod:`hdm_deploy.tensorrt.trt_ops` (which ONNX ops, and which
types, each TensorRT version's ONNX parser imports). Nothing in it is typed by hand: every table
comes from ``docs/operators.md`` of onnx-tensorrt at a release tag, plus — only for TensorRT
versions newer than every tag available — the documented changelog overlay
``scripts/data/trt_changelog_overlay.json``.

How to regenerate
-----------------
1. Get a git mirror of https://github.com/onnx/onnx-tensorrt (any clone with its tags works; in
   this workplace the ``fetch`` tool's ``github:onnx/onnx-tensorrt`` gives a bare mirror under
   ``/work/.mirror/onnx+onnx-tensorrt/repo``)::

       git clone --mirror https://github.com/onnx/onnx-tensorrt /tmp/onnx-tensorrt.git

2. Run (from the repository root)::

       python scripts/gen_trt_op_support.py /tmp/onnx-tensorrt.git
       python scripts/gen_trt_op_support.py /path/to/dir-of-operators-md   # alternative source

   ``SOURCE`` is either a git directory (bare or a work tree's ``.git``) — every ``release/<X.Y>-GA``
   tag is read with ``git show TAG:docs/operators.md``, and the release branch ``<X.Y>-GA`` too: when
   it descends from the tag and its table differs (patch releases and documentation fixes after the
   tag — 8.5-GA marks Mod, OneHot and HardSwish supported, whose importers the tag already has), the
   branch's table is used and recorded under ``"branch"`` (``--tags-only`` turns this off) — or a
   directory of Markdown files named
   ``<X.Y>.md`` (e.g. ``10.15.md``; the version may instead come from the file's
   "TensorRT X.Y supports …" header). ``--check`` compares instead of writing (exit 1 when stale).

3. Review ``git diff`` of the JSON and commit it.

Mapping of target versions (:data:`TARGETS`, the versions ``trt_ops.KNOWN`` names) to tables:
a target with its own tag uses it (``"source_tag"``); otherwise the nearest tag at or below it
(``"derived_from"``), plus the overlay entries newer than that tag and not newer than the target
(``"overlay"`` lists them, and each op they add carries ``"source": "changelog X.Y"``). When a
newer tag becomes available, regenerating drops the overlay for the versions it covers.

Table parsing: rows of the "Operator Support Matrix" (``| op | Y/N | types | restrictions |``);
"Y [EXPERIMENTAL]" counts as supported (``"experimental": true``); a type cell that is prose
(e.g. "Not supported. …") is moved to the restrictions. The opset range comes from the header
sentence ("up to Opset 17" or "inclusive range of opset 9 to opset 20"). Misspelt type names are
corrected through :data:`_SPELLING` (recorded in the JSON as ``"type_spelling_fixes"``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "src" / "hdm_deploy" / "tensorrt" / "data" / "onnx_tensorrt_ops.json"
OVERLAY = ROOT / "scripts" / "data" / "trt_changelog_overlay.json"
DOC_PATH = "docs/operators.md"
#: The TensorRT versions hdm-deploy targets (JetPack 5.1 = 8.5, 6.0 = 8.6, 6.1/6.2 = 10.3, 7 = 10.13, 11).
TARGETS = ("8.5", "8.6", "10.3", "10.13", "11")

_TAG = re.compile(r"^release/(\d+)\.(\d+)-GA$")
#: Misspelt type names in some tags' tables (10.0/10.1-GA: ConstantOfShape "INF64").
_SPELLING = {"INF64": "INT64"}
_TYPE = re.compile(r"^[A-Z][A-Z0-9]*$")
_OPSET_RANGE = re.compile(r"inclusive range of opset\s+(\d+)\s+to\s+opset\s+(\d+)", re.IGNORECASE)
_OPSET_UPTO = re.compile(r"up to opset\s+(\d+)", re.IGNORECASE)
_DECLARED = re.compile(r"TensorRT\s+(\d+(?:\.\d+)*)\s+supports", re.IGNORECASE)


def vkey(version: str) -> tuple[int, int]:
    major, minor = ([int(n) for n in re.findall(r"\d+", version)] + [0])[:2]
    return major, minor


def parse_operators_md(text: str) -> dict:
    """``docs/operators.md`` → ``{"declared_trt", "opset_min", "opset_max", "ops": {op: {...}}}``."""
    declared = _DECLARED.search(text)
    rng = _OPSET_RANGE.search(text)
    upto = _OPSET_UPTO.search(text)
    opset_min, opset_max = (int(rng[1]), int(rng[2])) if rng else (None, int(upto[1]) if upto else None)
    ops: dict[str, dict] = {}
    in_matrix = False
    for line in text.splitlines():
        if line.startswith("#"):
            in_matrix = "operator support matrix" in line.lower()
            continue
        if not in_matrix or not line.lstrip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = cells[0]
        if not name or name == "Operator" or set(name) <= set("-: "):
            continue
        flag = cells[1] if len(cells) > 1 else ""
        type_cell = cells[2] if len(cells) > 2 else ""
        restrictions = " | ".join(c for c in cells[3:] if c)
        types = [_SPELLING.get(t.strip(), t.strip()) for t in type_cell.split(",") if t.strip()]
        if any(not _TYPE.match(t) for t in types):  # prose in the types column
            restrictions = " ".join(x for x in (type_cell, restrictions) if x)
            types = []
        entry = {"supported": flag.upper().startswith("Y"), "types": types, "restrictions": restrictions}
        if "EXPERIMENTAL" in flag.upper():
            entry["experimental"] = True
        if name in ops:  # listed twice (8.4-GA branch: HardSwish N, then Y): the "Y" row wins
            entry = entry if entry["supported"] or not ops[name]["supported"] else ops[name]
            entry = {**entry, "listed_twice": True}
        ops[name] = entry
    if not ops:
        raise ValueError("no operator support matrix found")
    return {
        "declared_trt": declared[1] if declared else None,
        "opset_min": opset_min,
        "opset_max": opset_max,
        "ops": dict(sorted(ops.items())),
    }


def _git(git_dir: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True, text=True
    ).stdout


def _doc_at(git_dir: Path, rev: str) -> tuple[str, str] | None:
    try:
        commit = _git(git_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
        return commit, _git(git_dir, "show", f"{commit}:{DOC_PATH}")
    except subprocess.CalledProcessError:
        return None


def documents_from_git(git_dir: Path, branches: bool = True) -> dict[str, dict]:
    """Every ``release/X.Y-GA`` tag → parsed ``docs/operators.md`` plus tag/commit.

    With ``branches``, the release branch ``X.Y-GA`` is read too; when it descends from the tag and its
    table differs (patch releases and documentation corrections made after the tag, e.g. 8.5-GA's
    "Mark Mod as supported"), the branch's table is used and ``"branch"`` records ref, commit and the
    ops that changed.
    """
    docs: dict[str, dict] = {}
    for tag in _git(git_dir, "tag", "--list", "release/*").split():
        m = _TAG.match(tag)
        found = _doc_at(git_dir, tag) if m else None
        if not found:
            continue
        commit, text = found
        doc = {"tag": tag, "commit": commit, **parse_operators_md(text)}
        branch = f"{m[1]}.{m[2]}-GA"
        on_branch = _doc_at(git_dir, f"refs/heads/{branch}") if branches else None
        if on_branch and on_branch[0] != commit:
            is_later = subprocess.run(
                ["git", "--git-dir", str(git_dir), "merge-base", "--is-ancestor", commit, on_branch[0]],
                capture_output=True,
            )
            later = parse_operators_md(on_branch[1])
            changed = sorted(
                op for op in set(doc["ops"]) | set(later["ops"]) if doc["ops"].get(op) != later["ops"].get(op)
            )
            if is_later.returncode == 0 and changed:
                doc.update(later)
                doc["branch"] = {"ref": branch, "commit": on_branch[0], "changed_ops": changed}
        docs[f"{m[1]}.{m[2]}"] = doc
    return docs


def documents_from_dir(directory: Path) -> dict[str, dict]:
    """``<X.Y>.md`` files (or any ``*.md`` with a "TensorRT X.Y supports" header) → parsed documents."""
    docs: dict[str, dict] = {}
    for path in sorted(directory.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        doc = parse_operators_md(text)
        stem = re.fullmatch(r"\d+\.\d+", path.stem)
        version = path.stem if stem else doc["declared_trt"]
        if not version:
            raise ValueError(f"{path}: no version in its name or header")
        version = "{}.{}".format(*vkey(version))
        docs[version] = {
            "tag": None,
            "file": path.name,
            "commit": None,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            **doc,
        }
    return docs


_DOC_KEYS = ("tag", "file", "commit", "sha256", "branch")


def build(docs: dict[str, dict], overlay: dict) -> dict:
    """Target version → table (own tag, or nearest tag ≤ it plus the overlay entries after that tag)."""
    if not docs:
        raise ValueError("no operators.md documents found")
    versions: dict[str, dict] = {}
    for target in TARGETS:
        below = [v for v in docs if vkey(v) <= vkey(target)]
        if not below:
            raise ValueError(f"no onnx-tensorrt release at or below TensorRT {target}")
        base = max(below, key=vkey)
        doc = docs[base]
        ref = {k: doc[k] for k in _DOC_KEYS if doc.get(k) is not None}
        ops = {name: dict(entry) for name, entry in doc["ops"].items()}
        entry: dict = {
            "source_tag": None,
            "commit": None,
            "derived_from": None,
            "declared_trt": doc["declared_trt"],
            "opset": {"min": doc["opset_min"], "max": doc["opset_max"], "note": "declared in operators.md"},
        }
        if vkey(base) == vkey(target):
            entry["source_tag"] = doc.get("tag") or doc.get("file")
            entry["commit"] = doc.get("commit")
            if "branch" in doc:
                entry["branch"] = doc["branch"]
        else:
            entry["derived_from"] = {
                "version": base,
                **ref,
                "reason": f"no onnx-tensorrt release tag for TensorRT {target} in the source; "
                f"nearest tag at or below it",
            }
            applied = []
            for change in sorted(overlay["changes"], key=lambda c: vkey(c["version"])):
                if not vkey(base) < vkey(change["version"]) <= vkey(target):
                    continue
                applied.append(change["version"])
                for name, types in change.get("ops", {}).items():
                    ops[name] = {
                        "supported": True,
                        "types": types.split(),
                        "restrictions": "",
                        "source": f"changelog {change['version']}",
                    }
                if "opset_max" in change:
                    entry["opset"] = {
                        "min": entry["opset"]["min"],
                        "max": change["opset_max"],
                        "note": change.get("opset_note", f"changelog {change['version']}"),
                    }
            entry["overlay"] = applied
        entry["ops"] = dict(sorted(ops.items()))
        versions[target] = entry
    return {
        "schema": 1,
        "generated_by": "scripts/gen_trt_op_support.py",
        "source": {"repository": "https://github.com/onnx/onnx-tensorrt", "path": DOC_PATH},
        "overlay_file": "scripts/data/trt_changelog_overlay.json",
        "type_spelling_fixes": _SPELLING,
        "documents": {
            v: {k: d[k] for k in (*_DOC_KEYS, "declared_trt", "opset_min", "opset_max") if k in d}
            for v, d in sorted(docs.items(), key=lambda kv: vkey(kv[0]))
        },
        "versions": versions,
    }


def dumps(data: dict) -> str:
    """JSON with one line per op, so that a regenerated file diffs op by op."""

    def block(obj: dict, indent: int) -> str:
        pad = " " * indent
        parts = []
        for key, value in obj.items():
            if key == "ops":
                rows = ",\n".join(
                    f"{pad}    {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in value.items()
                )
                parts.append(f'{pad}  "ops": {{\n{rows}\n{pad}  }}')
            elif isinstance(value, dict) and key in ("versions", "documents"):
                inner = ",\n".join(
                    f"{pad}    {json.dumps(k)}: {block(v, indent + 4).lstrip()}" for k, v in value.items()
                )
                parts.append(f'{pad}  "{key}": {{\n{inner}\n{pad}  }}')
            else:
                parts.append(f"{pad}  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
        return pad + "{\n" + ",\n".join(parts) + f"\n{pad}}}"

    text = block(data, 0) + "\n"
    assert json.loads(text) == data
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="onnx-tensorrt git dir, or a directory of <X.Y>.md files")
    ap.add_argument("-o", "--output", type=Path, default=OUTPUT)
    ap.add_argument("--overlay", type=Path, default=OVERLAY)
    ap.add_argument("--check", action="store_true", help="compare with --output instead of writing it")
    ap.add_argument("--tags-only", action="store_true", help="ignore the X.Y-GA release branches")
    args = ap.parse_args(argv)
    src: Path = args.source
    is_git = (src / "HEAD").is_file() and (src / "objects").is_dir()
    if not is_git and (src / ".git").exists():
        src, is_git = src / ".git", True
    docs = documents_from_git(src, branches=not args.tags_only) if is_git else documents_from_dir(src)
    overlay = json.loads(args.overlay.read_text(encoding="utf-8"))
    text = dumps(build(docs, overlay))
    if args.check:
        same = args.output.is_file() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output}: {'up to date' if same else 'STALE'}")
        return 0 if same else 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    for v, e in build(docs, overlay)["versions"].items():
        how = e["source_tag"] or f"derived from {e['derived_from']['version']} + overlay {e['overlay']}"
        print(f"TensorRT {v}: {sum(o['supported'] for o in e['ops'].values())} supported ops ({how})")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
