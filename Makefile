# `make demo` and `make test` do all the set-up themselves on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests in parallel (pytest-xdist): each test has its own ports, databases and Redis keys.
TEST_WORKERS ?= 2

.PHONY: demo test lint run clean fonts

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) fonts
	$(BIN)/gridbot demo

test: $(STAMP) fonts
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

run: $(STAMP) fonts
	$(BIN)/gridbot run

# The digest draws Chinese with Debian's WenQuanYi Micro Hei unless GRIDBOT_FONT names a font.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
fonts:
	@[ -n "$$GRIDBOT_FONT" ] || [ -f $(CJK_FONT) ] || { \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null \
	  || { echo "The digest needs a Chinese font: install Debian's fonts-wqy-microhei" \
	       "or set GRIDBOT_FONT to a TrueType font with Chinese glyphs." >&2; exit 1; }; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
