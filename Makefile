# Two commands set up everything on a fresh machine: `make run` and `make test`.
# The Python: 3.11 (python3.11) or 3.13 (Debian 13's /usr/bin/python3), both tested by CI.
# The default is python3.11 when there is one, else python3. A Python chosen on the command
# line gets a virtualenv of its own: `make test PYTHON=python3.13` builds .venv-python3.13
# and leaves .venv alone.
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV ?= $(if $(filter command line environment,$(origin PYTHON)),.venv-$(notdir $(PYTHON)),.venv)
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
# --universal: one lock for every Python requires-python allows (3.11 to 3.13), with the
# hashes of every wheel of each pinned version.
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --quiet --generate-hashes --universal \
	--python-version 3.11 --custom-compile-command 'make lock  (from pyproject.toml: edit that, not this file)' \
	$(LOCK_ARGS)

.PHONY: run run-province test lint bench lock messages system-packages clean

$(PY):
	@v=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null); \
	case "$$v" in 3.11|3.12|3.13) ;; *) echo "error: motcua runs on Python 3.11 to 3.13;" \
	  "$(PYTHON) is $${v:-not a Python that runs here}. Choose one: make PYTHON=/usr/bin/python3.13" \
	  "(docs/deployment.md)."; exit 1;; esac
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Wheels only (--only-binary): the lock has them for every dependency on 3.11 and 3.13, so
# nothing is ever compiled; a platform without them fails here, saying which package.
# Re-run when the lock or pyproject.toml changes. Leftover packages that the lock no longer
# names are not removed: `make clean` for a venv that is exactly the lock.
$(STAMP): $(PY) $(LOCK_TEST) pyproject.toml
	$(PY) -m pip install --quiet --require-hashes --only-binary :all: -r $(LOCK_TEST)
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

# The demo as a province: the same provincial centre and a dozen commune offices on one
# installation, with the province's admin (provisioning/an-giang/province.toml).
run-province: $(STAMP) $(VOICE_PACK)
	$(PY) server.py serve --demo province --host $(HOST) --port $(PORT)

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
