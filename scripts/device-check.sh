#!/usr/bin/env bash
# Checks a GPU machine with the standalone worker bundle only (no dev tree, no network, no npm):
#   1. `selftest --backend webgpu` (kernels and pinned digests),
#   2. `train --backend webgpu --json` on the specs of scripts/device-check/, whose results the CPU
#      reference made on the development machine (src/worker/bundle/device-specs.ts), compared field
#      by field (taskId, weightsHash, valCorrect, digest),
#   3. `bench engine --no-browser`.
# Everything goes to $OUT (default ./device-check-out); a summary is printed at the end.
# For a quick run on a machine without a GPU: DEVICE_CHECK_ONLY=small (specs whose name matches)
# and DEVICE_CHECK_BENCH_ARGS='--steps 10 --sizes 256'.
#
# Input, relative to the repository root (make it with `npm run build:worker -- --pack`):
#   dist/device/cambrian-worker.tar.xz   the bundle (or an unpacked dist/worker/)
#   dist/device/node.xz                  a Node binary, used when the machine has no Node ≥ 20
# Vulkan: the loader (libvulkan.so.1) is taken from the system, else from the bundle's lib/;
# NVIDIA's ICD is found under /usr/local/nvidia, /etc/vulkan or /usr/share/vulkan unless
# VK_DRIVER_FILES / VK_ICD_FILENAMES is already set.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FIXTURE="$ROOT/scripts/device-check"
OUT="${OUT:-$ROOT/device-check-out}"
WORK="${TMPDIR:-/tmp}/cambrian-device-check"
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/device-check.log") 2>&1
say() { printf '== %s\n' "$*"; }

unxz_to() { # unxz_to FILE.xz: decompressed bytes on stdout (xz, else Python's lzma)
  if command -v xz >/dev/null; then xz -dc "$1"
  else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"
  fi
}

# --- the bundle ---
if [ -f "$ROOT/dist/device/cambrian-worker.tar.xz" ]; then
  rm -rf "$WORK/worker" && unxz_to "$ROOT/dist/device/cambrian-worker.tar.xz" | tar -x -C "$WORK" || exit 1
  BUNDLE_DIR="$WORK/worker"
elif [ -f "$ROOT/dist/worker/cambrian.mjs" ]; then
  BUNDLE_DIR="$ROOT/dist/worker"
else
  echo "no bundle: run 'npm run build:worker -- --pack' and carry dist/device" && exit 1
fi
BUNDLE="$BUNDLE_DIR/cambrian.mjs"

# --- Node: the machine's if ≥ 20, else the carried binary ---
NODE="$(command -v node || true)"
if [ -z "$NODE" ] || [ "$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then
  [ -f "$ROOT/dist/device/node.xz" ] || { echo "no Node ≥ 20 here and no dist/device/node.xz"; exit 1; }
  unxz_to "$ROOT/dist/device/node.xz" > "$WORK/node" && chmod +x "$WORK/node" || exit 1
  NODE="$WORK/node"
fi

# --- Vulkan loader and driver ---
loader_dir=""
for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/lib /usr/local/nvidia/lib64; do
  [ -e "$d/libvulkan.so.1" ] && loader_dir="$d" && break
done
if [ -z "$loader_dir" ]; then
  found="$(ldconfig -p 2>/dev/null | awk '/libvulkan\.so\.1 /{print $NF; exit}')"
  [ -z "$found" ] && found="$(find / -xdev -name libvulkan.so.1 -not -path "$WORK/*" 2>/dev/null | head -n1)"
  if [ -n "$found" ]; then loader_dir="$(dirname "$found")"; else loader_dir="$BUNDLE_DIR/lib"; fi
fi
export LD_LIBRARY_PATH="$loader_dir:/usr/local/nvidia/lib64:/usr/local/nvidia/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/share/vulkan/icd.d/nvidia_icd.json; do
    # VK_DRIVER_FILES for loaders ≥ 1.3.207, VK_ICD_FILENAMES for older ones.
    [ -f "$icd" ] && export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd" && break
  done
fi
{
  echo "node: $NODE $("$NODE" --version)"
  echo "bundle: $BUNDLE"
  echo "vulkan loader dir: $loader_dir"
  echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  [ -n "${VK_DRIVER_FILES:-}" ] && cat "$VK_DRIVER_FILES"
  command -v nvidia-smi >/dev/null && nvidia-smi -L
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# --- 1. self-test on WebGPU ---
say "selftest --backend webgpu"
timeout 300 "$NODE" "$BUNDLE" selftest --backend webgpu --json > "$OUT/selftest.json" 2> "$OUT/selftest.log"
selftest_rc=$?
adapter="$("$NODE" -e 'const r=require(process.argv[1]); const a=r.adapter||{}; console.log([a.vendor,a.architecture,a.description].filter(Boolean).join(" / ") + (a.isSoftware ? " (SOFTWARE)" : ""))' "$OUT/selftest.json" 2>/dev/null || echo "unknown (see selftest.log)")"
echo "adapter: $adapter; selftest exit $selftest_rc"

# --- 2. digests against the CPU reference ---
say "train --backend webgpu on the specs of scripts/device-check/"
"$NODE" "$FIXTURE/compare.mjs" "$BUNDLE" "$OUT"
digests_rc=$?

# --- 3. engine benchmark ---
say "bench engine --no-browser"
# shellcheck disable=SC2086 # word splitting of the options is intended
timeout 400 "$NODE" "$BUNDLE" bench engine --no-browser ${DEVICE_CHECK_BENCH_ARGS:---sizes 256,1024,2048,4096} \
  --out "$OUT/engine.json" > "$OUT/bench-engine.txt" 2>&1
bench_rc=$?
grep -v -e '^Warning: vkCreateInstance' -e 'CheckVkSuccessImpl' "$OUT/bench-engine.txt"

say "summary"
{
  echo "adapter:  $adapter"
  echo "selftest: $([ $selftest_rc -eq 0 ] && echo passed || echo "FAILED (exit $selftest_rc)")"
  echo "digests:  $("$NODE" -e 'const r=require(process.argv[1]); console.log(`${r.filter((x)=>x.status==="identical").length}/${r.length} identical to the CPU reference`)' "$OUT/digests.json" 2>/dev/null || echo 'none (see device-check.log)')"
  echo "bench:    $([ $bench_rc -eq 0 ] && echo 'ran, weights = CPU' || echo "exit $bench_rc")"
} | tee "$OUT/summary.txt"
[ $selftest_rc -eq 0 ] && [ $digests_rc -eq 0 ] && [ $bench_rc -eq 0 ]
