# Two commands users need: `make demo` and `make test`. Both create what they need.
# Two virtual environments, because litellm[proxy] and mitmproxy cannot share one (docs/environment.md):
#   .venv       the project, the engine, the LiteLLM proxy host, test and load tools
#   .venv-mitm  mitmproxy 11.0.2 and the project core, for the egress addon host
PYTHON ?= python3
VENV := .venv
MITM_VENV := .venv-mitm
PIP_FLAGS := --quiet --disable-pip-version-check --no-input
PYTEST_ARGS ?=

.PHONY: demo up test test-fast venvs clean bench soak chromium
.PHONY: test-docker

$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[test,load,litellm]' 2>&1 | grep -v "^WARNING: Location" || true
	$(VENV)/bin/python -m harness.install_check akto_wire mock_akto harness reference_impl.litellm litellm importlinter locust mitmproxy!
	touch $@

$(MITM_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(MITM_VENV)
	$(MITM_VENV)/bin/pip install $(PIP_FLAGS) --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(MITM_VENV)/bin/pip install $(PIP_FLAGS) -e '.[mitm]' 'pytest-timeout>=2.3' 2>&1 | grep -v "^WARNING: Location" || true
	$(MITM_VENV)/bin/python -m harness.install_check mitmproxy akto_wire reference_impl.egress
	touch $@

venvs: $(VENV)/.stamp $(MITM_VENV)/.stamp

## make demo: start the fake engine (and the connectors) on loopback and show a short tour of verdicts and faults.
demo: venvs
	$(VENV)/bin/python -m harness.demo

## make up: the engine, the fake LLMs and the three connectors in their real hosts on fixed loopback ports,
## with copy-paste examples and the live activity page (http://127.0.0.1:8090/__admin/ui); Ctrl-C stops all.
up: venvs
	$(VENV)/bin/akto-harness up $(UP_ARGS)

## Debian's chromium for the browser tests (tests/ui, driven by Playwright; no browser download). Installed
## with apt-get where it is missing and we are root (CI); otherwise those tests skip, saying why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium: the browser tests (tests/ui) will be skipped"; \
	  else echo "chromium is missing (apt-get install chromium as root): the browser tests (tests/ui) will be skipped"; fi; }

## make test: every test, over real sockets on loopback, each with a deadline. Parallel (xdist), then the
## load runs timed at their client (marker timed_load) one at a time, alone on the machine.
test: venvs chromium
	$(MITM_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/mitm_unit $(PYTEST_ARGS)
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadgroup --ignore=tests/mitm_unit -m "not timed_load" $(PYTEST_ARGS)
	$(VENV)/bin/python -m pytest -q --ignore=tests/mitm_unit -m timed_load $(PYTEST_ARGS)

## make test-docker: the Docker tests (compose stack from outside, akto_container) on a real Docker engine;
## installs and starts Docker when it can, and where it cannot, says so in one line and passes.
test-docker: venvs
	bash docker/test-docker.sh

bench: venvs
	$(VENV)/bin/python -m bench

## make soak: issue 11's fuzz, slow-attack and memory figures against one engine process (a few minutes).
soak: venvs
	$(VENV)/bin/python -m bench soak

clean:
	rm -rf $(VENV) $(MITM_VENV) reports .pytest_cache
