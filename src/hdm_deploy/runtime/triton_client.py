"""A runner for a model served by Triton Inference Server (torch-free; ``tritonclient`` imported lazily).

``load_runner("http://127.0.0.1:8000/hdm")`` (or ``grpc://127.0.0.1:8001/hdm``, optionally with a
version: ``…/hdm/2``) returns a :class:`TritonClientRunner`, so ``infer``, ``parity`` and ``bench``
take a server URL wherever they take a model file; ``parity http://…/hdm -r model.golden.npz``
checks a served model against its golden bundle. The frame contract (smallest side, largest frame)
is read from the model configuration that ``triton-repo`` wrote, and frames are checked before they
are sent.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from hdm_deploy.core.contracts import INPUT_NAME, OUTPUT_NAME
from hdm_deploy.core.errors import EnvironmentProblem, HdmDeployError, InputImageError, first_line
from hdm_deploy.core.runner import Prediction, Runner, check_max_pixels, server_url

CLIENT_HINT = "pip install 'tritonclient[http,grpc]' (or hdm-deploy[serve])"


def parse_url(url: str) -> tuple[str, str, str, str]:
    """``(protocol, host:port, model, version)`` of ``http[s]://host:port/model[/version]`` or
    ``grpc://host:port/model[/version]`` (version ``""``: the server's policy picks)."""
    norm = server_url(url)
    if norm is None:
        raise HdmDeployError(
            f"not a server URL: {url}", "use http://host:port/model or grpc://host:port/model"
        )
    scheme, rest = norm.split("://", 1)
    parts = [p for p in rest.split("/") if p]
    if len(parts) < 2 or len(parts) > 3 or (len(parts) == 3 and not parts[2].isdigit()):
        raise HdmDeployError(
            f"a server URL names host:port and a model: {url}",
            f"e.g. {scheme}://127.0.0.1:{8001 if scheme == 'grpc' else 8000}/MODEL (or …/MODEL/2 for version 2)",
        )
    return scheme, parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def _client_module(protocol: str) -> Any:
    try:
        if protocol == "grpc":
            import tritonclient.grpc as module
        else:
            import tritonclient.http as module
    except ImportError as exc:
        raise EnvironmentProblem(f"a server URL needs tritonclient ({first_line(exc)})", CLIENT_HINT) from exc
    return module


class TritonClientRunner(Runner):
    """Send frames to a served model (HTTP or gRPC); the :class:`Runner` interface on the client side."""

    backend = "triton"

    def __init__(self, url: str, *, timeout: float = 60.0, **_: Any):
        super().__init__(None)
        self.protocol, self.address, self.model_name, self.version = parse_url(url)
        self.url = server_url(url) or url
        self._mod = _client_module(self.protocol)
        self.timeout = timeout
        ssl = self.protocol == "https"
        try:
            if self.protocol == "grpc":
                self.client = self._mod.InferenceServerClient(self.address)
            else:
                self.client = self._mod.InferenceServerClient(
                    self.address, ssl=ssl, network_timeout=timeout, connection_timeout=timeout
                )
            live = self.client.is_server_live()
        except Exception as exc:
            raise EnvironmentProblem(
                f"cannot reach the server at {self.url}: {first_line(exc)}",
                "start it with `hdm-deploy serve MODEL` (or check host and port)",
            ) from exc
        if not live:
            raise EnvironmentProblem(f"the server at {self.url} is not live", "wait for it to start")
        try:
            ready = self.client.is_model_ready(self.model_name, self.version)
        except Exception as exc:
            raise EnvironmentProblem(f"{self.url}: {first_line(exc)}", "check the server") from exc
        if not ready:
            raise HdmDeployError(
                f"model {self.model_name!r}{' version ' + self.version if self.version else ''} is not "
                f"ready on {self.address}",
                "list the served models: curl -X POST http://HOST:PORT/v2/repository/index",
            )
        config = self._config()
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        self.family = params.get("family") or None
        self.min_side = int(params.get("min_side") or 1)
        self.pad_multiple = int(params.get("pad_multiple") or 1)
        self.max_pixels = int(params.get("max_pixels") or 0)
        self.max_batch_size = int(config.get("max_batch_size") or 0)
        self.output_names = [o["name"] for o in config.get("output", [])]
        inputs = config.get("input", [])
        if not inputs or inputs[0].get("name") != INPUT_NAME or inputs[0].get("data_type") != "TYPE_UINT8":
            raise HdmDeployError(
                f"{self.url} does not take uint8 `{INPUT_NAME}` frames",
                "serve the model through `hdm-deploy triton-repo`'s Python or uint8 entries",
            )

    def _config(self) -> dict:
        if self.protocol == "grpc":
            return self.client.get_model_config(self.model_name, self.version, as_json=True)["config"]
        return self.client.get_model_config(self.model_name, self.version)

    def validate(self, frames: Any) -> np.ndarray:
        frames = super().validate(frames)
        check_max_pixels(frames, self.max_pixels, pad_multiple=self.pad_multiple)
        if self.max_batch_size and frames.shape[0] > self.max_batch_size:
            raise InputImageError(
                f"a batch of {frames.shape[0]} frames is larger than the served max_batch_size "
                f"{self.max_batch_size}",
                "send fewer frames per call (--batch)",
            )
        return frames

    def _run(self, frames: np.ndarray) -> Prediction:
        mod = self._mod
        tensor = mod.InferInput(INPUT_NAME, list(frames.shape), "UINT8")
        tensor.set_data_from_numpy(frames)
        outputs = [mod.InferRequestedOutput(n) for n in self.output_names]
        try:
            if self.protocol == "grpc":
                result = self.client.infer(
                    self.model_name, [tensor], self.version, outputs=outputs, client_timeout=self.timeout
                )
            else:
                result = self.client.infer(self.model_name, [tensor], self.version, outputs=outputs)
        except Exception as exc:
            msg = first_line(exc)
            if any(s in msg.lower() for s in ("connect", "unavailable", "timed out", "timeout", "reset")):
                raise EnvironmentProblem(f"{self.url}: {msg}", "check that the server is running") from exc
            raise InputImageError(f"the server refused a {list(frames.shape)} batch: {msg}") from exc
        image = result.as_numpy(OUTPUT_NAME)
        extras = {n: result.as_numpy(n) for n in self.output_names if n != OUTPUT_NAME}
        return Prediction(
            image=np.ascontiguousarray(image), extras={k: v for k, v in extras.items() if v is not None}
        )

    def describe(self) -> dict[str, Any]:
        return {
            "backend": f"triton-{self.protocol}",
            "model": self.url,
            "device": self.address,
            "family": self.family,
        }

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
            self.client = None
