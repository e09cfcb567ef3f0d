"""``hdm-deploy triton-repo`` and ``hdm-deploy serve`` (Triton Inference Server; docs/serving.md)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from hdm_deploy.cli.commands import _Command, _existing_model, app, console, out
from hdm_deploy.core.errors import HdmDeployError
from hdm_deploy.core.fs import atomic_write_text
from hdm_deploy.serving.repository import BACKENDS, INSTANCE_KINDS, RepositoryOptions, write_repository
from hdm_deploy.serving.server import (
    TritonServer,
    bundled_backends,
    check_environment,
    check_model_runtime,
    model_backends,
)

NameOption = Annotated[
    str | None, typer.Option("--name", help="Triton model name (default: the family's name, e.g. hdm).")
]
MaxBatchOption = Annotated[
    int, typer.Option("--max-batch-size", min=1, help="Largest batch Triton forms (frames of one size).")
]
InstancesOption = Annotated[
    int, typer.Option("--instances", min=1, help="Model instances (instance_group count).")
]
InstanceKindOption = Annotated[
    str, typer.Option("--instance-kind", help=f"Where instances run: {', '.join(INSTANCE_KINDS)}.")
]
QueueDelayOption = Annotated[
    int,
    typer.Option(
        "--queue-delay-us",
        min=0,
        help="Dynamic batching: how long a request may wait for same-shape requests (µs).",
    ),
]
NoBatchingOption = Annotated[
    bool, typer.Option("--no-dynamic-batching", help="Serve each request on its own.", metavar="")
]
PreferredOption = Annotated[
    list[int] | None,
    typer.Option("--preferred-batch-size", help="Dynamic batching's preferred batch size (repeatable)."),
]
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", min=1, help="ONNX Runtime threads per Python-backend instance.")
]
PluginOption = Annotated[
    Path | None,
    typer.Option("--plugin-lib", help="TensorRT plugin library for engines of plugin-flavour graphs."),
]


def _options(**given) -> RepositoryOptions:
    """The command line's repository options (names as the command's parameters)."""
    return RepositoryOptions(
        name=given["name"],
        backends=given.get("backend") or None,
        first_version=given.get("first_version", 1),
        max_batch_size=given["max_batch_size"],
        instance_kind=given["instance_kind"].lower(),
        instance_count=given["instances"],
        dynamic_batching=not given["no_dynamic_batching"],
        max_queue_delay_us=given["queue_delay_us"],
        preferred_batch_sizes=tuple(given["preferred_batch_size"] or ()),
        threads=given["threads"],
        plugin_lib=given.get("plugin_lib"),
    )


@app.command("triton-repo", cls=_Command)
def triton_repo_cmd(
    models: Annotated[
        list[Path],
        typer.Argument(help="Exported .onnx graphs (one version each) and/or TensorRT .engine files."),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Repository folder to write.")],
    name: NameOption = None,
    backend: Annotated[
        list[str] | None,
        typer.Option(
            "--backend",
            help=f"Entries to write (repeatable): {', '.join(BACKENDS)} (default: all that apply).",
        ),
    ] = None,
    first_version: Annotated[
        int, typer.Option("--first-version", min=1, help="Version of the first model.")
    ] = 1,
    max_batch_size: MaxBatchOption = 8,
    instance_kind: InstanceKindOption = "cpu",
    instances: InstancesOption = 1,
    no_dynamic_batching: NoBatchingOption = False,
    queue_delay_us: QueueDelayOption = 2000,
    preferred_batch_size: PreferredOption = None,
    threads: ThreadsOption = None,
    plugin_lib: PluginOption = None,
) -> None:
    """Write a Triton Inference Server model repository (Python backend around our runner, onnxruntime, tensorrt_plan)."""
    for m in models:
        _existing_model(m)
    repo = write_repository(
        models,
        output,
        _options(**locals()),
    )
    for model, versions in repo.models.items():
        out.print(
            f"[bold green]wrote[/] {output}/{model} (versions {', '.join(map(str, versions))})",
            highlight=False,
        )
    for note in repo.notes:
        console.print(f"[dim]{note}[/]", highlight=False)
    if repo.server_args:
        out.print("tritonserver needs: " + " ".join(repo.server_args), highlight=False)


@app.command("serve", cls=_Command)
def serve_cmd(
    models: Annotated[
        list[Path],
        typer.Argument(
            help="Exported .onnx graphs / .engine files (one version each), or a repository folder."
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    http_port: Annotated[
        int, typer.Option("--http-port", min=0, max=65535, help="HTTP port (0: any free).")
    ] = 8000,
    grpc_port: Annotated[
        int, typer.Option("--grpc-port", min=0, max=65535, help="gRPC port (0: any free).")
    ] = 8001,
    metrics_port: Annotated[
        int, typer.Option("--metrics-port", min=0, max=65535, help="Prometheus metrics port (0: any free).")
    ] = 8002,
    name: NameOption = None,
    max_batch_size: MaxBatchOption = 8,
    instances: InstancesOption = 1,
    instance_kind: InstanceKindOption = "cpu",
    no_dynamic_batching: NoBatchingOption = False,
    queue_delay_us: QueueDelayOption = 2000,
    preferred_batch_size: PreferredOption = None,
    threads: ThreadsOption = None,
    allow_unavailable: Annotated[
        bool,
        typer.Option(
            "--allow-unavailable",
            help="Start even when some models cannot load (e.g. onnxruntime/tensorrt entries here).",
            metavar="",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait for readiness.")
    ] = 120.0,
    ready_file: Annotated[
        Path | None,
        typer.Option("--ready-file", help="Write the URLs as JSON here once ready (for scripts)."),
    ] = None,
) -> None:
    """Serve models on the Triton Inference Server bundled by nvidia-pytriton (extra `serve`) until Ctrl-C/SIGTERM."""
    check_environment()  # numpy < 2, the bundled server, python3 beside this interpreter: before any work
    given_repo = len(models) == 1 and models[0].is_dir()
    if not given_repo:
        for m in models:
            _existing_model(m)
    load = None
    check_model_runtime(
        list(models[0].glob("*/*/model.onnx")) if given_repo else list(models)
    )  # the stub would fail to load them
    if given_repo and not allow_unavailable:
        # the bundled server has only the Python backend: serve what it can, say what it leaves out
        backends, available = model_backends(models[0]), bundled_backends()
        load = [m for m, b in backends.items() if b in available]
        for m, b in backends.items():
            if b not in available:
                console.print(
                    f"[yellow]not loaded[/] {m}: backend {b} is not in the bundled tritonserver "
                    "(NGC containers have it; --allow-unavailable tries anyway)",
                    highlight=False,
                    soft_wrap=True,
                )
        if not load:
            raise HdmDeployError(
                f"no model in {models[0]} uses a backend of the bundled tritonserver ({', '.join(sorted(available))})",
                "write a Python-backend entry with `hdm-deploy triton-repo MODEL -o REPO --backend python`",
            )
    with tempfile.TemporaryDirectory(prefix="hdm-deploy-serve-") as workspace:
        if given_repo:
            repo_dir = models[0]
        else:
            repo_dir = Path(workspace) / "repository"
            write_repository(
                models,
                repo_dir,
                _options(**{**locals(), "backend": ["python"]}),
            )
        server = TritonServer(
            repo_dir,
            host=host,
            http_port=http_port,
            grpc_port=grpc_port,
            metrics_port=metrics_port,
            allow_unavailable=allow_unavailable,
            load_models=load,
            workspace=workspace,
        )
        started = time.monotonic()
        try:
            with console.status("starting tritonserver…"):
                server.start(timeout=timeout)
            for entry in server.repository_index():
                state = entry.get("state")
                if not state:  # not loaded (explicit model control): said above
                    continue
                colour = "green" if state == "READY" else "yellow"
                reason = f" ({entry['reason']})" if entry.get("reason") else ""
                console.print(
                    f"[{colour}]{state}[/] {entry['name']} v{entry.get('version', '?')}{reason}",
                    highlight=False,
                    soft_wrap=True,
                )
            out.print(
                f"[bold green]serving[/] in {time.monotonic() - started:.1f} s: {server.http_url} (HTTP) · "
                f"{server.grpc_url} (gRPC) · {server.metrics_url} — Ctrl-C or SIGTERM stops it",
                highlight=False,
                soft_wrap=True,
            )
            if ready_file is not None:
                atomic_write_text(
                    ready_file,
                    json.dumps(
                        {"http": server.http_url, "grpc": server.grpc_url, "metrics": server.metrics_url}
                    ),
                )
            while server.alive():
                time.sleep(0.5)
            raise HdmDeployError(
                f"tritonserver stopped on its own (exit {server.process.returncode}): {server.log_tail(3)}",
                "see the log above; restart with --debug",
            )
        finally:
            started_server = server.process is not None
            code = server.stop()
            if started_server:
                console.print(f"[dim]tritonserver stopped (exit {code})[/]", highlight=False)
