# The two commands of the README:
#   make demo   fine-tune the bundled model on the example task, evaluate base vs fine-tuned
#   make test   build and run the whole test suite
# Everything else is CMake; this file only wires the steps together.
BUILD ?= build
JOBS ?= 2

.PHONY: deps build test demo asan fuzz clean

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@echo "building in $(BUILD)/ (log: $(BUILD)/build.log)"
	@cmake --build $(BUILD) -j$(JOBS) > $(BUILD)/build.log 2>&1 || (tail -40 $(BUILD)/build.log; exit 1)

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

demo: build
	@scripts/demo.sh $(BUILD)/hone

asan: deps
	@cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DHONE_SANITIZE=ON >/dev/null
	@echo "building in $(BUILD)-asan/ (log: $(BUILD)-asan/build.log)"
	@cmake --build $(BUILD)-asan -j$(JOBS) > $(BUILD)-asan/build.log 2>&1 || (tail -40 $(BUILD)-asan/build.log; exit 1)
	@cd $(BUILD)-asan && ctest --output-on-failure -j$(JOBS)

# libFuzzer on the GGUF and safetensors parsers from the committed corpus
# (FUZZ_SECONDS each; clang). A crash leaves its input in $(BUILD)-fuzz/.
FUZZ_SECONDS ?= 30
fuzz: deps
	@CC=clang cmake -S . -B $(BUILD)-fuzz -DHONE_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD)-fuzz -j$(JOBS) --target fuzz_gguf fuzz_safetensors > $(BUILD)-fuzz/build.log 2>&1 || (tail -40 $(BUILD)-fuzz/build.log; exit 1)
	@for f in gguf safetensors; do \
	  mkdir -p $(BUILD)-fuzz/corpus-$$f && cp tests/fuzz/corpus/$$f/* $(BUILD)-fuzz/corpus-$$f/ && \
	  (cd $(BUILD)-fuzz && ./tests/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	     corpus-$$f > fuzz_$$f.log 2>&1 || (tail -30 fuzz_$$f.log; exit 1)) && \
	  echo "fuzz_$$f: $$(grep -o 'stat::number_of_executed_runs: *[0-9]*' $(BUILD)-fuzz/fuzz_$$f.log || tail -1 $(BUILD)-fuzz/fuzz_$$f.log)" || exit 1; \
	done

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz
