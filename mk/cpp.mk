# The C++ binding (bindings/cpp): configure and build with CMake into build/cpp, run the
# GoogleTest suite with ctest, run it again under valgrind, then build and run the example.
#   make cpp-tests    (the benchmark: build/cpp/predict_overhead after this)
CPP_BUILD := build/cpp
CPP_LIB := $(CURDIR)/$(RELEASE)/libdeepseek.so

.PHONY: cpp-tests
cpp-tests: lib setup
	cmake -S bindings/cpp -B $(CPP_BUILD) -DDEEPSEEK_LIB=$(CPP_LIB) > /dev/null
	cmake --build $(CPP_BUILD) -j2
	ctest --test-dir $(CPP_BUILD) --output-on-failure
	@echo "== C++ tests under valgrind (the 100,000-call stress test runs only natively)"
	$(VALGRIND) $(CPP_BUILD)/deepseek_cpp_tests --gtest_filter='-*Stress*' --gtest_brief=1
	$(CPP_BUILD)/ctr_example $(CPP_BUILD)

BINDING_TESTS += cpp-tests
