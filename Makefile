# The few commands people type. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Development defaults; override any of them in the environment.
export DJANGO_DEBUG ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: run setup status test test-services browser lint format bench-thresholds bench-classifier bench-tiling bench-metrics bench-export bench bench-queue bench-video bench-generalisation bench-forgetting bench-quantization bench-hashes clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

## run: install, migrate, create demo users, then serve web + workers + beat on 127.0.0.1:8000 under
## supervisord (config/supervisord.conf): a process that dies is restarted, Ctrl-C stops them all
# Written once: manage.py commands in another terminal read it (config/settings.py), so they see the
# development settings `make run` uses without any variable set. Delete it to start over.
VAR_DIR := $${VIGIL_VAR_DIR:-$(CURDIR)/var}
LOCAL_ENV := $(VAR_DIR)/local.env

run: setup
	@mkdir -p "$(VAR_DIR)/log"
	VIGIL_VAR_DIR="$(VAR_DIR)" PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/supervisord -c config/supervisord.conf

## setup: what `make run` does before serving: var/local.env once, migrate, bootstrap_demo
setup: $(VENV)/.runtime-installed
	@test -f "$(LOCAL_ENV)" || { mkdir -p "$$(dirname "$(LOCAL_ENV)")" && \
	  printf '# Written by make run: development settings for manage.py in any terminal.\nDJANGO_DEBUG=%s\nDJANGO_SECRET_KEY=%s\n' \
	    "$(DJANGO_DEBUG)" "$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" > "$(LOCAL_ENV)" && \
	  chmod 600 "$(LOCAL_ENV)" && echo "wrote $(LOCAL_ENV)"; }
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap_demo

## status: the processes `make run` supervises (state, pid, uptime), from another terminal
status: $(VENV)/.runtime-installed
	@VIGIL_VAR_DIR="$(VAR_DIR)" $(BIN)/supervisorctl -c config/supervisord.conf status

## browser: Debian's chromium for the real-browser tests (apt, when missing; never a downloaded browser)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -q chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get install -y -q chromium; \
	  else echo "chromium is missing and apt needs root: the browser tests will be skipped" >&2; fi; }

## test: install dev requirements and run the whole suite (embedded SQLite + filesystem broker by default)
# Tests keep their database file and broker folder under var/test, apart from `make run`'s.
test: $(VENV)/.dev-installed browser
	VIGIL_VAR_DIR=$${VIGIL_VAR_DIR:-$(CURDIR)/var/test} $(BIN)/python -m pytest $(PYTEST_ARGS)

## test-services: the same suite against PostgreSQL and Redis on this machine, then the
## multi-worker platform test again with RabbitMQ as the broker
test-services:
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/vigil} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15} \
	$(MAKE) test
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/vigil} \
	CELERY_BROKER_URL=$${VIGIL_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672//} \
	$(MAKE) test PYTEST_ARGS="tests/e2e/test_platform.py"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench-quantization: int8 against fp32 (the active version and its int8 sibling): latency per network,
## agreement on scikit-image's photos and every realbench image, AUC and recall on its test split
bench-quantization: $(VENV)/.runtime-installed
	$(BIN)/python -m bench.quantization --data $${DATA:-../shared/datasets/realbench} $${MODEL:+--model $$MODEL}

## bench-thresholds: measure the baseline's cold-start thresholds (needs a labelled ImageFolder)
bench-thresholds: $(VENV)/.runtime-installed
	$(BIN)/python -m bench.baseline_thresholds $${DATA:-../shared/datasets/realbench}

## bench-classifier: fine-tune and evaluate every backbone on realbench, with baselines (about 30 min on 2 cores)
bench-classifier: $(VENV)/.dev-installed
	$(BIN)/python -m bench.classifier --data $${DATA:-../shared/datasets/realbench}

## bench-tiling: tiled scoring (none / 2x2 / 3x3) on realbench's test split; CHECKPOINT=model.pt, else it trains one
bench-tiling: $(VENV)/.dev-installed
	$(BIN)/python -m bench.tiling --data $${DATA:-../shared/datasets/realbench} $${CHECKPOINT:+--checkpoint $$CHECKPOINT}
## bench-generalisation: leave-one-source-out, learning from k labels of a new source, learning curves (probe vs
## fine-tuning, uncertainty sampling) on realbench; backbone outputs cached under var/. The default is Vigil's recipe
## (Lite2, 288 px, 4 augmented views: hours on 2 cores); BENCH_ARGS=--quick takes minutes (docs/benchmarks.md)
bench-generalisation: $(VENV)/.dev-installed
	$(BIN)/python -m bench.generalisation --data $${DATA:-../shared/datasets/realbench} $(BENCH_ARGS)

## bench-forgetting: retraining on a new source's labels alone vs with rehearsal, judged by the promotion rule (about 40 min)
bench-forgetting: $(VENV)/.dev-installed
	$(BIN)/python -m bench.forgetting --data $${DATA:-../shared/datasets/realbench} $(BENCH_ARGS)

## bench-metrics: admin pages with 1,000,000 decisions in PostgreSQL (about 7 min)
bench-metrics: $(VENV)/.dev-installed
	$(BIN)/python -m bench.metrics

## bench-export: export 100,000 labelled images with bounded memory (PostgreSQL; about 2 min)
bench-export: $(VENV)/.dev-installed
	$(BIN)/python -m bench.export

## bench: the end-to-end pipeline against the model-only ceiling (real stack; PostgreSQL + Redis when up)
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.pipeline

## bench-queue: claiming and the review page with 1,000,000 queued uploads in PostgreSQL
bench-queue: $(VENV)/.dev-installed
	$(BIN)/python -m bench.queue

## bench-hashes: PDQ look-ups (hashes.selectors.list_matches) against 1,000,000 list entries in PostgreSQL, checked
## against brute force, a full scan as the baseline, a join lookup among upload hashes (about 4 min; 2 more the first time)
bench-hashes: $(VENV)/.dev-installed
	$(BIN)/python -m bench.hash_lookup --data $${DATA:-../shared/datasets/realbench} $(BENCH_ARGS)

## bench-video: probe, sample and score a 10 s clip, a 2 min 1080p and a 30 min 480p video (about 6 min)
bench-video: $(VENV)/.dev-installed
	$(BIN)/python -m bench.video

clean:
	rm -rf var/broker var/test-vigil.sqlite3*
