# rudder-clevertap: the commands a user and CI run. `make help` lists them.
SHELL := bash
.DEFAULT_GOAL := help
CARGO ?= cargo
VENV := .venv

.PHONY: help tools run transform-sample test lint bench bench-whole-path

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

tools: ## install moto, cargo-lambda, cfn-lint and zig into .venv (pinned)
	@bash scripts/tools.sh

run: ## the main job on any machine: the real handler on a sample SQS batch, sending nothing
	$(CARGO) run --quiet -- invoke --dry-run --destinations events/destinations.example.json events/sqs-batch.json

transform-sample: ## transform the sample events into CleverTap requests (no network)
	$(CARGO) run --quiet -- transform --destination events/destination.example.json events/rudderstack-events.ndjson

test: tools ## every test: unit, conformance, integration (moto, mock CleverTap, real binary)
	$(CARGO) test --all-targets --no-fail-fast

lint: ## rustfmt and clippy, warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: ## criterion benchmarks (see BENCHMARKS.md)
	$(CARGO) bench

bench-whole-path: ## release binary under a local Runtime API: cold start, 10,000-message batch, peak RSS
	@bash scripts/bench-whole-path.sh
