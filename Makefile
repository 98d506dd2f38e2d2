# Developer entry points. `make` alone lists them.
SHELL := bash
.DEFAULT_GOAL := help

SWIFT ?= swift
# Extra flags, e.g. make test SWIFT_TEST_FLAGS='--filter AuthServiceTests'
SWIFT_BUILD_FLAGS ?=
SWIFT_TEST_FLAGS ?=

.PHONY: help build test bench up down status logs mail clean

help: ## List the targets
	@echo "Targets:"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'
	@echo "Variables: SWIFT_BUILD_FLAGS, SWIFT_TEST_FLAGS, STORAGE_BACKEND=filesystem|s3, SCALE_<SERVICE>, STACK_PG_PORT,"
	@echo "  GATEWAY_PORT, STACK_PORT_BASE, STACK_DIR, STACK_BIN_DIR, SMTP_URL, STACK_SMTP_PORT (see scripts/stack.sh);"
	@echo "  E2E_SCALE (make test)"

build: ## swift build (debug)
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

test: ## Every test: unit, service, end-to-end (through nginx), OpenAPI fuzz, compose and stack checks; throwaway Postgres + SeaweedFS + SMTP server
	bash scripts/test-tools.sh
	$(SWIFT) build --build-tests $(SWIFT_BUILD_FLAGS)
	bash scripts/with-test-postgres.sh bash scripts/with-test-seaweedfs.sh bash scripts/with-test-smtp.sh bash scripts/with-test-stack.sh bash scripts/run-tests.sh $(SWIFT_TEST_FLAGS)

bench: ## Benchmarks against the release stack (starts it), each beside its limit; writes bench/results/
	SWIFT=$(SWIFT) bash scripts/bench.sh

up: ## Start the local stack (Postgres + release-built services; an SMTP sink unless SMTP_URL is set) under .stack/
	SWIFT=$(SWIFT) $(if $(STORAGE_BACKEND),STORAGE_BACKEND=$(STORAGE_BACKEND)) bash scripts/stack.sh up

down: ## Stop the local stack
	bash scripts/stack.sh down

status: ## Show what the local stack runs
	bash scripts/stack.sh status

logs: ## Last 50 lines of each stack log
	@d="$${STACK_DIR:-.stack}"; if compgen -G "$$d/logs/*.log" >/dev/null; then tail -n 50 "$$d"/logs/*.log; else echo "no logs in $$d/logs"; fi

mail: ## Print the newest message the local stack's SMTP sink received (.stack/mail): From, To, Subject, text
	@bash scripts/stack.sh mail

# `down` fails when anything of the stack (gateway, services, SeaweedFS, the SMTP sink,
# Postgres) still runs, so the folder is never deleted from under a running process. A
# STACK_DIR of your own is yours to delete.
clean: down ## Stop everything of the stack, then delete .stack/ (database, secrets, logs)
	rm -rf .stack
