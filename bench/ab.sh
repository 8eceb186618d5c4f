#!/usr/bin/env bash
# A/B of a lever on the lab (sudo scripts/lab.sh up): a site.yml run that changes nothing, and
# start.yml from nothing running to every lab engine registered, with two copies of this
# repository (e.g. `git worktree add /tmp/before COMMIT`), run in turn, ROUNDS times each.
# Usage (as root): bench/ab.sh BEFORE_TREE AFTER_TREE [ROUNDS]
set -euo pipefail
before=$(realpath "$1") after=$(realpath "$2") rounds=${3:-2}
here=$(realpath "$(dirname "$0")/..")
export PATH="$here/.venv/bin:$PATH"
for round in $(seq "$rounds"); do
  for tree in "$before" "$after"; do
    log=$(mktemp)
    start=$(date +%s%N)
    (cd "$tree" && ANSIBLE_CONFIG="$tree/ansible.cfg" ansible-playbook -i lab/inventory site.yml >"$log")
    seconds=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
    changed=$(grep -cE ' changed=[1-9]' "$log" || true)
    rm -f "$log"
    echo "warm site.yml  $tree  round $round: $seconds s ($changed hosts changed something)"
    startup=$(cd "$here" && ANSIBLE_CONFIG="$tree/ansible.cfg" python -c "
import sys; sys.path.insert(0, 'bench'); import bench
bench.lab_stop()
print(round(bench.timed_startup([['ansible-playbook', '-i', '$tree/lab/inventory', '$tree/start.yml']]), 1))")
    echo "start.yml      $tree  round $round: $startup s to all engines registered"
  done
done
