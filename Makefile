# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BABEL_KEYWORDS := -k _ -k _n:1,2

.PHONY: run test install install-test fribidi lint locales compile-locales bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

## fribidi: Debian's libfribidi0 when missing. Pillow's wheels bundle libraqm but load FriBiDi
## from the system; without it the floor maps would draw Arabic unjoined, left to right.
fribidi:
	@ldconfig -p 2>/dev/null | grep -q 'libfribidi\.so\.0' \
	|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	     && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfribidi0; } \
	|| echo "warning: install libfribidi0, or the maps will show Arabic unjoined" >&2

## install: the bot and its dependencies in .venv
install: $(BIN)/python fribidi
	$(BIN)/pip install -q -e .

## run: install, then serve the web chat on http://127.0.0.1:8080 with the sample fair
run: install
	$(BIN)/tadamon run

## install-test: what the tests need (Python packages; redis-server and PostgreSQL from Debian)
## (pip's own compiling of every module to bytecode runs on one core: compileall does it on
## all of them; a file that does not compile is left to its import, as pip leaves it)
install-test: $(BIN)/python fribidi
	bash tests/ensure-servers.sh
	$(BIN)/pip install -q --no-compile -e ".[test]"
	$(BIN)/python -m compileall -q -j 0 \
		"$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null \
		|| true

## lint: ruff, mypy --strict and the import contract (bot -> handlers -> storage)
lint:
	$(BIN)/ruff check bot handlers storage tests bench
	$(BIN)/mypy bot handlers storage
	$(BIN)/lint-imports

## test: install what the tests need, then run the linters and every test (a pytest worker per
## core; an idle worker takes tests queued for a busy one)
test: install-test lint
	$(BIN)/python -m pytest -n auto --dist worksteal

## locales: extract messages, update the ar/fr/en catalogs, compile them
locales:
	$(BIN)/pybabel extract -F babel.cfg $(BABEL_KEYWORDS) --no-location --sort-output \
		--project=tadamon -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching \
		--ignore-obsolete -w 100
	$(MAKE) compile-locales

compile-locales:
	$(BIN)/pybabel compile -d locales -D messages --statistics

## bench: the engine benchmark (embedded defaults, then real Redis + PostgreSQL)
bench: install-test
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache
