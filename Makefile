# gpuops: common commands. `make help` lists them.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
COLLECTION := collections/ansible_collections/gpuops/platform
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help setup up provision teardown cloud-up cloud-down test test-unit test-integration lint sanity clean

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

test-unit: ## Unit tests (no Docker needed)
	$(BIN)/python -m pytest -m "not integration" tests/unit $(COLLECTION)/tests/unit

test-integration: ## Integration tests on the local cloud (Docker, Terraform, SSH)
	$(BIN)/python -m pytest -m integration tests/integration tests/browser

# Lint without the offline cloud.terraform redirect on the path: .ansible-lint
# mocks the module, so lint judges the playbooks as with the real collection.
lint: ## ansible-lint (production profile), then the collection's docs (antsibull-docs)
	ANSIBLE_COLLECTIONS_PATH=./collections:./.gpuops/collections:~/.ansible/collections:/usr/share/ansible/collections \
		$(BIN)/ansible-lint --profile production
	cd $(COLLECTION) && PATH=$(CURDIR)/$(BIN):$$PATH ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/collections \
		$(CURDIR)/$(BIN)/antsibull-docs lint-collection-docs --plugin-docs .

sanity: ## ansible-test sanity on the collection
	cd $(COLLECTION) && $(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --color no

clean: ## Remove build and test leftovers (keeps .gpuops state)
	rm -rf $(COLLECTION)/tests/output .pytest_cache
