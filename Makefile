# Ferry — developer entry points. Each target is a thin wrapper: the logic
# lives in scripts/ so CI (.ci/run) and people run exactly the same thing.
SHELL := /bin/bash

.DEFAULT_GOAL := help
.PHONY: help test demo shop build release bench clean install uninstall

help: ## list the targets
	@echo "Ferry make targets:"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z]+):.*## /  \1\t/' | expand -t 12

test: ## install deps, build, start test servers, run every test
	scripts/test.sh

SCENARIO ?= quickstart
demo: ## build and run the main job: SCENARIO=quickstart (no server) or SCENARIO=shop (local servers)
	scripts/demo.sh $(SCENARIO)

shop: ## the shop scenario: MongoDB products -> PostgreSQL carts -> MongoDB orders, on local servers
	scripts/demo.sh shop

build: ## debug build
	swift build

release: ## release build
	swift build -c release

bench: ## every benchmark (JSON Lines, PostgreSQL, MongoDB, engine, run isolation, diff), tables to docs/bench/latest.md (scripts/bench-all.sh)
	scripts/bench-all.sh

PREFIX ?= /usr/local
install: ## release build, then install ferry, its plugins, ferry_plugin.h, ferry-plugin.pc and the Swift SDK under PREFIX (default /usr/local)
	PREFIX="$(PREFIX)" scripts/install.sh install

uninstall: ## remove what `make install PREFIX=…` installed there
	PREFIX="$(PREFIX)" scripts/install.sh uninstall

clean: ## stop test servers, remove build output and demo output (keeps .venv)
	scripts/test-servers.sh stop
	FERRY_TEST_ENV_FILE=.ferry-shop/servers.env scripts/test-servers.sh stop
	rm -rf .build .ferry-test .ferry-shop examples/out
