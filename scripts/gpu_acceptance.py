"""GPU acceptance in one command: everything that needs a CUDA GPU, one JSON + one Markdown report.

    python scripts/gpu_acceptance.py --out out/gpu-acceptance          # or scripts/gpu_acceptance.sh
    python scripts/gpu_acceptance.py --dry-run                         # print the plan, run nothing
    python scripts/gpu_acceptance.py --only env                        # versions only (seconds)

Steps (each: ok / failed / skipped with its reason, duration, numbers, the exact command):

* ``env``: GPU (nvidia-smi), driver, CUDA, torch, torchvision, ONNX Runtime (+ providers), TensorRT.
* ``plugin_kernels``: ``pytest tests/plugins/test_plugin_gpu.py`` (our DeformConv CUDA kernels vs torchvision:
  FP32 ≤ 1e-4, FP16 ≤ 2e-3 of the output scale), JUnit XML parsed.
* ``plugin_bench``: ``benchmarks/bench_deform_plugin.py`` (kernel vs torchvision, FP16 target ≥ 2×).
* ``dcp_bench``: ``benchmarks/bench_dcp.py`` (DCP masks: reference, torch CPU/CUDA, ORT CPU).
* ``export_fp32`` / ``export_fp16``: ``hdm-deploy export`` of the bundled sample model (+ golden bundles).
* ``ort_parity_*`` / ``ort_bench_*``: ``hdm-deploy parity MODEL --device cuda`` against the golden bundle,
  ``hdm-deploy bench … --device cuda`` at 640×480, 1920×1080, 3840×2160 (ONNX Runtime's CUDA EP).
* with ``import tensorrt`` working: ``build-plugin``, plugin-flavour FP16 export, ``build-engine --fp16``,
  ``parity`` and ``bench`` on the engine.

Everything is driven through the ``hdm-deploy`` CLI and the benchmark scripts (stable interfaces); the
package's internals are not imported. A failed step does not stop later ones (steps that need its
output skip, naming it). Exit status 1 when a required step failed, else 0 — skips are not failures:
on a CPU-only machine the report says why each GPU step did not run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib.util
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = "640x480,1920x1080,3840x2160"
STEP_GROUPS = ("env", "plugin", "dcp", "ort", "trt")


# ---- report model ---------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    group: str
    title: str
    required: bool = True
    status: str = "pending"  # ok | failed | skipped
    reason: str = ""
    command: str = ""
    duration_s: float = 0.0
    returncode: int | None = None
    numbers: dict = field(default_factory=dict)
    log: str = ""


class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out: Path = args.out
        self.steps: list[Step] = []
        self.env: dict = {}
        self.cli = cli_command(args.cli)
        self._help_cache: dict[str, str] = {}

    # -- helpers
    def wanted(self, group: str) -> bool:
        return not self.args.only or group in self.args.only

    def step(self, name: str, group: str, title: str, required: bool = True) -> Step:
        s = Step(name, group, title, required)
        self.steps.append(s)
        return s

    def ok(self, name: str) -> bool:
        return any(s.name == name and s.status == "ok" for s in self.steps)

    def skip(self, s: Step, reason: str, command: list[str] | None = None) -> Step:
        s.status, s.reason = "skipped", reason
        if command:
            s.command = shlex.join(command)
        print(f"[skip] {s.name}: {reason}", flush=True)
        return s

    def run(
        self,
        s: Step,
        command: list[str],
        parse: Callable[[str], dict] | None = None,
        timeout: float | None = None,
    ) -> Step:
        s.command = shlex.join(command)
        if self.args.dry_run:
            return self.skip(s, "dry run (command not executed)")
        print(f"[run ] {s.name}: {s.command}", flush=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=timeout or self.args.step_timeout,
            )
            output, s.returncode = proc.stdout, proc.returncode
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or "") if isinstance(exc.stdout, str) else ""
            s.returncode = None
            s.reason = f"timed out after {exc.timeout:.0f} s"
        except OSError as exc:
            output, s.returncode = "", None
            s.reason = f"could not start: {exc}"
        s.duration_s = round(time.perf_counter() - start, 2)
        s.log = output[-6000:]
        log_file = self.out / "logs" / f"{s.name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(f"$ {s.command}\n{output}")
        s.status = "ok" if s.returncode == 0 else "failed"
        if s.status == "failed" and not s.reason:
            s.reason = f"exit {s.returncode}: {last_line(output)}"
        if parse:
            try:
                s.numbers.update(parse(output))
            except Exception as exc:  # a report that cannot be read is a finding, not a crash
                s.numbers["parse_error"] = f"{type(exc).__name__}: {exc}"
        print(f"[{s.status:>4}] {s.name} ({s.duration_s:.1f} s) {s.reason}", flush=True)
        return s

    def has_option(self, subcommand: str, option: str) -> bool:
        """Whether `hdm-deploy SUBCOMMAND --help` lists OPTION (options being added while we write this)."""
        if subcommand not in self._help_cache:
            try:
                proc = subprocess.run(
                    [*self.cli, subcommand, "--help"],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    env=dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb"),
                )
                self._help_cache[subcommand] = proc.stdout + proc.stderr
            except (OSError, subprocess.TimeoutExpired):
                self._help_cache[subcommand] = ""
        return option in self._help_cache[subcommand]


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no output)"


def cli_command(override: str | None) -> list[str]:
    """How to call hdm-deploy: --cli, else the console script on PATH next to this Python, else the
    entry point named in pyproject.toml run by this interpreter (works from a source tree with
    PYTHONPATH=src, no install needed)."""
    if override:
        return shlex.split(override)
    beside = Path(sys.executable).with_name("hdm-deploy")
    if beside.exists():
        return [str(beside)]
    module, func = "hdm_deploy.cli", "main"
    with contextlib.suppress(Exception):  # tomllib is 3.11+; on 3.10 the default above stands
        import tomllib

        target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["hdm-deploy"]
        module, func = target.split(":")
    return [sys.executable, "-c", f"import sys; from {module} import {func}; sys.exit({func}())"]


# ---- environment ----------------------------------------------------------------------------------


def _module_version(name: str) -> str | None:
    if importlib.util.find_spec(name) is None:
        return None
    try:
        mod = __import__(name)
        return str(getattr(mod, "__version__", "unknown"))
    except Exception as exc:  # broken installs are worth reporting, not crashing on
        return f"import failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"


def _cmd_output(command: list[str], timeout: float = 30) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def collect_env() -> dict:
    env: dict = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "host": platform.node(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    smi = _cmd_output(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"]
    )
    if smi:
        gpus = [
            dict(
                zip(
                    ("name", "driver", "memory", "compute_cap"),
                    (p.strip() for p in line.split(",")),
                    strict=False,
                )
            )
            for line in smi.splitlines()
        ]
        env["gpus"] = gpus
        env["gpu"] = gpus[0]["name"]
        env["driver"] = gpus[0].get("driver")
    else:
        env["gpu"] = None
        env["driver"] = None
    full = _cmd_output(["nvidia-smi"])
    m = re.search(r"CUDA Version:\s*([0-9.]+)", full or "")
    env["driver_cuda"] = m.group(1) if m else None
    nvcc = shutil.which("nvcc") or (
        "/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None
    )
    m = re.search(r"release ([0-9.]+)", _cmd_output([nvcc, "--version"]) or "") if nvcc else None
    env["nvcc"] = m.group(1) if m else None
    env["nvcc_path"] = nvcc

    env["torch"] = _module_version("torch")
    env["torch_cuda"] = None
    env["torch_cuda_available"] = False
    if env["torch"] and not env["torch"].startswith("import failed"):
        import torch

        env["torch_cuda"] = torch.version.cuda
        env["torch_cuda_available"] = bool(torch.cuda.is_available())
        if env["torch_cuda_available"]:
            env["torch_device"] = torch.cuda.get_device_name(0)
            env["compute_capability"] = "{}.{}".format(*torch.cuda.get_device_capability(0))
    env["torchvision"] = _module_version("torchvision")
    env["onnxruntime"] = _module_version("onnxruntime")
    env["onnxruntime_providers"] = []
    env["onnxruntime_distributions"] = _distributions("onnxruntime", "onnxruntime-gpu")
    if env["onnxruntime"] and not env["onnxruntime"].startswith("import failed"):
        import onnxruntime

        env["onnxruntime_providers"] = list(onnxruntime.get_available_providers())
    env["tensorrt"] = _module_version("tensorrt")
    env["polygraphy"] = _module_version("polygraphy")
    env["hdm_deploy"] = _module_version("hdm_deploy")
    return env


def _distributions(*names: str) -> dict[str, str]:
    from importlib import metadata

    found = {}
    for n in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[n] = metadata.version(n)
    return found


def has_cuda(env: dict) -> bool:
    return bool(env.get("torch_cuda_available"))


def has_ort_cuda(env: dict) -> bool:
    return "CUDAExecutionProvider" in (env.get("onnxruntime_providers") or [])


def has_tensorrt(env: dict) -> bool:
    v = env.get("tensorrt")
    return bool(v) and not v.startswith("import failed")


# ---- number parsers -------------------------------------------------------------------------------


def parse_junit(path: Path) -> dict:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    totals = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    cases = {}
    for tc in root.iter("testcase"):
        state = "passed"
        if tc.find("failure") is not None or tc.find("error") is not None:
            state = "failed"
        elif tc.find("skipped") is not None:
            state = "skipped: " + (tc.find("skipped").get("message") or "")[:160]
        cases[tc.get("name")] = state
    return {**totals, "cases": cases}


def parse_plugin_test_output(text: str) -> dict:
    out: dict = {}
    m = re.search(r"CUDA FP32 vs torchvision CUDA: worst relative max\|Δ\| ([0-9.eE+-]+)", text)
    if m:
        out["fp32_worst_rel_err"] = float(m.group(1))
    for m in re.finditer(
        r"FP16 (\d+x\d+x\d+): ours ([0-9.eE+-]+) \(fp16 offsets ([0-9.eE+-]+)\), torchvision fp16 ([0-9.eE+-]+)",
        text,
    ):
        out[f"fp16_{m.group(1)}"] = {
            "ours_rel_err": float(m.group(2)),
            "ours_fp16_offsets_rel_err": float(m.group(3)),
            "torchvision_fp16_rel_err": float(m.group(4)),
        }
    return out


def parse_parity_json(path: Path) -> dict:
    data = json.loads(path.read_text())
    cases = data.get("cases", [])

    def worst(key, fn):
        vals = [c[key] for c in cases if isinstance(c.get(key), int | float)]
        return fn(vals) if vals else None

    return {
        "passed": data.get("passed"),
        "cases": len(cases),
        "min_psnr_db": worst("psnr_db", min),
        "min_identical_pct": worst("identical", min),
        "max_abs_u8": worst("max_abs_u8", max),
        "max_abs": worst("max_abs", max),
        "min_mask_agreement_pct": worst("mask_agreement", min),
        "failures": [f for c in cases for f in c.get("failures", [])][:10],
    }


def parse_bench_json(path: Path) -> dict:
    data = json.loads(path.read_text())
    rows = {}
    for r in data.get("results", []):
        key = f"{Path(r['model']).name} [{r.get('backend')}/{r.get('device')}]"
        rows[key] = {
            "size": f"{r['width']}x{r['height']}",
            "batch": r.get("batch"),
            "median_ms": round(r["median_ms"], 3),
            "p90_ms": round(r["p90_ms"], 3),
            "fps": round(r["fps"], 2),
        }
    return rows


def parse_dcp_json(path: Path) -> dict:
    import statistics

    data = json.loads(path.read_text())
    return {
        size: {impl: round(statistics.median(t), 3) for impl, t in times.items()}
        for size, times in data.get("times_ms", {}).items()
    } | {"unit": "median ms per frame", "threads": data.get("threads")}


# ---- the plan -------------------------------------------------------------------------------------


def plan(r: Runner) -> None:
    a, env, py, out = r.args, r.env, sys.executable, r.out
    models = out / "models"
    sizes = [s.strip() for s in a.sizes.split(",") if s.strip()]
    cuda = has_cuda(env)
    no_cuda = "no CUDA device visible to torch" + ("" if env.get("torch") else " (torch not installed)")

    def bench_cmd(model_files: list, size: str, json_path: Path, *extra: str) -> list[str]:
        """``hdm-deploy bench MODEL… --size S [extra] --warmup --iters --json``: one shape for every bench step."""
        return [
            *r.cli, "bench", *map(str, model_files), "--size", size, *extra,
            "--warmup", str(a.warmup), "--iters", str(a.iters), "--json", str(json_path),
        ]  # fmt: skip

    # -- plugin kernels (CUDA, no TensorRT)
    if r.wanted("plugin"):
        s = r.step(
            "plugin_kernels", "plugin", "DeformConv CUDA kernels vs torchvision (FP32 ≤ 1e-4, FP16 ≤ 2e-3)"
        )
        junit = out / "junit_plugin_gpu.xml"
        cmd = [
            py,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "tests/plugins/test_plugin_gpu.py",
            f"--junitxml={junit}",
        ]
        if not cuda:
            r.skip(s, no_cuda, cmd)
        elif not env.get("nvcc"):
            r.skip(s, "nvcc not found (the kernels are built here with CMake + nvcc)", cmd)
        else:
            r.run(s, cmd, parse=parse_plugin_test_output)
            if junit.exists():
                s.numbers["junit"] = parse_junit(junit)
                j = s.numbers["junit"]
                if j["tests"] and j["skipped"] == j["tests"]:
                    s.status, s.reason = (
                        "failed",
                        "every test skipped on a CUDA machine: " + next(iter(j["cases"].values())),
                    )
        s = r.step(
            "plugin_bench",
            "plugin",
            "DeformConv kernel benchmark vs torchvision (270×480×64, FP16 target ≥ 2×)",
        )
        bench_json = out / "bench_deform_plugin.json"
        cmd = [py, "benchmarks/bench_deform_plugin.py", "--json", str(bench_json)]
        if not cuda:
            r.skip(s, no_cuda, cmd)
        elif not env.get("nvcc"):
            r.skip(s, "nvcc not found", cmd)
        else:
            r.run(s, cmd, parse=lambda _t: json.loads(bench_json.read_text()) if bench_json.exists() else {})

    # -- DCP masks (torch CUDA column)
    if r.wanted("dcp"):
        s = r.step("dcp_bench", "dcp", "DCP masks per frame: reference / torch CPU / torch CUDA / ORT CPU")
        dcp_json = out / "bench_dcp.json"
        cmd = [
            py,
            "benchmarks/bench_dcp.py",
            "--sizes",
            a.sizes,
            "--iters",
            str(a.dcp_iters),
            "--json",
            str(dcp_json),
        ]
        if not cuda:
            r.skip(s, no_cuda + "; the CPU columns are in README (python benchmarks/bench_dcp.py)", cmd)
        else:
            r.run(s, cmd, parse=lambda _t: parse_dcp_json(dcp_json) if dcp_json.exists() else {})

    # -- ONNX Runtime CUDA EP, end to end
    if r.wanted("ort"):
        ort_ok = has_ort_cuda(env)
        why = (
            f"ONNX Runtime's CUDAExecutionProvider is not available (onnxruntime {env.get('onnxruntime')}, "
            f"providers {env.get('onnxruntime_providers')}, installed {env.get('onnxruntime_distributions')}): "
            "pip install '.[gpu]' (onnxruntime-gpu, CUDA 13)"
        )
        onnx = {"fp32": models / "model.onnx", "fp16": models / "model_fp16.onnx"}
        for prec, path in onnx.items():
            s = r.step(f"export_{prec}", "ort", f"export the sample model, {prec.upper()} (+ golden bundle)")
            cmd = [*r.cli, "export", "-o", str(path)] + (["--precision", "fp16"] if prec == "fp16" else [])
            if not ort_ok:
                r.skip(s, why, cmd)
            else:
                models.mkdir(parents=True, exist_ok=True)
                r.run(s, cmd)
        for prec, path in onnx.items():
            s = r.step(
                f"ort_parity_{prec}",
                "ort",
                f"parity, ONNX Runtime CUDA EP, {prec.upper()} graph vs golden bundle",
            )
            pj = out / f"parity_ort_{prec}.json"
            cmd = [
                *r.cli,
                "parity",
                str(path),
                "--device",
                "cuda",
                "--json",
                str(pj),
                "--junit",
                str(out / f"junit_parity_ort_{prec}.xml"),
            ]
            if not ort_ok:
                r.skip(s, why, cmd)
            elif not r.ok(f"export_{prec}") and not a.dry_run:
                r.skip(s, f"export_{prec} did not succeed", cmd)
            else:
                r.run(s, cmd, parse=lambda _t, pj=pj: parse_parity_json(pj) if pj.exists() else {})
        for size in sizes:
            s = r.step(
                f"ort_bench_{size}", "ort", f"ms/frame, ONNX Runtime CUDA EP, FP32 and FP16 graphs, {size}"
            )
            bj = out / f"bench_ort_{size}.json"
            cmd = bench_cmd([onnx["fp32"], onnx["fp16"]], size, bj, "--device", "cuda")
            if not ort_ok:
                r.skip(s, why, cmd)
            elif not (r.ok("export_fp32") and r.ok("export_fp16")) and not a.dry_run:
                r.skip(s, "export_fp32/export_fp16 did not both succeed", cmd)
            else:
                r.run(s, cmd, parse=lambda _t, bj=bj: parse_bench_json(bj) if bj.exists() else {})

    # -- TensorRT
    if r.wanted("trt"):
        trt_ok = has_tensorrt(env) and cuda
        why = (
            f"TensorRT not importable ({env.get('tensorrt') or 'not installed'})"
            if not has_tensorrt(env)
            else no_cuda
        )
        plugin_dir = out / "plugin"
        plugin_lib = plugin_dir / "libhdm_deploy_plugins.so"
        onnx_plugin = models / "model_plugin_fp16.onnx"
        engine = models / "model_plugin_fp16.engine"
        golden = models / "model_plugin_fp16.golden.npz"

        s = r.step("trt_build_plugin", "trt", "build-plugin (CUDA kernels + TensorRT creator)")
        cmd = [*r.cli, "build-plugin", "-o", str(plugin_dir)] + (
            ["--tensorrt-root", str(a.tensorrt_root)] if a.tensorrt_root else []
        )
        r.skip(s, why, cmd) if not trt_ok else r.run(s, cmd)

        s = r.step("trt_export", "trt", "export, plugin flavour, FP16 policy")
        cmd = [*r.cli, "export", "-o", str(onnx_plugin), "--precision", "fp16", "--deform", "plugin"]
        if not trt_ok:
            r.skip(s, why, cmd)
        else:
            models.mkdir(parents=True, exist_ok=True)
            r.run(s, cmd)

        s = r.step("trt_build_engine", "trt", "build-engine --fp16 (profile up to 3840×2160)")
        cmd = [
            *r.cli,
            "build-engine",
            str(onnx_plugin),
            "--fp16",
            "-o",
            str(engine),
            "--opt",
            "1x1080x1920",
            "--max",
            "1x2160x3840",
            "--plugin-lib",
            str(plugin_lib),
        ]
        if not trt_ok:
            r.skip(s, why, cmd)
        elif not (r.ok("trt_build_plugin") and r.ok("trt_export")) and not a.dry_run:
            r.skip(s, "trt_build_plugin/trt_export did not both succeed", cmd)
        else:
            r.run(s, cmd, timeout=max(a.step_timeout, 1800))

        def plugin_opt(sub: str) -> list[str]:
            # `--plugin-lib` on parity/bench is being added; without it the runner finds the library itself
            return (
                ["--plugin-lib", str(plugin_lib)]
                if not a.dry_run and r.has_option(sub, "--plugin-lib")
                else []
            )

        s = r.step("trt_parity", "trt", "parity, TensorRT FP16 engine vs golden bundle")
        pj = out / "parity_trt.json"
        cmd = [
            *r.cli,
            "parity",
            str(engine),
            "--reference",
            str(golden),
            "--json",
            str(pj),
            "--junit",
            str(out / "junit_parity_trt.xml"),
        ]
        if not trt_ok:
            r.skip(s, why, cmd)
        elif not r.ok("trt_build_engine") and not a.dry_run:
            r.skip(s, "trt_build_engine did not succeed", cmd)
        else:
            r.run(
                s,
                cmd[:3] + plugin_opt("parity") + cmd[3:],
                parse=lambda _t: parse_parity_json(pj) if pj.exists() else {},
            )
        for size in sizes:
            s = r.step(f"trt_bench_{size}", "trt", f"ms/frame, TensorRT FP16 engine, {size}")
            bj = out / f"bench_trt_{size}.json"
            cmd = bench_cmd([engine], size, bj)
            if not trt_ok:
                r.skip(s, why, cmd)
            elif not r.ok("trt_build_engine") and not a.dry_run:
                r.skip(s, "trt_build_engine did not succeed", cmd)
            else:
                r.run(
                    s,
                    cmd + plugin_opt("bench"),
                    parse=lambda _t, bj=bj: parse_bench_json(bj) if bj.exists() else {},
                )


# ---- reports --------------------------------------------------------------------------------------


def write_reports(r: Runner, started: float) -> tuple[Path, Path, bool]:
    failed = [s.name for s in r.steps if s.status == "failed" and s.required]
    summary = {
        "ok": sum(s.status == "ok" for s in r.steps),
        "failed": sum(s.status == "failed" for s in r.steps),
        "skipped": sum(s.status == "skipped" for s in r.steps),
        "required_failed": failed,
        "passed": not failed,
        "duration_s": round(time.perf_counter() - started, 1),
    }
    data = {
        "tool": "scripts/gpu_acceptance.py",
        "argv": sys.argv[1:],
        "dry_run": r.args.dry_run,
        "env": r.env,
        "summary": summary,
        "steps": [asdict(s) for s in r.steps],
    }
    r.out.mkdir(parents=True, exist_ok=True)
    jpath = r.out / "gpu_acceptance.json"
    jpath.write_text(json.dumps(data, indent=2, default=str) + "\n")
    mpath = r.out / "gpu_acceptance.md"
    mpath.write_text(render_markdown(data))
    return jpath, mpath, not failed


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_fmt(x) for x in v) or "—"
    return str(v)


def render_markdown(data: dict) -> str:
    e, sm = data["env"], data["summary"]
    head = [
        "# hdm-deploy GPU acceptance",
        "",
        f"{e.get('date_utc')} UTC — **{'PASSED' if sm['passed'] else 'FAILED'}**: {sm['ok']} ok, {sm['failed']} failed, "
        f"{sm['skipped']} skipped, {sm['duration_s']} s"
        + (" (dry run: nothing executed)" if data["dry_run"] else ""),
        "",
        "| | |",
        "|---|---|",
        f"| GPU | {e.get('gpu') or 'none (nvidia-smi not found or no GPU)'} |",
        f"| driver (max CUDA) | {e.get('driver')} ({e.get('driver_cuda')}) |",
        f"| nvcc | {e.get('nvcc')} |",
        f"| torch (CUDA) | {e.get('torch')} ({e.get('torch_cuda')}, available: {e.get('torch_cuda_available')}) |",
        f"| torchvision | {e.get('torchvision')} |",
        f"| ONNX Runtime | {e.get('onnxruntime')} {_fmt(e.get('onnxruntime_distributions'))}; providers {_fmt(e.get('onnxruntime_providers'))} |",
        f"| TensorRT / Polygraphy | {e.get('tensorrt')} / {e.get('polygraphy')} |",
        f"| Python / machine | {e.get('python')} / {e.get('machine')}, {e.get('cpu_count')} CPUs |",
        "",
        "| step | status | s | numbers / reason |",
        "|---|---|---|---|",
    ]
    rows = []
    for s in data["steps"]:
        detail = s["reason"] if s["status"] != "ok" else ""
        nums = {k: v for k, v in s["numbers"].items() if k not in ("cases",)}
        if nums:
            detail = (detail + " — " if detail else "") + _fmt(nums)
        detail = detail.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{s['name']}` {s['title']} | {s['status']} | {s['duration_s']} | {detail} |")
    cmds = ["", "## Commands", ""] + [
        f"- `{s['name']}`: `{s['command']}`" for s in data["steps"] if s["command"]
    ]
    return "\n".join(head + rows + cmds) + "\n"


# ---- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "out" / "gpu-acceptance", help="report folder")
    p.add_argument(
        "--only",
        type=lambda t: [g.strip() for g in t.split(",") if g.strip()],
        default=None,
        help=f"comma-separated step groups: {', '.join(STEP_GROUPS)} (env always runs)",
    )
    p.add_argument("--dry-run", action="store_true", help="collect versions, write the plan; run no step")
    p.add_argument("--sizes", default=DEFAULT_SIZES, help="frame sizes WIDTHxHEIGHT for the benchmarks")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--dcp-iters", type=int, default=15)
    p.add_argument("--tensorrt-root", type=Path, default=None, help="passed to build-plugin")
    p.add_argument("--cli", default=None, help="command for hdm-deploy (default: found automatically)")
    p.add_argument("--step-timeout", type=float, default=1200, help="seconds per step")
    args = p.parse_args(argv)
    unknown = set(args.only or ()) - set(STEP_GROUPS)
    if unknown:
        p.error(f"unknown step group(s) {sorted(unknown)}; choose from {', '.join(STEP_GROUPS)}")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    r = Runner(args)
    s = r.step("env", "env", "versions: GPU, driver, CUDA, torch, ONNX Runtime, TensorRT")
    t0 = time.perf_counter()
    try:
        r.env = collect_env()
        s.status = "ok"
        s.numbers = {k: r.env.get(k) for k in ("gpu", "driver", "nvcc", "torch", "onnxruntime", "tensorrt")}
    except Exception as exc:
        s.status, s.reason = "failed", f"{type(exc).__name__}: {exc}"
    s.duration_s = round(time.perf_counter() - t0, 2)
    print(
        f"[{s.status:>4}] env: GPU {r.env.get('gpu')}, driver {r.env.get('driver')}, torch {r.env.get('torch')}, "
        f"ORT {r.env.get('onnxruntime')} {r.env.get('onnxruntime_providers')}, TensorRT {r.env.get('tensorrt')}",
        flush=True,
    )

    plan(r)
    jpath, mpath, passed = write_reports(r, started)
    print(f"report: {mpath}\n        {jpath}")
    print("PASSED" if passed else "FAILED: " + ", ".join(x.name for x in r.steps if x.status == "failed"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
