"""The architecture, checked: one-way layers (import-linter contracts in pyproject.toml), no
package-level import cycle, function-local imports only for optional heavy dependencies, generic
code free of any family's vocabulary, and every registered family complete."""

from __future__ import annotations

import ast
import io
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "hdm_deploy"
#: optional heavy dependencies a module may import inside a function (they are extras or large);
#: ``hdm_deploy.export`` is the torch layer: the CLI imports it only in the command that exports.
LAZY_OK = {"torch", "torchvision", "tensorrt", "onnxruntime", "polygraphy", "cuda", "cupy", "onnxscript"}
#: the serving extras (`serve`, `ray`) and the module Triton's Python stub provides
LAZY_OK |= {"tritonclient", "pytriton", "triton_python_backend_utils", "ray"}
LAZY_OK_OURS = ("hdm_deploy.export",)
#: packages that must not speak any family's language (HDM: DCP, masks, multiples of 4)
GENERIC = ("core", "graph", "runtime", "tensorrt", "export", "serving")


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    proc = subprocess.run(
        [exe, "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and proc.stdout.count("KEPT") >= 4


def test_no_import_cycle_between_packages():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("hdm_deploy")
    packages = sorted(
        f"hdm_deploy.{p.name}" for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    )
    edges = {
        (a, b)
        for a in packages
        for b in packages
        if a != b and graph.chain_exists(importer=a, imported=b, as_packages=True)
    }
    cycles = sorted((a, b) for a, b in edges if (b, a) in edges and a < b)
    assert not cycles, f"package-level import cycles: {cycles}"


def _local_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            else:
                continue
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno} {n}"
                for n in names
                if n.split(".")[0] not in LAZY_OK and not n.startswith(LAZY_OK_OURS)
            ]
    return found


def test_function_local_imports_only_for_optional_heavy_dependencies():
    offenders = [hit for p in sorted(SRC.rglob("*.py")) for hit in _local_imports(p)]
    assert not offenders, "move these imports to the top of the module:\n" + "\n".join(offenders)


def _code_tokens(path: Path) -> list[tuple[int, str]]:
    """Names and string literals of a module, without comments and docstrings."""
    text = path.read_text()
    tree = ast.parse(text)
    doc_lines = set()
    for node in ast.walk(tree):
        if isinstance(
            node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        ) and ast.get_docstring(node, clean=False):
            first = node.body[0]
            doc_lines.update(range(first.lineno, first.end_lineno + 1))
        elif (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            doc_lines.update(range(node.lineno, node.end_lineno + 1))  # attribute docstrings
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.NAME, tokenize.STRING) and tok.start[0] not in doc_lines:
            out.append((tok.start[0], tok.string))
    return out


@pytest.mark.parametrize("package", GENERIC)
def test_generic_code_never_mentions_a_family(package):
    # the project's own names (hdm_deploy, HdmDeformConv, HdmDeployError) are not the HDM family
    # ("mask" alone is DCNv2's modulation input and the file-mode umask, both generic)
    family_words = re.compile(r"dcp|\bmasks\b|\bhdm\b|_hdm\b|\bhdm_", re.IGNORECASE)
    hits = []
    for path in sorted((SRC / package).rglob("*.py")):
        for line, tok in _code_tokens(path):
            if family_words.search(re.sub(r"hdm[-_]deploy", "", tok, flags=re.IGNORECASE)):
                hits.append(f"{path.relative_to(ROOT)}:{line} {tok[:60]}")
    assert not hits, "family-specific vocabulary in generic code:\n" + "\n".join(hits)


def test_every_registered_family_is_complete():
    from hdm_deploy.families.base import Family, FamilyExport
    from hdm_deploy.families.registry import FAMILIES, get_family

    for name in FAMILIES:
        family = get_family(name)
        assert isinstance(family, Family) and family.name == name
        assert family.frame.pad_multiple >= 1 and family.frame.min_side >= 1
        for hook in ("load_checkpoint", "torch_runner", "exporter"):
            assert getattr(family, hook), f"{name} lacks {hook}"
        assert isinstance(family.resolve("exporter"), FamilyExport)
        assert family.detect([]) is None


def test_dev_only_modules_are_not_shipped():
    import tomllib

    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["hdm_deploy", "hdm_deploy.*"]
    assert not any((SRC / sub).exists() for sub in ("dcp", "models", "engines"))
