#!/usr/bin/env bash
# GPU acceptance in one command (thin wrapper; the work is in scripts/gpu_acceptance.py):
#   scripts/gpu_acceptance.sh [--out DIR] [--only env,plugin,dcp,ort,trt] [--dry-run] [--sizes 640x480,...]
# Writes DIR/gpu_acceptance.json and DIR/gpu_acceptance.md (default DIR: out/gpu-acceptance).
# Exit status 1 when a required step failed. PYTHON picks the interpreter (default: python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
# A source checkout works without installing: hdm_deploy is imported from src/ when it is not installed.
if ! "${PYTHON:-python3}" -c 'import hdm_deploy' 2>/dev/null; then
    export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
fi
exec "${PYTHON:-python3}" scripts/gpu_acceptance.py "$@"
