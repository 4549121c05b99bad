# thumbq: `make start`, `make send-image`, `make test`. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NATIVE := deploy/native

.PHONY: help start stop restart send-image services cluster cluster-stop test bench bench-scaling fuzz audit lint fmt clean replay-dead-letters

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

start: ## Install/start RabbitMQ and Redis if needed, build, run the API and 2 workers in the background
	@$(NATIVE)/start.sh

stop: ## Stop the API and workers that `make start` started
	@$(NATIVE)/stop.sh

restart: stop start ## Stop, then start

send-image: ## Upload IMAGE (default assets/example.jpg; KEY= an API key), wait for the thumbnail, save it under .run/thumbnails/
	@IMAGE="$(IMAGE)" QUERY="$(QUERY)" KEY="$(KEY)" $(NATIVE)/send-image.sh

replay-dead-letters: ## Move dead-lettered tasks (up to LIMIT, default all) back to the work queue as fresh tasks
	@source $(NATIVE)/lib.sh && { [ -x "$$ROOT/target/release/thumbq-worker" ] || { ensure_cargo && build_release; }; } \
	  && "$$ROOT/target/release/thumbq-worker" replay-dead-letters $(LIMIT)

cluster: ## On this machine, the multi-machine shape: 3 RabbitMQ nodes, Redis + replica + 3 sentinels (REDIS=cluster: a 6-node Redis Cluster), S3 (moto), 2 APIs, 4 workers
	@REDIS="$(REDIS)" $(NATIVE)/cluster.sh

cluster-stop: ## Stop everything `make cluster` started
	@$(NATIVE)/cluster-stop.sh

services: ## Only make sure RabbitMQ and Redis are installed and running
	@$(NATIVE)/services.sh

test: services ## Run every test of the workspace (unit and end-to-end, on the real services)
	@$(NATIVE)/test-tools.sh
	@source $(NATIVE)/lib.sh && ensure_cargo && cargo test --workspace --locked

bench: services ## Benchmarks: pipeline vs naive and libvips per format, end to end, bulk jobs, Redis per task (corpus from Debian packages)
	@bench/corpus.sh
	@$(NATIVE)/test-tools.sh
	@source $(NATIVE)/lib.sh && ensure_cargo && cargo build --release --locked -q -p thumbq-api -p thumbq-worker -p thumbq-client \
	  && cargo bench --locked -q -p thumbq-worker --features bench --bench pipeline && cargo bench --locked -q -p thumbq-tests --bench end_to_end \
	  && cargo bench --locked -q -p thumbq-tests --bench jobs && cargo bench --locked -q -p thumbq-tests --bench redis_costs

bench-scaling: ## Throughput and per-task costs with 1, 2, 4 workers: file store, S3, and the `make cluster` services
	@bench/scaling.sh

fuzz: ## Long fuzzing run of the decoders and the header probe (ITERATIONS, default 2000000; SEED, default random)
	@source $(NATIVE)/lib.sh && ensure_cargo && THUMBQ_FUZZ_ITERATIONS=$${ITERATIONS:-2000000} \
	  THUMBQ_FUZZ_SEED=$${SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')} \
	  cargo test --locked -q -p thumbq-worker --lib pipeline::fuzz -- --nocapture

audit: ## RustSec advisories for Cargo.lock (installs cargo-audit; needs github.com for the advisory database)
	@source $(NATIVE)/lib.sh && ensure_cargo && { command -v cargo-audit >/dev/null || cargo install --locked cargo-audit; } \
	  && cargo audit

lint: ## Formatting and clippy, warnings as errors
	@source $(NATIVE)/lib.sh && ensure_cargo && cargo fmt --all -- --check \
	  && cargo clippy --workspace --all-targets --features thumbq-worker/bench --locked -- -D warnings

fmt: ## Format the code
	cargo fmt --all

clean: stop cluster-stop ## Stop, and remove build output, logs and the local store
	rm -rf target .run data
