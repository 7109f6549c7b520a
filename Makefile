# Two commands matter: `make demo` (install, fetch weights, convert, detect) and `make test` (ruff, then pytest).
# Everything runs in a virtual environment (.venv) created with the Python found as $(PYTHON).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out
SAMPLE = $$($(PY) -c "import matplotlib.cbook as c; print(c.get_sample_data('grace_hopper.jpg', asfileobj=False))")

.PHONY: install demo lint test test-slow test-all mutants clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

model_data/yolov3-tiny.keras: $(VENV)/.installed
	$(PY) convert.py yolo3/resources/yolov3-tiny.cfg "$$($(PY) -m yolo3.cli.weights yolov3-tiny -q)" $@

demo: model_data/yolov3-tiny.keras
	mkdir -p $(OUT)
	$(PY) yolo_video.py --model model_data/yolov3-tiny.keras --image "$(SAMPLE)" --output $(OUT) --json $(OUT)/detections.json
	@echo "drawn picture and detections in $(OUT)/"

lint: $(VENV)/.installed
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow

test-all: $(VENV)/.installed
	$(PY) -m pytest -m ""

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache

# Developer tool (not part of `make test`): plant curated bugs one at a time in a copy, check the tests catch each.
mutants: $(VENV)/.installed
	nice -n 19 $(PY) tests/mutants.py
