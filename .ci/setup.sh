#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those missing.
# Idempotent and quiet; uses sudo when not root. Never downloads anything
# outside the package manager.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libeigen3-dev
  libopenblas-openmp-dev   # OpenMP flavour: no thread pool at load time, safe to call from many threads
  libboost-thread-dev
  libprotobuf-dev protobuf-compiler
  libgflags-dev libgoogle-glog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libxxhash-dev
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev nlohmann-json3-dev   # the server (httplib is built with TLS, zlib, brotli)
  libpcre2-dev libutf8proc-dev   # tokenizer: pre-tokenizer regex, NFC
  clang libclang-rt-14-dev   # make fuzz-smoke: clang-14 with libFuzzer and the sanitizer runtimes
  libopenmpi-dev openmpi-bin   # data parallelism over MPI (optional at configure time)
  gnuplot-nox   # plot_metrics and the demo's --plot
  python3   # examples/reward_server.py, the reference reward service the tests run
  prometheus   # promtool, to check the rollout server's /metrics (Debian ships it with the Prometheus daemon)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq >/dev/null
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Only promtool is wanted from the prometheus package: where systemd started
# its daemon on install, stop it and keep it from starting at boot.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  "${sudo_cmd[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
