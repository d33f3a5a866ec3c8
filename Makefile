# masterbox: every target installs what is missing first, then acts.
#   make demo   - the whole box on simulated hardware, web UI on http://127.0.0.1:8080
#   make test   - the test suite (what CI runs)
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO  := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := $(shell sed -e 's/\#.*//' debian-packages.txt)
PYTEST_ARGS ?=
TEST_WORKERS ?= 2

.PHONY: install apt-deps test test-all demo bench lint install-box uninstall-box clean

install: $(STAMP)

# Debian packages: only those not installed yet; `apt-get update` only when something is missing.
apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml debian-packages.txt
	@$(MAKE) --no-print-directory apt-deps
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m firmware.warmup
	@touch $(STAMP)

# Two parts (tests/conftest.py, PARALLEL_MODULES): the tests that may share the machine on
# TEST_WORKERS processes at once, then the real-time, engine and timing tests one at a time.
# Both parts always run; the result fails if either fails or if neither collected a test. Each
# prints its slowest tests (docs/testing.md says where the time goes); the second also names the
# real-time tests it ran again (-rR).
test: install
	@$(PY) -m firmware.warmup --quiet
	@set +e; \
	$(PY) -m pytest -q -m "not slow and parallel" -n $(TEST_WORKERS) --durations=15 $(PYTEST_ARGS); rc1=$$?; \
	$(PY) -m pytest -q -m "not slow and not parallel" --durations=25 -rfER $(PYTEST_ARGS); rc2=$$?; \
	if [ $$rc1 = 5 ] && [ $$rc2 = 5 ]; then echo "pytest collected no tests: that is a failure, not a pass"; exit 1; fi; \
	for rc in $$rc1 $$rc2; do if [ $$rc != 0 ] && [ $$rc != 5 ]; then exit $$rc; fi; done

# Everything, including the long `slow` tests (full-length soak/load, cold kernel compile in place).
test-all: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: install
	@$(PY) -m firmware.warmup
	$(VENV)/bin/masterbox demo

bench: install
	$(VENV)/bin/masterbox bench

lint: install
	$(VENV)/bin/ruff check dsp hw firmware webui tests bench

install-box:
	$(SUDO) systemd/install.sh

uninstall-box:
	$(SUDO) systemd/uninstall.sh

clean:
	rm -rf $(VENV) build *.egg-info
	find . -name __pycache__ -prune -exec rm -rf {} +
