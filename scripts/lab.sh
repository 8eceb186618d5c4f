#!/usr/bin/env bash
# The tutorial's cluster on this machine, in containers with systemd:
#   cl-0 (controller), cl-1 ... cl-4 (8 engines each, sharing /home), and a laptop.
# Usage (as root): scripts/lab.sh up | down | check
#   up     install the tools, start the containers, run site.yml, check the cluster
#   down   remove the containers, their network and the lab's shared /home
#   check  run playbooks/verify.yml against the lab
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
inventory=(-i lab/inventory)

say() { printf '\n>>> %s\n' "$*"; }

case "${1:-}" in
  up)
    say "Preparing this machine: podman, the Python tools in .venv, the Debian 12 image"
    bash scripts/setup-dev.sh
    say "Starting the lab's machines (containers booting systemd): cl-0 ... cl-4, laptop"
    ansible-playbook -i localhost, lab/create.yml -e @lab/platforms.yml
    say "Deploying the cluster: ansible-playbook -i lab/inventory site.yml"
    ansible-playbook "${inventory[@]}" site.yml
    say "Checking the cluster as an epyc user on cl-0"
    ansible-playbook "${inventory[@]}" playbooks/verify.yml
    say "The lab is up. On cl-0, as the cluster account:"
    echo "  podman exec -it cl-0 sudo -iu yourself /opt/ipyparallel/bin/python"
    echo "  >>> import epyc; lab = epyc.ClusterLab(profile='cluster'); lab.numberOfEngines()"
    echo "  32"
    echo "Tear it down with: scripts/lab.sh down"
    ;;
  down)
    say "Removing the lab's containers, network and shared /home"
    ansible-playbook -i localhost, lab/destroy.yml -e @lab/platforms.yml
    ;;
  check)
    ansible-playbook "${inventory[@]}" playbooks/verify.yml
    ;;
  *)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
