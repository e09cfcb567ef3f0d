"""Bounded load test of `hdm-deploy serve`: N concurrent clients for a fixed time (not run in CI).

    python scripts/load_test.py model.onnx --clients 4 --duration 30 --size 160x120
    python scripts/load_test.py --url http://127.0.0.1:8000/hdm --clients 8 --duration 60

Without ``--url`` it starts ``hdm-deploy serve MODEL`` itself (this interpreter, free ports on
127.0.0.1; needs the ``serve`` extra) and stops it with SIGTERM at the end. Each client is a thread
with its own connection (``TritonClientRunner``, HTTP or gRPC) sending one frame per request, all of the
same size (so Triton's dynamic batcher can batch them). Reports throughput (frames/s), latency p50/p90/
p99, errors, the batches the server formed (its statistics endpoint) and the resident memory (RSS) of
the server's process tree (tritonserver + Python stubs) after warm-up and after the run. Exit 1 when any
request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from hdm_deploy.core.sizes import parse_size
from hdm_deploy.runtime import load_runner
from hdm_deploy.runtime.bench import bench_frames
from hdm_deploy.serving.server import free_port


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                kids.append(int(entry))
    return kids


def tree_rss_mib(root: int, skip_root: bool = True) -> tuple[float, dict[str, float]]:
    """Total RSS (MiB) of ``root``'s descendants (and ``root`` unless ``skip_root``), per command name."""
    todo, seen, per = [root], set(), {}
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo += _children(pid)
        if skip_root and pid == root:
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        name = next((ln.split()[1] for ln in status if ln.startswith("Name:")), "?")
        rss = next((int(ln.split()[1]) for ln in status if ln.startswith("VmRSS:")), 0) / 1024
        per[name] = per.get(name, 0.0) + rss
    return sum(per.values()), per


def _stats(http: str, model: str) -> dict:
    with urllib.request.urlopen(f"{http}/v2/models/{model}/stats", timeout=10) as r:
        stats = json.loads(r.read())["model_stats"]
    return {
        "inferences": sum(int(s.get("inference_count", 0)) for s in stats),
        "executions": sum(int(s.get("execution_count", 0)) for s in stats),
        "batches": {
            int(b["batch_size"]): int(b["compute_infer"]["count"])
            for s in stats
            for b in s.get("batch_stats", [])
        },
    }


def run_clients(url: str, frame: np.ndarray, clients: int, duration: float) -> dict:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[list[str]] = [[] for _ in range(clients)]
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(i: int) -> None:
        with load_runner(url) as runner:
            runner(frame)  # warm-up request, not timed
            start_gate.wait()
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                try:
                    runner(frame)
                    latencies[i].append((time.perf_counter() - t0) * 1000)
                except Exception as exc:  # counted, the run goes on
                    errors[i].append(str(exc)[:200])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600  # set properly once everyone is warm
    start_gate.wait()
    t0 = time.perf_counter()
    stop_at[0] = t0 + duration
    for t in threads:
        t.join(duration + 120)
    wall = time.perf_counter() - t0
    lat = np.array([x for per in latencies for x in per])
    errs = [e for per in errors for e in per]
    return {
        "requests": int(lat.size),
        "errors": len(errs),
        "error_examples": errs[:3],
        "seconds": round(wall, 2),
        "throughput_fps": round(lat.size / wall, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "p90_ms": round(float(np.percentile(lat, 90)), 1) if lat.size else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if lat.size else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", help="model to serve (.onnx/.engine); not with --url")
    ap.add_argument("--url", help="an already running server's model, e.g. http://127.0.0.1:8000/hdm")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    ap.add_argument("--size", default="160x120", help="frame WIDTHxHEIGHT")
    ap.add_argument("--protocol", choices=["http", "grpc"], default="http")
    ap.add_argument("--max-batch-size", type=int, default=8)
    ap.add_argument("--queue-delay-us", type=int, default=2000)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per instance")
    ap.add_argument("--json", type=Path, help="write the result here")
    args = ap.parse_args()
    if bool(args.model) == bool(args.url):
        ap.error("give a MODEL to serve or --url, not both")
    frame = bench_frames(parse_size(args.size), 1)

    serve = None
    try:
        if args.url:
            url = args.url
            http = url.split("/", 3)[:3]
            http_base = "/".join(http).replace("grpc://", "http://")
            model = url.rstrip("/").split("/")[3]
        else:
            folder = Path(tempfile.mkdtemp(prefix="hdm-deploy-load-"))
            ports = [free_port() for _ in range(3)]
            cmd = [
                sys.executable, "-m", "hdm_deploy.cli", "serve", args.model,
                "--http-port", str(ports[0]), "--grpc-port", str(ports[1]), "--metrics-port", str(ports[2]),
                "--max-batch-size", str(args.max_batch_size), "--queue-delay-us", str(args.queue_delay_us),
                "--instances", str(args.instances), "--ready-file", str(folder / "ready.json"),
            ] + (["--threads", str(args.threads)] if args.threads else [])  # fmt: skip
            serve = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 180
            while not (folder / "ready.json").exists():
                if serve.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("hdm-deploy serve did not become ready")
                time.sleep(0.2)
            urls = json.loads((folder / "ready.json").read_text())
            with urllib.request.urlopen(urls["http"] + "/v2/repository/index", data=b"{}", timeout=10) as r:
                model = json.loads(r.read())[0]["name"]
            http_base = urls["http"]
            url = f"{urls[args.protocol]}/{model}"
        root_pid = serve.pid if serve else None
        before = _stats(http_base, model)
        with load_runner(url) as r:  # one request so the model is warm before memory is read
            r(frame)
        rss_before = tree_rss_mib(root_pid) if root_pid else (None, {})
        result = run_clients(url, frame, args.clients, args.duration)
        rss_after = tree_rss_mib(root_pid) if root_pid else (None, {})
        after = _stats(http_base, model)
        batches = {
            k: v - before["batches"].get(k, 0)
            for k, v in after["batches"].items()
            if v - before["batches"].get(k, 0)
        }
        result.update(
            url=url,
            clients=args.clients,
            size=args.size,
            server_batches=dict(sorted(batches.items())),
            server_executions=after["executions"] - before["executions"],
            server_rss_mib_before=round(rss_before[0], 1) if rss_before[0] is not None else None,
            server_rss_mib_after=round(rss_after[0], 1) if rss_after[0] is not None else None,
            server_rss_by_process_after={k: round(v, 1) for k, v in rss_after[1].items()},
            machine=f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs",
        )
    finally:
        if serve is not None and serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            serve.wait(60)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
