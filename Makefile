# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock kafka kafka-stop registry registry-stop system-packages topics run test lint bench mutation clean

# native/ is the compiled fast path (Rust, built by maturin with cargo from crates.io).
NATIVE_SOURCES := native/rust-toolchain.toml native/Cargo.toml native/pyproject.toml native/ivmtr_native.pyi $(wildcard native/src/*.rs)

# Exactly the locked versions, checked against their hashes: requirements-dev.lock holds
# every package of the service, its tests and tools, and the build backends (setuptools,
# maturin), so the project and native/ build without fetching anything unlocked.
$(STAMP): requirements-dev.lock pyproject.toml $(NATIVE_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	# maturin's build hook runs the maturin program: the venv's, found on PATH.
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pip install -q --no-deps --no-build-isolation ./native
	touch $@

install: $(STAMP)

# After changing dependencies in pyproject.toml (or to take newer versions: LOCK_FLAGS=-U):
# requirements.lock is what the service needs (the Dockerfile installs it), and
# requirements-dev.lock adds the dev extra at the same versions.
LOCK := $(BIN)/pip-compile -q --strip-extras --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)

lock:
	$(LOCK) --all-build-deps -o requirements.lock pyproject.toml native/pyproject.toml
	$(LOCK) --all-build-deps --extra dev -c requirements.lock -o requirements-dev.lock pyproject.toml native/pyproject.toml

kafka:
	scripts/kafka start

kafka-stop:
	scripts/kafka stop

# Apicurio Registry (Confluent-compatible API) for the schema-registry tests.
registry:
	scripts/registry start

registry-stop:
	scripts/registry stop

# Prometheus (promtool) and Chromium, real peers of the observability and report tests.
system-packages:
	scripts/system-packages

topics: install kafka
	$(BIN)/ivmtr-stream topics create

# A generated development credential (feed "demo"), never the insecure mode.
FEEDS := .local/feeds.toml

$(FEEDS): | $(STAMP)
	$(BIN)/ivmtr-stream dev-credentials --out $(FEEDS)

run: install kafka topics $(FEEDS)
	@echo "push with: curl -u demo:$$(cat $(FEEDS).password) ..."
	IVMTR_FEEDS_FILE=$(FEEDS) $(BIN)/ivmtr-stream serve

test: install kafka registry system-packages
	cd native && cargo test
	$(BIN)/python -m pytest
	scripts/aiokafka-seam

lint: install
	$(BIN)/ruff check consumer producer tests bench
	$(BIN)/ruff format --check consumer producer tests bench
	$(BIN)/mypy
	cd native && cargo fmt --check && cargo clippy --all-targets -- -D warnings
	$(BIN)/lint-imports

bench: install kafka
	$(BIN)/python bench/run.py
	$(BIN)/python bench/receipts_memory.py
	$(BIN)/python bench/tracker.py

# Mutation testing of one module against its unit tests (no broker), with mutmut; see
# README "Mutation testing". MODULE: feeds, http-limits, imb, producer, producer-all, or a
# path (TESTS= then names its tests). Results: .local/mutation/<MODULE>.json.
mutation: install
	@test -n "$(MODULE)" || { $(BIN)/python scripts/mutation.py --list; echo "usage: make mutation MODULE=<one of the above, or a path>"; exit 2; }
	$(BIN)/python scripts/mutation.py $(MODULE) $(if $(TESTS),--tests $(TESTS)) $(if $(MUTATION_JOBS),--jobs $(MUTATION_JOBS))

clean:
	rm -rf $(VENV) .local build *.egg-info
