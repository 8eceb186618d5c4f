#!/usr/bin/env bash
# The project's tests: linters, the Python tests, and every molecule scenario on real
# systemd hosts (podman containers). Run scripts/setup-dev.sh once before.
# Usage: scripts/test.sh [lint|unit|molecule [SCENARIO...]]   (default: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
what="${1:-all}"
shift || true

step() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

lint() {
  step "yamllint"; yamllint --strict .
  step "ansible-lint (production profile)"; ansible-lint --offline
  step "ruff"; ruff check . && ruff format --check .
  step "mypy"; mypy
}
unit() {
  step "pytest"; python -m pytest
}

if [[ $what == lint ]]; then lint; fi
if [[ $what == unit ]]; then unit; fi
if [[ $what == all ]]; then
  # pytest runs alone too: its real controllers time out when it shares the 2 cores with
  # the scenarios (measured: "Result not ready" at a load of 5).
  lint
  unit
fi

if [[ $what == all || $what == molecule ]]; then
  scenarios=("$@")
  if ((${#scenarios[@]} == 0)); then
    mapfile -t scenarios < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
  fi
  timed() {
    local start=$SECONDS
    molecule test -s "$1" && echo "molecule scenario $1 passed in $((SECONDS - start)) s"
  }
  failed_at() {  # a failed scenario's failing tasks again, in short, from its log
    step "$1 FAILED at"
    # Each failed task as its header, its result (which assertion) and Ansible's error (the
    # message), the last few: CI keeps only some 40 lines of the end.
    awk '/^TASK \[/ { task = $0 } /^(fatal|failed): / { print task; print substr($0, 1, 600) }
         /^\[ERROR\]: / { print substr($0, 1, 600) }' ".cache/molecule-$1.log" | tail -n 18
  }
  mkdir -p .cache
  # The default scenario runs alone: its recovery figures want the machine to itself. The
  # others have no tight timing limits and mostly wait on their hosts: they run at the same
  # time, each into a log shown when it ends.
  rest=()
  for scenario in "${scenarios[@]}"; do
    if [[ $scenario == default ]]; then
      step "molecule test -s default"
      if ! timed default 2>&1 | tee .cache/molecule-default.log; then
        failed_at default
        exit 1
      fi
    else
      rest+=("$scenario")
    fi
  done
  if ((${#rest[@]})); then
    pids=()
    for scenario in "${rest[@]}"; do
      step "molecule test -s $scenario (in parallel; its log follows when it ends)"
      timed "$scenario" >".cache/molecule-$scenario.log" 2>&1 &
      pids+=($!)
    done
    # Logs of passed scenarios first, failed ones last and then their failing tasks again in
    # short: a CI that keeps only the end of the output still says what failed and why.
    failed=()
    for i in "${!rest[@]}"; do
      if wait "${pids[$i]}"; then
        step "log of ${rest[$i]} (passed)"
        cat ".cache/molecule-${rest[$i]}.log"
      else
        failed+=("${rest[$i]}")
      fi
    done
    for scenario in "${failed[@]}"; do
      step "log of $scenario (FAILED)"
      cat ".cache/molecule-$scenario.log"
    done
    for scenario in "${failed[@]}"; do failed_at "$scenario"; done
    echo "parallel part: $((${#rest[@]} - ${#failed[@]})) passed, ${#failed[@]} failed: ${failed[*]:-none}"
    ((${#failed[@]} == 0))
  fi
fi
