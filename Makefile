# rudder-clevertap: the commands a user and CI run. `make help` lists them.
SHELL := bash
.DEFAULT_GOAL := help
CARGO ?= cargo
VENV := .venv
# cargo-lambda, cfn-lint, zig (`python -m ziglang`), sam and moto come from .venv (scripts/tools.sh).
WITH_TOOLS := PATH="$(CURDIR)/$(VENV)/bin:$$PATH"
# `sam validate --lint` works offline and needs no AWS account: dummy credentials make sure it
# never picks up real ones, and telemetry is off so it sends nothing.
SAM_OFFLINE := AWS_ACCESS_KEY_ID=none AWS_SECRET_ACCESS_KEY=none SAM_CLI_TELEMETRY=0
ARM64_TARGET := aarch64-unknown-linux-gnu
BINARY := rudder-clevertap

# deploy: extra `sam deploy` flags; drop --guided once samconfig.toml holds your answers.
SAM_DEPLOY_FLAGS ?= --guided
# deploy-cargo-lambda: function name, IAM role ARN (required) and settings.
FUNCTION_NAME ?= rudder-clevertap
ROLE ?=
SECRET_PREFIX ?= rudder-clevertap/
DEFAULT_DESTINATION_ID ?=
DEAD_LETTER_QUEUE_URL ?=
MAX_CONCURRENT_REQUESTS ?= 5
CARGO_LAMBDA_DEPLOY_FLAGS ?= --enable-function-url
# What deploy-cargo-lambda builds first (PACKAGE= deploys the package already in target/lambda).
PACKAGE ?= build
# invoke-local: port, event file, and extra `cargo lambda watch` flags (e.g. --env-file .env).
INVOKE_PORT ?= 9001
INVOKE_EVENT ?= events/sqs-batch.json
WATCH_FLAGS ?=
# invoke-local runs offline by default: settings from the example file, a dry run (docs/contracts.md
# §7). `make invoke-local OFFLINE=` uses your AWS credentials, Secrets Manager and CleverTap.
OFFLINE ?= --env-var LOCAL_DESTINATIONS_FILE=$(CURDIR)/events/destinations.example.json --env-var DRY_RUN=true
# Seconds to wait for the answer; the first invoke also compiles the function (debug build).
INVOKE_TIMEOUT ?= 600

.PHONY: help tools run transform-sample test lint bench validate build build-x86 arm64-target deploy \
	deploy-cargo-lambda invoke-local sam-local bench-whole-path bench-webhook bench-throughput

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

tools: ## install moto, cargo-lambda, cfn-lint, zig and the SAM CLI into .venv (pinned)
	@bash scripts/tools.sh

run: ## the main job on any machine: the real handler on a sample SQS batch, sending nothing
	$(CARGO) run --quiet -- invoke --dry-run --destinations events/destinations.example.json events/sqs-batch.json

transform-sample: ## transform the sample events into CleverTap requests (no network)
	$(CARGO) run --quiet -- transform --destination events/destination.example.json events/rudderstack-events.ndjson

test: tools validate ## every test: cfn-lint, unit, conformance, integration (moto, mock CleverTap, real binary), README commands (sam local invoke in Docker, cargo lambda invoke and deploy against moto)
	$(CARGO) test --all-targets --no-fail-fast
	bash scripts/check-readme-commands.sh

lint: ## rustfmt and clippy, warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

bench: ## criterion benchmarks (see BENCHMARKS.md)
	$(CARGO) bench

bench-whole-path: ## release binary under a local Runtime API: cold start, the largest SQS batch Lambda hands over (6 MB: 4,490 messages; CPU, user/system, page faults), peak RSS, ratio to `transform`
	@bash scripts/bench-whole-path.sh

bench-throughput: ## release binary, CPU limited to MemorySize's vCPU share (cgroup, needs root), batches at the template's BatchSize (<= 6 MB), CleverTap at 150 ms: events/s of one instance, 3 runs + BatchSize 100, cost per million events
	@bash scripts/bench-throughput.sh

bench-webhook: tools ## release binary, webhook queue mode against moto: requests/s of one instance, CPU per request
	@bash scripts/bench-webhook.sh

sam-local: tools ## sam build + sam local invoke of both functions in Docker, offline, then against moto (scripts/test-sam-local.sh)
	@bash scripts/test-sam-local.sh

validate: tools ## cfn-lint and sam validate --lint on the SAM template, offline (tests/it/template.rs checks the rest)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_OFFLINE) $(VENV)/bin/sam validate --lint --template template.yaml --region us-east-1

# The arm64 Rust standard library, installed once on a fresh machine (needs internet).
arm64-target:
	@if ! rustup target list --installed 2>/dev/null | grep -qx '$(ARM64_TARGET)'; then \
		echo "installing the Rust target $(ARM64_TARGET)" >&2; \
		rustup target add $(ARM64_TARGET); \
	fi

build: tools arm64-target ## Lambda package for arm64 (what template.yaml deploys): target/lambda/rudder-clevertap/bootstrap
	$(WITH_TOOLS) $(CARGO) lambda build --release --arm64 --bin $(BINARY)

build-x86: tools ## the same package for x86_64 (needs no extra Rust target)
	$(WITH_TOOLS) $(CARGO) lambda build --release --x86-64 --bin $(BINARY)

# Route 1, the complete one: AWS SAM builds the arm64 binary with cargo-lambda and creates the
# queue, dead-letter queue, both functions, the Function URL, IAM roles, log groups and alarms.
deploy: tools arm64-target ## sam build + sam deploy --guided: the whole stack (queue, DLQ, alarms, webhook URL)
	@test -x $(VENV)/bin/sam || { echo "make deploy needs the AWS SAM CLI in $(VENV) (make tools, scripts/tools.sh)" >&2; exit 1; }
	$(WITH_TOOLS) sam build
	$(WITH_TOOLS) sam deploy $(SAM_DEPLOY_FLAGS)

# Route 2, code only: one function from the arm64 binary, with a Function URL by default.
# It creates NO queue, NO dead-letter queue, NO alarm, NO log retention and NO reserved
# concurrency, and without ROLE cargo-lambda would create a role that cannot read secrets.
deploy-cargo-lambda: $(PACKAGE) ## cargo lambda deploy: one function (+ Function URL) only; needs ROLE=<IAM role ARN>
	@test -n '$(ROLE)' || { echo "set ROLE=<IAM role ARN> allowed secretsmanager:GetSecretValue on $(SECRET_PREFIX)* (README.md, Deploy)" >&2; exit 1; }
	$(WITH_TOOLS) $(CARGO) lambda deploy $(FUNCTION_NAME) --binary-name $(BINARY) \
		--role '$(ROLE)' --memory 256 --timeout 30 \
		--env-var SECRET_PREFIX='$(SECRET_PREFIX)' \
		--env-var MAX_CONCURRENT_REQUESTS=$(MAX_CONCURRENT_REQUESTS) \
		--env-var RETRY_BUDGET_SECONDS=20 --env-var SECRETS_TTL_SECONDS=300 \
		--env-var MAX_BODY_BYTES=5242880 --env-var RUST_LOG=info \
		$(if $(DEFAULT_DESTINATION_ID),--env-var DEFAULT_DESTINATION_ID='$(DEFAULT_DESTINATION_ID)') \
		$(if $(DEAD_LETTER_QUEUE_URL),--env-var DEAD_LETTER_QUEUE_URL='$(DEAD_LETTER_QUEUE_URL)') \
		$(CARGO_LAMBDA_DEPLOY_FLAGS)

# Runs the handler under the local Lambda emulator (`cargo lambda watch`, in its own process
# group so it can be stopped whole), sends it $(INVOKE_EVENT), prints the response, then stops
# the emulator. Offline by default (OFFLINE above): the dry run's requests and dead letters, and
# the function's logs, go to target/invoke-local-watch.log.
invoke-local: tools ## the Lambda loop under cargo lambda watch, offline (dry run), invoked with events/sqs-batch.json
	@set -euo pipefail; export $(WITH_TOOLS); mkdir -p target; \
	log=target/invoke-local-watch.log; \
	setsid $(CARGO) lambda watch --invoke-address 127.0.0.1 --invoke-port $(INVOKE_PORT) $(OFFLINE) $(WATCH_FLAGS) >"$$log" 2>&1 & \
	watcher=$$!; trap 'kill -TERM -- -$$watcher 2>/dev/null || true' EXIT; \
	for _ in $$(seq 1 120); do \
		if (exec 3<>/dev/tcp/127.0.0.1/$(INVOKE_PORT)) 2>/dev/null; then break; fi; \
		kill -0 $$watcher 2>/dev/null || { cat "$$log" >&2; echo "cargo lambda watch stopped" >&2; exit 1; }; \
		sleep 1; \
	done; \
	timeout $(INVOKE_TIMEOUT) $(CARGO) lambda invoke $(BINARY) --data-file $(INVOKE_EVENT) \
		--invoke-address 127.0.0.1 --invoke-port $(INVOKE_PORT) \
		|| { rc=$$?; echo "invoke failed ($$rc); the function's output:" >&2; tail -n 20 "$$log" >&2; exit $$rc; }
