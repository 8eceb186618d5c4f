# The few verbs people expect; each is one script (see README).
.PHONY: setup lab lab-down lab-check test lint unit molecule bench

setup:  ## tools, podman and the test image (Debian/Ubuntu, root or sudo)
	scripts/setup-dev.sh
lab:  ## the tutorial's cluster in containers: cl-0..cl-4 and a laptop
	scripts/lab.sh up
lab-down:  ## remove the lab
	scripts/lab.sh down
lab-check:  ## check the lab from cl-0 and the laptop
	scripts/lab.sh check
test:  ## lint, unit tests and every molecule scenario (what CI runs)
	scripts/test.sh
lint:  ## yamllint, ansible-lint, ruff, mypy
	scripts/test.sh lint
unit:  ## pytest
	scripts/test.sh unit
molecule:  ## every molecule scenario
	scripts/test.sh molecule
bench:  ## benchmark figures on the lab (see docs/benchmarks.md); the lab must be up
	.venv/bin/python bench/bench.py --out docs/bench
