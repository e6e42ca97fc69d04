# gpuops: common commands. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
COLLECTION := collections/ansible_collections/gpuops/platform
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The later ansible-core versions the collection claims (meta/runtime.yml), each
# in .venv/ansible-core-X.Y (scripts/setup.sh step ansible_core); 2.19 is .venv's.
ANSIBLE_CORE_VENVS := $(patsubst requirements-ansible-core-%.txt,$(VENV)/ansible-core-%,$(wildcard requirements-ansible-core-*.txt))

.PHONY: help setup up provision teardown cloud-up cloud-down test test-unit test-integration lint lint-galaxy lint-docs sanity clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

setup: ## Install everything gpuops needs on this machine (idempotent)
	@scripts/setup.sh

up: setup provision ## Set up, then provision the pods on the local cloud

provision: ## Provision pods (local cloud by default) and wait for SSH
	$(BIN)/ansible-playbook playbooks/provision.yml

teardown: ## Destroy the pods and prove none is left
	$(BIN)/ansible-playbook playbooks/teardown.yml

cloud-up: ## Start the local RunPod-compatible cloud
	$(BIN)/python -m localcloud start

cloud-down: ## Stop the local cloud (its pods keep running; see --purge)
	$(BIN)/python -m localcloud stop

test: setup lint sanity test-unit test-integration ## Set up, then run every gate and test
# Under make test (and so in CI) a skipped test fails (conftest.py).
test: export GPUOPS_NO_SKIP = 1

# The collection's unit tests load it with Ansible's own collection loader (its
# tests/unit/conftest.py), so plain pytest runs them; `ansible-test units` does too. One pytest-xdist worker per
# CPU (-n auto): they are CPU-bound.
test-unit: ## Unit tests (no Docker needed); the collection's also on each later ansible-core it claims
	$(BIN)/python -m pytest -m "not integration" -n auto tests/unit $(COLLECTION)/tests/unit
	@set -e; for venv in $(ANSIBLE_CORE_VENVS); do \
		[ -x $$venv/bin/python ] || { echo "$$venv is missing: run make setup"; exit 1; }; \
		echo "== collection unit tests on ansible-core $$($$venv/bin/python -c "import ansible.release; print(ansible.release.__version__)")"; \
		$$venv/bin/python -m pytest -q -m "not integration" $(COLLECTION)/tests/unit; \
	done

# Side by side on INTEGRATION_WORKERS pytest-xdist workers: the tests mostly wait (on pods, SSH, Slurm), and each
# scope (a file, or tests/integration/site, which shares one deployment) runs whole on one worker (conftest.py).
INTEGRATION_WORKERS ?= 2
test-integration: ## Integration tests on the local cloud (Docker, Terraform, SSH), INTEGRATION_WORKERS side by side
	$(BIN)/python -m pytest -m integration --durations=40 -n $(INTEGRATION_WORKERS) --dist loadscope \
		--no-loadscope-reorder tests/integration tests/browser

# Lint without the offline cloud.terraform redirect on the path: .ansible-lint
# mocks the module, so lint judges the playbooks as with the real collection.
lint: lint-docs lint-galaxy ## ansible-lint (production profile), the collection's docs, Galaxy's import checks
	ANSIBLE_COLLECTIONS_PATH=./collections:./.gpuops/collections:~/.ansible/collections:/usr/share/ansible/collections \
		$(BIN)/ansible-lint --profile production

# --validate-collection-refs self: references into this collection are checked. The default
# (dependent) also loads every collection galaxy.yml depends on, and cloud.terraform is only an
# offline redirect without metadata where Galaxy cannot be reached (scripts/setup.sh).
lint-docs: ## The collection's docs: antsibull-docs lint, then the docs site build (sphinx -W)
	cd $(COLLECTION) && PATH=$(CURDIR)/$(BIN):$$PATH ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/collections \
		$(CURDIR)/$(BIN)/antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs self .
	scripts/docs-build.sh

lint-galaxy: ## galaxy-importer on the built collection (what Galaxy checks on upload)
	scripts/galaxy-import.sh

# ansible-test sanity, with no ignore file, on every ansible-core that
# meta/runtime.yml claims: .venv's (2.19) and each .venv/ansible-core-X.Y.
sanity: ## ansible-test sanity on the collection, on each ansible-core it claims
	cd $(COLLECTION) && $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --color no
	@set -e; for venv in $(ANSIBLE_CORE_VENVS); do \
		[ -x $$venv/bin/ansible-test ] || { echo "$$venv is missing: run make setup"; exit 1; }; \
		py=$$($$venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		echo "== ansible-test sanity on ansible-core $$($$venv/bin/python -c "import ansible.release; print(ansible.release.__version__)"), Python $$py"; \
		(cd $(COLLECTION) && $(CURDIR)/$$venv/bin/ansible-test sanity --python $$py --color no); \
	done

clean: ## Remove build and test leftovers (keeps .gpuops state)
	rm -rf $(COLLECTION)/tests/output .pytest_cache
