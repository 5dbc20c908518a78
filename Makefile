# The two commands: `make run` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint typecheck pytest system-packages clean e2e e2e-browser audit verifier messages translations webfonts

# System packages we need and only install when missing (Debian/Ubuntu, as root or via sudo).
# The fonts are those portal/documents/fonts.py names (Noto for Arabic and Burmese, DejaVu);
# Tesseract with its English, Arabic and Burmese models reads names in scans and photos.
# OpenSSL runs the tests' time-stamping authority; Sequoia's sq (tests only) checks packages
# as a recipient's own tools would (tests/verify/test_independent_tools.py).
TESSDATA := $(firstword $(wildcard /usr/share/tesseract-ocr/*/tessdata))
# `run` and `pytest` check too, so an existing .venv still gets fonts added later.
NOTO_DIR := /usr/share/fonts/truetype/noto
NOTO_FILES := $(NOTO_DIR)/NotoSans-Regular.ttf $(NOTO_DIR)/NotoNaskhArabic-Regular.ttf \
  $(NOTO_DIR)/NotoSansArabic-Regular.ttf $(NOTO_DIR)/NotoSansMyanmar-Regular.ttf
DEJAVU_DIR := /usr/share/fonts/truetype/dejavu
DEJAVU_FILES := $(DEJAVU_DIR)/DejaVuSans.ttf $(DEJAVU_DIR)/DejaVuSans-Bold.ttf \
  $(DEJAVU_DIR)/DejaVuSansMono.ttf

system-packages:
	@missing=""; \
	command -v gpg >/dev/null 2>&1 || missing="$$missing gnupg"; \
	command -v gpgconf >/dev/null 2>&1 || missing="$$missing gpgconf"; \
	ldconfig -p 2>/dev/null | grep -q libpango-1.0 || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	for font in $(NOTO_FILES); do [ -f "$$font" ] || { missing="$$missing fonts-noto-core"; break; }; done; \
	for font in $(DEJAVU_FILES); do [ -f "$$font" ] || { missing="$$missing fonts-dejavu-core"; break; }; done; \
	command -v tesseract >/dev/null 2>&1 || missing="$$missing tesseract-ocr"; \
	[ -n "$(TESSDATA)" ] && [ -f "$(TESSDATA)/ara.traineddata" ] || missing="$$missing tesseract-ocr-ara"; \
	[ -n "$(TESSDATA)" ] && [ -f "$(TESSDATA)/mya.traineddata" ] || missing="$$missing tesseract-ocr-mya"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v sq >/dev/null 2>&1 || missing="$$missing sq"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing missing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; \
	fi
	@# HarfBuzz's subsetter: WeasyPrint subsets the PDFs' fonts with it (0.04 s of CPU for the
	@# letter's Arabic and Burmese fonts, 0.66 s with fontTools, its fallback). Wanted, not
	@# required: the portal works without it, so a failed install only says so.
	@ldconfig -p 2>/dev/null | grep -q libharfbuzz-subset || { \
	  echo "Installing libharfbuzz-subset0 (font subsetting for PDFs)"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  { $$SUDO apt-get install -y -qq libharfbuzz-subset0 || \
	    { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libharfbuzz-subset0; }; } || \
	  echo "libharfbuzz-subset0 was not installed: PDFs' fonts are subset with fontTools (slower)"; }

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# Languages (README "Languages"): `make messages` extracts every marked string into
# translations/messages.pot and merges it into the en/ar/my catalogs (commit those .po files);
# `make translations` compiles them to .mo, which are built here, never committed.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k lazy_gettext -o translations/messages.pot --no-location --sort-output \
	  --project "Sharing Portal" --msgid-bugs-address "portal-i18n@mechanism.example" .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete

translations: $(STAMP)
	$(BIN)/pybabel compile --statistics -d translations

# The pages' Arabic and Burmese web fonts: WOFF2 made from fonts-noto-core at install
# (portal/static/fonts/*.woff2, not committed; the licence is).
webfonts: $(STAMP) system-packages
	$(BIN)/python -m portal.pages.webfonts portal/static/fonts

run: $(STAMP) system-packages translations webfonts
	PORTAL_DEMO=1 PORTAL_SIGNING_KEY=keys_example/mechanism-signing.sec.asc \
	  PORTAL_SIGNING_PASSPHRASE_FILE=keys_example/mechanism-signing.passphrase $(BIN)/portal init
	PORTAL_DEMO=1 $(BIN)/portal demo
	@echo "Serving the Sharing Portal on http://$(HOST):$(PORT) (demo mode; Ctrl-C to stop)"
	PORTAL_DEMO=1 PORTAL_SIGNING_KEY=keys_example/mechanism-signing.sec.asc \
	  PORTAL_SIGNING_PASSPHRASE_FILE=keys_example/mechanism-signing.passphrase \
	  $(BIN)/portal run --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite in parallel processes, one a core up to 8 (pytest-xdist; `PYTEST_WORKERS=0` runs
# it in one process). Each PostgreSQL test has a schema of its own and each Redis test its own
# keys or server, so the processes never share rows. A process may hold ~10 PostgreSQL
# connections at once: 8 of them stay well under the server's default of 100.
PYTEST_WORKERS ?= auto
pytest: $(STAMP) system-packages translations webfonts
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --maxprocesses 8 --dist worksteal

test: lint typecheck pytest

# portal-verify on its own (dist/portal_verify-*.whl): portal/verify and exactly the modules it
# imports, depending only on python-gnupg, bagit and jsonschema (verifier/pyproject.toml).
verifier: $(STAMP)
	$(BIN)/python verifier/build.py dist

# Browser tests (tests/e2e): Playwright driving Debian's chromium, never a downloaded browser
# (no `playwright install`), and axe-core from npm (package-lock.json). Installs each only
# when missing. Screenshots and the server log go to e2e-artifacts/.
E2E_STAMP := $(VENV)/.e2e-installed

e2e-browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian's chromium (for the browser tests only)"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; \
	fi
	@if [ ! -f node_modules/axe-core/axe.min.js ]; then \
	  command -v npm >/dev/null 2>&1 || { \
	    SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq npm; }; \
	  npm ci --no-audit --no-fund; \
	fi

$(E2E_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev,e2e]'
	touch $(E2E_STAMP)

e2e: $(E2E_STAMP) e2e-browser system-packages translations webfonts
	$(BIN)/python -m pytest tests/e2e

# Known vulnerabilities in the installed packages (pip-audit, PyPI's advisory service).
# Needs that service to be reachable, so it is not part of `make test` or CI; pip-audit is
# installed into .venv by this target only. Exits non-zero when anything is found.
AUDIT_STAMP := $(VENV)/.audit-installed

$(AUDIT_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet 'pip-audit>=2.7,<3'
	touch $(AUDIT_STAMP)

audit: $(AUDIT_STAMP)
	$(BIN)/pip-audit --skip-editable --progress-spinner off

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache .hypothesis node_modules e2e-artifacts
