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

# What the tutorial runs on its laptop, plus a small experiment.
laptop_demo='
import time, epyc
class Where(epyc.Experiment):
    def do(self, params):
        import socket
        return {"host": socket.gethostname(), "square": params["x"] ** 2}
lab = epyc.ClusterLab(profile="shadow")
print("ClusterLab(profile=\"shadow\").numberOfEngines() ->", lab.numberOfEngines())
lab["x"] = range(64)
lab.runExperiment(Where())
while not lab.ready():
    time.sleep(0.5)
hosts = sorted({r[epyc.Experiment.RESULTS]["host"] for r in lab.results()})
print(len(lab.results()), "results of a 64-point epyc experiment, computed on", ", ".join(hosts))
'

case "${1:-}" in
  up)
    say "Preparing this machine: podman, the Python tools in .venv, the Debian 12 image"
    bash scripts/setup-dev.sh
    say "Starting the lab's machines (containers booting systemd): cl-0 ... cl-4, laptop"
    ansible-playbook -i localhost, lab/create.yml -e @lab/platforms.yml
    say "Deploying the cluster: ansible-playbook -i lab/inventory site.yml"
    ansible-playbook "${inventory[@]}" site.yml
    say "Setting up the laptop: ansible-playbook -i lab/inventory shadow.yml -l laptop"
    ansible-playbook "${inventory[@]}" lab/prepare.yml
    ansible-playbook "${inventory[@]}" shadow.yml -l laptop
    say "Checking the cluster as an epyc user on cl-0 and on the laptop"
    ansible-playbook "${inventory[@]}" playbooks/verify.yml
    say "From the laptop, as the researcher, with the shadow profile:"
    # The script goes in on stdin: `sudo -i` would join the lines of a `-c` argument.
    podman exec -i laptop sudo -iu researcher env PYTHONWARNINGS=ignore .venvs/ipyparallel/bin/python - <<<"$laptop_demo"
    say "The lab is up. Use it from the laptop:"
    echo "  podman exec -it laptop sudo -iu researcher .venvs/ipyparallel/bin/python"
    echo "  >>> import epyc; lab = epyc.ClusterLab(profile='shadow'); lab.numberOfEngines()"
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
