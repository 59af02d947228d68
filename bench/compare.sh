#!/usr/bin/env bash
# bench/compare.sh — hone vs PyTorch on the CPU, side by side in one session.
#
# For each case it runs `hone bench` (once per GEMM backend in GEMMS) and then
# ../shared/bench/torch_peer.py (fp32 and bf16 autocast) right after, so both
# sides see the same machine state, and prints a table of tokens/s, peak RSS
# and the ratio hone-best / torch-best. These VMs are noisy: only figures
# taken side by side are comparable.
#
#   bench/compare.sh
#   GEMMS="dnnl" CASES="train:lora:4x256" ITERS=3 bench/compare.sh
#   MODEL=gpt2 bench/compare.sh           # GPT-2-124M instead of Llama-110M
#
# Needs Debian's python3-torch (apt-get install -y python3-torch), run with
# /usr/bin/python3. Raw JSON lines are kept in $OUTDIR (default
# bench/results/compare-<time>/).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
hone=${HONE_BIN:-}
if [ -z "$hone" ]; then
  for c in "$here/build/hone" "$here/build-bench/hone"; do
    [ -x "$c" ] && "$c" bench --help >/dev/null 2>&1 && { hone=$c; break; }
  done
fi
[ -n "$hone" ] && [ -x "$hone" ] || { echo "compare.sh: no hone binary (set HONE_BIN)" >&2; exit 2; }
peer=${PEER:-$here/../shared/bench/torch_peer.py}
py=${PYTHON:-/usr/bin/python3}
$py -c "import torch" 2>/dev/null || { echo "compare.sh: $py has no torch (apt-get install -y python3-torch)" >&2; exit 2; }
GEMMS=${GEMMS:-"openblas dnnl dnnl_bf16"}
CASES=${CASES:-"train:lora:4x256 train:full:4x256 prefill:1x512 decode:128"}
DTYPES=${DTYPES:-"fp32 bf16"}
ITERS=${ITERS:-3}
MODEL=${MODEL:-llama}   # the peer's --model: llama (hone llama-110m) or gpt2 (hone gpt2-124m)
case $MODEL in
  llama) hone_model=llama-110m ;;
  gpt2) hone_model=gpt2-124m ;;
  *) echo "compare.sh: MODEL is llama or gpt2" >&2; exit 2 ;;
esac
WARMUP=${WARMUP:-1}
THREADS=${THREADS:-$(nproc)}
OUTDIR=${OUTDIR:-$here/bench/results/compare-$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$OUTDIR"
export OMP_WAIT_POLICY=PASSIVE
machine="$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs"
echo "# $machine; hone $hone; torch $($py -c 'import torch; print(torch.__version__)')" | tee "$OUTDIR/machine.txt" >&2

for c in $CASES; do
  IFS=: read -r kind a b <<<"$c"
  for g in $GEMMS; do
    echo "== hone $c gemm=$g" >&2
    "$hone" bench --model "$hone_model" --gemm "$g" --cases "$c" --iters "$ITERS" --warmup "$WARMUP" \
      >>"$OUTDIR/hone.jsonl" 2>>"$OUTDIR/hone.log" || echo "   (failed, see $OUTDIR/hone.log)" >&2
    tail -n 1 "$OUTDIR/hone.jsonl" >&2
  done
  case $kind in
    train) args=(--bench train --mode "$a" --batch "${b%x*}" --seq "${b#*x}") ;;
    prefill) args=(--bench prefill --batch "${a%x*}" --seq "${a#*x}") ;;
    decode) args=(--bench decode --batch 1 --decode-tokens "$a" --prompt-len 1) ;;
    *) echo "compare.sh: unknown case $c" >&2; continue ;;
  esac
  for d in $DTYPES; do
    echo "== torch $c $d" >&2
    /usr/bin/time -f "%M" -o "$OUTDIR/rss.tmp" \
      "$py" "$peer" --model "$MODEL" "${args[@]}" --dtype "$d" --threads "$THREADS" \
      --iters "$ITERS" --warmup 2 >"$OUTDIR/torch.tmp" 2>>"$OUTDIR/torch.log" || true
    line=$(grep '^JSON ' "$OUTDIR/torch.tmp" | sed 's/^JSON //') || true
    if [ -n "$line" ]; then
      rss=$(tail -n 1 "$OUTDIR/rss.tmp")
      echo "$line" | $py -c "import json,sys; r=json.load(sys.stdin); r['case']='$c'; r['peak_rss_mb']=$rss/1024; print(json.dumps(r))" \
        >>"$OUTDIR/torch.jsonl"
      tail -n 1 "$OUTDIR/torch.jsonl" | cut -c1-200 >&2
    else
      echo "   (torch failed, see $OUTDIR/torch.log)" >&2
    fi
  done
done
rm -f "$OUTDIR/rss.tmp" "$OUTDIR/torch.tmp"

$py - "$OUTDIR" "$machine" <<'PY'
import json, sys, os
out, machine = sys.argv[1], sys.argv[2]
def load(p):
    f = os.path.join(out, p)
    return [json.loads(l) for l in open(f)] if os.path.exists(f) else []
hone, torch = load('hone.jsonl'), load('torch.jsonl')
def hone_case(r):
    if r['bench'] == 'train_step': return 'train:%s:%dx%d' % (r['method'], r['batch'], r['seq'])
    if r['bench'] == 'prefill': return 'prefill:%dx%d' % (r['batch'], r['seq'])
    if r['bench'] == 'decode': return 'decode:%d' % r['tokens']
cases = []
for r in hone + torch:
    c = r.get('case') or hone_case(r)
    if c and c not in cases: cases.append(c)
gemms = sorted({r['gemm'] for r in hone}, key=lambda g: ['ref', 'openblas', 'dnnl', 'dnnl_bf16'].index(g))
dts = [d for d in ('fp32', 'bf16') if any(r['dtype'] == d for r in torch)]
hdr = ['case'] + ['hone %s' % g for g in gemms] + ['torch %s' % d for d in dts] + \
      ['hone best / torch best', 'peak RSS MB hone / torch']
print('\n' + machine + ', ' + (hone[0]['model'] if hone else '') + ', tokens/s (median), OMP_WAIT_POLICY=PASSIVE\n')
print('| ' + ' | '.join(hdr) + ' |')
print('|' + '---|' * len(hdr))
for c in cases:
    hs = {r['gemm']: r for r in hone if hone_case(r) == c}
    ts = {r['dtype']: r for r in torch if r['case'] == c}
    row = [c] + ['%.1f' % hs[g]['tokens_per_s'] if g in hs else '-' for g in gemms]
    row += ['%.1f' % ts[d]['tok_s_median'] if d in ts else '-' for d in dts]
    hb = max((r['tokens_per_s'] for r in hs.values()), default=0)
    tb = max((r['tok_s_median'] for r in ts.values()), default=0)
    row.append('%.2f' % (hb / tb) if hb and tb else '-')
    hr = min((r['peak_rss_mb'] for r in hs.values()), default=0)
    tr = min((r['peak_rss_mb'] for r in ts.values()), default=0)
    row.append('%.0f / %.0f' % (hr, tr))
    print('| ' + ' | '.join(row) + ' |')
PY
