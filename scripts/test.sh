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
  # The default scenario runs alone: its recovery figures want the machine to itself. The
  # others have no tight timing limits and mostly wait on their hosts: they run at the same
  # time, each into a log shown when it ends.
  rest=()
  for scenario in "${scenarios[@]}"; do
    if [[ $scenario == default ]]; then
      step "molecule test -s default"
      timed default
    else
      rest+=("$scenario")
    fi
  done
  if ((${#rest[@]})); then
    mkdir -p .cache
    pids=()
    for scenario in "${rest[@]}"; do
      step "molecule test -s $scenario (in parallel; its log follows when it ends)"
      timed "$scenario" >".cache/molecule-$scenario.log" 2>&1 &
      pids+=($!)
    done
    failed=0
    for i in "${!rest[@]}"; do
      wait "${pids[$i]}" || failed=$((failed + 1))
      step "log of ${rest[$i]}"
      cat ".cache/molecule-${rest[$i]}.log"
    done
    echo "parallel part: $((${#rest[@]} - failed)) passed, $failed failed"
    ((failed == 0))
  fi
fi
