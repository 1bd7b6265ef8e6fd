# Ferry — developer entry points. Each target is a thin wrapper: the logic
# lives in scripts/ so CI (.ci/run) and people run exactly the same thing.
SHELL := /bin/bash

.DEFAULT_GOAL := help
.PHONY: help test demo build release bench clean

help: ## list the targets
	@echo "Ferry make targets:"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z]+):.*## /  \1\t/' | expand -t 12

test: ## install deps, build, start test servers, run every test
	scripts/test.sh

demo: ## build and run examples/quickstart.yaml, show its output
	scripts/demo.sh

build: ## debug build
	swift build

release: ## release build
	swift build -c release

bench: ## runtime benchmark (scripts/bench-runtime.sh)
	@test -x scripts/bench-runtime.sh || { echo "bench: scripts/bench-runtime.sh missing or not executable" >&2; exit 1; }
	scripts/bench-runtime.sh

clean: ## stop test servers, remove build output and demo output (keeps .venv)
	scripts/test-servers.sh stop
	rm -rf .build .ferry-test examples/out
