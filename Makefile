# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= dev

.PHONY: run test lint bench infra package deploy clean chromium
# apt-get needs root: sudo when we are not
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

## make run: the whole system locally (moto AWS, WeCom sandbox, HTTP API, queue workers, schedules);
## its data is kept in .run/state.json across restarts; make run FRESH=1 starts empty
run: $(STAMP)
	$(PY) -m infra.local_stack$(if $(filter-out 0,$(FRESH)), --fresh)

## make chromium: Debian's Chromium for the console's browser tests (tests/browser) and a Chinese font
## for their screenshots, installed when missing
chromium:
	@{ command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 && fc-list :lang=zh | grep -q . || { \
	  echo "installing Debian's chromium, chromium-driver and fonts-wqy-microhei for the browser tests"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver fonts-wqy-microhei; }

## make test: every test (unit, functional on moto + sandbox, end-to-end over real HTTP, the console in
## headless Chromium) and lint
test: $(STAMP) chromium
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) bench/callback.py
	$(PY) bench/cold_start.py --no-cffi
	$(PY) bench/welcome_burst.py
	$(PY) bench/full_sync.py

## make infra: re-render the merge templates and IAM policies (after queues.py / schema.py / config.json changes)
infra: $(STAMP)
	$(PY) infra/build.py

## make package STAGE=prod: CloudFormation template + zip with .pyc, cfn-lint; no AWS needed
package: $(STAMP)
	$(PY) infra/package.py $(STAGE)

## make deploy STAGE=prod ARTIFACT_BUCKET=...: needs AWS credentials
deploy: $(STAMP)
	PYTHON=$(PY) bash infra/deploy.sh $(STAGE)

clean:
	rm -rf $(VENV) out infra/out .run .pytest_cache .ruff_cache
