#!/usr/bin/env bash
# bench/run.sh — runs `hone bench` with the environment the numbers are meant
# for (OMP_WAIT_POLICY=PASSIVE: libgomp's default spin-then-sleep policy makes
# small parallel regions cost milliseconds on 2-vCPU VMs) and keeps the JSON
# lines. Arguments go to `hone bench` (e.g. --quick, --gemm dnnl, --cases ...).
#
#   bench/run.sh                      # Llama-110M: train full/LoRA, prefill, decode, GEMM
#   bench/run.sh --quick              # tiny model, seconds
#   HONE_BIN=build/hone OUT=r.jsonl bench/run.sh --gemm dnnl --cases train:lora:4x256
#
# JSON lines go to stdout and, if OUT is set, to that file; progress to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
hone=${HONE_BIN:-}
if [ -z "$hone" ]; then
  for c in "$here/build/hone" "$here/build-bench/hone"; do
    [ -x "$c" ] && "$c" bench --help >/dev/null 2>&1 && { hone=$c; break; }
  done
fi
[ -n "$hone" ] && [ -x "$hone" ] || { echo "bench/run.sh: no hone binary (build first or set HONE_BIN)" >&2; exit 2; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, $(date -u +%FT%TZ), $hone" >&2
if [ -n "${OUT:-}" ]; then
  "$hone" bench "$@" | tee -a "$OUT"
else
  "$hone" bench "$@"
fi
