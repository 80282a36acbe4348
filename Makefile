# Two commands set up everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Locked dependencies, generated from pyproject.toml by `make lock`: exact versions with
# hashes. run.txt is the runtime (production installs); test.txt adds the test extras
# with the same runtime pins, and is what the development .venv installs.
LOCK_RUN := requirements/run.txt
LOCK_TEST := requirements/test.txt
UV_VERSION := 0.13.9
# `make lock LOCK_ARGS=--upgrade` takes the newest allowed versions of everything;
# `make lock LOCK_ARGS='--upgrade-package flask'` of one package; plain `make lock` keeps
# the current pins where pyproject.toml still allows them.
LOCK_ARGS ?=
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --quiet --generate-hashes --universal \
	--python-version 3.11 --custom-compile-command 'make lock  (from pyproject.toml: edit that, not this file)' \
	$(LOCK_ARGS)

.PHONY: run test lint bench lock messages system-packages clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-run when the lock or pyproject.toml changes. Leftover packages that the lock no longer
# names are not removed: `make clean` for a venv that is exactly the lock.
$(STAMP): $(PY) $(LOCK_TEST) pyproject.toml
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK_TEST)
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The default voice pack for announcements, generated with Debian's espeak-ng (installed
# first when missing); kept clips are not regenerated. instance/ is never committed.
VOICE_PACK := instance/voice/vi/manifest.json
$(VOICE_PACK): $(STAMP) display/speech.py display/voicepack.py
	@command -v espeak-ng >/dev/null 2>&1 || scripts/ensure-system-packages
	$(PY) -m display.voicepack build instance/voice/vi --voice vi

# `make run PORT=5057` when 5000 is taken; `HOST=0.0.0.0` to be reached from other machines.
HOST ?= 127.0.0.1
PORT ?= 5000
run: $(STAMP) $(VOICE_PACK)
	$(PY) server.py serve --demo --host $(HOST) --port $(PORT)

# Debian's chromium and fonts-dejavu-core for the page tests, installed when missing.
system-packages:
	scripts/ensure-system-packages

test: $(STAMP) system-packages $(VOICE_PACK)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) scripts/check_lock.py pyproject.toml $(LOCK_RUN) $(LOCK_TEST)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) bench/fanout.py

# Regenerate the locks from pyproject.toml (needs the package index).
lock: $(PY)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV_COMPILE) -o $(LOCK_RUN)
	$(UV_COMPILE) --extra test --constraint $(LOCK_RUN) -o $(LOCK_TEST)

# Extract the pages' words and update translations/en.po (Vietnamese is the source).
messages: $(STAMP)
	$(PY) scripts/messages.py

clean:
	rm -rf $(VENV) instance/*.sqlite3*
