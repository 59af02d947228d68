# The two commands of the README:
#   make demo   fine-tune the bundled model on the example task, evaluate base vs fine-tuned
#   make test   build and run the whole test suite
# Everything else is CMake; this file only wires the steps together.
BUILD ?= build
JOBS ?= 2

.PHONY: deps build test demo asan clean

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

clean:
	rm -rf $(BUILD) $(BUILD)-asan
